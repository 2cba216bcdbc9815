//! ROS 2 message types as plain Rust structs, mirroring the .msg definitions field by field.
//!
//! These are the wire-level types: CDR encode/decode lives in `bag::cdr`, and conversion to the
//! internal sensor types (`crate::sensors`) in `bag::convert`. Stamps are nanoseconds (`Stamp`);
//! the codec splits them into `builtin_interfaces/Time { sec, nanosec }`.

use crate::sensors::Stamp;

/// `std_msgs/Header`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub stamp: Stamp,
    pub frame_id: String,
}

/// `sensor_msgs/PointField` datatypes.
pub mod point_field {
    pub const INT8: u8 = 1;
    pub const UINT8: u8 = 2;
    pub const INT16: u8 = 3;
    pub const UINT16: u8 = 4;
    pub const INT32: u8 = 5;
    pub const UINT32: u8 = 6;
    pub const FLOAT32: u8 = 7;
    pub const FLOAT64: u8 = 8;
}

/// `sensor_msgs/PointField`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointField {
    pub name: String,
    pub offset: u32,
    pub datatype: u8,
    pub count: u32,
}

/// `sensor_msgs/PointCloud2`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointCloud2 {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub fields: Vec<PointField>,
    pub is_bigendian: bool,
    pub point_step: u32,
    pub row_step: u32,
    pub data: Vec<u8>,
    pub is_dense: bool,
}

/// `sensor_msgs/Imu`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imu {
    pub header: Header,
    /// x, y, z, w
    pub orientation: [f64; 4],
    pub orientation_covariance: [f64; 9],
    pub angular_velocity: [f64; 3],
    pub angular_velocity_covariance: [f64; 9],
    pub linear_acceleration: [f64; 3],
    pub linear_acceleration_covariance: [f64; 9],
}

/// `sensor_msgs/Image`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub encoding: String,
    pub is_bigendian: u8,
    pub step: u32,
    pub data: Vec<u8>,
}

/// `sensor_msgs/CompressedImage`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompressedImage {
    pub header: Header,
    pub format: String,
    pub data: Vec<u8>,
}

/// `geometry_msgs/Pose` (position x, y, z; orientation x, y, z, w).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pose {
    pub position: [f64; 3],
    pub orientation: [f64; 4],
}

/// `geometry_msgs/Twist` (linear, angular).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Twist {
    pub linear: [f64; 3],
    pub angular: [f64; 3],
}

/// `geometry_msgs/PoseStamped`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoseStamped {
    pub header: Header,
    pub pose: Pose,
}

/// `geometry_msgs/PoseWithCovarianceStamped`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoseWithCovarianceStamped {
    pub header: Header,
    pub pose: Pose,
    pub covariance: [f64; 36],
}

/// `nav_msgs/Odometry`.
#[derive(Debug, Clone, PartialEq)]
pub struct Odometry {
    pub header: Header,
    pub child_frame_id: String,
    pub pose: Pose,
    pub pose_covariance: [f64; 36],
    pub twist: Twist,
    pub twist_covariance: [f64; 36],
}

/// `nav_msgs/Path`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Path {
    pub header: Header,
    pub poses: Vec<PoseStamped>,
}

/// `geometry_msgs/TransformStamped` (translation x, y, z; rotation x, y, z, w).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformStamped {
    pub header: Header,
    pub child_frame_id: String,
    pub translation: [f64; 3],
    pub rotation: [f64; 4],
}

/// `tf2_msgs/TFMessage`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TfMessage {
    pub transforms: Vec<TransformStamped>,
}

/// One point of `livox_ros_driver2/CustomPoint` (same layout as `livox_ros_driver/CustomPoint`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LivoxPoint {
    /// Nanoseconds after `timebase`.
    pub offset_time: u32,
    pub x: f32,
    pub y: f32,
    pub z: f32,
    pub reflectivity: u8,
    pub tag: u8,
    pub line: u8,
}

/// `livox_ros_driver2/CustomMsg` and `livox_ros_driver/CustomMsg` (identical layouts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LivoxCustomMsg {
    pub header: Header,
    /// Nanoseconds since the epoch of the first point.
    pub timebase: u64,
    pub point_num: u32,
    pub lidar_id: u8,
    pub rsvd: [u8; 3],
    pub points: Vec<LivoxPoint>,
}

/// `diagnostic_msgs/KeyValue`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `diagnostic_msgs/DiagnosticStatus` (`level`: 0 OK, 1 WARN, 2 ERROR, 3 STALE).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiagnosticStatus {
    pub level: u8,
    pub name: String,
    pub message: String,
    pub hardware_id: String,
    pub values: Vec<KeyValue>,
}

/// `diagnostic_msgs/DiagnosticArray`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiagnosticArray {
    pub header: Header,
    pub status: Vec<DiagnosticStatus>,
}

/// `std_msgs/String` (the node's save topic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StringMsg {
    pub data: String,
}
