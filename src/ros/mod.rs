//! ROS 2 node: subscriptions, publishers, TF, parameters, map saving.
//!
//! Only `convert`, `qos` and `node` touch r2r (feature `ros2`); the rest is plain data and
//! compiles and tests without ROS: parameter handling, the seam to the pipeline (`outputs`),
//! the output message builders, ingest counters, diagnostics and saving.

pub mod ingest;
pub mod outputs;
pub mod params;
pub mod passive;
pub mod save;
pub mod stats;

#[cfg(feature = "ros2")]
pub mod convert;
#[cfg(feature = "ros2")]
pub mod node;
#[cfg(feature = "ros2")]
pub mod qos;
