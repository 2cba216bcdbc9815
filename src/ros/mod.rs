//! The ROS 2 node: a core that does everything the node does (decode, pipeline, outputs, TF,
//! diagnostics, saving, shutdown) over a small [`transport::Transport`] interface, and the
//! transports: r2r on a ROS 2 installation (feature `ros2`), a pure-Rust DDS participant
//! that needs no ROS installation (feature `dds`), and a bag replayed in wall-clock
//! time (`gs_livo replay`), which is how the live path runs and is measured without ROS.
//!
//! Only `node` touches r2r and only `dds` RustDDS; the rest is plain data and compiles and tests without ROS.

pub mod core;
pub mod ingest;
pub mod lidar_cloud;

pub mod params;
pub mod publish;
pub mod replay;
pub mod ros_args;
pub mod save;
pub mod stats;
pub mod summary;
pub mod transport;

#[cfg(feature = "dds")]
pub mod dds;
#[cfg(feature = "ros2")]
pub mod node;
