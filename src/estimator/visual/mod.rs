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
mod select;
mod update;

pub use config::{PoseUpdate, VisualConfig};
pub use driver::{add_directional_accel_noise, ImageResult, MapView, VisualDriver, VisualRunStats};
pub use outcome::{SkipReason, VisualCounters, VisualUpdateOutcome};
pub use update::PhotometricUpdate;
