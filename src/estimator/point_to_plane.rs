//! Point-to-plane residuals against the voxel plane map, as a [`Measurement`].
//!
//! The pose Jacobian of a residual is built from the map plane's *estimated* normal. Along a
//! direction the planes barely constrain (a corridor's axis), that normal's small component is
//! mostly its own tilt error: squared and summed over thousands of points and every scan, it
//! reads as centimetre-level information that is not there. [`deflate_tilt_information`] removes
//! the part of the information that the planes' tilt uncertainty explains.

use nalgebra::{Matrix6, SymmetricEigen, Vector3, Vector6};

use super::ieskf::{Linearization, Measurement};
use super::state::{ErrMat, State, POS, ROT};
use crate::lidar_map::{PointNoise, VoxelMap};

/// A deskewed scan point in the body frame at scan end, with its noise in the body frame.
#[derive(Debug, Clone, Copy)]
pub struct BodyPoint {
    pub p: Vector3<f64>,
    pub noise: PointNoise,
}

/// Residual `z = n . (R p_b + t - c)` and its Jacobian row w.r.t. (rotation, position) error.
pub fn residual_and_jacobian(
    x: &State,
    p_body: &Vector3<f64>,
    normal: &Vector3<f64>,
    center: &Vector3<f64>,
) -> (f64, Vector6<f64>) {
    let pw = x.rot * p_body + x.pos;
    let z = normal.dot(&(pw - center));
    let m = x.rot.inverse() * normal;
    let mut h = Vector6::zeros();
    h.fixed_rows_mut::<3>(0).copy_from(&p_body.cross(&m));
    h.fixed_rows_mut::<3>(3).copy_from(normal);
    (z, h)
}

/// The LiDAR measurement: re-associates every point with its leaf plane at each iteration.
pub struct PointToPlane<'a> {
    pub map: &'a VoxelMap,
    pub points: &'a [BodyPoint],
    /// Residuals beyond this many standard deviations are rejected.
    pub gate_sigma: f64,
    /// Fewer associations than this: no update.
    pub min_residuals: usize,
    /// Remove the information the map planes' tilt uncertainty accounts for
    /// ([`deflate_tilt_information`]); off gives the plain point-to-plane normal equations.
    pub tilt_deflation: bool,
}

impl Measurement for PointToPlane<'_> {
    fn linearize(&mut self, x: &State, _iter: usize) -> Option<Linearization> {
        let mut hth = Matrix6::<f64>::zeros();
        let mut htz = Vector6::<f64>::zeros();
        let mut tilt = Matrix6::<f64>::zeros();
        let mut chi2 = 0.0;
        let mut count = 0;
        let r = x.rot.to_rotation_matrix().into_inner();
        let rt = r.transpose();
        for bp in self.points {
            let pw = r * bp.p + x.pos;
            let Some(plane) = self.map.find_plane(&pw) else {
                continue;
            };
            let z = plane.distance(&pw);
            let n_body = rt * plane.normal;
            let var = bp.noise.along(&n_body) + plane.variance_at(&pw);
            if z * z > self.gate_sigma * self.gate_sigma * var {
                continue;
            }
            let mut h = Vector6::zeros();
            h.fixed_rows_mut::<3>(0).copy_from(&bp.p.cross(&n_body));
            h.fixed_rows_mut::<3>(3).copy_from(&plane.normal);
            let w = 1.0 / var;
            hth.ger(w, &h, &h, 1.0);
            htz += h * (z * w);
            if self.tilt_deflation {
                for (axis, tilt_var) in plane.tilt_axes() {
                    let u = jacobian_along(&bp.p, &(rt * axis), &axis);
                    tilt.ger(w * tilt_var, &u, &u, 1.0);
                }
            }
            chi2 += z * z * w;
            count += 1;
        }
        if count < self.min_residuals {
            return None;
        }
        if self.tilt_deflation {
            (hth, htz) = deflate_tilt_information(&hth, &htz, &tilt);
        }
        let mut full = Linearization {
            hth: ErrMat::zeros(),
            count,
            chi2,
            ..Default::default()
        };
        // Pose block: rotation (ROT..ROT+3) and position (POS..POS+3) are adjacent.
        debug_assert_eq!(POS, ROT + 3);
        full.hth.fixed_view_mut::<6, 6>(ROT, ROT).copy_from(&hth);
        full.htz.fixed_rows_mut::<6>(ROT).copy_from(&htz);
        Some(full)
    }
}

/// The pose-Jacobian row `[p_b x d_b; d_w]` of a plane direction `d` (body `d_b`, world `d_w`).
fn jacobian_along(
    p_body: &Vector3<f64>,
    d_body: &Vector3<f64>,
    d_world: &Vector3<f64>,
) -> Vector6<f64> {
    let mut u = Vector6::zeros();
    u.fixed_rows_mut::<3>(0).copy_from(&p_body.cross(d_body));
    u.fixed_rows_mut::<3>(3).copy_from(d_world);
    u
}

/// Information `A = sum h h^T / var` and gradient `b = sum h z / var` of a scan, less what the
/// map planes' tilt errors explain.
///
/// Each row `h` is built from an estimated normal `n^ = n + dn`, so `E[h h^T]` is the true
/// information plus `T = sum G Sigma_n G^T / var` (`Sigma_n` the normal's tilt covariance, `G`
/// the map from a world direction to a pose-Jacobian row): where the true planes give no
/// information (a corridor's axis) the claimed information is all `T`. In `A`-whitened
/// coordinates, with `M = A^-1/2 T A^-1/2 = U diag(mu) U^T`, the direction `U_j` keeps the share
/// `1 - mu_j` (at least 0) of its information, and `b` is scaled the same way, so the
/// least-squares step `A^-1 b` is kept while its weight drops: the update neither claims nor
/// takes a correction that the plane errors alone would produce.
pub fn deflate_tilt_information(
    a: &Matrix6<f64>,
    b: &Vector6<f64>,
    tilt: &Matrix6<f64>,
) -> (Matrix6<f64>, Vector6<f64>) {
    let eig = SymmetricEigen::new(*a);
    let top = eig.eigenvalues.max();
    if !top.is_finite() || top <= 0.0 {
        return (*a, *b);
    }
    let floor = top * 1e-14;
    let mut sqrt = Matrix6::zeros();
    let mut inv_sqrt = Matrix6::zeros();
    for k in 0..6 {
        let v = eig.eigenvectors.column(k);
        let l = eig.eigenvalues[k].max(floor);
        sqrt.ger(l.sqrt(), &v, &v, 1.0);
        inv_sqrt.ger(1.0 / l.sqrt(), &v, &v, 1.0);
    }
    let m = inv_sqrt * tilt * inv_sqrt;
    let me = SymmetricEigen::new(0.5 * (m + m.transpose()));
    let mut keep = Matrix6::zeros();
    for k in 0..6 {
        let v = me.eigenvectors.column(k);
        keep.ger((1.0 - me.eigenvalues[k]).clamp(0.0, 1.0), &v, &v, 1.0);
    }
    let a_new = sqrt * keep * sqrt;
    let b_new = sqrt * keep * (inv_sqrt * b);
    (0.5 * (a_new + a_new.transpose()), b_new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lidar_map::{MapPoint, PointNoise, VoxelMapConfig};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal, Uniform};

    const SIGMA: f64 = 0.02;

    /// Points on the walls (y = +-1.2), floor (z = 0) and ceiling (z = 2.6) of a corridor along
    /// x, with isotropic noise `SIGMA`: nothing along x for a point-to-plane residual to see.
    fn corridor_points(rng: &mut ChaCha8Rng, n: usize) -> Vec<Vector3<f64>> {
        let (ux, uy, uz) = (
            Uniform::new(-6.0, 6.0),
            Uniform::new(-1.1, 1.1),
            Uniform::new(0.1, 2.5),
        );
        let noise = Normal::new(0.0, SIGMA).expect("sigma");
        (0..n)
            .map(|i| {
                let x = ux.sample(rng);
                let p = match i % 4 {
                    0 => Vector3::new(x, -1.2, uz.sample(rng)),
                    1 => Vector3::new(x, 1.2, uz.sample(rng)),
                    2 => Vector3::new(x, uy.sample(rng), 0.0),
                    _ => Vector3::new(x, uy.sample(rng), 2.6),
                };
                p + Vector3::from_fn(|_, _| noise.sample(rng))
            })
            .collect()
    }

    /// Position information along x and y of one scan at the true pose, with and without the
    /// deflation.
    fn info_along_axes(deflation: bool) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut map = VoxelMap::new(VoxelMapConfig::default());
        let mp: Vec<MapPoint> = corridor_points(&mut rng, 40_000)
            .into_iter()
            .map(|p| MapPoint {
                p,
                noise: PointNoise::isotropic(SIGMA * SIGMA),
            })
            .collect();
        map.insert(&mp);
        let points: Vec<BodyPoint> = corridor_points(&mut rng, 4_000)
            .into_iter()
            .map(|p| BodyPoint {
                p,
                noise: PointNoise::isotropic(SIGMA * SIGMA),
            })
            .collect();
        let mut m = PointToPlane {
            map: &map,
            points: &points,
            gate_sigma: 3.0,
            min_residuals: 20,
            tilt_deflation: deflation,
        };
        let lin = m.linearize(&State::default(), 0).expect("associations");
        (lin.hth[(POS, POS)], lin.hth[(POS + 1, POS + 1)])
    }

    /// The corridor's axis: the plain model claims information from the planes' tilt errors
    /// alone (2.5e3 m^-2 here, a 2 cm sd from one scan); the deflation removes most of it (to
    /// 4.5e2, the rest being the scatter of the tilt errors about their variance) and keeps the
    /// across-axis information within 1 %.
    #[test]
    fn corridor_axis_information_is_deflated() {
        let (x_plain, y_plain) = info_along_axes(false);
        let (x_defl, y_defl) = info_along_axes(true);
        eprintln!("info x {x_plain:.3e} -> {x_defl:.3e}, y {y_plain:.3e} -> {y_defl:.3e}");
        assert!(x_plain > 10.0, "plain model: {x_plain}");
        assert!(x_defl < 0.25 * x_plain, "deflated {x_defl} of {x_plain}");
        assert!(
            y_defl > 0.95 * y_plain,
            "across the axis {y_defl} of {y_plain}"
        );
    }

    /// Deflation keeps the least-squares step `A^-1 b` and never adds information.
    #[test]
    fn deflation_keeps_the_step_and_removes_information() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = Normal::new(0.0, 1.0).expect("unit");
        let (mut a, mut t) = (Matrix6::zeros(), Matrix6::zeros());
        for _ in 0..40 {
            let h = Vector6::from_fn(|_, _| n.sample(&mut rng));
            let u = Vector6::from_fn(|_, _| n.sample(&mut rng));
            a.ger(1.0, &h, &h, 1.0);
            t.ger(0.3, &u, &u, 1.0);
        }
        let b = Vector6::from_fn(|_, _| n.sample(&mut rng));
        let (a2, b2) = deflate_tilt_information(&a, &b, &t);
        let step = a.cholesky().expect("pd").solve(&b);
        let step2 = a2.cholesky().expect("pd after deflation").solve(&b2);
        assert!(
            (step - step2).norm() < 1e-9 * step.norm(),
            "{step} vs {step2}"
        );
        let removed = SymmetricEigen::new(a - a2).eigenvalues.min();
        assert!(removed > -1e-9 * a.norm(), "information added: {removed}");
        assert!((a - a2).norm() > 0.01 * a.norm(), "nothing removed");
    }
}
