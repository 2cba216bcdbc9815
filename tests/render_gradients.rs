//! CPU reference gradients (every Gaussian parameter group and the camera pose) against central
//! finite differences of the f64 forward pass.

use gs_livo::render::cpu::{raster, render_f64};
use gs_livo::render::{
    perturb_pose, random_gaussians, test_camera, test_pose, Camera, GaussianSet, Group, GROUPS,
};
use nalgebra::Isometry3;
use rand::{Rng, SeedableRng};

/// Random linear functional of all outputs: L = sum wc*colour + wd*depth + wa*alpha.
struct Weights {
    c: Vec<f64>,
    d: Vec<f64>,
    a: Vec<f64>,
}

fn weights(cam: &Camera, seed: u64) -> Weights {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = cam.pixels();
    Weights {
        c: (0..3 * n).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        d: (0..n).map(|_| rng.gen_range(-0.2..0.2)).collect(),
        a: (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect(),
    }
}

fn loss(g: &GaussianSet<f64>, cam: &Camera, pose: &Isometry3<f64>, w: &Weights) -> f64 {
    let f = render_f64(g, cam, pose);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    dot(&f.colour, &w.c) + dot(&f.depth, &w.d) + dot(&f.alpha, &w.a)
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-12)
}

fn check(sh_degree: u32, seed: u64) {
    let cam = test_camera(40, 32);
    let pose = test_pose();
    let g = random_gaussians(12, sh_degree, 0.25, seed).map(|x| x as f64);
    let w = weights(&cam, seed + 100);
    let frame = render_f64(&g, &cam, &pose);
    let visible = frame.proj.iter().filter(|p| p.is_some()).count();
    assert!(visible >= 6, "only {visible} Gaussians visible");
    let (grad, pose_grad) = raster::backward(&g, &frame, &w.c, Some(&w.d), Some(&w.a));
    let eps = 1e-6;
    for grp in GROUPS {
        let off = g.group_offset(grp);
        let len = g.group(grp).len();
        if len == 0 {
            continue;
        }
        let mut fd = vec![0.0; len];
        for (k, v) in fd.iter_mut().enumerate() {
            let mut p = g.clone();
            p.data[off + k] += eps;
            let mut m = g.clone();
            m.data[off + k] -= eps;
            *v = (loss(&p, &cam, &pose, &w) - loss(&m, &cam, &pose, &w)) / (2.0 * eps);
        }
        let an = grad.group(grp);
        let e = rel_err(an, &fd);
        let norm: f64 = fd.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(norm > 1e-6, "{grp:?}: gradient vanishes, test is vacuous");
        assert!(
            e < 1e-3,
            "{grp:?} (degree {sh_degree}): rel err {e}\n an {an:?}\n fd {fd:?}"
        );
    }
    let mut fd = [0.0; 6];
    for (k, v) in fd.iter_mut().enumerate() {
        let mut xi = [0.0; 6];
        xi[k] = eps;
        let lp = loss(&g, &cam, &perturb_pose(&pose, &xi), &w);
        xi[k] = -eps;
        let lm = loss(&g, &cam, &perturb_pose(&pose, &xi), &w);
        *v = (lp - lm) / (2.0 * eps);
    }
    let e = rel_err(&pose_grad, &fd);
    assert!(e < 1e-3, "pose: rel err {e}\n an {pose_grad:?}\n fd {fd:?}");
    for k in 0..6 {
        assert!(
            (pose_grad[k] - fd[k]).abs() < 1e-3 * fd.iter().map(|x| x.abs()).fold(0.0, f64::max),
            "pose[{k}]: {} vs {}",
            pose_grad[k],
            fd[k]
        );
    }
}

#[test]
fn cpu_gradients_match_finite_differences_sh0() {
    check(0, 1);
}

#[test]
fn cpu_gradients_match_finite_differences_sh3() {
    check(3, 2);
}

#[test]
fn pose_perturbation_is_left_in_camera_frame() {
    // p_c -> exp(w) p_c + v: a pure translation xi moves camera-frame points by v.
    let pose = test_pose();
    let p = nalgebra::Point3::new(0.3, -0.2, 4.0);
    let moved = perturb_pose(&pose, &[0.1, 0.0, 0.0, 0.0, 0.0, 0.0]) * p;
    let d = moved - pose * p;
    assert!((d - nalgebra::Vector3::new(0.1, 0.0, 0.0)).norm() < 1e-12);
    let _ = Group::Mean;
}
