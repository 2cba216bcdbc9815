//! Photometric update: Jacobians against finite differences, convergence on a synthetic textured
//! scene (pose and exposure), and the gates.

use gs_livo::config::Camera as CamCfg;
use gs_livo::estimator::ieskf::{Ieskf, ProcessNoise};
use gs_livo::estimator::state::{ErrMat, ErrVec, State, POS, ROT, TAU};
use gs_livo::estimator::visual::image::Grey;
use gs_livo::estimator::visual::{chain, PhotometricUpdate, PoseUpdate, SkipReason, VisualConfig};
use gs_livo::render::cpu::render_f64;
use gs_livo::render::{GaussianSet, Group};
use gs_livo::sensors::Image;
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};

fn cam_cfg() -> CamCfg {
    CamCfg {
        width: 160,
        height: 120,
        fx: 100.0,
        fy: 100.0,
        cx: 79.5,
        cy: 59.5,
        distortion: [0.0; 5],
    }
}

/// The synthetic rig's camera: optical z along body x, x along body -y, y along body -z.
fn imu_t_camera() -> Isometry3<f64> {
    let r = nalgebra::Rotation3::from_basis_unchecked(&[
        Vector3::new(0.0, -1.0, 0.0),
        Vector3::new(0.0, 0.0, -1.0),
        Vector3::new(1.0, 0.0, 0.0),
    ]);
    Isometry3::from_parts(
        Translation3::new(0.1, -0.04, 0.03),
        UnitQuaternion::from_rotation_matrix(&r)
            * UnitQuaternion::from_euler_angles(0.05, 0.0, 0.0),
    )
}

/// A textured wall at x = 3 m and a floor at z = -1.2 m, discs with random colours.
fn scene(seed: u64) -> GaussianSet<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let step = 0.06;
    let mut pts: Vec<([f64; 3], [f64; 3])> = Vec::new();
    let mut y = -3.0;
    while y <= 3.0 {
        let mut z = -1.2;
        while z <= 2.0 {
            pts.push(([3.0, y, z], [0.002, 0.045, 0.045]));
            z += step;
        }
        let mut x = 0.3;
        while x <= 3.0 {
            pts.push(([x, y, -1.2], [0.045, 0.045, 0.002]));
            x += step;
        }
        y += step;
    }
    let mut g = GaussianSet::<f64>::zeros(pts.len(), 0).unwrap();
    for (i, (m, s)) in pts.iter().enumerate() {
        g.get_mut(Group::Mean, i).copy_from_slice(m);
        let ls = s.map(f64::ln);
        g.get_mut(Group::LogScale, i).copy_from_slice(&ls);
        g.get_mut(Group::Rotation, i)
            .copy_from_slice(&[1.0, 0.0, 0.0, 0.0]);
        g.get_mut(Group::Opacity, i)[0] = 4.0;
        let base: f64 = rng.gen_range(0.15..0.85);
        let dc: [f64; 3] = std::array::from_fn(|_| {
            (base + rng.gen_range(-0.05..0.05) - 0.5) / gs_livo::render::sh::C0
        });
        g.get_mut(Group::ShDc, i).copy_from_slice(&dc);
    }
    g
}

fn truth() -> State {
    State {
        rot: UnitQuaternion::from_euler_angles(0.02, -0.03, 0.1),
        pos: Vector3::new(0.2, -0.1, 0.3),
        ..Default::default()
    }
}

/// The camera image at state `x` with exposure gain `gain` (rgb8).
fn camera_image(g: &GaussianSet<f64>, x: &State, gain: f64) -> Image {
    let c = cam_cfg();
    let mut cam = gs_livo::render::Camera::new(c.width, c.height, c.fx, c.fy);
    cam.cx = c.cx;
    cam.cy = c.cy;
    let f = render_f64(g, &cam, &chain::camera_t_world(x, &imu_t_camera()));
    let mut img = Image::new(0, c.width, c.height);
    img.rgb = f
        .colour
        .iter()
        .map(|v| (v * gain * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    img
}

fn filter_at(x: State, stamp: u64) -> Ieskf {
    let mut p = ErrMat::identity() * 1e-4;
    for i in 0..3 {
        p[(ROT + i, ROT + i)] = 0.02f64.powi(2);
        p[(POS + i, POS + i)] = 0.05f64.powi(2);
    }
    p[(TAU, TAU)] = 0.3f64.powi(2);
    let noise = ProcessNoise {
        gyro: 1e-3,
        accel: 1e-2,
        gyro_bias_walk: 1e-5,
        accel_bias_walk: 1e-4,
        tau_walk: 0.0,
    };
    Ieskf::new(x, p, stamp, noise)
}

/// The synthetic map is exact, so the residual noise is the image's quantisation only: a
/// smaller sigma than the pipeline default (which allows for a map built from the estimates).
fn config() -> VisualConfig {
    VisualConfig {
        pyramid_level: 0,
        grid_size: 4,
        sigma: 0.03,
        ..Default::default()
    }
}

/// Residual rows (pose through the extrinsics, and tau) against central differences of the
/// residual over the state's boxplus; relative error under 1e-4 over all smooth pixels.
#[test]
fn photometric_jacobian_matches_finite_differences() {
    let g = scene(1);
    let xt = truth();
    let img = camera_image(&g, &xt, 1.1);
    let grey = Grey::from_image(&img, 0).unwrap();
    let upd = PhotometricUpdate::new(&config(), &cam_cfg(), imu_t_camera());
    let x = State {
        tau: 0.93,
        ..xt.boxplus(&ErrVec::from_fn(|i, _| {
            if i < 6 {
                0.003 * (i as f64 - 2.5)
            } else {
                0.0
            }
        }))
    };
    let ext = imu_t_camera();
    let pixels: Vec<(u32, u32)> = (0..30).map(|k| (10 + 5 * k, 15 + 3 * k)).collect();
    let (mut err2, mut ref2, mut jumps, mut used) = (0.0, 0.0, 0, 0);
    for &(px, py) in &pixels {
        let (r0, h) = upd.residual_row(&x, &ext, &g, &grey, px, py).unwrap();
        assert!(r0.is_finite());
        let mut fd = [[0.0; 7]; 2];
        for (s, step) in [1e-6, 2e-6].iter().enumerate() {
            for (c, idx) in [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2, TAU]
                .iter()
                .enumerate()
            {
                let mut d = ErrVec::zeros();
                d[*idx] = *step;
                let (rp, _) = upd
                    .residual_row(&x.boxplus(&d), &ext, &g, &grey, px, py)
                    .unwrap();
                let (rm, _) = upd
                    .residual_row(&x.boxplus(&-d), &ext, &g, &grey, px, py)
                    .unwrap();
                fd[s][c] = (rp - rm) / (2.0 * step);
            }
        }
        if (0..7).any(|c| (fd[0][c] - fd[1][c]).abs() > 1e-4 * (1.0 + fd[0][c].abs())) {
            jumps += 1;
            continue;
        }
        used += 1;
        for (c, idx) in [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2, TAU]
            .iter()
            .enumerate()
        {
            err2 += (h[*idx] - fd[0][c]).powi(2);
            ref2 += fd[0][c].powi(2);
        }
        assert!((h[TAU] - grey.at(px, py)).abs() < 1e-12);
    }
    assert!(
        jumps <= 2 && used >= 25,
        "{jumps} discontinuous, {used} used"
    );
    assert!(ref2 > 1.0);
    let rel = (err2 / ref2).sqrt();
    assert!(rel < 1e-4, "relative error {rel}");
}

/// With the prior uncertain along one direction only (the LiDAR-degenerate case: body x,
/// the camera's optical axis, 5 cm; the rest 2 mm and 0.03 deg), the pixels ranked by predicted
/// information carry much more of the actual information along that direction (the rows'
/// `h[POS]^2` from the exact Jacobian) than the same number of strongest-gradient pixels. A
/// sign or frame error in the prediction makes the ranking no better than the gradients'.
#[test]
fn pixel_selection_follows_the_uncertain_direction() {
    let g = scene(3);
    let xt = truth();
    let img = camera_image(&g, &xt, 1.0);
    let grey = Grey::from_image(&img, 0).unwrap();
    let mut p = ErrMat::identity() * 1e-4;
    for i in 0..3 {
        p[(ROT + i, ROT + i)] = 3e-7;
        p[(POS + i, POS + i)] = 4e-6;
    }
    p[(POS, POS)] = 0.05f64.powi(2);
    let noise = ProcessNoise {
        gyro: 1e-3,
        accel: 1e-2,
        gyro_bias_walk: 1e-5,
        accel_bias_walk: 1e-4,
        tau_walk: 0.0,
    };
    let f = Ieskf::new(xt, p, 0, noise);
    let info_x = |rank: bool| {
        let cfg = VisualConfig {
            max_pixels: 150,
            rank_by_information: rank,
            ..config()
        };
        let upd = PhotometricUpdate::new(&cfg, &cam_cfg(), imu_t_camera());
        let px = upd.selection(&f, &img, &g).unwrap();
        assert_eq!(px.len(), 150);
        px.iter()
            .filter_map(|&(x, y)| upd.residual_row(&xt, &imu_t_camera(), &g, &grey, x, y))
            .map(|(_, h)| h[POS] * h[POS])
            .sum::<f64>()
    };
    // The best 150 of all candidate cells by the exact rows: what a perfect ranking reaches.
    let all = VisualConfig {
        max_pixels: usize::MAX,
        rank_by_information: false,
        ..config()
    };
    let upd = PhotometricUpdate::new(&all, &cam_cfg(), imu_t_camera());
    let mut exact: Vec<f64> = upd
        .selection(&f, &img, &g)
        .unwrap()
        .iter()
        .filter_map(|&(x, y)| upd.residual_row(&xt, &imu_t_camera(), &g, &grey, x, y))
        .map(|(_, h)| h[POS] * h[POS])
        .collect();
    exact.sort_by(|a, b| b.total_cmp(a));
    let best: f64 = exact.iter().take(150).sum();
    let (ranked, by_gradient) = (info_x(true), info_x(false));
    eprintln!("information along x: ranked {ranked}, by gradient {by_gradient}, best {best}");
    assert!(
        ranked > 1.25 * by_gradient && ranked > 0.9 * best,
        "information along x: ranked {ranked}, by gradient {by_gradient}, best {best}"
    );
}

/// From a perturbed pose and unknown exposure, the update moves pose and tau to the truth.
#[test]
fn update_recovers_pose_and_exposure() {
    let g = scene(2);
    let xt = truth();
    let gain = 1.25;
    let mut img = camera_image(&g, &xt, gain);
    img.stamp = 1_000;
    let mut d = ErrVec::zeros();
    d[ROT] = 0.004;
    d[ROT + 2] = -0.006;
    d[POS] = 0.03;
    d[POS + 1] = -0.02;
    d[POS + 2] = 0.015;
    let x0 = State {
        tau: 1.0,
        ..xt.boxplus(&d)
    };
    let mut f = filter_at(x0, 1_000);
    let cfg = VisualConfig {
        iterations: 8,
        innovation_gate: 10.0,
        ..config()
    };
    let mut upd = PhotometricUpdate::new(&cfg, &cam_cfg(), imu_t_camera());
    let mut last = None;
    for _ in 0..3 {
        let out = upd.update(&mut f, &img, &[], &g);
        assert!(out.applied(), "{out:?}");
        assert!(out.rms_after < out.rms_before);
        last = Some(out);
    }
    let e = f.state().boxminus(&xt);
    let pos_err = e.fixed_rows::<3>(POS).norm();
    let rot_err = e.fixed_rows::<3>(ROT).norm();
    let d_pos = d.fixed_rows::<3>(POS).norm();
    assert!(
        pos_err < 0.2 * d_pos,
        "position error {pos_err} from {d_pos}"
    );
    assert!(rot_err < 1e-3, "rotation error {rot_err}");
    let exposure = last.unwrap().exposure();
    assert!(
        (exposure / gain - 1.0).abs() < 0.02,
        "exposure {exposure} vs {gain}"
    );
    assert_eq!(upd.counters().applied, 3);
}

#[test]
fn gates_skip_and_count_without_touching_the_filter() {
    let g = scene(3);
    let xt = truth();
    let mut img = camera_image(&g, &xt, 1.0);
    img.stamp = 5_000;
    let run = |cfg: &VisualConfig, img: &Image, g: &GaussianSet<f64>, x: State| {
        let mut f = filter_at(x, 5_000);
        let mut upd = PhotometricUpdate::new(cfg, &cam_cfg(), imu_t_camera());
        let before = (*f.state(), *f.covariance());
        let out = upd.update(&mut f, img, &[], g);
        if !out.applied() {
            assert_eq!(upd.counters().skipped(), 1);
            if out.exposure_updated {
                // Exposure only: everything but tau stays.
                let e = f.state().boxminus(&before.0);
                assert!(e.fixed_rows::<18>(0).norm() < 1e-12, "{e:?}");
            } else {
                assert_eq!(before, (*f.state(), *f.covariance()));
            }
        }
        out.skipped
    };
    let cfg = config();
    let off = VisualConfig {
        enabled: false,
        ..cfg.clone()
    };
    assert_eq!(run(&off, &img, &g, xt), Some(SkipReason::Disabled));
    let empty = GaussianSet::<f64>::zeros(0, 0).unwrap();
    assert_eq!(run(&cfg, &img, &empty, xt), Some(SkipReason::LowCoverage));
    let mut bright = img.clone();
    bright.rgb.iter_mut().for_each(|v| *v = 255);
    assert_eq!(run(&cfg, &bright, &g, xt), Some(SkipReason::OverExposed));
    let mut dark = img.clone();
    dark.rgb.iter_mut().for_each(|v| *v = 1);
    assert_eq!(run(&cfg, &dark, &g, xt), Some(SkipReason::UnderExposed));
    let small = Image::new(5_000, 10, 10);
    assert_eq!(run(&cfg, &small, &g, xt), Some(SkipReason::BadImage));
    let mut late = img.clone();
    late.stamp = 5_000 + 100_000_000;
    assert_eq!(run(&cfg, &late, &g, xt), Some(SkipReason::ImageTime));
    // Camera looking at nothing: turn the body around.
    let away = State {
        rot: UnitQuaternion::from_euler_angles(0.0, 0.0, std::f64::consts::PI),
        ..xt
    };
    assert_eq!(run(&cfg, &img, &g, away), Some(SkipReason::LowCoverage));
    // An unrelated high-contrast image (stripes): implausible innovation.
    let mut stripes = img.clone();
    for (i, px) in stripes.rgb.chunks_mut(3).enumerate() {
        let x = i % 160;
        px.fill(if (x / 3) % 2 == 0 { 20 } else { 235 });
    }
    assert_eq!(run(&cfg, &stripes, &g, xt), Some(SkipReason::Innovation));
    // Another texture of the same geometry: skipped, or applied within the step bounds.
    let other = Image {
        stamp: 5_000,
        ..camera_image(&scene(99), &xt, 1.0)
    };
    let mut f = filter_at(xt, 5_000);
    let mut upd = PhotometricUpdate::new(&cfg, &cam_cfg(), imu_t_camera());
    let out = upd.update(&mut f, &other, &[], &g);
    let e = f.state().boxminus(&xt);
    assert!(
        e.fixed_rows::<3>(POS).norm() <= cfg.max_translation + 1e-9,
        "{out:?}"
    );
    assert!(
        e.fixed_rows::<3>(ROT).norm() <= cfg.max_rotation + 1e-9,
        "{out:?}"
    );
    // At the truth the update applies and barely moves.
    assert_eq!(run(&cfg, &img, &g, xt), None);
}

/// The pipeline's driver: no map is counted, applied updates give the exposure gain for the
/// mapper, skips are counted by name and leave the filter (covariance included) untouched even
/// after a degenerate LiDAR scan.
#[test]
fn driver_counts_reports_exposure_and_restores_on_skip() {
    use gs_livo::estimator::visual::{MapView, VisualDriver};
    use gs_livo::gaussian::Gaussian;
    let g = scene(4);
    // The same scene as map Gaussians (f32), as the mapper's window holds them.
    let gs: Vec<Gaussian> = (0..g.len())
        .map(|i| {
            let mut x = Gaussian::default();
            let f = |grp: Group, k: usize| g.get(grp, i)[k] as f32;
            x.mean = std::array::from_fn(|k| f(Group::Mean, k));
            x.log_scale = std::array::from_fn(|k| f(Group::LogScale, k));
            x.rotation = std::array::from_fn(|k| f(Group::Rotation, k));
            x.opacity_logit = f(Group::Opacity, 0);
            x.sh[0] = std::array::from_fn(|k| f(Group::ShDc, k));
            x
        })
        .collect();
    let xt = truth();
    let gain = 1.2;
    let mut img = camera_image(&g, &xt, gain);
    img.stamp = 7_000;
    let cfg = VisualConfig {
        iterations: 5,
        pose_update: PoseUpdate::Always,
        ..config()
    };
    let mut drv = VisualDriver::new(&cfg, &cam_cfg(), imu_t_camera(), 1.0);
    let mut f = filter_at(xt, 7_000);
    let r = drv.process(&mut f, std::slice::from_ref(&img), &[], None, None);
    assert_eq!(r.len(), 1);
    assert!(r[0].outcome.is_none() && r[0].exposure == 1.0);
    assert_eq!(drv.stats().skipped.get("no_map"), Some(&1));
    let map = MapView {
        frame: 3,
        gaussians: &gs,
        sh_degree: 0,
        background: [0.0; 3],
    };
    for _ in 0..2 {
        let r = drv.process(&mut f, std::slice::from_ref(&img), &[], Some(map), None);
        assert!(r[0].outcome.as_ref().unwrap().applied(), "{r:?}");
    }
    let st = drv.stats();
    assert_eq!((st.images, st.applied), (3, 2));
    let est = st.exposure.last().unwrap()[1];
    assert!((est / gain - 1.0).abs() < 0.02, "{est}");
    assert!(st.pixels_median > 100.0 && st.rms_after_median <= st.rms_before_median);
    // A skip after a degenerate scan: counted by its name, filter restored exactly.
    let mut dark = img.clone();
    dark.rgb.iter_mut().for_each(|v| *v = 1);
    // 50 ms later (no IMU: the state is held), so the directional noise would be non-zero.
    f.propagate_to(7_000 + 50_000_000);
    let before = (*f.state(), *f.covariance());
    let r = drv.process(&mut f, &[dark], &[], Some(map), Some([1.0, 0.0, 0.0]));
    assert!(!r[0].outcome.as_ref().unwrap().applied());
    assert_eq!(before, (*f.state(), *f.covariance()));
    assert_eq!(drv.stats().skipped.get("under_exposed"), Some(&1));
    assert_eq!(drv.stats().skipped_total(), 2);
}

/// `visual.pose_update = lidar_degenerate` (the default): after a well-constrained LiDAR scan the
/// image corrects the exposure only (the pose stays, counted as `lidar_constrained`); after a
/// degenerate one it corrects the pose too.
#[test]
fn pose_update_only_after_a_degenerate_lidar_scan() {
    use gs_livo::estimator::visual::{MapView, VisualDriver};
    use gs_livo::gaussian::Gaussian;
    let g = scene(4);
    let gs: Vec<Gaussian> = (0..g.len())
        .map(|i| {
            let mut x = Gaussian::default();
            let f = |grp: Group, k: usize| g.get(grp, i)[k] as f32;
            x.mean = std::array::from_fn(|k| f(Group::Mean, k));
            x.log_scale = std::array::from_fn(|k| f(Group::LogScale, k));
            x.rotation = std::array::from_fn(|k| f(Group::Rotation, k));
            x.opacity_logit = f(Group::Opacity, 0);
            x.sh[0] = std::array::from_fn(|k| f(Group::ShDc, k));
            x
        })
        .collect();
    let map = MapView {
        frame: 1,
        gaussians: &gs,
        sh_degree: 0,
        background: [0.0; 3],
    };
    let xt = truth();
    let gain = 1.2;
    let mut img = camera_image(&g, &xt, gain);
    img.stamp = 7_000;
    let mut d = ErrVec::zeros();
    d[POS] = 0.02;
    d[POS + 1] = -0.015;
    let x0 = State {
        tau: 1.0,
        ..xt.boxplus(&d)
    };
    let cfg = VisualConfig {
        iterations: 5,
        innovation_gate: 10.0,
        ..config()
    };
    assert_eq!(cfg.pose_update, PoseUpdate::LidarDegenerate);
    let mut drv = VisualDriver::new(&cfg, &cam_cfg(), imu_t_camera(), 1.0);
    let mut f = filter_at(x0, 7_000);
    for _ in 0..2 {
        let r = drv.process(&mut f, std::slice::from_ref(&img), &[], Some(map), None);
        let o = r[0].outcome.as_ref().unwrap();
        assert_eq!(o.skipped, Some(SkipReason::LidarConstrained), "{o:?}");
        assert!(o.exposure_updated);
    }
    let e = f.state().boxminus(&x0);
    assert!(e.fixed_rows::<3>(POS).norm() < 1e-12 && e.fixed_rows::<3>(ROT).norm() < 1e-12);
    let est = drv.stats().exposure.last().unwrap()[1];
    assert!((est / gain - 1.0).abs() < 0.05, "{est}");
    assert_eq!(drv.stats().skipped.get("lidar_constrained"), Some(&2));
    assert_eq!(drv.stats().exposure_only, 2);
    // After a degenerate scan the same image corrects the pose.
    let before = f.state().boxminus(&xt).fixed_rows::<3>(POS).norm();
    let r = drv.process(&mut f, &[img], &[], Some(map), Some([1.0, 0.0, 0.0]));
    assert!(r[0].outcome.as_ref().unwrap().applied(), "{r:?}");
    let after = f.state().boxminus(&xt).fixed_rows::<3>(POS).norm();
    assert!(after < 0.5 * before, "{before} -> {after}");
}

/// A pose update gated out for low coverage still measures the exposure from the covered pixels
/// (Schmidt update of tau alone): tau moves to the truth, nothing else changes.
#[test]
fn exposure_only_update_when_the_pose_update_is_gated() {
    let g = scene(5);
    let xt = truth();
    let gain = 0.8;
    let mut img = camera_image(&g, &xt, gain);
    img.stamp = 9_000;
    // Coverage can never reach 100 %: the pose update is always skipped.
    let cfg = VisualConfig {
        min_coverage: 1.01,
        ..config()
    };
    let mut upd = PhotometricUpdate::new(&cfg, &cam_cfg(), imu_t_camera());
    let mut d = ErrVec::zeros();
    d[POS] = 0.01;
    let x0 = xt.boxplus(&d);
    let mut f = filter_at(x0, 9_000);
    let p0 = *f.covariance();
    let out = upd.update(&mut f, &img, &[], &g);
    assert_eq!(out.skipped, Some(SkipReason::LowCoverage));
    assert!(out.exposure_updated && out.pixels > 100, "{out:?}");
    assert!((out.exposure() / gain - 1.0).abs() < 0.03, "{out:?}");
    assert_eq!(upd.counters().exposure_only, 1);
    let e = f.state().boxminus(&x0);
    assert!(e.fixed_rows::<18>(0).norm() < 1e-12);
    // Only tau's variance and its correlations shrank.
    let p1 = f.covariance();
    assert!(p1[(TAU, TAU)] < 0.01 * p0[(TAU, TAU)]);
    assert_eq!(p1.fixed_view::<18, 18>(0, 0), p0.fixed_view::<18, 18>(0, 0));
}

/// The renderers the update can iterate on: the CPU reference and, when a Vulkan device exists
/// (lavapipe in CI), the Vulkan backend; that one must then work.
fn renderers(g: &GaussianSet<f64>) -> Vec<(String, Box<dyn gs_livo::render::Renderer>)> {
    use gs_livo::render::vulkan::{enumerate_devices, VulkanRenderer};
    use gs_livo::render::{cpu::CpuRenderer, RenderConfig, Renderer};
    let cfg = RenderConfig::default();
    let mut out: Vec<(String, Box<dyn Renderer>)> =
        vec![("cpu".into(), Box::new(CpuRenderer::new(&cfg)))];
    match VulkanRenderer::new(&cfg) {
        Ok(r) => out.push(("vulkan".into(), Box::new(r))),
        Err(e) => {
            let devices = enumerate_devices();
            assert!(devices.is_empty(), "Vulkan devices {devices:?} exist: {e}");
            eprintln!("SKIP Vulkan: no device ({e})");
        }
    }
    let g32 = g.map(|v| v as f32);
    for (_, r) in out.iter_mut() {
        r.set_gaussians(&g32, None).unwrap();
    }
    out
}

/// The gradient `H^T R^-1 r` from a renderer's forward and backward pass (its pose gradient
/// chained through the extrinsics, alpha's part through the background) equals the one from
/// the CPU forward-mode Jacobian rows.
#[test]
fn renderer_gradient_matches_forward_mode_rows() {
    use gs_livo::estimator::visual::image::select_pixels;
    let g = scene(6);
    let xt = truth();
    let img = camera_image(&g, &xt, 1.1);
    let grey = Grey::from_image(&img, 0).unwrap();
    let mut upd = PhotometricUpdate::new(&config(), &cam_cfg(), imu_t_camera());
    upd.set_background([0.2, 0.3, 0.4]);
    let mut d = ErrVec::zeros();
    d[POS] = 0.01;
    d[POS + 1] = -0.008;
    d[ROT + 2] = 0.004;
    let x = State {
        tau: 0.95,
        ..xt.boxplus(&d)
    };
    let px = select_pixels(&grey, 0.02, 4, 4, 1500, 0.02, 0.98);
    let ext = imu_t_camera();
    let cpu = upd.gradient(&x, &ext, &g, &grey, &px, None).unwrap();
    assert!(cpu.fixed_rows::<6>(0).norm() > 1.0, "{cpu}");
    for (name, mut r) in renderers(&g) {
        let rg = upd
            .gradient(&x, &ext, &g, &grey, &px, Some(r.as_mut()))
            .unwrap();
        let rel = (rg - cpu).norm() / cpu.norm();
        eprintln!("{name}: relative gradient difference {rel:.2e}");
        assert!(rel < 1e-3, "{name}: {rg} vs {cpu}");
    }
}

/// Iterating on a renderer recovers pose and exposure as the CPU path does.
#[test]
fn update_on_a_renderer_recovers_pose_and_exposure() {
    let g = scene(2);
    let xt = truth();
    let gain = 1.25;
    let mut img = camera_image(&g, &xt, gain);
    img.stamp = 1_000;
    let mut d = ErrVec::zeros();
    d[ROT] = 0.004;
    d[POS] = 0.03;
    d[POS + 1] = -0.02;
    let x0 = State {
        tau: 1.0,
        ..xt.boxplus(&d)
    };
    let cfg = VisualConfig {
        iterations: 8,
        innovation_gate: 10.0,
        ..config()
    };
    for (name, mut r) in renderers(&g) {
        let mut f = filter_at(x0, 1_000);
        let mut upd = PhotometricUpdate::new(&cfg, &cam_cfg(), imu_t_camera());
        let mut last = None;
        for _ in 0..3 {
            let out = upd.update_on(&mut f, &img, &[], &g, Some(r.as_mut()));
            assert!(out.applied(), "{name}: {out:?}");
            last = Some(out);
        }
        let e = f.state().boxminus(&xt);
        let pos_err = e.fixed_rows::<3>(POS).norm();
        assert!(
            pos_err < 0.2 * d.fixed_rows::<3>(POS).norm(),
            "{name}: {pos_err}"
        );
        assert!(e.fixed_rows::<3>(ROT).norm() < 1e-3, "{name}");
        let exposure = last.unwrap().exposure();
        assert!((exposure / gain - 1.0).abs() < 0.02, "{name}: {exposure}");
    }
}
