//! CDR encode/decode of the supported ROS 2 messages (the [`RosMessage`] trait).

use super::cdr::{CdrReader, CdrWriter};
use super::defs;
use super::error::DecodeError;
use super::msgs::*;

/// A ROS 2 message type that can be written to and read from a rosbag2 (CDR, ros2msg schema).
pub trait RosMessage: Sized {
    /// Full type name, e.g. `sensor_msgs/msg/PointCloud2`.
    const TYPE_NAME: &'static str;
    /// ros2msg text including dependent types (rosbag2 MCAP schema layout).
    const DEFINITION: &'static str;
    /// CDR bytes including the 4-byte encapsulation header (little-endian).
    fn encode_cdr(&self) -> Vec<u8>;
    /// Decodes CDR bytes (either endianness) including the encapsulation header.
    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError>;
}

fn read_header(r: &mut CdrReader) -> Result<Header, DecodeError> {
    Ok(Header {
        stamp: r.time()?,
        frame_id: r.string()?,
    })
}

fn write_header(w: &mut CdrWriter, h: &Header) {
    w.time(h.stamp);
    w.string(&h.frame_id);
}

fn read_pose(r: &mut CdrReader) -> Result<Pose, DecodeError> {
    Ok(Pose {
        position: r.f64_array()?,
        orientation: r.f64_array()?,
    })
}

fn write_pose(w: &mut CdrWriter, p: &Pose) {
    w.f64s(&p.position);
    w.f64s(&p.orientation);
}

/// Smallest CDR size of one PoseStamped / TransformStamped, to bound sequence lengths.
const MIN_STAMPED_POSE_BYTES: usize = 8 + 4 + 56;

impl RosMessage for PointCloud2 {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/PointCloud2";
    const DEFINITION: &'static str = defs::POINT_CLOUD2;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(self.data.len() + 64 + 32 * self.fields.len());
        write_header(&mut w, &self.header);
        w.u32(self.height);
        w.u32(self.width);
        w.seq_len(self.fields.len());
        for f in &self.fields {
            w.string(&f.name);
            w.u32(f.offset);
            w.u8(f.datatype);
            w.u32(f.count);
        }
        w.bool(self.is_bigendian);
        w.u32(self.point_step);
        w.u32(self.row_step);
        w.bytes(&self.data);
        w.bool(self.is_dense);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        let header = read_header(&mut r)?;
        let height = r.u32()?;
        let width = r.u32()?;
        let n = r.seq_len(13)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(PointField {
                name: r.string()?,
                offset: r.u32()?,
                datatype: r.u8()?,
                count: r.u32()?,
            });
        }
        Ok(Self {
            header,
            height,
            width,
            fields,
            is_bigendian: r.bool()?,
            point_step: r.u32()?,
            row_step: r.u32()?,
            data: r.bytes()?.to_vec(),
            is_dense: r.bool()?,
        })
    }
}

impl RosMessage for Imu {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/Imu";
    const DEFINITION: &'static str = defs::IMU;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(360);
        write_header(&mut w, &self.header);
        w.f64s(&self.orientation);
        w.f64s(&self.orientation_covariance);
        w.f64s(&self.angular_velocity);
        w.f64s(&self.angular_velocity_covariance);
        w.f64s(&self.linear_acceleration);
        w.f64s(&self.linear_acceleration_covariance);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self {
            header: read_header(&mut r)?,
            orientation: r.f64_array()?,
            orientation_covariance: r.f64_array()?,
            angular_velocity: r.f64_array()?,
            angular_velocity_covariance: r.f64_array()?,
            linear_acceleration: r.f64_array()?,
            linear_acceleration_covariance: r.f64_array()?,
        })
    }
}

impl RosMessage for Image {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/Image";
    const DEFINITION: &'static str = defs::IMAGE;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(self.data.len() + 64);
        write_header(&mut w, &self.header);
        w.u32(self.height);
        w.u32(self.width);
        w.string(&self.encoding);
        w.u8(self.is_bigendian);
        w.u32(self.step);
        w.bytes(&self.data);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self {
            header: read_header(&mut r)?,
            height: r.u32()?,
            width: r.u32()?,
            encoding: r.string()?,
            is_bigendian: r.u8()?,
            step: r.u32()?,
            data: r.bytes()?.to_vec(),
        })
    }
}

impl RosMessage for CompressedImage {
    const TYPE_NAME: &'static str = "sensor_msgs/msg/CompressedImage";
    const DEFINITION: &'static str = defs::COMPRESSED_IMAGE;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(self.data.len() + 64);
        write_header(&mut w, &self.header);
        w.string(&self.format);
        w.bytes(&self.data);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self {
            header: read_header(&mut r)?,
            format: r.string()?,
            data: r.bytes()?.to_vec(),
        })
    }
}

impl RosMessage for Odometry {
    const TYPE_NAME: &'static str = "nav_msgs/msg/Odometry";
    const DEFINITION: &'static str = defs::ODOMETRY;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(768);
        write_header(&mut w, &self.header);
        w.string(&self.child_frame_id);
        write_pose(&mut w, &self.pose);
        w.f64s(&self.pose_covariance);
        w.f64s(&self.twist.linear);
        w.f64s(&self.twist.angular);
        w.f64s(&self.twist_covariance);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self {
            header: read_header(&mut r)?,
            child_frame_id: r.string()?,
            pose: read_pose(&mut r)?,
            pose_covariance: r.f64_array()?,
            twist: Twist {
                linear: r.f64_array()?,
                angular: r.f64_array()?,
            },
            twist_covariance: r.f64_array()?,
        })
    }
}

impl RosMessage for PoseStamped {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/PoseStamped";
    const DEFINITION: &'static str = defs::POSE_STAMPED;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(96);
        write_header(&mut w, &self.header);
        write_pose(&mut w, &self.pose);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self {
            header: read_header(&mut r)?,
            pose: read_pose(&mut r)?,
        })
    }
}

impl RosMessage for PoseWithCovarianceStamped {
    const TYPE_NAME: &'static str = "geometry_msgs/msg/PoseWithCovarianceStamped";
    const DEFINITION: &'static str = defs::POSE_WITH_COVARIANCE_STAMPED;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(400);
        write_header(&mut w, &self.header);
        write_pose(&mut w, &self.pose);
        w.f64s(&self.covariance);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self {
            header: read_header(&mut r)?,
            pose: read_pose(&mut r)?,
            covariance: r.f64_array()?,
        })
    }
}

impl RosMessage for Path {
    const TYPE_NAME: &'static str = "nav_msgs/msg/Path";
    const DEFINITION: &'static str = defs::PATH;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(64 + 96 * self.poses.len());
        write_header(&mut w, &self.header);
        w.seq_len(self.poses.len());
        for p in &self.poses {
            write_header(&mut w, &p.header);
            write_pose(&mut w, &p.pose);
        }
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        let header = read_header(&mut r)?;
        let n = r.seq_len(MIN_STAMPED_POSE_BYTES)?;
        let mut poses = Vec::with_capacity(n);
        for _ in 0..n {
            poses.push(PoseStamped {
                header: read_header(&mut r)?,
                pose: read_pose(&mut r)?,
            });
        }
        Ok(Self { header, poses })
    }
}

impl RosMessage for TfMessage {
    const TYPE_NAME: &'static str = "tf2_msgs/msg/TFMessage";
    const DEFINITION: &'static str = defs::TF_MESSAGE;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(16 + 112 * self.transforms.len());
        w.seq_len(self.transforms.len());
        for t in &self.transforms {
            write_header(&mut w, &t.header);
            w.string(&t.child_frame_id);
            w.f64s(&t.translation);
            w.f64s(&t.rotation);
        }
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        let n = r.seq_len(MIN_STAMPED_POSE_BYTES)?;
        let mut transforms = Vec::with_capacity(n);
        for _ in 0..n {
            transforms.push(TransformStamped {
                header: read_header(&mut r)?,
                child_frame_id: r.string()?,
                translation: r.f64_array()?,
                rotation: r.f64_array()?,
            });
        }
        Ok(Self { transforms })
    }
}

/// Livox CDR point: u32 + 3 f32 + 3 u8 (19 bytes; 20 with the alignment of the next point).
const LIVOX_POINT_MIN_BYTES: usize = 19;

impl RosMessage for LivoxCustomMsg {
    const TYPE_NAME: &'static str = "livox_ros_driver2/msg/CustomMsg";
    const DEFINITION: &'static str = defs::LIVOX_CUSTOM_MSG;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(64 + 20 * self.points.len());
        write_header(&mut w, &self.header);
        w.u64(self.timebase);
        w.u32(self.point_num);
        w.u8(self.lidar_id);
        for &b in &self.rsvd {
            w.u8(b);
        }
        w.seq_len(self.points.len());
        for p in &self.points {
            w.u32(p.offset_time);
            w.f32(p.x);
            w.f32(p.y);
            w.f32(p.z);
            w.u8(p.reflectivity);
            w.u8(p.tag);
            w.u8(p.line);
        }
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        let header = read_header(&mut r)?;
        let timebase = r.u64()?;
        let point_num = r.u32()?;
        let lidar_id = r.u8()?;
        let rsvd = [r.u8()?, r.u8()?, r.u8()?];
        let n = r.seq_len(LIVOX_POINT_MIN_BYTES)?;
        let mut points = Vec::with_capacity(n);
        for _ in 0..n {
            points.push(LivoxPoint {
                offset_time: r.u32()?,
                x: r.f32()?,
                y: r.f32()?,
                z: r.f32()?,
                reflectivity: r.u8()?,
                tag: r.u8()?,
                line: r.u8()?,
            });
        }
        Ok(Self {
            header,
            timebase,
            point_num,
            lidar_id,
            rsvd,
            points,
        })
    }
}

/// Smallest CDR size of one DiagnosticStatus: level + four empty strings/sequences.
const MIN_DIAGNOSTIC_STATUS_BYTES: usize = 1 + 4 * 4;

impl RosMessage for DiagnosticArray {
    const TYPE_NAME: &'static str = "diagnostic_msgs/msg/DiagnosticArray";
    const DEFINITION: &'static str = defs::DIAGNOSTIC_ARRAY;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(256);
        write_header(&mut w, &self.header);
        w.seq_len(self.status.len());
        for s in &self.status {
            w.u8(s.level);
            w.string(&s.name);
            w.string(&s.message);
            w.string(&s.hardware_id);
            w.seq_len(s.values.len());
            for kv in &s.values {
                w.string(&kv.key);
                w.string(&kv.value);
            }
        }
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        let header = read_header(&mut r)?;
        let n = r.seq_len(MIN_DIAGNOSTIC_STATUS_BYTES)?;
        let mut status = Vec::with_capacity(n);
        for _ in 0..n {
            let level = r.u8()?;
            let name = r.string()?;
            let message = r.string()?;
            let hardware_id = r.string()?;
            let m = r.seq_len(8)?;
            let mut values = Vec::with_capacity(m);
            for _ in 0..m {
                values.push(KeyValue {
                    key: r.string()?,
                    value: r.string()?,
                });
            }
            status.push(DiagnosticStatus {
                level,
                name,
                message,
                hardware_id,
                values,
            });
        }
        Ok(Self { header, status })
    }
}

impl RosMessage for StringMsg {
    const TYPE_NAME: &'static str = "std_msgs/msg/String";
    const DEFINITION: &'static str = defs::STRING;

    fn encode_cdr(&self) -> Vec<u8> {
        let mut w = CdrWriter::with_capacity(8 + self.data.len());
        w.string(&self.data);
        w.finish()
    }

    fn decode_cdr(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = CdrReader::new(bytes)?;
        Ok(Self { data: r.string()? })
    }
}
