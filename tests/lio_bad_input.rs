//! Bad input: gaps, duplicates, reordering, empty scans, NaN points, time jumps are counted and
//! logged; the run goes on and nothing panics.

use gs_livo::estimator::Lio;
use gs_livo::sensors::{ImuSample, PointCloud};
use gs_livo::sim::{simulate, SimConfig};
use gs_livo::sync::{SyncSettings, Synchronizer};
use nalgebra::Vector3;

fn imu(stamp: u64) -> ImuSample {
    ImuSample {
        stamp,
        gyro: Vector3::zeros(),
        accel: Vector3::new(0.0, 0.0, 9.81),
    }
}

fn cloud(stamp: u64, n: usize) -> PointCloud {
    let mut c = PointCloud::with_capacity(stamp, "lidar", n, true);
    for i in 0..n {
        c.push([5.0, i as f32 * 0.01, 0.0], 0.0, 0.0);
    }
    c
}

#[test]
fn synchronizer_counts_every_kind_of_bad_input() {
    let ms = 1_000_000u64;
    let t0 = 1_000_000 * ms;
    let mut s = Synchronizer::new(SyncSettings::default());
    for k in 0..10 {
        s.push_imu(imu(t0 + k * 5 * ms));
    }
    s.push_imu(imu(t0 + 45 * ms)); // duplicate
    s.push_imu(imu(t0 + 20 * ms)); // out of order
    s.push_imu(ImuSample {
        accel: Vector3::new(f64::NAN, 0.0, 0.0),
        ..imu(t0 + 50 * ms)
    });
    s.push_imu(imu(t0 + 200 * ms)); // gap of 155 ms
    s.push_scan(cloud(t0 + 30 * ms, 0)); // empty
    s.push_scan(cloud(t0 + 30 * ms, 10));
    s.push_scan(cloud(t0 + 30 * ms, 10)); // duplicate scan
    s.push_scan(cloud(t0 + 20 * ms, 10)); // older scan
    let p = s.pop().expect("package");
    assert_eq!(p.imu.len(), 7);
    assert!(p.imu.windows(2).all(|w| w[0].stamp < w[1].stamp));
    assert!(s.pop().is_none());
    s.push_imu(imu(t0 + 10_000 * ms)); // forward time jump
    s.push_scan(cloud(t0 + 10_050 * ms, 10));
    s.push_imu(imu(t0 + 10_025 * ms));
    s.push_imu(imu(t0 + 10_050 * ms));
    let p = s.pop().expect("package after the jump");
    assert!(p.time_jump);
    s.push_scan(cloud(t0 + 20_000 * ms, 10));
    s.finish();
    let c = s.counters();
    assert_eq!(c.imu_duplicates, 1);
    assert_eq!(c.imu_out_of_order, 1);
    assert_eq!(c.imu_non_finite, 1);
    assert_eq!(c.imu_gaps, 1);
    assert_eq!(c.time_jumps, 1);
    assert_eq!(c.empty_scans, 1);
    assert_eq!(c.scans_out_of_order, 2);
    assert_eq!(c.scans_unmatched_at_end, 1);
}

#[test]
fn lio_survives_corrupted_stream() {
    let mut c = SimConfig::new("room");
    c.duration = 5.0;
    c.camera_rate = 0.5;
    let seq = simulate(&c).expect("simulate");
    let cfg = &seq.config.rig;
    let mut sync = Synchronizer::new(SyncSettings::default());
    let mut lio = Lio::new(&cfg.lio_setup());
    let mut imu_stream: Vec<ImuSample> = Vec::new();
    for (k, s) in seq.imu.iter().enumerate() {
        // A 60 ms gap, duplicates and swapped neighbours.
        if (600..612).contains(&k) {
            continue;
        }
        imu_stream.push(*s);
        if k % 97 == 0 {
            imu_stream.push(*s);
        }
    }
    for k in (300..imu_stream.len() - 1).step_by(151) {
        imu_stream.swap(k, k + 1);
    }
    let mut scans: Vec<PointCloud> = seq.scans.iter().map(|s| s.to_cloud("lidar")).collect();
    scans[20].x.clear();
    scans[20].y.clear();
    scans[20].z.clear();
    scans[20].intensity.clear();
    scans[20].time = Some(Vec::new());
    for i in (0..scans[25].len()).step_by(7) {
        scans[25].x[i] = f32::NAN;
    }
    let dup = scans[30].clone();
    scans.insert(31, dup);
    let mut results = 0;
    let mut j = 0;
    for s in &imu_stream {
        while j < scans.len() && scans[j].stamp + 100_000_000 <= s.stamp {
            sync.push_scan(scans[j].clone());
            j += 1;
        }
        sync.push_imu(*s);
        while let Some(p) = sync.pop() {
            if let Some(r) = lio.process(&p) {
                assert!(r.state.is_finite());
                results += 1;
            }
        }
    }
    sync.finish();
    let sc = sync.counters().clone();
    let lc = lio.counters().clone();
    eprintln!("{sc:?}\n{lc:?}");
    assert!(sc.imu_duplicates > 0);
    assert!(sc.imu_out_of_order > 0);
    assert!(sc.imu_gaps >= 1);
    assert_eq!(sc.empty_scans, 1);
    assert_eq!(sc.scans_out_of_order, 1);
    assert!(lc.non_finite_points > 0);
    assert!(results >= 40);
    // The pose stays sane: final position within 10 cm of ground truth (same world frame origin
    // up to the initial yaw, so compare distances travelled from the start instead).
    let last_gt = seq.ground_truth.last().unwrap().pose.translation.vector;
    let first_gt = seq.ground_truth.first().unwrap().pose.translation.vector;
    let est = lio.filter().unwrap().state().pos;
    assert!(((last_gt - first_gt).norm() - est.norm()).abs() < 0.1);
}
