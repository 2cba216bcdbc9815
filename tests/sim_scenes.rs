//! The simulator's stress scenes and sharp detail: `--detail` puts edges into the written
//! camera images (and changes nothing without it), the open field's LiDAR sees mostly ground,
//! the open corridor returns nothing along its axis, the tunnel is a smooth tube.

use gs_livo::bag::{decode_sensor_message, BagReader, SensorMessage};
use gs_livo::config::Camera;
use gs_livo::sensors::Image;
use gs_livo::sim::{self, Ray, Scene, SimConfig, SimSequence};
use nalgebra::{Point3, Vector3};

fn small(scene: &str, duration: f64) -> SimConfig {
    let mut cfg = SimConfig::new(scene);
    cfg.duration = duration;
    cfg.seed = 3;
    cfg.rig.camera = Camera {
        width: 160,
        height: 120,
        fx: 100.0,
        fy: 100.0,
        cx: 79.5,
        cy: 59.5,
        distortion: [0.0; 5],
    };
    cfg
}

/// Simulates, writes the bag and reads the images back from it.
fn written_images(cfg: &SimConfig) -> (SimSequence, Vec<Image>) {
    let seq = sim::simulate(cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    sim::write_sequence(dir.path(), &seq).unwrap();
    let bag = BagReader::open(&dir.path().join("bag")).unwrap();
    let count = |t: &str| bag.topics().iter().find(|i| i.name == t).map(|i| i.count);
    assert_eq!(count(&cfg.rig.topics.lidar), Some(seq.scans.len() as u64));
    assert_eq!(count(&cfg.rig.topics.imu), Some(seq.imu.len() as u64));
    let mut images = Vec::new();
    for raw in bag.messages(&[]).unwrap() {
        if let SensorMessage::Image(im) = decode_sensor_message(&raw.unwrap()).unwrap() {
            images.push(im);
        }
    }
    assert_eq!(images.len(), seq.images.len());
    (seq, images)
}

/// (mean |gradient| of luma, share of pixels with |gradient| > 0.1), luma in [0, 1].
fn gradient_energy(images: &[Image]) -> (f64, f64) {
    let (mut sum, mut strong, mut n) = (0.0, 0usize, 0usize);
    for im in images {
        let (w, h) = (im.width as usize, im.height as usize);
        let luma = |x: usize, y: usize| {
            let i = 3 * (y * w + x);
            (0.299 * im.rgb[i] as f64 + 0.587 * im.rgb[i + 1] as f64 + 0.114 * im.rgb[i + 2] as f64)
                / 255.0
        };
        for y in 0..h - 1 {
            for x in 0..w - 1 {
                let g = (luma(x + 1, y) - luma(x, y)).hypot(luma(x, y + 1) - luma(x, y));
                sum += g;
                strong += usize::from(g > 0.1);
                n += 1;
            }
        }
    }
    (sum / n as f64, strong as f64 / n as f64)
}

#[test]
fn detail_adds_sharp_content_to_the_written_images() {
    let plain = small("room", 1.0);
    let detail = SimConfig {
        detail: true,
        ..plain.clone()
    };
    let (seq_p, img_p) = written_images(&plain);
    let (seq_d, img_d) = written_images(&detail);
    // Same geometry and motion: only the albedo differs.
    assert_eq!(seq_p.ground_truth, seq_d.ground_truth);
    let (mean_p, strong_p) = gradient_energy(&img_p);
    let (mean_d, strong_d) = gradient_energy(&img_d);
    eprintln!("mean |grad| {mean_p:.4} -> {mean_d:.4}, |grad|>0.1 {strong_p:.4} -> {strong_d:.4}");
    assert!(mean_d > 1.5 * mean_p, "{mean_d} vs {mean_p}");
    assert!(strong_d > 3.0 * strong_p, "{strong_d} vs {strong_p}");
}

/// FNV-1a of the bytes, a stable fingerprint.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Without `--detail` the simulator renders exactly what it rendered before the option existed
/// (fingerprint of the first frame of `sim --scene room --seed 7`, full default camera, as
/// decoded from a bag written by the simulator before `--detail` existed).
#[test]
fn without_detail_the_room_image_is_unchanged() {
    let mut cfg = SimConfig::new("room");
    cfg.duration = 0.1;
    cfg.seed = 7;
    let seq = sim::simulate(&cfg).unwrap();
    assert_eq!(seq.images.len(), 1);
    assert_eq!(fnv(&seq.images[0].rgb), ROOM_SEED7_FRAME0);
}
const ROOM_SEED7_FRAME0: u64 = 4451241259069637288;

/// World position of each return of each scan (the pose at the point's own time).
fn world_points(seq: &SimSequence) -> Vec<Vec<(Vector3<f64>, Vector3<f64>)>> {
    let body_t_lidar = seq.config.rig.extrinsics.imu_T_lidar.0;
    seq.scans
        .iter()
        .map(|s| {
            let t0 = seq.time_of(s.stamp);
            s.points
                .iter()
                .map(|p| {
                    let pose = seq.trajectory.pose(t0 + p.t as f64) * body_t_lidar;
                    let q = Point3::new(p.p[0] as f64, p.p[1] as f64, p.p[2] as f64);
                    ((pose * q).coords, pose.translation.vector)
                })
                .collect()
        })
        .collect()
}

#[test]
fn open_field_lidar_sees_mostly_ground() {
    let seq = sim::simulate(&small("open", 3.0)).unwrap();
    let scans = world_points(&seq);
    let mut off_ground = 0usize;
    for (k, pts) in scans.iter().enumerate() {
        assert!(pts.len() > 3000, "scan {k}: {} returns", pts.len());
        let ground = pts.iter().filter(|(p, _)| p.z.abs() < 0.1).count();
        off_ground += pts.len() - ground;
        let share = ground as f64 / pts.len() as f64;
        assert!(share > 0.85, "scan {k}: {share:.3} on the ground");
    }
    // A few distant objects are seen, far away.
    assert!(off_ground > 0);
    let far = scans
        .iter()
        .flatten()
        .filter(|(p, _)| p.z > 0.3)
        .all(|(p, o)| (p - o).xy().norm() > 15.0);
    assert!(far, "an object closer than 15 m");
}

#[test]
fn open_corridor_has_no_ends_within_lidar_range() {
    let seq = sim::simulate(&small("corridor_open", 3.0)).unwrap();
    let scene = Scene::by_name("corridor_open").unwrap();
    let max_range = 120.0;
    let mut longest = 0.0f64;
    for (p, o) in world_points(&seq).iter().flatten() {
        // Every return lies on the floor, the ceiling or a side wall: no end wall, no object.
        let on_surface =
            p.z.abs() < 0.06 || (p.z - 2.6).abs() < 0.06 || (p.y.abs() - 1.2).abs() < 0.06;
        assert!(on_surface, "return off the corridor's walls at {p}");
        longest = longest.max((p.x - o.x).abs());
    }
    assert!(longest > 40.0, "longest return along the axis {longest} m");
    // Along the axis, and slightly off it, nothing within the LiDAR's range.
    for t in [2.0, 2.9] {
        let o = seq.trajectory.pose(t).translation.vector;
        for dir in [Vector3::x(), -Vector3::x(), Vector3::new(1.0, 0.003, 0.002)] {
            let hit = scene.intersect(&Ray {
                origin: o,
                dir: dir.normalize(),
            });
            assert!(
                hit.is_none_or(|h| h.t > max_range),
                "{dir}: {:?}",
                hit.map(|h| h.t)
            );
        }
    }
}

#[test]
fn tunnel_is_a_smooth_tube_with_few_features() {
    let seq = sim::simulate(&small("tunnel", 2.0)).unwrap();
    let pts: Vec<_> = world_points(&seq).into_iter().flatten().collect();
    let on_shell = pts
        .iter()
        .filter(|(p, _)| p.z.abs() < 0.06 || ((p.y).hypot(p.z - 1.2) - 3.2).abs() < 0.06)
        .count();
    let share = on_shell as f64 / pts.len() as f64;
    assert!(share > 0.97, "{share:.3} of returns on the tube or floor");
    // Looking down the tunnel, nothing ends it within range.
    let o = seq.trajectory.pose(1.0).translation.vector;
    let down = seq.scene.intersect(&Ray {
        origin: o,
        dir: Vector3::x(),
    });
    assert!(down.is_none());
    // Fewer visual features than the room: lower gradient energy.
    let (_, img_t) = written_images(&small("tunnel", 1.0));
    let (_, img_r) = written_images(&small("room", 1.0));
    let (g_t, _) = gradient_energy(&img_t);
    let (g_r, _) = gradient_energy(&img_r);
    assert!(g_t < 0.7 * g_r, "tunnel {g_t} vs room {g_r}");
}
