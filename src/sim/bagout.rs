//! Writes the sequence's messages into a rosbag2 MCAP folder, in log-time order.

use std::path::Path;

use super::output::{imu_to_msg, odometry_msg, scan_to_msg, sequence_config};
use super::sequence::SimSequence;
use super::SimError;
use crate::bag::{convert::image_to_msg, msgs, BagWriter};
use crate::sensors::{stamp_from_secs, Image};

fn bag_err(e: impl std::fmt::Display) -> SimError {
    SimError::Encode(format!("rosbag2: {e}"))
}

/// JPEG sensor_msgs/CompressedImage (quality 95).
fn compressed(img: &Image) -> Result<msgs::CompressedImage, SimError> {
    let mut data = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, 95);
    image::ImageEncoder::write_image(
        enc,
        &img.rgb,
        img.width,
        img.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| SimError::Encode(format!("jpeg: {e}")))?;
    Ok(msgs::CompressedImage {
        header: msgs::Header {
            stamp: img.stamp,
            frame_id: img.frame_id.clone(),
        },
        format: "jpeg".into(),
        data,
    })
}

#[derive(Clone, Copy)]
enum Item {
    Imu(usize),
    Odom(usize),
    Scan(usize),
    Image(usize),
}

/// Writes the lidar, IMU, image (or `<image>/compressed`) and ground-truth odometry topics of
/// the sequence's config. Scans are logged at their end time, when a driver would publish them.
pub fn write_bag(dir: &Path, seq: &SimSequence) -> Result<(), SimError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| SimError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let cfg = sequence_config(seq);
    let frames = &cfg.frames;
    let period = stamp_from_secs(1.0 / seq.config.lidar_rate);
    let mut items: Vec<(u64, u8, Item)> = Vec::new();
    for (i, s) in seq.imu.iter().enumerate() {
        items.push((s.stamp, 0, Item::Imu(i)));
        items.push((s.stamp, 3, Item::Odom(i)));
    }
    for (i, s) in seq.scans.iter().enumerate() {
        items.push((s.stamp + period, 1, Item::Scan(i)));
    }
    for (i, s) in seq.images.iter().enumerate() {
        items.push((s.stamp, 2, Item::Image(i)));
    }
    items.sort_by_key(|&(t, k, _)| (t, k));
    let mut w = BagWriter::create(dir).map_err(bag_err)?;
    for (t, _, item) in items {
        match item {
            Item::Imu(i) => w
                .write(
                    &cfg.topics.imu,
                    t,
                    &imu_to_msg(&seq.imu[i], &frames.base_link),
                )
                .map_err(bag_err)?,
            Item::Odom(i) => w
                .write(
                    &cfg.topics.ground_truth,
                    t,
                    &odometry_msg(seq, &seq.ground_truth[i]),
                )
                .map_err(bag_err)?,
            Item::Scan(i) => w
                .write(
                    &cfg.topics.lidar,
                    t,
                    &scan_to_msg(&seq.scans[i], seq.config.lidar, &frames.lidar),
                )
                .map_err(bag_err)?,
            Item::Image(i) => {
                let img = &seq.images[i];
                if seq.config.compressed {
                    w.write(&cfg.topics.image, t, &compressed(img)?)
                        .map_err(bag_err)?
                } else {
                    w.write(&cfg.topics.image, t, &image_to_msg(img))
                        .map_err(bag_err)?
                }
            }
        }
    }
    w.finish().map_err(bag_err)
}
