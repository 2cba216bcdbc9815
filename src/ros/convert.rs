//! Thin field copies between r2r messages and the plain `crate::bag::msgs` structs.
//!
//! All decoding (PointCloud2 layouts, image encodings, units) happens on the plain structs in
//! `crate::bag::convert`, shared with bag replay and tested without ROS; nothing here interprets
//! data. Large buffers are moved, not copied.

use r2r::builtin_interfaces::msg::Time;
use r2r::{diagnostic_msgs, geometry_msgs, nav_msgs, sensor_msgs, std_msgs, tf2_msgs};

use super::stats::DiagnosticReport;
use crate::bag::msgs;
use crate::sensors::Stamp;

/// builtin_interfaces/Time -> nanoseconds; times before the epoch saturate at zero.
pub fn stamp_from_time(t: &Time) -> Stamp {
    let ns = t.sec as i64 * 1_000_000_000 + t.nanosec as i64;
    ns.max(0) as Stamp
}

/// Nanoseconds -> builtin_interfaces/Time (seconds saturate at i32::MAX, year 2038).
pub fn time_from_stamp(s: Stamp) -> Time {
    Time {
        sec: (s / 1_000_000_000).min(i32::MAX as u64) as i32,
        nanosec: (s % 1_000_000_000) as u32,
    }
}

pub fn header_from_r2r(h: std_msgs::msg::Header) -> msgs::Header {
    msgs::Header {
        stamp: stamp_from_time(&h.stamp),
        frame_id: h.frame_id,
    }
}

pub fn header_to_r2r(h: &msgs::Header) -> std_msgs::msg::Header {
    std_msgs::msg::Header {
        stamp: time_from_stamp(h.stamp),
        frame_id: h.frame_id.clone(),
    }
}

pub fn pointcloud2_from_r2r(m: sensor_msgs::msg::PointCloud2) -> msgs::PointCloud2 {
    msgs::PointCloud2 {
        header: header_from_r2r(m.header),
        height: m.height,
        width: m.width,
        fields: m
            .fields
            .into_iter()
            .map(|f| msgs::PointField {
                name: f.name,
                offset: f.offset,
                datatype: f.datatype,
                count: f.count,
            })
            .collect(),
        is_bigendian: m.is_bigendian,
        point_step: m.point_step,
        row_step: m.row_step,
        data: m.data,
        is_dense: m.is_dense,
    }
}

pub fn pointcloud2_to_r2r(m: msgs::PointCloud2) -> sensor_msgs::msg::PointCloud2 {
    sensor_msgs::msg::PointCloud2 {
        header: header_to_r2r(&m.header),
        height: m.height,
        width: m.width,
        fields: m
            .fields
            .into_iter()
            .map(|f| sensor_msgs::msg::PointField {
                name: f.name,
                offset: f.offset,
                datatype: f.datatype,
                count: f.count,
            })
            .collect(),
        is_bigendian: m.is_bigendian,
        point_step: m.point_step,
        row_step: m.row_step,
        data: m.data,
        is_dense: m.is_dense,
    }
}

/// Copies a covariance of the expected length; a malformed one becomes "unknown" (zeros).
fn covariance<const N: usize>(v: &[f64]) -> [f64; N] {
    v.try_into().unwrap_or([0.0; N])
}

fn vec3(v: &geometry_msgs::msg::Vector3) -> [f64; 3] {
    [v.x, v.y, v.z]
}

fn r2r_vec3(v: [f64; 3]) -> geometry_msgs::msg::Vector3 {
    geometry_msgs::msg::Vector3 {
        x: v[0],
        y: v[1],
        z: v[2],
    }
}

fn r2r_quat(q: [f64; 4]) -> geometry_msgs::msg::Quaternion {
    geometry_msgs::msg::Quaternion {
        x: q[0],
        y: q[1],
        z: q[2],
        w: q[3],
    }
}

pub fn imu_from_r2r(m: sensor_msgs::msg::Imu) -> msgs::Imu {
    let q = &m.orientation;
    msgs::Imu {
        orientation: [q.x, q.y, q.z, q.w],
        orientation_covariance: covariance(&m.orientation_covariance),
        angular_velocity: vec3(&m.angular_velocity),
        angular_velocity_covariance: covariance(&m.angular_velocity_covariance),
        linear_acceleration: vec3(&m.linear_acceleration),
        linear_acceleration_covariance: covariance(&m.linear_acceleration_covariance),
        header: header_from_r2r(m.header),
    }
}

pub fn image_from_r2r(m: sensor_msgs::msg::Image) -> msgs::Image {
    msgs::Image {
        header: header_from_r2r(m.header),
        height: m.height,
        width: m.width,
        encoding: m.encoding,
        is_bigendian: m.is_bigendian,
        step: m.step,
        data: m.data,
    }
}

pub fn image_to_r2r(m: msgs::Image) -> sensor_msgs::msg::Image {
    sensor_msgs::msg::Image {
        header: header_to_r2r(&m.header),
        height: m.height,
        width: m.width,
        encoding: m.encoding,
        is_bigendian: m.is_bigendian,
        step: m.step,
        data: m.data,
    }
}

pub fn compressed_image_from_r2r(m: sensor_msgs::msg::CompressedImage) -> msgs::CompressedImage {
    msgs::CompressedImage {
        header: header_from_r2r(m.header),
        format: m.format,
        data: m.data,
    }
}

fn pose_to_r2r(p: &msgs::Pose) -> geometry_msgs::msg::Pose {
    geometry_msgs::msg::Pose {
        position: geometry_msgs::msg::Point {
            x: p.position[0],
            y: p.position[1],
            z: p.position[2],
        },
        orientation: r2r_quat(p.orientation),
    }
}

pub fn odometry_to_r2r(m: &msgs::Odometry) -> nav_msgs::msg::Odometry {
    nav_msgs::msg::Odometry {
        header: header_to_r2r(&m.header),
        child_frame_id: m.child_frame_id.clone(),
        pose: geometry_msgs::msg::PoseWithCovariance {
            pose: pose_to_r2r(&m.pose),
            covariance: m.pose_covariance.to_vec(),
        },
        twist: geometry_msgs::msg::TwistWithCovariance {
            twist: geometry_msgs::msg::Twist {
                linear: r2r_vec3(m.twist.linear),
                angular: r2r_vec3(m.twist.angular),
            },
            covariance: m.twist_covariance.to_vec(),
        },
    }
}

pub fn path_to_r2r(m: &msgs::Path) -> nav_msgs::msg::Path {
    nav_msgs::msg::Path {
        header: header_to_r2r(&m.header),
        poses: m
            .poses
            .iter()
            .map(|p| geometry_msgs::msg::PoseStamped {
                header: header_to_r2r(&p.header),
                pose: pose_to_r2r(&p.pose),
            })
            .collect(),
    }
}

pub fn tf_to_r2r(m: &msgs::TfMessage) -> tf2_msgs::msg::TFMessage {
    tf2_msgs::msg::TFMessage {
        transforms: m
            .transforms
            .iter()
            .map(|t| geometry_msgs::msg::TransformStamped {
                header: header_to_r2r(&t.header),
                child_frame_id: t.child_frame_id.clone(),
                transform: geometry_msgs::msg::Transform {
                    translation: r2r_vec3(t.translation),
                    rotation: r2r_quat(t.rotation),
                },
            })
            .collect(),
    }
}

pub fn diagnostics_to_r2r(
    r: &DiagnosticReport,
    stamp: Stamp,
    hardware_id: &str,
) -> diagnostic_msgs::msg::DiagnosticArray {
    diagnostic_msgs::msg::DiagnosticArray {
        header: std_msgs::msg::Header {
            stamp: time_from_stamp(stamp),
            frame_id: String::new(),
        },
        status: vec![diagnostic_msgs::msg::DiagnosticStatus {
            level: r.level,
            name: r.name.clone(),
            message: r.message.clone(),
            hardware_id: hardware_id.into(),
            values: r
                .values
                .iter()
                .map(|(k, v)| diagnostic_msgs::msg::KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        }],
    }
}

// Built with struct literals (r2r's doc-only `Default` panics); these type-check under
// `--features ros2,r2r/doc-only` and run where ROS 2 is sourced.
#[cfg(test)]
mod tests {
    use super::*;

    fn header(sec: i32, nanosec: u32) -> std_msgs::msg::Header {
        std_msgs::msg::Header {
            stamp: Time { sec, nanosec },
            frame_id: "f".into(),
        }
    }

    #[test]
    fn stamps_round_trip() {
        let t = Time {
            sec: 1_700_000_000,
            nanosec: 123_456_789,
        };
        let s = stamp_from_time(&t);
        assert_eq!(s, 1_700_000_000_123_456_789);
        assert_eq!(time_from_stamp(s), t);
        assert_eq!(
            stamp_from_time(&Time {
                sec: -5,
                nanosec: 0
            }),
            0
        );
    }

    #[test]
    fn pointcloud2_fields_and_bytes_are_copied() {
        let m = sensor_msgs::msg::PointCloud2 {
            header: header(3, 7),
            height: 1,
            width: 2,
            fields: vec![sensor_msgs::msg::PointField {
                name: "x".into(),
                offset: 0,
                datatype: 7,
                count: 1,
            }],
            is_bigendian: false,
            point_step: 4,
            row_step: 8,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
            is_dense: true,
        };
        let p = pointcloud2_from_r2r(m);
        assert_eq!(p.header.stamp, 3_000_000_007);
        assert_eq!(p.fields[0].name, "x");
        assert_eq!(p.data.len(), 8);
        let back = pointcloud2_to_r2r(p);
        assert_eq!(back.row_step, 8);
        assert_eq!(back.header.stamp, Time { sec: 3, nanosec: 7 });
    }

    #[test]
    fn imu_keeps_axes_and_covariances() {
        let v = |x, y, z| geometry_msgs::msg::Vector3 { x, y, z };
        let m = sensor_msgs::msg::Imu {
            header: header(1, 0),
            orientation: geometry_msgs::msg::Quaternion {
                x: 0.0,
                y: 0.0,
                z: 0.0,
                w: 1.0,
            },
            orientation_covariance: vec![-1.0; 9],
            angular_velocity: v(0.1, 0.2, 0.3),
            angular_velocity_covariance: vec![0.5; 9],
            linear_acceleration: v(0.0, 0.0, 1.0),
            linear_acceleration_covariance: vec![0.0; 3],
        };
        let p = imu_from_r2r(m);
        assert_eq!(p.angular_velocity, [0.1, 0.2, 0.3]);
        assert_eq!(p.linear_acceleration, [0.0, 0.0, 1.0]);
        assert_eq!(p.orientation_covariance[0], -1.0);
        assert_eq!(p.angular_velocity_covariance[8], 0.5);
        assert_eq!(p.linear_acceleration_covariance, [0.0; 9]);
    }
}
