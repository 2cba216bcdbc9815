//! Dispatch on the ROS type name: raw bag messages to the sensor types the pipeline ingests.

use super::codec::RosMessage;
use super::convert;
use super::error::DecodeError;
use super::msgs;
use super::reader::RawMessage;
use crate::sensors::{Image, ImuSample, PointCloud};

/// A decoded message the pipeline understands; `Other` for types it does not use.
#[derive(Debug, Clone)]
pub enum SensorMessage {
    Cloud(PointCloud),
    Imu(ImuSample),
    Image(Image),
    Odometry(msgs::Odometry),
    Other,
}

/// Normalises `pkg/Type` to `pkg/msg/Type` (ROS 1 style names appear in some converted bags).
pub fn normalize_type(name: &str) -> std::borrow::Cow<'_, str> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() == 2 {
        format!("{}/msg/{}", parts[0], parts[1]).into()
    } else {
        name.into()
    }
}

/// Decodes a raw message by its type name.
pub fn decode_sensor_message(raw: &RawMessage) -> Result<SensorMessage, DecodeError> {
    let d = &raw.data;
    Ok(match normalize_type(&raw.type_name).as_ref() {
        msgs::PointCloud2::TYPE_NAME => SensorMessage::Cloud(convert::pointcloud_from_msg(
            &msgs::PointCloud2::decode_cdr(d)?,
        )?),
        "livox_ros_driver2/msg/CustomMsg" | "livox_ros_driver/msg/CustomMsg" => {
            SensorMessage::Cloud(convert::pointcloud_from_livox(
                &msgs::LivoxCustomMsg::decode_cdr(d)?,
            ))
        }
        msgs::Imu::TYPE_NAME => {
            SensorMessage::Imu(convert::imu_from_msg(&msgs::Imu::decode_cdr(d)?))
        }
        msgs::Image::TYPE_NAME => {
            SensorMessage::Image(convert::image_from_msg(&msgs::Image::decode_cdr(d)?)?)
        }
        msgs::CompressedImage::TYPE_NAME => SensorMessage::Image(convert::image_from_compressed(
            &msgs::CompressedImage::decode_cdr(d)?,
        )?),
        msgs::Odometry::TYPE_NAME => SensorMessage::Odometry(msgs::Odometry::decode_cdr(d)?),
        _ => SensorMessage::Other,
    })
}

/// Decodes a raw message as `M`, checking the type name first.
pub fn decode_as<M: RosMessage>(raw: &RawMessage) -> Result<M, DecodeError> {
    let t = normalize_type(&raw.type_name);
    let livox =
        M::TYPE_NAME == "livox_ros_driver2/msg/CustomMsg" && t == "livox_ros_driver/msg/CustomMsg";
    if t != M::TYPE_NAME && !livox {
        return Err(DecodeError::WrongType {
            expected: M::TYPE_NAME.into(),
            found: raw.type_name.clone(),
        });
    }
    M::decode_cdr(&raw.data)
}
