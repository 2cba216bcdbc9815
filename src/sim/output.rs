//! Writes a simulated sequence to disk: ground truth (TUM), exposure gains, the rig config, and
//! the ROS message forms of the sensor data (Ouster- or Livox-layout PointCloud2, Imu, Odometry).

use std::path::Path;

use super::lidar::LidarKind;
use super::sequence::{LidarScan, SimSequence};
use super::SimError;
use crate::bag::msgs::{self, point_field as pf, Header, PointCloud2, PointField};
use crate::sensors::{stamp_to_secs, ImuSample, PoseStamped};

fn field(name: &str, offset: u32, datatype: u8) -> PointField {
    PointField {
        name: name.into(),
        offset,
        datatype,
        count: 1,
    }
}

/// The scan as a PointCloud2 in the layout of the sensor's ROS 2 driver: Ouster
/// (x y z _ intensity t(u32 ns) reflectivity ring ambient range(u32 mm), 48-byte points) or
/// livox_ros_driver2 (x y z intensity tag line timestamp(f64 absolute s), 26-byte points).
pub fn scan_to_msg(scan: &LidarScan, kind: LidarKind, frame_id: &str) -> PointCloud2 {
    let (fields, step) = match kind {
        LidarKind::Spinning => (
            vec![
                field("x", 0, pf::FLOAT32),
                field("y", 4, pf::FLOAT32),
                field("z", 8, pf::FLOAT32),
                field("intensity", 16, pf::FLOAT32),
                field("t", 20, pf::UINT32),
                field("reflectivity", 24, pf::UINT16),
                field("ring", 26, pf::UINT16),
                field("ambient", 28, pf::UINT16),
                field("range", 32, pf::UINT32),
            ],
            48usize,
        ),
        LidarKind::Livox => (
            vec![
                field("x", 0, pf::FLOAT32),
                field("y", 4, pf::FLOAT32),
                field("z", 8, pf::FLOAT32),
                field("intensity", 12, pf::FLOAT32),
                field("tag", 16, pf::UINT8),
                field("line", 17, pf::UINT8),
                field("timestamp", 18, pf::FLOAT64),
            ],
            26usize,
        ),
    };
    let mut data = vec![0u8; step * scan.points.len()];
    let t0 = stamp_to_secs(scan.stamp);
    for (p, out) in scan.points.iter().zip(data.chunks_exact_mut(step)) {
        out[0..4].copy_from_slice(&p.p[0].to_le_bytes());
        out[4..8].copy_from_slice(&p.p[1].to_le_bytes());
        out[8..12].copy_from_slice(&p.p[2].to_le_bytes());
        match kind {
            LidarKind::Spinning => {
                out[16..20].copy_from_slice(&p.intensity.to_le_bytes());
                let t_ns = (p.t as f64 * 1e9).round() as u32;
                out[20..24].copy_from_slice(&t_ns.to_le_bytes());
                let refl = (p.intensity * 256.0) as u16;
                out[24..26].copy_from_slice(&refl.to_le_bytes());
                out[26..28].copy_from_slice(&p.ring.to_le_bytes());
                let ambient = (p.intensity * 4.0) as u16;
                out[28..30].copy_from_slice(&ambient.to_le_bytes());
                let range_mm = (p.range as f64 * 1000.0).round() as u32;
                out[32..36].copy_from_slice(&range_mm.to_le_bytes());
            }
            LidarKind::Livox => {
                out[12..16].copy_from_slice(&p.intensity.to_le_bytes());
                out[16] = 0;
                out[17] = p.ring as u8;
                let ts = t0 + p.t as f64;
                out[18..26].copy_from_slice(&ts.to_le_bytes());
            }
        }
    }
    PointCloud2 {
        header: Header {
            stamp: scan.stamp,
            frame_id: frame_id.into(),
        },
        height: 1,
        width: scan.points.len() as u32,
        fields,
        is_bigendian: false,
        point_step: step as u32,
        row_step: (step * scan.points.len()) as u32,
        data,
        is_dense: true,
    }
}

/// sensor_msgs/Imu without orientation (covariance[0] = -1 per REP-145).
pub fn imu_to_msg(s: &ImuSample, frame_id: &str) -> msgs::Imu {
    let mut orientation_covariance = [0.0; 9];
    orientation_covariance[0] = -1.0;
    msgs::Imu {
        header: Header {
            stamp: s.stamp,
            frame_id: frame_id.into(),
        },
        orientation: [0.0, 0.0, 0.0, 1.0],
        orientation_covariance,
        angular_velocity: s.gyro.into(),
        angular_velocity_covariance: [0.0; 9],
        linear_acceleration: s.accel.into(),
        linear_acceleration_covariance: [0.0; 9],
    }
}

/// nav_msgs/Odometry of the body in the map frame; twist in the body frame (REP-105).
pub fn odometry_msg(seq: &SimSequence, gt: &PoseStamped) -> msgs::Odometry {
    let k = seq.trajectory.kinematics(seq.time_of(gt.stamp));
    let t = gt.pose.translation.vector;
    let q = gt.pose.rotation.quaternion();
    let v_body = gt.pose.rotation.inverse() * k.velocity;
    let frames = &seq.config.rig.frames;
    msgs::Odometry {
        header: Header {
            stamp: gt.stamp,
            frame_id: frames.map.clone(),
        },
        child_frame_id: frames.base_link.clone(),
        pose: msgs::Pose {
            position: [t.x, t.y, t.z],
            orientation: [q.i, q.j, q.k, q.w],
        },
        pose_covariance: [0.0; 36],
        twist: msgs::Twist {
            linear: v_body.into(),
            angular: k.omega_body.into(),
        },
        twist_covariance: [0.0; 36],
    }
}

/// The rig config of the sequence with topics set to what the bag contains.
pub fn sequence_config(seq: &SimSequence) -> crate::config::Config {
    let mut c = seq.config.rig.clone();
    if seq.config.compressed && !c.topics.image.ends_with("/compressed") {
        c.topics.image = format!("{}/compressed", c.topics.image);
    }
    c
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `ground_truth.tum`, `exposure.txt`, `config.yaml` and the rosbag2 folder `bag/`
/// into `dir` (created if missing).
pub fn write_sequence(dir: &Path, seq: &SimSequence) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let gt_path = dir.join("ground_truth.tum");
    crate::eval::tum::write_tum(&gt_path, &seq.ground_truth)
        .map_err(|e| SimError::Encode(e.to_string()))?;
    let mut exp = String::from("# stamp_s gain\n");
    for (img, g) in seq.images.iter().zip(&seq.exposure) {
        exp.push_str(&format!("{:.9} {:.9}\n", stamp_to_secs(img.stamp), g));
    }
    let p = dir.join("exposure.txt");
    std::fs::write(&p, exp).map_err(io_err(&p))?;
    let p = dir.join("config.yaml");
    std::fs::write(&p, sequence_config(seq).to_yaml()).map_err(io_err(&p))?;
    super::bagout::write_bag(&dir.join("bag"), seq)?;
    Ok(())
}
