//! Photometric (visual) update: after the LiDAR update, align the camera image with a render of
//! the Gaussian window, estimating pose and inverse exposure `tau` in the same IESKF.
//!
//! The pipeline (`gs_livo run --mode livo`) drives it through [`VisualDriver`], once per scan
//! package with images, on the mapper's window after frame `k - map_lag`:
//! ```no_run
//! # use gs_livo::estimator::visual::*;
//! # fn f(cfg: &gs_livo::config::Config, filter: &mut gs_livo::estimator::Ieskf,
//! #      pkg: &gs_livo::sync::MeasurementPackage, window: &[gs_livo::gaussian::Gaussian]) {
//! let mut vis = VisualDriver::new(
//!     &cfg.visual,
//!     &cfg.camera,
//!     cfg.extrinsics.imu_T_camera.0,
//!     cfg.imu.accel_scale,
//! );
//! let map = MapView { frame: 7, gaussians: window, sh_degree: 1, background: [0.0; 3] };
//! for r in vis.process(filter, &pkg.images, &pkg.imu, Some(map), None) {
//!     let gain = r.exposure; // the mapper divides the image by it: map colours stay normalised
//! #   let _ = gain;
//! }
//! # }
//! ```
//!
//! Design notes, from the simulator:
//! - The residual compares with the map's composite `C + (1 - alpha) bg`, exactly what the mapper
//!   trains; exposure and map brightness are only known up to one common scale, so any bias of
//!   tau is absorbed by the map and grows (a `C / alpha` model drifted tau by 5 % in 8 s).
//! - When the pose update is gated, tau is still updated alone (Schmidt update), so an image
//!   with an unmeasured exposure change does not reach the map with a stale gain.
//! - By default (`visual.pose_update = lidar_degenerate`) the pose is corrected only after a
//!   LiDAR-degenerate scan; otherwise the image updates tau alone. The map is trained from the
//!   same estimates a few frames earlier, so where the LiDAR fixes the pose the camera mostly
//!   measures the estimate against itself and adds a random walk (room, 20 s: LIO 1.5 mm, LIVO
//!   with pose updates 2.3-3.1 mm).
//! - After a LiDAR-degenerate scan, white acceleration noise is added along the LiDAR's weakest
//!   direction: the LIO's covariance there is overconfident (plane-normal noise, fixed per
//!   voxel, counts as information every scan) and would otherwise outweigh the camera.
//! - A fronto-parallel grid of coplanar, overlapping discs ties the renderer's depth order:
//!   the render then jumps with any pose change and no update converges. LiDAR-initialised
//!   maps have noisy centres and do not tie.

pub mod chain;
mod config;
mod driver;
pub mod exposure;
pub mod image;
mod outcome;
mod update;

pub use config::{PoseUpdate, VisualConfig};
pub use driver::{add_directional_accel_noise, ImageResult, MapView, VisualDriver, VisualRunStats};
pub use outcome::{SkipReason, VisualCounters, VisualUpdateOutcome};
pub use update::PhotometricUpdate;

use crate::render::GaussianSet;

/// The window's Gaussians in the renderer's layout (f64, SH up to `sh_degree`).
pub fn render_set(gs: &[crate::gaussian::Gaussian], sh_degree: u32) -> GaussianSet<f64> {
    render_set_reusing(gs, sh_degree, Vec::new())
}

/// [`render_set`] into the allocation `buf` (e.g. the previous window's data): refilling the
/// same memory avoids faulting in megabytes of fresh pages per map frame. One pass over the
/// Gaussians writes each group's run.
pub fn render_set_reusing(
    gs: &[crate::gaussian::Gaussian],
    sh_degree: u32,
    mut buf: Vec<f64>,
) -> GaussianSet<f64> {
    let deg = sh_degree.min(3);
    let k = crate::render::sh_coeffs(deg);
    let n = gs.len();
    let wr = 3 * (k - 1);
    buf.clear();
    buf.resize((3 + 3 + 4 + 1 + 3 + wr) * n, 0.0);
    let (mean, tail) = buf.split_at_mut(3 * n);
    let (log_scale, tail) = tail.split_at_mut(3 * n);
    let (rot, tail) = tail.split_at_mut(4 * n);
    let (opacity, tail) = tail.split_at_mut(n);
    let (dc, rest) = tail.split_at_mut(3 * n);
    let wide = |dst: &mut [f64], src: &[f32]| {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = f64::from(*s);
        }
    };
    for (i, g) in gs.iter().enumerate() {
        wide(&mut mean[3 * i..3 * i + 3], &g.mean);
        wide(&mut log_scale[3 * i..3 * i + 3], &g.log_scale);
        wide(&mut rot[4 * i..4 * i + 4], &g.rotation);
        opacity[i] = f64::from(g.opacity_logit);
        wide(&mut dc[3 * i..3 * i + 3], &g.sh[0]);
        wide(&mut rest[wr * i..wr * (i + 1)], g.sh[1..k].as_flattened());
    }
    GaussianSet::from_data(n, deg, buf).expect("degree <= 3, sizes of the group layout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Group;

    /// Every value lands where the per-Gaussian accessors of the set look for it.
    #[test]
    fn render_set_matches_per_gaussian_layout() {
        for deg in [0u32, 1, 3, 5] {
            let gs: Vec<crate::gaussian::Gaussian> = (0..7)
                .map(|i| {
                    let f = |j: usize| (i * 100 + j) as f32 * 0.25 - 3.0;
                    crate::gaussian::Gaussian {
                        mean: [f(0), f(1), f(2)],
                        log_scale: [f(3), f(4), f(5)],
                        rotation: [f(6), f(7), f(8), f(9)],
                        opacity_logit: f(10),
                        sh: std::array::from_fn(|kk| std::array::from_fn(|c| f(11 + 3 * kk + c))),
                    }
                })
                .collect();
            let set = render_set_reusing(&gs, deg, vec![7.0; 5]);
            let k = crate::render::sh_coeffs(deg.min(3));
            assert_eq!((set.len(), set.sh_degree()), (7, deg.min(3)));
            for (i, g) in gs.iter().enumerate() {
                let same = |grp: Group, want: &[f32]| {
                    let got = set.get(grp, i);
                    assert_eq!(got.len(), want.len(), "{grp:?}");
                    for (a, b) in got.iter().zip(want) {
                        assert_eq!(*a, f64::from(*b), "{grp:?} {i}");
                    }
                };
                same(Group::Mean, &g.mean);
                same(Group::LogScale, &g.log_scale);
                same(Group::Rotation, &g.rotation);
                same(Group::Opacity, &[g.opacity_logit]);
                same(Group::ShDc, &g.sh[0]);
                same(Group::ShRest, g.sh[1..k].as_flattened());
            }
        }
    }
}
