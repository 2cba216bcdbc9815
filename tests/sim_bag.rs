//! `sim::write_sequence` writes a rosbag2 folder the bag reader decodes back to the simulated
//! data, plus ground truth, exposure gains and a loadable config.

use gs_livo::bag::{decode_sensor_message, BagReader, SensorMessage};
use gs_livo::config::{Camera, Config};
use gs_livo::sim::{self, LidarKind, SimConfig};

fn small(kind: LidarKind, compressed: bool) -> SimConfig {
    let mut cfg = SimConfig::new("room");
    cfg.duration = 2.0;
    cfg.lidar = kind;
    cfg.compressed = compressed;
    cfg.exposure_jitter = 0.2;
    cfg.rig.camera = Camera {
        width: 64,
        height: 48,
        fx: 40.0,
        fy: 40.0,
        cx: 31.5,
        cy: 23.5,
        distortion: [0.0; 5],
    };
    cfg
}

fn round_trip(kind: LidarKind, compressed: bool) {
    let cfg = small(kind, compressed);
    let seq = sim::simulate(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    sim::write_sequence(dir.path(), &seq).unwrap();
    let rig = Config::load(&dir.path().join("config.yaml"), &[]).unwrap();
    assert_eq!(rig.camera, cfg.rig.camera);
    assert_eq!(rig.extrinsics, cfg.rig.extrinsics);
    let gt = gs_livo::eval::tum::read_tum(&dir.path().join("ground_truth.tum")).unwrap();
    assert_eq!(gt.len(), seq.ground_truth.len());
    assert_eq!(gt[10].stamp, seq.ground_truth[10].stamp);
    let exp = std::fs::read_to_string(dir.path().join("exposure.txt")).unwrap();
    assert_eq!(
        exp.lines().filter(|l| !l.starts_with('#')).count(),
        seq.images.len()
    );

    let bag = BagReader::open(&dir.path().join("bag")).unwrap();
    let count = |t: &str| bag.topics().iter().find(|i| i.name == t).map(|i| i.count);
    assert_eq!(count(&rig.topics.imu), Some(seq.imu.len() as u64));
    assert_eq!(count(&rig.topics.lidar), Some(seq.scans.len() as u64));
    assert_eq!(count(&rig.topics.image), Some(seq.images.len() as u64));
    assert_eq!(
        count(&rig.topics.ground_truth),
        Some(seq.ground_truth.len() as u64)
    );
    let (mut scans, mut imus, mut images) = (0, 0, 0);
    let mut last = 0;
    for raw in bag.messages(&[]).unwrap() {
        let raw = raw.unwrap();
        assert!(raw.log_time >= last, "time order");
        last = raw.log_time;
        match decode_sensor_message(&raw).unwrap() {
            SensorMessage::Cloud(c) => {
                let s = &seq.scans[scans];
                assert_eq!(c.stamp, s.stamp);
                assert_eq!(c.len(), s.points.len());
                let t = c.time.as_ref().expect("per-point time");
                for (i, p) in s.points.iter().enumerate().step_by(97) {
                    assert_eq!([c.x[i], c.y[i], c.z[i]], p.p);
                    assert!((t[i] - p.t).abs() < 2e-6, "{} vs {}", t[i], p.t);
                }
                scans += 1;
            }
            SensorMessage::Imu(m) => {
                assert_eq!(m, seq.imu[imus]);
                imus += 1;
            }
            SensorMessage::Image(im) => {
                let want = &seq.images[images];
                assert_eq!(
                    (im.width, im.height, im.stamp),
                    (want.width, want.height, want.stamp)
                );
                if compressed {
                    let psnr = gs_livo::eval::image::psnr_rgb8(&im, want).unwrap();
                    assert!(psnr > 30.0, "jpeg psnr {psnr}");
                } else {
                    assert_eq!(im.rgb, want.rgb);
                }
                images += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        (scans, imus, images),
        (seq.scans.len(), seq.imu.len(), seq.images.len())
    );
}

#[test]
fn spinning_rgb8_bag_round_trips() {
    round_trip(LidarKind::Spinning, false);
}

#[test]
fn livox_compressed_bag_round_trips() {
    round_trip(LidarKind::Livox, true);
}
