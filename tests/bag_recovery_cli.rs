//! `gs_livo info` and `gs_livo run` on a simulated recording cut at 60 % of its bytes: the
//! intact part is processed, every output written, the truncation shown and recorded.

use std::path::Path;
use std::process::Command;

use gs_livo::bag::{msgs, BagReader, BagWriter, WriterOptions};
use gs_livo::eval::{evaluate, tum::read_tum, EvalOptions, RpeDelta};
use gs_livo::sim::{simulate, write_sequence, SimConfig};

/// Rewrites a bag in 256 KiB zstd chunks (the simulator writes 4 MiB ones, more than this
/// short recording holds), as a recorder's default chunking would.
fn rechunk(src: &Path, dest: &Path) {
    let r = BagReader::open(src).unwrap();
    let mut w = BagWriter::create_with(
        dest,
        WriterOptions {
            chunk_size: 256 << 10,
            ..Default::default()
        },
    )
    .unwrap();
    for m in r.messages(&[]).unwrap() {
        let m = m.unwrap();
        let (t, d, topic) = (m.log_time, &m.data, m.topic.as_str());
        match m.type_name.as_str() {
            "sensor_msgs/msg/Imu" => w.write_raw::<msgs::Imu>(topic, t, d),
            "sensor_msgs/msg/PointCloud2" => w.write_raw::<msgs::PointCloud2>(topic, t, d),
            "sensor_msgs/msg/Image" => w.write_raw::<msgs::Image>(topic, t, d),
            "sensor_msgs/msg/CompressedImage" => w.write_raw::<msgs::CompressedImage>(topic, t, d),
            "nav_msgs/msg/Odometry" => w.write_raw::<msgs::Odometry>(topic, t, d),
            other => panic!("unexpected type {other}"),
        }
        .unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn run_on_a_bag_cut_at_60_percent_processes_the_intact_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SimConfig::new("room");
    c.duration = 4.0;
    c.camera_rate = 1.0;
    let seq = simulate(&c).unwrap();
    write_sequence(dir.path(), &seq).unwrap();
    let bag = dir.path().join("cut");
    rechunk(&dir.path().join("bag"), &bag);
    // The recorder died: no metadata.yaml, the file cut at 60 % of its bytes.
    std::fs::remove_file(bag.join("metadata.yaml")).unwrap();
    let file = bag.join("cut_0.mcap");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() * 6 / 10]).unwrap();

    let exe = env!("CARGO_BIN_EXE_gs_livo");
    let info = Command::new(exe).arg("info").arg(&bag).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}");
    assert!(text.contains("TRUNCATED"), "{text}");

    let out = dir.path().join("out");
    let status = Command::new(exe)
        .arg("run")
        .arg(&bag)
        .arg("--config")
        .arg(dir.path().join("config.yaml"))
        .arg("--out")
        .arg(&out)
        .args(["--mode", "lio", "--set", "lio.max_iterations=4"])
        .status()
        .unwrap();
    assert!(status.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let damage = &summary["ingest"]["bag_damage"];
    assert_eq!(damage["truncated"], true, "{damage}");
    assert_eq!(damage["metadata_missing"], true);
    let last_ns = damage["files"][0]["last_message_time"].as_u64().unwrap();
    assert!(damage["files"][0]["unusable_bytes"].as_u64().unwrap() > 0);

    // The trajectory covers the intact span (to within a scan period) and is accurate there.
    let est = read_tum(&out.join("trajectory.tum")).unwrap();
    let gt = read_tum(&dir.path().join("ground_truth.tum")).unwrap();
    let (t0, t_end) = (gt[0].stamp, gt[gt.len() - 1].stamp);
    let last = est[est.len() - 1].stamp;
    let intact = (last_ns - t0) as f64 * 1e-9;
    eprintln!(
        "cut at 60 %: {} poses up to +{:.2} s; last complete message at +{intact:.2} s of {:.2} s",
        est.len(),
        (last - t0) as f64 * 1e-9,
        (t_end - t0) as f64 * 1e-9
    );
    assert!(intact > 1.5 && intact < 3.5, "intact span {intact} s");
    assert!(
        last + 200_000_000 >= last_ns && last <= last_ns,
        "last pose at {last}"
    );
    let opts = EvalOptions {
        rpe_delta: RpeDelta::Frames(5),
        ..Default::default()
    };
    let rep = evaluate(&gt, &est, &opts).unwrap();
    eprintln!("ATE rmse {:.4} m over {} poses", rep.ate.rmse, est.len());
    assert!(rep.ate.rmse < 0.05, "ATE {}", rep.ate.rmse);
}
