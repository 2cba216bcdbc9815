//! The port of the pipeline: the estimates and map summaries it hands to whatever transport
//! or writer sits above it, and their output messages (plain `crate::bag::msgs` structs), so
//! the same code feeds the node's publishers (through the CDR encoders) and a run's MCAP file,
//! and is tested without ROS.

use std::collections::VecDeque;

use nalgebra::{Isometry3, Vector3};

use crate::bag::msgs::{self, float_field, pack_rgb, pose_msg, transform_msg, unorganised};
use crate::config::{Config, Transform};
use crate::sensors::Stamp;

/// A filter state for publication.
#[derive(Debug, Clone, PartialEq)]
pub struct StateEstimate {
    pub stamp: Stamp,
    /// `T_odom_base`: the body (IMU) frame in the odometry frame.
    pub pose: Isometry3<f64>,
    /// Linear velocity of the body in the odometry frame (m/s).
    pub velocity: Vector3<f64>,
    /// Angular velocity in the body frame (rad/s, bias-corrected).
    pub angular_velocity: Vector3<f64>,
    /// Row-major 6x6 covariance of (x, y, z, rot x, rot y, rot z), as in nav_msgs/Odometry.
    pub pose_covariance: Option<[f64; 36]>,
}

/// Gaussian centres with their base colour, in the odometry frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapCentres {
    pub stamp: Stamp,
    pub positions: Vec<[f32; 3]>,
    pub colours: Vec<[u8; 3]>,
}

/// Frame names of the outputs (REP-105).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFrames {
    pub map: String,
    pub odom: String,
    pub base_link: String,
    pub lidar: String,
    pub camera: String,
}

impl OutputFrames {
    pub fn from_config(c: &Config) -> Self {
        Self {
            map: c.frames.map.clone(),
            odom: c.frames.odom.clone(),
            base_link: c.frames.base_link.clone(),
            lidar: c.frames.lidar.clone(),
            camera: c.frames.camera.clone(),
        }
    }
}

/// nav_msgs/Odometry of `est`: pose in the odometry frame, twist in the body frame.
pub fn odometry_msg(est: &StateEstimate, frames: &OutputFrames) -> msgs::Odometry {
    let v_body = est.pose.rotation.inverse() * est.velocity;
    msgs::Odometry {
        header: msgs::Header {
            stamp: est.stamp,
            frame_id: frames.odom.clone(),
        },
        child_frame_id: frames.base_link.clone(),
        pose: pose_msg(&est.pose),
        pose_covariance: est.pose_covariance.unwrap_or([0.0; 36]),
        twist: msgs::Twist {
            linear: v_body.into(),
            angular: est.angular_velocity.into(),
        },
        twist_covariance: [0.0; 36],
    }
}

/// `est` (of the IMU) as the estimate of the frame `T_imu_base` places on the robot: pose
/// `T_odom_base = T_odom_imu * T_imu_base`, velocity of the base origin, rates in the base frame.
pub fn in_base_frame(est: &StateEstimate, imu_t_base: &Isometry3<f64>) -> StateEstimate {
    if *imu_t_base == Isometry3::identity() {
        return est.clone();
    }
    let lever = imu_t_base.translation.vector;
    let omega_base = imu_t_base.rotation.inverse() * est.angular_velocity;
    StateEstimate {
        stamp: est.stamp,
        pose: est.pose * imu_t_base,
        velocity: est.velocity + est.pose.rotation * est.angular_velocity.cross(&lever),
        angular_velocity: omega_base,
        // The lever arm mixes rotation into position uncertainty; without the full covariance
        // the IMU's is the closer of the two choices the message allows.
        pose_covariance: est.pose_covariance,
    }
}

/// The static transforms the switches allow: `map -> odom` (identity: the odometry has no loop
/// closure) when the two frames differ and `map_to_odom`, and the sensors in the base frame
/// (`T_base_sensor = T_imu_base^-1 * T_imu_sensor`) when `extrinsics`.
pub fn static_transforms(
    c: &Config,
    frames: &OutputFrames,
    imu_t_base: &Isometry3<f64>,
    map_to_odom: bool,
    extrinsics: bool,
) -> msgs::TfMessage {
    let mut transforms = Vec::new();
    if map_to_odom && frames.map != frames.odom {
        transforms.push(transform_msg(
            0,
            &frames.map,
            &frames.odom,
            &Isometry3::identity(),
        ));
    }
    let sensors: [(&str, &Transform); 2] = [
        (&frames.lidar, &c.extrinsics.imu_T_lidar),
        (&frames.camera, &c.extrinsics.imu_T_camera),
    ];
    let base_t_imu = imu_t_base.inverse();
    for (child, t) in sensors {
        if extrinsics && !child.is_empty() && child != frames.base_link {
            transforms.push(transform_msg(
                0,
                &frames.base_link,
                child,
                &(base_t_imu * t.0),
            ));
        }
    }
    msgs::TfMessage { transforms }
}

/// The trajectory so far, bounded, as a nav_msgs/Path.
#[derive(Debug, Clone)]
pub struct PathBuffer {
    max_poses: usize,
    poses: VecDeque<(Stamp, Isometry3<f64>)>,
}

impl PathBuffer {
    pub fn new(max_poses: usize) -> Self {
        Self {
            max_poses: max_poses.max(1),
            poses: VecDeque::new(),
        }
    }

    pub fn push(&mut self, stamp: Stamp, pose: Isometry3<f64>) {
        if self.poses.len() == self.max_poses {
            self.poses.pop_front();
        }
        self.poses.push_back((stamp, pose));
    }

    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    pub fn msg(&self, frames: &OutputFrames) -> msgs::Path {
        let header = |stamp| msgs::Header {
            stamp,
            frame_id: frames.odom.clone(),
        };
        msgs::Path {
            header: header(self.poses.back().map_or(0, |p| p.0)),
            poses: self
                .poses
                .iter()
                .map(|(s, p)| msgs::PoseStamped {
                    header: header(*s),
                    pose: pose_msg(p),
                })
                .collect(),
        }
    }
}

/// PointCloud2 with x, y, z, rgb (point_step 16) of at most `max_points` centres, evenly
/// subsampled, in `frame`.
pub fn map_centres_msg(m: &MapCentres, frame: &str, max_points: usize) -> msgs::PointCloud2 {
    let n = m.positions.len().min(m.colours.len());
    let stride = n.div_ceil(max_points.max(1)).max(1);
    let mut data = Vec::with_capacity(n / stride * 16 + 16);
    for i in (0..n).step_by(stride) {
        let [x, y, z] = m.positions[i];
        for v in [x, y, z, pack_rgb(m.colours[i])] {
            data.extend_from_slice(&v.to_le_bytes());
        }
    }
    let fields = ["x", "y", "z", "rgb"]
        .iter()
        .zip([0, 4, 8, 12])
        .map(|(n, o)| float_field(n, o))
        .collect();
    unorganised(m.stamp, frame, fields, 16, data)
}

/// Lets a message through at most once per `period_ns` of message time (sim time safe: a
/// stamp going backwards, as when a bag restarts, re-arms the throttle).
#[derive(Debug, Clone)]
pub struct Throttle {
    period_ns: u64,
    last: Option<Stamp>,
}

impl Throttle {
    pub fn new(period_secs: f64) -> Self {
        Self {
            period_ns: (period_secs.max(0.0) * 1e9) as u64,
            last: None,
        }
    }

    pub fn ready(&mut self, stamp: Stamp) -> bool {
        let ok = match self.last {
            Some(last) => stamp < last || stamp - last >= self.period_ns,
            None => true,
        };
        if ok {
            self.last = Some(stamp);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Point3, Translation3, UnitQuaternion};

    fn frames() -> OutputFrames {
        OutputFrames::from_config(&Config::default())
    }

    fn read_f32(d: &[u8], at: usize) -> f32 {
        f32::from_le_bytes(d[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn odometry_twist_is_in_the_body_frame() {
        // Body yawed 90 deg, moving along world +y: forward in the body frame.
        let pose = Isometry3::from_parts(
            Translation3::new(1.0, 2.0, 3.0),
            UnitQuaternion::from_euler_angles(0.0, 0.0, std::f64::consts::FRAC_PI_2),
        );
        let est = StateEstimate {
            stamp: 42,
            pose,
            velocity: Vector3::new(0.0, 2.0, 0.0),
            angular_velocity: Vector3::new(0.0, 0.0, 0.5),
            pose_covariance: None,
        };
        let m = odometry_msg(&est, &frames());
        assert_eq!(m.header.frame_id, "odom");
        assert_eq!(m.child_frame_id, "base_link");
        assert_eq!(m.header.stamp, 42);
        assert_eq!(m.pose.position, [1.0, 2.0, 3.0]);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let o = m.pose.orientation;
        assert!(
            (o[2] - s).abs() < 1e-12 && (o[3] - s).abs() < 1e-12,
            "{o:?}"
        );
        assert!(
            (m.twist.linear[0] - 2.0).abs() < 1e-12,
            "{:?}",
            m.twist.linear
        );
        assert!(m.twist.linear[1].abs() < 1e-12);
        assert_eq!(m.twist.angular, [0.0, 0.0, 0.5]);
    }

    #[test]
    fn static_tf_maps_sensor_points_into_the_body_frame() {
        let mut c = Config::default();
        c.extrinsics.imu_T_lidar =
            Transform::from_array([0.1, 0.2, 0.3, 0.0, 0.0, 1.0, 0.0]).unwrap();
        c.frames.lidar = "os_lidar".into();
        let id = Isometry3::identity();
        let tf = static_transforms(&c, &OutputFrames::from_config(&c), &id, true, true);
        assert_eq!(tf.transforms.len(), 3, "map->odom, lidar, camera");
        let only_sensors = static_transforms(&c, &OutputFrames::from_config(&c), &id, false, true);
        assert_eq!(only_sensors.transforms.len(), 2);
        let only_map = static_transforms(&c, &OutputFrames::from_config(&c), &id, true, false);
        assert_eq!(only_map.transforms.len(), 1);
        assert_eq!(only_map.transforms[0].child_frame_id, "odom");
        let l = tf
            .transforms
            .iter()
            .find(|t| t.child_frame_id == "os_lidar")
            .unwrap();
        assert_eq!(l.header.frame_id, "base_link");
        // Rebuild the transform from the message and map a point: (1, 0, 0) in os_lidar is
        // (-1, 0, 0) rotated + offset in the body frame.
        let q = UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(
            l.rotation[3],
            l.rotation[0],
            l.rotation[1],
            l.rotation[2],
        ));
        let t = Isometry3::from_parts(l.translation.into(), q);
        let p = t * Point3::new(1.0, 0.0, 0.0);
        assert!(
            (p.coords - Vector3::new(-0.9, 0.2, 0.3)).norm() < 1e-12,
            "{p:?}"
        );
        // Same frames: no map->odom, no self-transform.
        c.frames.odom = "map".into();
        c.frames.camera = "base_link".into();
        let tf = static_transforms(&c, &OutputFrames::from_config(&c), &id, true, true);
        assert_eq!(tf.transforms.len(), 1);
    }

    /// The base frame's pose composes with the lever arm, and its velocity adds omega x r.
    #[test]
    fn base_frame_estimate_follows_the_lever_arm() {
        let imu_t_base = Isometry3::translation(0.0, -1.0, 0.0);
        let est = StateEstimate {
            stamp: 1,
            pose: Isometry3::from_parts(
                Translation3::new(2.0, 0.0, 0.0),
                UnitQuaternion::from_euler_angles(0.0, 0.0, std::f64::consts::FRAC_PI_2),
            ),
            velocity: Vector3::zeros(),
            angular_velocity: Vector3::new(0.0, 0.0, 1.0),
            pose_covariance: None,
        };
        let b = in_base_frame(&est, &imu_t_base);
        // Base origin 1 m along the IMU's -y, which points along world +x after the yaw.
        assert!((b.pose.translation.vector - Vector3::new(3.0, 0.0, 0.0)).norm() < 1e-12);
        // Spinning about z at 1 rad/s with a 1 m lever: 1 m/s, perpendicular to the lever.
        let v_expected =
            (b.pose.translation.vector - est.pose.translation.vector).cross(&Vector3::z()) * -1.0;
        assert!((b.velocity - v_expected).norm() < 1e-12, "{:?}", b.velocity);
        assert!((b.velocity.norm() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn path_is_bounded_and_keeps_the_newest() {
        let mut p = PathBuffer::new(3);
        for i in 0..5u64 {
            p.push(i, Isometry3::translation(i as f64, 0.0, 0.0));
        }
        let m = p.msg(&frames());
        assert_eq!(m.poses.len(), 3);
        assert_eq!(m.header.stamp, 4);
        assert_eq!(m.poses[0].pose.position[0], 2.0);
        assert_eq!(m.poses[2].header.frame_id, "odom");
    }

    #[test]
    fn map_centres_pack_rgb_and_subsample() {
        assert_eq!(pack_rgb([0x12, 0x34, 0x56]).to_bits(), 0x0012_3456);
        let m = MapCentres {
            stamp: 1,
            positions: (0..10).map(|i| [i as f32, 0.0, 0.0]).collect(),
            colours: (0..10).map(|i| [i as u8, 255, 0]).collect(),
        };
        let msg = map_centres_msg(&m, "odom", 4);
        // Stride ceil(10 / 4) = 3: points 0, 3, 6, 9.
        assert_eq!(msg.width, 4);
        assert_eq!(read_f32(&msg.data, 16), 3.0);
        assert_eq!(read_f32(&msg.data, 3 * 16 + 12).to_bits(), 0x0009_ff00);
        let all = map_centres_msg(&m, "odom", 100);
        assert_eq!(all.width, 10);
    }

    #[test]
    fn throttle_uses_message_time() {
        let mut t = Throttle::new(1.0);
        assert!(t.ready(10_000_000_000));
        assert!(!t.ready(10_500_000_000));
        assert!(t.ready(11_000_000_000));
        // A bag restart (time going back) re-arms.
        assert!(t.ready(1_000_000_000));
    }
}
