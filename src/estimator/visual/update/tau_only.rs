//! The exposure-only (Schmidt, "consider") update of tau used when the pose update is skipped.

use super::residuals::Row;
use crate::estimator::state::{ErrMat, DIM, POS, ROT, TAU};

/// Tau's step and the posterior covariance of a Schmidt update of tau alone from `rows` at the
/// prior pose, the other states left as they are, each residual's variance raised by what the
/// pose uncertainty `cov` puts into it (`h_pose P_pose h_pose^T`); Huber weights at `huber`
/// sigmas. `None` when the rows carry no information on tau or tau has no variance.
pub(super) fn tau_only_step(
    rows: &[Row],
    cov: &ErrMat,
    sigma: f64,
    huber: f64,
) -> Option<(f64, ErrMat)> {
    let pose_idx = [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2];
    // Information and gradient of the tau-only problem (h = I_cam).
    let (mut info, mut grad) = (0.0, 0.0);
    for r in rows {
        let mut pose_var = 0.0;
        for &i in &pose_idx {
            for &j in &pose_idx {
                pose_var += r.h[i] * cov[(i, j)] * r.h[j];
            }
        }
        let var = sigma * sigma + pose_var;
        let e = (r.r / var.sqrt()).abs();
        let w = if e <= huber { 1.0 } else { huber / e };
        info += w * r.cam * r.cam / var;
        grad += w * r.cam * r.r / var;
    }
    let p = cov[(TAU, TAU)];
    if !(info > 0.0 && p > 0.0 && info.is_finite()) {
        return None;
    }
    // One equivalent scalar measurement of tau with variance 1 / info.
    let gain = p * info / (1.0 + p * info);
    let dtau = -grad / info * gain;
    let mut post = *cov;
    for j in 0..DIM {
        if j != TAU {
            post[(TAU, j)] *= 1.0 - gain;
            post[(j, TAU)] *= 1.0 - gain;
        }
    }
    post[(TAU, TAU)] = (1.0 - gain).powi(2) * p + gain * gain / info;
    Some((dtau, post))
}
