//! End to end on the in-memory simulator: ATE against ground truth.

use gs_livo::config::Config;
use gs_livo::estimator::state::POS;
use gs_livo::estimator::{Lio, ScanResult};
use gs_livo::eval::trajectory::associate;
use gs_livo::eval::{evaluate, EvalOptions};
use gs_livo::sensors::PoseStamped;
use gs_livo::sim::{simulate, SimConfig, SimSequence};
use gs_livo::sync::{SyncSettings, Synchronizer};
use nalgebra::{Matrix3, Vector3};

struct RunOutcome {
    results: Vec<ScanResult>,
    /// The filter's position covariance after each result.
    pos_cov: Vec<Matrix3<f64>>,
    ate_rmse: f64,
    degenerate: usize,
    updated: usize,
}

/// Feeds the sequence in stamp order through the synchroniser into the LIO.
fn run(seq: &SimSequence, cfg: &Config) -> RunOutcome {
    let mut sync = Synchronizer::new(SyncSettings::default());
    let mut lio = Lio::new(&cfg.lio_setup());
    let mut results = Vec::new();
    let mut pos_cov = Vec::new();
    let frame = &cfg.frames.lidar;
    let (mut i, mut j) = (0, 0);
    while i < seq.imu.len() || j < seq.scans.len() {
        // The bag order: a scan is logged at its end (stamp + last point time).
        let scan_end = seq.scans.get(j).map(|s| {
            s.stamp + (s.points.iter().map(|p| p.t).fold(0.0f32, f32::max) as f64 * 1e9) as u64
        });
        let imu_next = seq.imu.get(i).map(|s| s.stamp);
        match (imu_next, scan_end) {
            (Some(ti), Some(ts)) if ti <= ts => {
                sync.push_imu(seq.imu[i]);
                i += 1;
            }
            (Some(_), None) => {
                sync.push_imu(seq.imu[i]);
                i += 1;
            }
            _ => {
                sync.push_scan(seq.scans[j].to_cloud(frame));
                j += 1;
            }
        }
        while let Some(pkg) = sync.pop() {
            if let Some(r) = lio.process(&pkg) {
                results.push(r);
                let p = lio
                    .filter()
                    .expect("a result comes from a filter")
                    .covariance();
                pos_cov.push(p.fixed_view::<3, 3>(POS, POS).into());
            }
        }
    }
    let est: Vec<PoseStamped> = results
        .iter()
        .map(|r| PoseStamped {
            stamp: r.stamp,
            pose: r.pose,
        })
        .collect();
    let rep = evaluate(&seq.ground_truth, &est, &EvalOptions::default()).expect("eval");
    let degenerate = results
        .iter()
        .filter(|r| r.degeneracy.is_some_and(|d| d.degenerate))
        .count();
    let updated = results.iter().filter(|r| r.degeneracy.is_some()).count();
    let mut ratios: Vec<f64> = results
        .iter()
        .filter_map(|r| r.degeneracy)
        .map(|d| d.eigenvalues[0] / d.eigenvalues[2])
        .collect();
    ratios.sort_by(f64::total_cmp);
    if !ratios.is_empty() {
        eprintln!(
            "translational information eigenvalue ratio min/max: median {:.4}, min {:.4}",
            ratios[ratios.len() / 2],
            ratios[0]
        );
    }
    eprintln!(
        "scans {} updated {} degenerate {} ATE rmse {:.4} m max {:.4} m counters {:?}",
        results.len(),
        updated,
        degenerate,
        rep.ate.rmse,
        rep.ate.max,
        lio.counters()
    );
    RunOutcome {
        results,
        pos_cov,
        ate_rmse: rep.ate.rmse,
        degenerate,
        updated,
    }
}

fn sim(scene: &str, duration: f64, noise: f64) -> SimSequence {
    let mut c = SimConfig::new(scene);
    c.duration = duration;
    c.noise = noise;
    c.camera_rate = 0.5;
    simulate(&c).expect("simulate")
}

#[test]
fn room_short_ate_under_2cm() {
    let seq = sim("room", 6.0, 1.0);
    let out = run(&seq, &seq.config.rig);
    assert!(out.results.len() >= 40, "{} scans", out.results.len());
    assert!(out.updated >= out.results.len() - 2);
    assert!(out.ate_rmse < 0.02, "ATE {}", out.ate_rmse);
    assert_eq!(out.degenerate, 0, "room flagged degenerate");
}

#[test]
fn corridor_is_reported_degenerate() {
    let seq = sim("corridor", 6.0, 1.0);
    let out = run(&seq, &seq.config.rig);
    assert!(
        out.degenerate * 4 >= out.updated,
        "only {} of {} updates flagged degenerate",
        out.degenerate,
        out.updated
    );
    eprintln!(
        "corridor ATE (reported, not asserted): {:.4} m",
        out.ate_rmse
    );
}

#[test]
#[ignore = "20 s room; run with --ignored (numbers in the LIO report)"]
fn room_20s_ate_under_2cm() {
    let seq = sim("room", 20.0, 1.0);
    let out = run(&seq, &seq.config.rig);
    assert!(out.ate_rmse < 0.02, "ATE {}", out.ate_rmse);
}

#[test]
#[ignore = "20 s room without noise"]
fn room_20s_noise0_ate_under_5mm() {
    let seq = sim("room", 20.0, 0.0);
    let out = run(&seq, &seq.config.rig);
    assert!(out.ate_rmse < 0.005, "ATE {}", out.ate_rmse);
}

#[test]
#[ignore = "20 s street"]
fn street_20s_ate_under_10cm() {
    let seq = sim("street", 20.0, 1.0);
    let out = run(&seq, &seq.config.rig);
    assert!(out.ate_rmse < 0.10, "ATE {}", out.ate_rmse);
    // Without the information the planes' tilt errors fake, the along-street direction of a
    // few scans (5 of 195 with `sim --seed 1`, 11 of 194 here) falls under the degeneracy
    // ratio; most must not.
    assert!(
        out.degenerate * 10 <= out.updated,
        "street flagged degenerate in {} of {} updates",
        out.degenerate,
        out.updated
    );
}

#[test]
#[ignore = "20 s corridor, ATE reported"]
fn corridor_20s_reported() {
    let seq = sim("corridor", 20.0, 1.0);
    let out = run(&seq, &seq.config.rig);
    assert!(out.degenerate > 0);
}

#[test]
fn fast_rotation_over_90deg_per_s_does_not_diverge() {
    let mut c = SimConfig::new("room");
    c.duration = 6.0;
    c.yaw_rate_deg = 120.0;
    c.camera_rate = 0.5;
    let seq = simulate(&c).expect("simulate");
    let peak = seq.imu.iter().map(|s| s.gyro.norm()).fold(0.0, f64::max);
    eprintln!("peak angular rate {:.1} deg/s", peak.to_degrees());
    assert!(peak.to_degrees() > 90.0, "sequence not fast enough: {peak}");
    let out = run(&seq, &seq.config.rig);
    assert!(out.ate_rmse < 0.05, "ATE {}", out.ate_rmse);
}

/// Normalised squared error along the world axis `axis` per result: the position error (the
/// estimate moved onto the ground truth at the first result, where the filter starts certain)
/// squared over the filter's variance along that axis.
fn nees_along(out: &RunOutcome, seq: &SimSequence, axis: &Vector3<f64>) -> Vec<f64> {
    let est: Vec<PoseStamped> = out
        .results
        .iter()
        .map(|r| PoseStamped {
            stamp: r.stamp,
            pose: r.pose,
        })
        .collect();
    let pairs = associate(&seq.ground_truth, &est, 0.005);
    let (g0, e0) = pairs[0];
    let align = seq.ground_truth[g0].pose * est[e0].pose.inverse();
    let rot = align.rotation.to_rotation_matrix().into_inner();
    pairs
        .iter()
        .map(|&(g, e)| {
            let err = (align * est[e].pose).translation.vector
                - seq.ground_truth[g].pose.translation.vector;
            let var = (axis.transpose() * rot * out.pos_cov[e] * rot.transpose() * axis)[0];
            err.dot(axis).powi(2) / var
        })
        .collect()
}

/// The open corridor gives the LiDAR nothing along its axis (x): the filter's variance there
/// must grow with the IMU drift it actually has. Counting the planes' tilt errors as
/// information shrank it to centimetres while the error grew to decimetres (NEES in the
/// hundreds). Chi-square with one degree of freedom: 95 % of frames under 3.84 when consistent;
/// at least 90 % asked (errors are correlated in time, so the count is coarse).
/// The share of frames whose NEES along x is within the chi-square 95 % bound (3.84), on the
/// open corridor run with or without the planes' tilt deflation.
fn open_corridor_nees(seq: &SimSequence, deflation: bool) -> f64 {
    let mut cfg = seq.config.rig.clone();
    cfg.lio.plane_tilt_deflation = deflation;
    let out = run(seq, &cfg);
    let nees = nees_along(&out, seq, &Vector3::x());
    let inside = nees.iter().filter(|&&v| v < 3.84).count();
    let mut sorted = nees.clone();
    sorted.sort_by(f64::total_cmp);
    let last = out.pos_cov.last().expect("results");
    eprintln!(
        "deflation {deflation}: NEES along the axis: {inside} of {} under 3.84, median {:.2}, max {:.1}; final sd along the axis {:.3} m",
        nees.len(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        last[(0, 0)].sqrt()
    );
    inside as f64 / nees.len() as f64
}

/// The open corridor gives the LiDAR nothing along its axis (x): the filter's variance there
/// must grow with the IMU drift it actually has. Counting the planes' tilt errors as
/// information shrank it to centimetres while the error grew to decimetres. Chi-square with
/// one degree of freedom: 95 % of frames under 3.84 when consistent; at least 90 % asked
/// (errors are correlated in time, so the count is coarse). The plain point-to-plane model
/// must fail the same check, or the check proves nothing.
#[test]
fn open_corridor_axis_variance_is_consistent() {
    let seq = sim("corridor_open", 8.0, 1.0);
    let with = open_corridor_nees(&seq, true);
    let without = open_corridor_nees(&seq, false);
    assert!(
        with >= 0.9,
        "{:.0} % of frames within the bound",
        100.0 * with
    );
    assert!(
        without < 0.9,
        "the undeflated model passed too ({:.0} %)",
        100.0 * without
    );
}
