//! Pixels chosen by what they can tell the filter: each candidate's residual Jacobian is
//! predicted from the image gradient, a coarse depth of the map and the pose chain, and the
//! candidates are ranked by the prior variance that Jacobian sees (`h P h^T`). After a
//! LiDAR-degenerate scan the covariance is large along the degenerate direction only, so the
//! pixels whose intensity moves with that direction (near, textured, off the focus of
//! expansion) come first and far, uninformative ones (the corridor's vanishing point, where the
//! window's far discs crowd the render) are not rendered at all.

use nalgebra::{Isometry3, Matrix6, SMatrix, Vector3};

use super::image::Grey;
use crate::render::{Camera, GaussianSet, Group};

/// Block size (pixels at the optimisation resolution) of the coarse depth map.
const BLOCK: u32 = 4;

/// Nearest Gaussian centre per `BLOCK x BLOCK` block at world-to-camera pose `t_cw`, with empty
/// blocks filled by the median of the filled ones (a rank needs a depth, not an exact one).
/// `None` when no centre is in view.
pub(super) fn centre_depths(
    g: &GaussianSet<f64>,
    cam: &Camera,
    t_cw: &Isometry3<f64>,
) -> Option<DepthGrid> {
    let (bw, bh) = (cam.width.div_ceil(BLOCK), cam.height.div_ceil(BLOCK));
    let mut z = vec![f64::INFINITY; (bw * bh) as usize];
    let (r, t) = (t_cw.rotation.to_rotation_matrix(), t_cw.translation.vector);
    for m in g.group(Group::Mean).chunks_exact(3) {
        let pc = r * Vector3::new(m[0], m[1], m[2]) + t;
        if !(pc.z > cam.near && pc.z < cam.far) {
            continue;
        }
        let u = cam.fx * pc.x / pc.z + cam.cx + 0.5;
        let v = cam.fy * pc.y / pc.z + cam.cy + 0.5;
        if !(u >= 0.0 && v >= 0.0 && u < cam.width as f64 && v < cam.height as f64) {
            continue;
        }
        let k = ((v as u32 / BLOCK) * bw + u as u32 / BLOCK) as usize;
        z[k] = z[k].min(pc.z);
    }
    let mut known: Vec<f64> = z.iter().copied().filter(|v| v.is_finite()).collect();
    if known.is_empty() {
        return None;
    }
    let mid = known.len() / 2;
    let median = *known.select_nth_unstable_by(mid, f64::total_cmp).1;
    for v in &mut z {
        if !v.is_finite() {
            *v = median;
        }
    }
    Some(DepthGrid { bw, z })
}

/// Coarse depth per block (see [`centre_depths`]).
pub(super) struct DepthGrid {
    bw: u32,
    z: Vec<f64>,
}

impl DepthGrid {
    fn at(&self, px: u32, py: u32) -> f64 {
        self.z[((py / BLOCK) * self.bw + px / BLOCK) as usize]
    }
}

/// The predicted pose row of a residual at pixel `(px, py)`: the render moves with the scene,
/// `d I_ren / d xi = -grad I . d u / d xi`, so `d r / d xi = grad I . J_pi [I, -[p]x]` (the
/// [`crate::render::perturb_pose`] convention), chained to the error state's rotation and
/// position by `chain` (rows `[v; w]`, columns `[dtheta, dp]`). The camera image's gradient
/// stands in for the render's.
fn predicted_row(
    grey: &Grey,
    cam: &Camera,
    depth: &DepthGrid,
    chain: &SMatrix<f64, 6, 6>,
    (px, py): (u32, u32),
) -> [f64; 6] {
    let gx = 0.5 * (grey.at(px + 1, py) - grey.at(px - 1, py));
    let gy = 0.5 * (grey.at(px, py + 1) - grey.at(px, py - 1));
    let z = depth.at(px, py);
    let (xn, yn) = ((px as f64 - cam.cx) / cam.fx, (py as f64 - cam.cy) / cam.fy);
    let p = Vector3::new(xn * z, yn * z, z);
    // grad . J_pi (a 1x3 row), then times [I, -[p]x]: the rotation part is (a x p)... as
    // a . (w x p) = w . (p x a).
    let a = Vector3::new(
        gx * cam.fx / z,
        gy * cam.fy / z,
        -(gx * cam.fx * p.x + gy * cam.fy * p.y) / (z * z),
    );
    let w = p.cross(&a);
    let d_xi = [a.x, a.y, a.z, w.x, w.y, w.z];
    std::array::from_fn(|c| (0..6).map(|r| d_xi[r] * chain[(r, c)]).sum())
}

/// Ranks `candidates` by the prior variance `h P h^T` of their predicted rows (`pose_cov`: the
/// error state's `[dtheta, dp]` block), largest first, and keeps `max`; ties keep the
/// candidates' order.
pub(super) fn rank_by_prior_variance(
    grey: &Grey,
    cam: &Camera,
    depth: &DepthGrid,
    chain: &SMatrix<f64, 6, 6>,
    pose_cov: &Matrix6<f64>,
    candidates: &[(u32, u32)],
    max: usize,
) -> Vec<(u32, u32)> {
    let mut scored: Vec<(f64, usize)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, &(px, py))| px >= 1 && py >= 1 && px + 1 < grey.width && py + 1 < grey.height)
        .map(|(i, &c)| {
            let h = nalgebra::Vector6::from(predicted_row(grey, cam, depth, chain, c));
            let s = (h.transpose() * pose_cov * h)[(0, 0)];
            (if s.is_finite() { s } else { 0.0 }, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(max);
    scored.into_iter().map(|(_, i)| candidates[i]).collect()
}
