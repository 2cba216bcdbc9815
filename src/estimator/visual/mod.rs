//! Photometric (visual) update: after the LiDAR update, align the camera image with a render of
//! the Gaussian window, estimating pose and inverse exposure `tau` in the same IESKF.
//!
//! Pipeline use:
//! ```no_run
//! # use gs_livo::estimator::visual::*;
//! # fn f(cfg: &gs_livo::config::Config, filter: &mut gs_livo::estimator::Ieskf,
//! #      img: &gs_livo::sensors::Image, imu: &[gs_livo::sensors::ImuSample],
//! #      window: &[gs_livo::gaussian::Gaussian]) {
//! let mut vis = PhotometricUpdate::new(&cfg.visual, &cfg.camera, cfg.extrinsics.imu_T_camera.0);
//! let g = render_set(window, 0);
//! let out = vis.update(filter, img, imu, &g);
//! let gain = out.exposure(); // pass to the mapper: map colours = image / gain
//! # let _ = gain; }
//! ```

pub mod chain;
mod config;
mod driver;
pub mod exposure;
pub mod image;
mod update;

pub use config::VisualConfig;
pub use driver::{add_directional_accel_noise, ImageResult, MapView, VisualDriver, VisualRunStats};
pub use update::{PhotometricUpdate, SkipReason, VisualCounters, VisualUpdateOutcome};

use crate::render::{GaussianSet, Group};

/// The window's Gaussians in the renderer's layout (f64, SH up to `sh_degree`).
pub fn render_set(gs: &[crate::gaussian::Gaussian], sh_degree: u32) -> GaussianSet<f64> {
    let deg = sh_degree.min(3);
    let mut out = GaussianSet::<f64>::zeros(gs.len(), deg).expect("degree <= 3");
    let k = crate::render::sh_coeffs(deg);
    for (i, g) in gs.iter().enumerate() {
        for (dst, src) in out.get_mut(Group::Mean, i).iter_mut().zip(g.mean) {
            *dst = src as f64;
        }
        for (dst, src) in out.get_mut(Group::LogScale, i).iter_mut().zip(g.log_scale) {
            *dst = src as f64;
        }
        for (dst, src) in out.get_mut(Group::Rotation, i).iter_mut().zip(g.rotation) {
            *dst = src as f64;
        }
        out.get_mut(Group::Opacity, i)[0] = g.opacity_logit as f64;
        for (dst, src) in out.get_mut(Group::ShDc, i).iter_mut().zip(g.sh[0]) {
            *dst = src as f64;
        }
        let rest = out.get_mut(Group::ShRest, i);
        for kk in 1..k {
            for c in 0..3 {
                rest[(kk - 1) * 3 + c] = g.sh[kk][c] as f64;
            }
        }
    }
    out
}
