//! End to end on the in-memory simulator (#[ignore]: minutes in debug): sim -> LIO -> Gaussian
//! mapper (LiDAR-initialised discs coloured from images, no per-frame optimisation yet) ->
//! photometric update; ATE of LIVO against LIO-only on the same sequence.
//! `cargo test --test visual_sim -- --ignored --nocapture`
//!
//! These assert the targets, which are NOT met yet with the unoptimised map (measured
//! 18:20 UTC, test profile): corridor 20 s LIO 2.5 mm vs LIVO 2.4 mm ATE; room 10 s jitter 0.3:
//! LIO 1.5 mm, LIVO 1.7 mm, exposure RMS 8% (target 3%).

use gs_livo::config::Config;
use gs_livo::estimator::visual::{chain, render_set, PhotometricUpdate};
use gs_livo::estimator::Lio;
use gs_livo::eval::{evaluate, EvalOptions};
use gs_livo::gaussian::{CameraModel, GaussianMapper};
use gs_livo::sensors::{PoseStamped, Stamp};
use gs_livo::sim::{simulate, SimConfig, SimSequence};
use gs_livo::sync::MeasurementPackage;

struct Run {
    ate: f64,
    applied: usize,
    frames: usize,
    exposure_rms: f64,
}

fn run(seq: &SimSequence, livo: bool) -> Run {
    let cfg: Config = seq.config.rig.clone();
    let mut lio = Lio::new(&cfg);
    let imu_t_cam = cfg.extrinsics.imu_T_camera.0;
    let imu_t_lidar = cfg.extrinsics.imu_T_lidar.0;
    let mut vis = PhotometricUpdate::new(&cfg.visual, &cfg.camera, imu_t_cam);
    let mut mapper = GaussianMapper::new(
        cfg.gaussian.clone(),
        CameraModel::from_config(&cfg.camera),
        imu_t_cam,
    )
    .expect("mapper");
    let mut est = Vec::new();
    let mut exp_err = Vec::new();
    let (mut ii, mut ki) = (0usize, 0usize);
    let mut prev_end: Stamp = 0;
    for scan in &seq.scans {
        let cloud = scan.to_cloud("lidar");
        let end = scan.stamp
            + (scan.points.iter().map(|p| p.t).fold(0.0f32, f32::max) as f64 * 1e9) as u64;
        let mut imu = Vec::new();
        while ii < seq.imu.len() && seq.imu[ii].stamp <= end {
            imu.push(seq.imu[ii]);
            ii += 1;
        }
        let mut images = Vec::new();
        let mut gains = Vec::new();
        while ki < seq.images.len() && seq.images[ki].stamp <= end {
            if seq.images[ki].stamp > prev_end {
                images.push(seq.images[ki].clone());
                gains.push(seq.exposure[ki]);
            }
            ki += 1;
        }
        prev_end = end;
        let pkg = MeasurementPackage {
            imu: imu.clone(),
            scan: cloud.clone(),
            scan_end: end,
            images: images.clone(),
            time_jump: false,
        };
        let Some(res) = lio.process(&pkg) else {
            continue;
        };
        let mut tau = 1.0;
        let mut image_pose = None;
        if let (Some(img), Some(f)) = (images.last(), lio.filter_mut()) {
            if livo && !mapper.window().is_empty() {
                let g = render_set(mapper.window().gaussians(), 0);
                let out = vis.update(f, img, &imu, &g);
                if out.applied() {
                    exp_err.push(out.exposure() / gains.last().unwrap() - 1.0);
                }
            }
            tau = f.state().tau;
            let rel = chain::body_to_image(f.state(), &imu, img.stamp, f.stamp());
            image_pose = Some((img.clone(), f.state().pose() * rel));
        }
        let state = *lio.filter().unwrap().state();
        est.push(PoseStamped {
            stamp: res.stamp,
            pose: state.pose(),
        });
        // Map: colour source, then the scan registered with the final pose (not deskewed).
        if let Some((img, pose)) = image_pose {
            mapper.add_image(&img, &pose, (1.0 / tau) as f32);
        }
        let wl = state.pose() * imu_t_lidar;
        let pts: Vec<[f64; 3]> = (0..cloud.len())
            .step_by(2)
            .map(|i| {
                let p = wl * nalgebra::Point3::from(cloud.point(i));
                [p.x, p.y, p.z]
            })
            .collect();
        let o = wl.translation.vector;
        mapper.insert_scan(&pts, None, [o.x, o.y, o.z], res.stamp);
        mapper.update_window(&state.pose(), None);
    }
    let rep = evaluate(&seq.ground_truth, &est, &EvalOptions::default()).expect("eval");
    let n = exp_err.len().max(1) as f64;
    let skip = exp_err.len() / 5;
    let tail = &exp_err[skip..];
    let _ = n;
    Run {
        ate: rep.ate.rmse,
        applied: vis.counters().applied,
        frames: vis.counters().frames,
        exposure_rms: (tail.iter().map(|e| e * e).sum::<f64>() / tail.len().max(1) as f64).sqrt(),
    }
}

fn compare(scene: &str, duration: f64, jitter: f64) -> (Run, Run) {
    let mut c = SimConfig::new(scene);
    c.duration = duration;
    c.exposure_jitter = jitter;
    let seq = simulate(&c).expect("sim");
    let lio = run(&seq, false);
    let livo = run(&seq, true);
    eprintln!(
        "{scene} {duration}s jitter {jitter}: LIO ATE {:.4} m, LIVO ATE {:.4} m, visual applied {}/{}, exposure RMS {:.4}",
        lio.ate, livo.ate, livo.applied, livo.frames, livo.exposure_rms
    );
    (lio, livo)
}

#[test]
#[ignore]
fn corridor_livo_vs_lio() {
    let (lio, livo) = compare("corridor", 20.0, 0.0);
    assert!(livo.ate <= 0.5 * lio.ate);
}

#[test]
#[ignore]
fn room_exposure_tracking() {
    let (lio, livo) = compare("room", 10.0, 0.3);
    assert!(livo.exposure_rms < 0.03);
    assert!(livo.ate <= lio.ate * 1.05);
}
