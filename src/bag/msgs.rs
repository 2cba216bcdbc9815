//! ROS 2 message types as plain Rust structs, mirroring the .msg definitions field by field.
//!
//! These are the wire-level types: CDR encode/decode lives in `bag::cdr`, and conversion to the
//! internal sensor types (`crate::sensors`) in `bag::convert`. Stamps are nanoseconds (`Stamp`);
//! the codec splits them into `builtin_interfaces/Time { sec, nanosec }`.
//!
//! The builders at the end make messages from internal types (poses, clouds, images), for the
//! node's publishers and a run's MCAP file alike.

use nalgebra::Isometry3;

use crate::sensors::{Image as SensorImage, PointCloud, Stamp};

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

/// geometry_msgs/Pose of a rigid transform.
pub fn pose_msg(p: &Isometry3<f64>) -> Pose {
    let t = p.translation.vector;
    let q = p.rotation.quaternion();
    Pose {
        position: [t.x, t.y, t.z],
        orientation: [q.i, q.j, q.k, q.w],
    }
}

/// The rigid transform of a geometry_msgs/Pose (the quaternion normalised); `None` when a
/// number is not finite or the quaternion is zero.
pub fn pose_isometry(p: &Pose) -> Option<Isometry3<f64>> {
    let [x, y, z] = p.position;
    let [qx, qy, qz, qw] = p.orientation;
    let q = nalgebra::Quaternion::new(qw, qx, qy, qz);
    let n = q.norm();
    if !([x, y, z].iter().all(|v| v.is_finite()) && n.is_finite() && n > 1e-9) {
        return None;
    }
    Some(Isometry3::from_parts(
        nalgebra::Translation3::new(x, y, z),
        nalgebra::UnitQuaternion::from_quaternion(q),
    ))
}

/// One TF entry `T_parent_child`.
pub fn transform_msg(
    stamp: Stamp,
    parent: &str,
    child: &str,
    t: &Isometry3<f64>,
) -> TransformStamped {
    let p = pose_msg(t);
    TransformStamped {
        header: Header {
            stamp,
            frame_id: parent.into(),
        },
        child_frame_id: child.into(),
        translation: p.position,
        rotation: p.orientation,
    }
}

pub fn float_field(name: &str, offset: u32) -> PointField {
    PointField {
        name: name.into(),
        offset,
        datatype: point_field::FLOAT32,
        count: 1,
    }
}

/// An unorganised (height 1) little-endian PointCloud2 of `data`, `point_step` bytes a point.
pub fn unorganised(
    stamp: Stamp,
    frame: &str,
    fields: Vec<PointField>,
    point_step: u32,
    data: Vec<u8>,
) -> PointCloud2 {
    let width = (data.len() / point_step as usize) as u32;
    PointCloud2 {
        header: Header {
            stamp,
            frame_id: frame.into(),
        },
        height: 1,
        width,
        fields,
        is_bigendian: false,
        point_step,
        row_step: width * point_step,
        data,
        is_dense: true,
    }
}

/// PointCloud2 with x, y, z, intensity (float32, little endian, point_step 16) in `frame`.
pub fn cloud_xyzi_msg(cloud: &PointCloud, frame: &str) -> PointCloud2 {
    let mut data = Vec::with_capacity(cloud.len() * 16);
    for i in 0..cloud.len() {
        let intensity = cloud.intensity.get(i).copied().unwrap_or(0.0);
        for v in [cloud.x[i], cloud.y[i], cloud.z[i], intensity] {
            data.extend_from_slice(&v.to_le_bytes());
        }
    }
    let fields = ["x", "y", "z", "intensity"]
        .iter()
        .zip([0, 4, 8, 12])
        .map(|(n, o)| float_field(n, o))
        .collect();
    unorganised(cloud.stamp, frame, fields, 16, data)
}

/// Packs a colour the way PCL and RViz read an `rgb` FLOAT32 field: the bits of 0x00RRGGBB.
pub fn pack_rgb(c: [u8; 3]) -> f32 {
    f32::from_bits(((c[0] as u32) << 16) | ((c[1] as u32) << 8) | c[2] as u32)
}

/// sensor_msgs/Image (rgb8) of a rendered view, in the camera frame.
pub fn image_msg(img: &SensorImage, frame: &str) -> Image {
    let mut m = super::convert::image_to_msg(img);
    m.header.frame_id = frame.into();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_f32(d: &[u8], at: usize) -> f32 {
        f32::from_le_bytes(d[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn xyzi_cloud_round_trips_bytes() {
        let mut c = PointCloud::with_capacity(7, "x", 2, false);
        c.push([1.0, -2.0, 3.5], 10.0, 0.0);
        c.push([4.0, 5.0, -6.25], 0.5, 0.0);
        let m = cloud_xyzi_msg(&c, "odom");
        assert_eq!(
            (m.width, m.height, m.point_step, m.row_step),
            (2, 1, 16, 32)
        );
        assert_eq!(m.data.len(), 32);
        assert_eq!(read_f32(&m.data, 16 + 8), -6.25);
        assert_eq!(read_f32(&m.data, 12), 10.0);
        assert_eq!(m.fields[3].name, "intensity");
        assert_eq!(m.fields[3].offset, 12);
    }

    #[test]
    fn image_msg_is_packed_rgb8() {
        let mut img = SensorImage::new(9, 3, 2);
        img.rgb[3 * 3 + 2] = 77;
        let m = image_msg(&img, "cam");
        assert_eq!((m.width, m.height, m.step), (3, 2, 9));
        assert_eq!(m.encoding, "rgb8");
        assert_eq!(m.data[11], 77);
        assert_eq!(m.header.frame_id, "cam");
    }
}
