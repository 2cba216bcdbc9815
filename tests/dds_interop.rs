//! The node over its DDS transport against a real ROS 2 DDS implementation: Cyclone DDS (the
//! implementation behind rmw_cyclonedds_cpp) through its Python binding, with the ROS 2 types
//! declared there (tests/python/dds_peer.py). The peer plays a simulated sequence onto a
//! loopback-only domain at its recorded rate with `/clock`, asks for a save mid-run, and
//! decodes the node's odometry, TF and diagnostics with Cyclone's own deserializer.
//!
//! Skips (with a message) only where `cyclonedds` cannot be imported outside CI; under
//! CI=true a missing package fails.
#![cfg(feature = "dds")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gs_livo::eval::{evaluate, tum::read_tum, EvalOptions};
use gs_livo::pipeline::{Mode, PipelineOptions};
use gs_livo::sim::{self, SimConfig};
use serde_json::Value;

fn cyclonedds_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cyclonedds.domain, mcap"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("dds_interop: python3 with cyclonedds and mcap is required in CI");
        }
        eprintln!("dds_interop: SKIPPED, `import cyclonedds` failed (pip install cyclonedds mcap)");
    }
    ok
}

/// Loopback only, no multicast: discovery through unicast to the well-known ports on
/// 127.0.0.1, on both sides.
const CYCLONE_LOOPBACK: &str = "<CycloneDDS><Domain Id=\"any\"><General><Interfaces>\
    <NetworkInterface name=\"lo\"/></Interfaces><AllowMulticast>false</AllowMulticast>\
    </General><Discovery><ParticipantIndex>auto</ParticipantIndex>\
    <MaxAutoParticipantIndex>30</MaxAutoParticipantIndex><Peers>\
    <Peer address=\"127.0.0.1\"/></Peers></Discovery></Domain></CycloneDDS>";

/// A domain per run (1..=200), so concurrent runs on one host do not hear each other.
fn domain_id() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    1 + ((std::process::id() ^ t) % 200) as u16
}

/// A node process stopped with SIGINT (as `ros2 launch` does) when dropped.
struct Node(Child);

impl Node {
    fn interrupt_and_wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let end = Instant::now() + within;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < end,
                "the node did not stop within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(cfg: &Path, out: &Path, domain: u16, log: &Path) -> Node {
    let child = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .args(["node", "--transport", "dds", "--mode", "lio", "--ros-args"])
        .arg("--params-file")
        .arg(cfg)
        .arg("-p")
        .arg(format!("node.save_dir:={}", out.display()))
        .args(["-p", "use_sim_time:=true", "-p", "topics.image:=''"])
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("GS_LIVO_DDS_INTERFACES", "127.0.0.1")
        .env("RUST_LOG", "info,rustdds=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start gs_livo node");
    Node(child)
}

fn peer(args: &[&str], domain: u16) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/dds_peer.py");
    Command::new("python3")
        .arg(script)
        .args(args)
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("CYCLONEDDS_URI", CYCLONE_LOOPBACK)
        .output()
        .expect("run python3")
}

fn mcap_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "mcap"))
        .expect("an .mcap in the bag")
}

fn write_tum(path: &Path, odometry: &[Value]) {
    let mut s = String::new();
    for o in odometry {
        let p: Vec<f64> = serde_json::from_value(o["p"].clone()).unwrap();
        let q: Vec<f64> = serde_json::from_value(o["q"].clone()).unwrap();
        let t = o["stamp"].as_u64().unwrap() as f64 / 1e9;
        s += &format!(
            "{t:.9} {} {} {} {} {} {} {}\n",
            p[0], p[1], p[2], q[0], q[1], q[2], q[3]
        );
    }
    std::fs::write(path, s).unwrap();
}

fn ate(gt: &Path, est: &Path) -> f64 {
    let gt = read_tum(gt).unwrap();
    let est = read_tum(est).unwrap();
    evaluate(&gt, &est, &EvalOptions::default())
        .unwrap()
        .ate
        .rmse
}

/// The scan an odometry stamp belongs to: the last one that started at or before it, within a
/// sweep (0.1 s) plus margin.
fn scan_for(scans: &[Value], stamp: u64) -> usize {
    let i = scans
        .iter()
        .rposition(|s| s["stamp"].as_u64().unwrap() <= stamp)
        .unwrap_or_else(|| panic!("odometry at {stamp} before every scan"));
    let dt = stamp - scans[i]["stamp"].as_u64().unwrap();
    assert!(dt <= 150_000_000, "odometry {dt} ns after its scan started");
    i
}

fn show_log(log: &Path) -> String {
    let s = std::fs::read_to_string(log).unwrap_or_default();
    s.lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn cyclone_peer_drives_the_node_over_dds() {
    if !cyclonedds_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sc = SimConfig::new("room");
    sc.duration = 6.0;
    let seq = sim::simulate(&sc).expect("simulate");
    let seq_dir = tmp.path().join("seq");
    sim::write_sequence(&seq_dir, &seq).expect("write");
    let cfg_path = seq_dir.join("config.yaml");
    let (config, _) = gs_livo::ros::params::load_node_file(&cfg_path, &[]).unwrap();
    let out = tmp.path().join("out");
    let mid = tmp.path().join("mid");
    let log = tmp.path().join("node.log");
    let domain = domain_id();

    let mut node = start_node(&cfg_path, &out, domain, &log);
    let got_path = tmp.path().join("got.json");
    let bag = mcap_in(&seq_dir.join("bag"));
    let o = peer(
        &[
            "play",
            bag.to_str().unwrap(),
            got_path.to_str().unwrap(),
            "--save-at",
            "4.0",
            "--save-dir",
            mid.to_str().unwrap(),
            "--lidar",
            &config.topics.lidar,
            "--imu",
            &config.topics.imu,
        ],
        domain,
    );
    assert!(
        o.status.success(),
        "the Cyclone peer failed: {}\nnode log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        show_log(&log)
    );
    let status = node.interrupt_and_wait(Duration::from_secs(60));
    assert!(status.success(), "node exit {status}:\n{}", show_log(&log));
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&got_path).unwrap()).unwrap();

    // Every scan reached the node and every estimated scan came back as odometry.
    let scans = got["scans"].as_array().unwrap();
    let odo = got["odometry"].as_array().unwrap();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    eprintln!(
        "dds: {} scans sent, node received {} scans and {} of {} IMU; {} odometry; node-side \
         latency on /clock: {}",
        scans.len(),
        summary["lidar"]["received"],
        summary["imu"]["received"],
        got["imu"],
        odo.len(),
        summary["odometry"]["latency_ms"]
    );
    assert_eq!(summary["transport"], "dds");
    assert_eq!(
        summary["lidar"]["received"].as_u64(),
        Some(scans.len() as u64)
    );
    assert_eq!(summary["imu"]["received"], got["imu"]);
    assert_eq!(
        summary["odometry"]["published"].as_u64(),
        Some(odo.len() as u64),
        "every odometry the node published was received"
    );
    assert_eq!(
        summary["pipeline"]["frames"].as_u64(),
        Some(odo.len() as u64),
        "one odometry per estimated scan"
    );
    // The filter initialises on the static start before its first estimate.
    assert!(
        odo.len() + 20 >= scans.len() && odo.len() <= scans.len(),
        "{} odometry for {} scans",
        odo.len(),
        scans.len()
    );
    // Each odometry is stamped at the end of its own scan (header stamp = sweep start).
    let scan_of: Vec<usize> = odo
        .iter()
        .map(|o| scan_for(scans, o["stamp"].as_u64().unwrap()))
        .collect();
    let distinct: std::collections::BTreeSet<usize> = scan_of.iter().copied().collect();
    assert_eq!(distinct.len(), odo.len(), "one odometry per scan");
    assert!(odo
        .iter()
        .all(|o| o["frame"] == "odom" && o["child"] == "base_link"));

    // TF: odom -> base_link once per odometry; the static tree, delivered to a late joiner.
    let tf = got["tf"].as_array().unwrap();
    assert_eq!(tf.len(), odo.len());
    assert!(tf
        .iter()
        .all(|m| m[0][0] == "odom" && m[0][1] == "base_link"));
    let stat = got["tf_static"].as_array().unwrap();
    assert!(!stat.is_empty(), "/tf_static received");
    let mut edges: Vec<(String, String)> = stat[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t[0].as_str().unwrap().into(), t[1].as_str().unwrap().into()))
        .collect();
    edges.sort();
    let e = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        edges,
        vec![
            e("base_link", "camera"),
            e("base_link", "lidar"),
            e("map", "odom")
        ]
    );

    // Diagnostics, stamped on the sim clock (`/clock` under use_sim_time).
    let diag = got["diagnostics"].as_array().unwrap();
    assert!(!diag.is_empty(), "diagnostics received");
    let (first, last) = (
        scans[0]["stamp"].as_u64().unwrap(),
        scans[scans.len() - 1]["stamp"].as_u64().unwrap(),
    );
    for d in diag {
        let s = d["stamp"].as_u64().unwrap();
        assert!(
            s + 1_000_000_000 >= first && s <= last + 1_000_000_000,
            "diagnostics stamp {s} is not on the /clock time [{first}, {last}]"
        );
    }
    assert!(diag.iter().any(|d| d["status"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"].as_str().unwrap().contains("odometry"))));

    // The save request from the Cyclone side.
    for f in ["trajectory.tum", "lidar_map.ply", "summary.json"] {
        assert!(mid.join(f).exists(), "mid-run save wrote {f}");
    }
    assert!(read_tum(&mid.join("trajectory.tum")).unwrap().len() >= 10);

    // Poses as accurate as the offline run's.
    let est = tmp.path().join("dds.tum");
    write_tum(&est, odo);
    let off = tmp.path().join("offline");
    gs_livo::pipeline::run_offline(
        &seq_dir.join("bag"),
        &config,
        &off,
        &PipelineOptions {
            mode: Mode::Lio,
            mapping: false,
            ..Default::default()
        },
        Default::default(),
        None,
        Arc::new(AtomicBool::new(false)),
        |_| {},
    )
    .unwrap();
    let gt = seq_dir.join("ground_truth.tum");
    let (dds_ate, offline_ate) = (ate(&gt, &est), ate(&gt, &off.join("trajectory.tum")));
    let lat: Vec<f64> = odo
        .iter()
        .zip(&scan_of)
        .map(|(o, &i)| {
            let sent = scans[i]["sent_wall"].as_u64().unwrap() as f64;
            (o["received_wall"].as_u64().unwrap() as f64 - sent) / 1e6
        })
        .collect();
    let mut sorted = lat.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "ATE dds {dds_ate:.5} m, offline {offline_ate:.5} m; scan sent -> odometry received: \
         median {:.1} ms, p95 {:.1} ms",
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 95 / 100]
    );
    assert!(
        (dds_ate - offline_ate).abs() < 5e-4,
        "dds {dds_ate} vs offline {offline_ate}"
    );
}

/// Throughput (run by hand, `--ignored`): the peer publishes synthetic 16384-point clouds at
/// `GS_LIVO_FLOOD_LIDAR_HZ` (default 50) and 200 Hz IMU for 10 s; prints what the node received.
#[test]
#[ignore]
fn dds_throughput_16k_clouds_and_200hz_imu() {
    if !cyclonedds_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("rig.yaml");
    std::fs::write(
        &cfg,
        "/**:\n  ros__parameters:\n    topics:\n      lidar: /points\n      imu: /imu\n      \
         image: ''\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let log = tmp.path().join("node.log");
    let domain = domain_id();
    let mut node = start_node(&cfg, &out, domain, &log);
    let hz = std::env::var("GS_LIVO_FLOOD_LIDAR_HZ").unwrap_or_else(|_| "50".into());
    let sent_path = tmp.path().join("sent.json");
    let o = peer(
        &[
            "flood",
            sent_path.to_str().unwrap(),
            "--seconds",
            "10",
            "--points",
            "16384",
            "--imu-hz",
            "200",
            "--lidar-hz",
            &hz,
            "--lidar",
            "/points",
            "--imu",
            "/imu",
        ],
        domain,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    node.interrupt_and_wait(Duration::from_secs(60));
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&sent_path).unwrap()).unwrap();
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let secs = sent["seconds"].as_f64().unwrap();
    for k in ["lidar", "imu"] {
        let got = s[k]["received"].as_f64().unwrap();
        eprintln!(
            "{k}: sent {} ({:.1}/s), node received {got} ({:.1}/s), dropped in backlog {}",
            sent[k],
            sent[k].as_f64().unwrap() / secs,
            got / secs,
            s[k]["dropped_backlog"]
        );
    }
}
