//! One backend against another (normally Vulkan against the CPU f64 reference) on one scene:
//! forward images, every gradient group, the pose gradient and the loss kernels. The tests
//! (`tests/render_vulkan.rs`) and `gs_livo bench render --verify` both use this, so a machine
//! that only has the binary runs the same check as CI.

use nalgebra::Isometry3;
use rand::{Rng, SeedableRng};

use super::{Camera, Gaussians, LossConfig, RenderError, Renderer, GROUPS};

/// Tolerance of the forward images and of the loss value (relative).
pub const FORWARD_TOL: f64 = 1e-4;
/// Tolerance of the gradients (relative).
pub const GRADIENT_TOL: f64 = 1e-3;

/// One compared quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `colour`, `depth`, `alpha`, `grad:<group>`, `grad:pose`, `loss`, `loss:grad`.
    pub name: String,
    /// `|a - b|_2 / |b|_2` over all elements (b = reference): the tested quantity.
    pub rel_err: f64,
    /// `max_i |a_i - b_i| / max_i |b_i|` (informative: the worst single element).
    pub max_err: f64,
    pub tol: f64,
}

impl Check {
    pub fn pass(&self) -> bool {
        self.rel_err.is_finite() && self.rel_err < self.tol
    }

    fn new(name: impl Into<String>, a: &[f64], b: &[f64], tol: f64) -> Self {
        Self {
            name: name.into(),
            rel_err: rel_l2(a, b),
            max_err: rel_max(a, b),
            tol,
        }
    }
}

/// Result of one scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneReport {
    /// Mean accumulated opacity of the reference render (a near-empty scene proves little).
    pub mean_alpha: f64,
    pub checks: Vec<Check>,
}

impl SceneReport {
    pub fn pass(&self) -> bool {
        self.checks.iter().all(Check::pass)
    }

    /// The failing checks, for assertion messages.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.pass()).collect()
    }
}

/// `|a - b|_2 / |b|_2` (the denominator floored at 1e-20). Lengths must match; a mismatch or a
/// non-finite value yields infinity.
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let n: f64 = b.iter().map(|y| y * y).sum::<f64>();
    let e = d.sqrt() / n.sqrt().max(1e-20);
    if e.is_finite() {
        e
    } else {
        f64::INFINITY
    }
}

/// `max_i |a_i - b_i| / max_i |b_i|` (infinity on a length mismatch or non-finite value).
pub fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m: f64, v| if v.is_nan() { f64::NAN } else { m.max(v) },
        );
    let n = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    let e = d / n.max(1e-20);
    if e.is_finite() {
        e
    } else {
        f64::INFINITY
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Renders `g` with both backends at `cam`/`t_cw`, back-propagates the same random output
/// gradients (colour, depth and alpha; from `seed`) and evaluates L1 + D-SSIM against a random
/// target; compares `test` against `reference`.
pub fn compare_backends(
    test: &mut dyn Renderer,
    reference: &mut dyn Renderer,
    g: &Gaussians,
    cam: &Camera,
    t_cw: &Isometry3<f64>,
    seed: u64,
) -> Result<SceneReport, RenderError> {
    reference.set_gaussians(g, None)?;
    test.set_gaussians(g, None)?;
    let a = reference.forward(cam, t_cw)?;
    let b = test.forward(cam, t_cw)?;
    let mean_alpha = a.alpha.iter().map(|&x| x as f64).sum::<f64>() / a.alpha.len() as f64;
    let mut checks = vec![
        Check::new("colour", &f64s(&b.colour), &f64s(&a.colour), FORWARD_TOL),
        Check::new("depth", &f64s(&b.depth), &f64s(&a.depth), FORWARD_TOL),
        Check::new("alpha", &f64s(&b.alpha), &f64s(&a.alpha), FORWARD_TOL),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let np = cam.pixels();
    let dc: Vec<f32> = (0..3 * np).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let dd: Vec<f32> = (0..np).map(|_| rng.gen_range(-0.2..0.2)).collect();
    let da: Vec<f32> = (0..np).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let ga = reference.backward(&dc, Some(&dd), Some(&da))?;
    let gb = test.backward(&dc, Some(&dd), Some(&da))?;
    for grp in GROUPS {
        if ga.params.group(grp).is_empty() {
            continue;
        }
        checks.push(Check::new(
            format!("grad:{grp:?}"),
            &f64s(gb.params.group(grp)),
            &f64s(ga.params.group(grp)),
            GRADIENT_TOL,
        ));
    }
    // The GPU accumulates the pose gradient in f32: compare at that precision.
    let pa: Vec<f64> = ga.pose.iter().map(|&x| x as f32 as f64).collect();
    let pb: Vec<f64> = gb.pose.iter().map(|&x| x as f32 as f64).collect();
    checks.push(Check::new("grad:pose", &pb, &pa, GRADIENT_TOL));
    let target: Vec<f32> = (0..3 * np).map(|_| rng.gen_range(0.0..1.0)).collect();
    let cfg = LossConfig { ssim_weight: 0.2 };
    let (la, gla) = reference.loss(&target, &cfg)?;
    let (lb, glb) = test.loss(&target, &cfg)?;
    checks.push(Check::new("loss", &[lb], &[la], FORWARD_TOL));
    // The L1 gradient jumps where render == target: where the target lies between the two
    // renders (rounding), the signs legitimately differ, so those elements are left out.
    let keep = |i: usize| {
        let (x, y, t) = (a.colour[i], b.colour[i], target[i]);
        !(x.min(y) <= t && t <= x.max(y))
    };
    let kept = |g: &[f32]| -> Vec<f64> {
        (0..g.len())
            .filter(|&i| keep(i))
            .map(|i| g[i] as f64)
            .collect()
    };
    checks.push(Check::new(
        "loss:grad",
        &kept(&glb),
        &kept(&gla),
        GRADIENT_TOL,
    ));
    Ok(SceneReport { mean_alpha, checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_errors() {
        assert_eq!(rel_l2(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!((rel_l2(&[1.0, 0.0], &[0.0, 1.0]) - 2f64.sqrt()).abs() < 1e-12);
        assert!((rel_max(&[1.5, 2.0], &[1.0, 2.0]) - 0.25).abs() < 1e-12);
        assert_eq!(rel_l2(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(rel_l2(&[f64::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(rel_max(&[f64::NAN], &[1.0]), f64::INFINITY);
        let c = Check::new("x", &[1.0 + 2e-4], &[1.0], FORWARD_TOL);
        assert!(!c.pass());
        let c = Check::new("x", &[1.0 + 5e-5], &[1.0], FORWARD_TOL);
        assert!(c.pass());
    }
}
