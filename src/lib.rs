//! gs_livo: LiDAR-inertial-visual odometry with a Gaussian-splat map.
//!
//! Data flows one way: `bag`/`ros` -> `sync` -> `estimator` -> `gaussian`/`render` -> outputs.
//! Nothing below `pipeline` knows about threads, ROS or files.

#[macro_use]
mod simd;

pub mod bag;
pub mod config;
pub mod estimator;
pub mod eval;
pub mod gaussian;
pub mod lidar_map;
pub mod pipeline;
pub mod render;
pub mod report;
pub mod ros;
pub mod sensors;
pub mod session;
pub mod sim;
pub mod sync;
#[doc(hidden)]
pub mod testdata;
pub mod voxel_key;
