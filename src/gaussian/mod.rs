//! Global hashed-octree Gaussian map, LiDAR initialisation, sliding window, PLY import/export.
//!
//! The global map ([`GaussianMap`]) holds every Gaussian ever created, bucketed by a hash of
//! root voxels that each own a small octree; the [`Window`] holds the few the current view
//! (and the keyframes' views) need in contiguous buffers for the renderer and writes their
//! optimised values back when they leave. A [`Background`] per world direction stands in for
//! what the map cannot hold (sky, surfaces beyond range). [`GaussianMapper`] ties them to the
//! camera for the pipeline; `pipeline::map_harness` measures it with ground-truth poses.

mod background;
pub mod budget;
mod camera;
mod colour;
mod config;
mod convert;
pub mod exposure_fit;
mod fill;
mod frame;
mod keyframes;
mod map;
mod mapper;
mod normals;
mod optimise;
pub mod paging;
mod params;
mod persist;
mod ply;
mod refine;
mod resample;
mod shell;
mod split;
mod store;
mod window;

pub use background::{Background, BackgroundGrid};
pub use camera::sample_bilinear;
pub use colour::PosedImage;
pub use config::{GaussianConfig, EMBEDDED_ITERATIONS, EMBEDDED_LEAF_PIXELS, EMBEDDED_RESOLUTION};
pub use convert::{from_render, to_render, to_render_into};
pub use map::{GaussianMap, GaussianRecord, InsertStats, RootKey};
pub use mapper::{background_path, ExportStats, GaussianMapper, MapperCounters};
pub use normals::estimate_normals;
pub use optimise::{optimisation_camera, render_camera, FrameStats, Keyframe};
pub use params::{
    opacity_from_logit, opacity_to_logit, rotation_from_normal, sh_coeff_count, Gaussian, SH_C0,
};
pub use persist::MapperState;
pub use ply::{read_ply, read_ply_parts, write_ply, write_ply_with_shell, PlyError};
pub use resample::image_target_sized;
pub use window::{MaintainStats, SyncPlan, View, Window};

/// Errors of the Gaussian map.
#[derive(Debug, thiserror::Error)]
pub enum GaussianError {
    #[error("invalid gaussian config `{key}`: {message}")]
    Config { key: String, message: String },
    #[error(transparent)]
    Ply(#[from] PlyError),
    #[error("{0}")]
    Input(String),
    #[error("render: {0}")]
    Render(String),
}
