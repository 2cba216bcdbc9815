//! The simulator is honest: its IMU integrates to the ground truth, its LiDAR points lie on the
//! scene surfaces when transformed by the pose at their own time, and its camera images show
//! the texture of a surface point at that point's projection.

use gs_livo::config::Camera;
use gs_livo::sim::imu::{simulate_imu, ImuBias, ImuModel, ImuNoise};
use gs_livo::sim::lidar::simulate_scan;
use gs_livo::sim::{self, project, CameraRays, LidarKind, LidarModel, Ray, Scene, SimConfig};
use nalgebra::{Isometry3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn zero_noise() -> ImuNoise {
    ImuNoise {
        gyro_noise: 0.0,
        accel_noise: 0.0,
        gyro_bias_walk: 0.0,
        accel_bias_walk: 0.0,
    }
}

/// Integrates the noise-free IMU over 1 s from the ground-truth state and compares poses.
fn imu_integration_error(scene: &str, yaw_rate: f64, t_a: f64) -> (f64, f64) {
    let cfg = SimConfig {
        yaw_rate_deg: yaw_rate,
        ..SimConfig::new(scene)
    };
    let traj = cfg.trajectory();
    let g = cfg.rig.imu.gravity;
    let model = ImuModel {
        rate: 200.0,
        gravity: g,
        noise: zero_noise(),
        bias0: ImuBias {
            gyro: Vector3::zeros(),
            accel: Vector3::zeros(),
        },
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (imu, _) = simulate_imu(&traj, t_a + 1.5, &model, 0, &mut rng);
    let dt = 1.0 / 200.0;
    let k0 = (t_a * 200.0).round() as usize;
    let s = traj.kinematics(t_a);
    let (mut r, mut p, mut v) = (s.pose.rotation, s.pose.translation.vector, s.velocity);
    let gv = Vector3::new(0.0, 0.0, -g);
    for k in k0..k0 + 200 {
        let (a, b) = (&imu[k], &imu[k + 1]);
        let r1 = r * UnitQuaternion::from_scaled_axis((a.gyro + b.gyro) * 0.5 * dt);
        let acc0 = r * a.accel + gv;
        let acc1 = r1 * b.accel + gv;
        // Exact for linearly varying acceleration over the step.
        p += v * dt + (2.0 * acc0 + acc1) * dt * dt / 6.0;
        v += (acc0 + acc1) * 0.5 * dt;
        r = r1;
    }
    let gt = traj.pose(t_a + 1.0);
    let dp = (gt.translation.vector - p).norm();
    let dr = gt.rotation.angle_to(&r).to_degrees();
    (dp, dr)
}

#[test]
fn imu_integrates_to_ground_truth() {
    for (scene, yaw, t) in [
        ("room", 45.0, 4.0),
        ("room", 90.0, 7.5),
        ("street", 15.0, 5.0),
        ("corridor", 20.0, 1.0), // across the end of the static start and the ramp
    ] {
        let (dp, dr) = imu_integration_error(scene, yaw, t);
        assert!(
            dp < 1e-3 && dr < 0.01,
            "{scene} yaw {yaw}: {dp} m, {dr} deg"
        );
    }
}

#[test]
fn imu_noise_and_biases_follow_the_config() {
    let cfg = SimConfig::new("room");
    let traj = cfg.trajectory();
    let noise = ImuNoise {
        gyro_noise: 0.002,
        accel_noise: 0.02,
        gyro_bias_walk: 0.0,
        accel_bias_walk: 0.0,
    };
    let bias = ImuBias {
        gyro: Vector3::new(0.01, -0.02, 0.03),
        accel: Vector3::new(0.1, 0.0, -0.1),
    };
    let model = ImuModel {
        rate: 200.0,
        gravity: 9.81,
        noise,
        bias0: bias,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Static first 1.5 s: readings = gravity/zero + bias + white noise of std density*sqrt(rate).
    let (imu, _) = simulate_imu(&traj, 1.4, &model, 0, &mut rng);
    let n = imu.len() as f64;
    let mean_g: Vector3<f64> = imu.iter().map(|s| s.gyro).sum::<Vector3<f64>>() / n;
    let std_g = (imu.iter().map(|s| (s.gyro - mean_g).x.powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean_g - bias.gyro).norm() < 0.008, "{mean_g}");
    let expect = 0.002 * 200f64.sqrt();
    assert!((std_g / expect - 1.0).abs() < 0.15, "{std_g} vs {expect}");
    let f0 = imu[0].accel - imu[0].accel; // zero, keeps types simple
    let mean_a: Vector3<f64> = imu.iter().map(|s| s.accel).sum::<Vector3<f64>>() / n + f0;
    let up = traj.pose(0.0).rotation.inverse() * Vector3::new(0.0, 0.0, 9.81);
    assert!((mean_a - up - bias.accel).norm() < 0.08, "{mean_a}");
}

/// Max and RMS of the distance (along the ray) between each point and the surface, with the
/// pose at each point's own time, or with the scan-start pose when `at_start`.
fn lidar_residuals(kind: LidarKind, range_noise: f64, at_start: bool) -> (f64, f64, usize) {
    let cfg = SimConfig::new("room");
    let traj = cfg.trajectory();
    let scene = Scene::room();
    let body_t_lidar = cfg.rig.extrinsics.imu_T_lidar.0;
    let model = LidarModel::new(kind, range_noise);
    let t_start = 6.0;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let pts = simulate_scan(&scene, &traj, &body_t_lidar, &model, t_start, 0.1, &mut rng);
    let mut max = 0.0f64;
    let mut ss = 0.0;
    for p in &pts {
        let t = if at_start {
            t_start
        } else {
            t_start + p.t as f64
        };
        let w_t_l: Isometry3<f64> = traj.pose(t) * body_t_lidar;
        let pl = Vector3::new(p.p[0] as f64, p.p[1] as f64, p.p[2] as f64);
        let pw = w_t_l * nalgebra::Point3::from(pl);
        let o = w_t_l.translation.vector;
        let dir = (pw.coords - o).normalize();
        let hit = scene
            .intersect(&Ray { origin: o, dir })
            .expect("closed room");
        let e = (pw.coords - o).norm() - hit.t;
        max = max.max(e.abs());
        ss += e * e;
    }
    (max, (ss / pts.len() as f64).sqrt(), pts.len())
}

#[test]
fn lidar_points_lie_on_surfaces_at_their_own_time() {
    for kind in [LidarKind::Spinning, LidarKind::Livox] {
        let (max, _, n) = lidar_residuals(kind, 0.0, false);
        assert!((15_000..=25_000).contains(&n), "{kind:?}: {n} points");
        assert!(max < 2e-4, "{kind:?} noise-free residual {max}");
        let sigma = 0.01;
        let (max, rms, _) = lidar_residuals(kind, sigma, false);
        assert!((rms / sigma - 1.0).abs() < 0.1, "{kind:?} rms {rms}");
        assert!(max < 6.0 * sigma, "{kind:?} max {max}");
        // The scans really are motion-distorted: the scan-start pose does not explain them.
        let (max_start, rms_start, _) = lidar_residuals(kind, 0.0, true);
        assert!(
            max_start > 0.02 && rms_start > 0.003,
            "{kind:?}: {max_start} {rms_start}"
        );
    }
}

fn camera_check(distortion: [f64; 5]) {
    let cam = Camera {
        width: 640,
        height: 480,
        fx: 410.0,
        fy: 400.0,
        cx: 320.3,
        cy: 239.1,
        distortion,
    };
    let scene = Scene::room();
    let cfg = SimConfig::new("room");
    let w_t_c = cfg.trajectory().pose(5.0) * cfg.rig.extrinsics.imu_T_camera.0;
    let gain = 1.15;
    let img = CameraRays::new(&cam, 1).render(&scene, &w_t_c, gain);
    let sample = |u: f64, v: f64| -> Option<[f64; 3]> {
        let (x0, y0) = (u.floor(), v.floor());
        if x0 < 0.0 || y0 < 0.0 || x0 + 1.0 >= cam.width as f64 || y0 + 1.0 >= cam.height as f64 {
            return None;
        }
        let (fx, fy) = (u - x0, v - y0);
        let mut out = [0.0; 3];
        for (dx, dy, wgt) in [
            (0, 0, (1.0 - fx) * (1.0 - fy)),
            (1, 0, fx * (1.0 - fy)),
            (0, 1, (1.0 - fx) * fy),
            (1, 1, fx * fy),
        ] {
            let p = img.pixel(x0 as u32 + dx, y0 as u32 + dy);
            for k in 0..3 {
                out[k] += wgt * p[k] as f64;
            }
        }
        Some(out)
    };
    // Surface points from random rays; each is projected with the forward model and the image
    // there is compared with the texture at the point.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (mut err, mut err_shift, mut n) = (0.0, 0.0, 0);
    while n < 400 {
        let d = Vector3::new(rng.gen_range(-0.6..0.6), rng.gen_range(-0.45..0.45), 1.0).normalize();
        let ray = Ray {
            origin: w_t_c.translation.vector,
            dir: w_t_c.rotation * d,
        };
        let Some(hit) = scene.intersect(&ray) else {
            continue;
        };
        let pc = w_t_c.inverse() * nalgebra::Point3::from(hit.point);
        let Some([u, v]) = project(&cam, &pc.coords) else {
            continue;
        };
        let cos = hit.normal.dot(&-ray.dir).abs().max(0.2);
        let a = scene.albedo(&hit, hit.t / (cam.fx * cos));
        let (Some(c), Some(cs)) = (sample(u, v), sample(u + 2.0, v + 1.0)) else {
            continue;
        };
        for k in 0..3 {
            let expect = a[k] as f64 * gain * 255.0;
            err += (c[k] - expect).abs();
            err_shift += (cs[k] - expect).abs();
        }
        n += 1;
    }
    let (err, err_shift) = (err / (3.0 * n as f64), err_shift / (3.0 * n as f64));
    eprintln!("camera: {err:.2} DN at the projection, {err_shift:.2} DN two pixels off");
    assert!(err < 1.5, "mean abs error {err} DN at the projected pixel");
    assert!(err < 0.2 * err_shift, "{err} vs {err_shift} two pixels off");
}

#[test]
fn camera_shows_surface_points_at_their_projection() {
    camera_check([0.0; 5]);
    camera_check([-0.15, 0.04, 0.002, -0.001, 0.0]);
}

#[test]
fn simulate_is_deterministic_and_complete() {
    let mut cfg = SimConfig::new("room");
    cfg.duration = 2.0;
    cfg.rig.camera = Camera {
        width: 64,
        height: 48,
        fx: 40.0,
        fy: 40.0,
        cx: 31.5,
        cy: 23.5,
        distortion: [0.0; 5],
    };
    cfg.exposure_jitter = 0.2;
    cfg.seed = 5;
    let a = sim::simulate(&cfg).unwrap();
    let b = sim::simulate(&cfg).unwrap();
    assert_eq!(a.imu, b.imu);
    assert_eq!(a.scans, b.scans);
    assert_eq!(a.images, b.images);
    assert_eq!(a.imu.len(), 401);
    assert_eq!(a.scans.len(), 20);
    assert_eq!(a.images.len(), 20);
    assert!(a.exposure.iter().all(|g| (0.8..=1.2).contains(g)));
    assert!(a.exposure.iter().any(|g| (g - 1.0).abs() > 0.02));
    // Non-zero initial biases with noise; none without.
    assert!(a.imu_bias[0].gyro.norm() > 1e-3 && a.imu_bias[0].accel.norm() > 1e-2);
    cfg.seed = 6;
    let c = sim::simulate(&cfg).unwrap();
    assert_ne!(a.imu, c.imu);
    cfg.noise = 0.0;
    let z = sim::simulate(&cfg).unwrap();
    assert_eq!(z.imu_bias[0].gyro.norm(), 0.0);
    assert!(cfg.duration > 0.0);
    cfg.scene = "moon".into();
    assert!(sim::simulate(&cfg).is_err());
}
