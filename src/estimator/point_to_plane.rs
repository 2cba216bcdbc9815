//! Point-to-plane residuals against the voxel plane map, as a [`Measurement`].

use nalgebra::{Matrix6, Vector3, Vector6};

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
}

impl Measurement for PointToPlane<'_> {
    fn linearize(&mut self, x: &State, _iter: usize) -> Option<Linearization> {
        let mut hth = Matrix6::<f64>::zeros();
        let mut htz = Vector6::<f64>::zeros();
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
            chi2 += z * z * w;
            count += 1;
        }
        if count < self.min_residuals {
            return None;
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
