//! Pipeline outputs -> serialized messages on the transport's publishers, and the node's own
//! record of what it published (trajectory, latency, IMU-rate count, LiDAR map) for saving and
//! the summary. Runs on the pipeline's output thread, so odometry is published the moment the
//! estimator has it.

use std::sync::{Arc, Mutex};

use nalgebra::Isometry3;

use super::lidar_cloud::VoxelCloud;
use super::transport::{Clock, Qos, RawPublisher, Transport, TransportError};
use crate::bag::msgs::{self, cloud_xyzi_msg, image_msg, transform_msg};
use crate::bag::RosMessage;
use crate::config::Config;
use crate::pipeline::port::{
    self, map_centres_msg, odometry_msg, OutputFrames, PathBuffer, Throttle,
};
use crate::pipeline::Output;
use crate::sensors::{PoseStamped, Stamp};

use super::params::NodeParams;

/// Topic names the node publishes (relative names resolve in the node's namespace).
pub mod topics {
    pub const ODOMETRY: &str = "odometry";
    pub const IMU_ODOMETRY: &str = "odometry/imu";
    pub const PATH: &str = "path";
    pub const REGISTERED: &str = "cloud_registered";
    pub const MAP: &str = "map/points";
    pub const RENDERED: &str = "render/image";
    pub const TF: &str = "/tf";
    pub const TF_STATIC: &str = "/tf_static";
    pub const DIAGNOSTICS: &str = "/diagnostics";
    pub const SAVE: &str = "~/save";
    /// A pose hint in the loaded map (geometry_msgs/PoseWithCovarianceStamped), as AMCL's.
    pub const INITIAL_POSE: &str = "/initialpose";
}

/// What the node has published so far, shared with the saver and the summary.
#[derive(Debug, Default)]
pub struct NodeRecord {
    /// Every scan-rate pose published (for `trajectory.tum`).
    pub trajectory: Vec<PoseStamped>,
    /// Odometry latency: node clock at publication minus the scan-end stamp (ms).
    pub latency_ms: Vec<f64>,
    pub imu_odometry: u64,
    pub imu_first: Option<Stamp>,
    pub imu_last: Option<Stamp>,
    pub renders: u64,
    pub map_publications: u64,
    pub publish_errors: u64,
    /// Registered scans, voxel-downsampled: the LiDAR map users save and inspect.
    pub lidar_map: VoxelCloud,
}

/// A shared [`NodeRecord`].
pub type Record = Arc<Mutex<NodeRecord>>;

/// Locks a record (a panicked holder leaves counts that are still worth reporting).
pub fn lock(r: &Record) -> std::sync::MutexGuard<'_, NodeRecord> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

struct Publishers {
    odometry: Arc<dyn RawPublisher>,
    imu_odometry: Arc<dyn RawPublisher>,
    path: Arc<dyn RawPublisher>,
    tf: Arc<dyn RawPublisher>,
    registered: Arc<dyn RawPublisher>,
    map: Arc<dyn RawPublisher>,
    rendered: Arc<dyn RawPublisher>,
}

fn advertise<M: RosMessage>(
    t: &mut dyn Transport,
    topic: &str,
    qos: Qos,
) -> Result<Arc<dyn RawPublisher>, TransportError> {
    t.advertise(topic, M::TYPE_NAME, M::DEFINITION, qos)
}

/// Publishes pipeline outputs.
pub struct OutputPublisher {
    pubs: Publishers,
    frames: OutputFrames,
    publish_tf: bool,
    publish_imu_odometry: bool,
    map_max_points: usize,
    /// `T_imu_base`: odometry and TF are of the base frame.
    imu_t_base: Isometry3<f64>,
    path: PathBuffer,
    map_throttle: Throttle,
    record: Record,
    clock: Clock,
}

impl OutputPublisher {
    /// Advertises every output topic on `t`.
    pub fn create(
        t: &mut dyn Transport,
        config: &Config,
        np: &NodeParams,
        record: Record,
    ) -> Result<Self, TransportError> {
        let imu_t_base = np
            .imu_t_base()
            .map_err(|(k, e)| TransportError::Setup(format!("{k}: {e}")))?;
        let pubs = Publishers {
            odometry: advertise::<msgs::Odometry>(t, topics::ODOMETRY, Qos::outputs())?,
            imu_odometry: advertise::<msgs::Odometry>(t, topics::IMU_ODOMETRY, Qos::outputs())?,
            path: advertise::<msgs::Path>(t, topics::PATH, Qos::outputs())?,
            tf: advertise::<msgs::TfMessage>(t, topics::TF, Qos::tf())?,
            registered: advertise::<msgs::PointCloud2>(t, topics::REGISTERED, Qos::outputs())?,
            map: advertise::<msgs::PointCloud2>(t, topics::MAP, Qos::latest())?,
            rendered: advertise::<msgs::Image>(t, topics::RENDERED, Qos::latest())?,
        };
        Ok(Self {
            pubs,
            frames: OutputFrames::from_config(config),
            publish_tf: np.publish_tf,
            publish_imu_odometry: np.publish_imu_odometry,
            map_max_points: np.map_max_points,
            imu_t_base,
            path: PathBuffer::new(np.path_max_poses),
            map_throttle: Throttle::new(np.map_publish_period),
            record,
            clock: t.clock(),
        })
    }

    /// Publishes one output; failures are counted, never fatal.
    pub fn publish(&mut self, o: Output) {
        if let Err(e) = self.try_publish(o) {
            let mut r = lock(&self.record);
            r.publish_errors += 1;
            if r.publish_errors % 100 == 1 {
                tracing::warn!("publishing failed ({} so far): {e}", r.publish_errors);
            }
        }
    }

    fn try_publish(&mut self, o: Output) -> Result<(), TransportError> {
        let f = &self.frames;
        match o {
            Output::Pose(fe) => {
                let est = port::in_base_frame(&fe.estimate, &self.imu_t_base);
                let stamp = est.stamp;
                self.pubs
                    .odometry
                    .publish(&odometry_msg(&est, f).encode_cdr(), stamp)?;
                let latency = crate::sensors::stamp_diff_secs((self.clock)(), stamp) * 1e3;
                {
                    let mut r = lock(&self.record);
                    r.latency_ms.push(latency);
                    r.trajectory.push(PoseStamped {
                        stamp,
                        pose: est.pose,
                    });
                }
                if self.publish_tf {
                    let t = transform_msg(stamp, &f.odom, &f.base_link, &est.pose);
                    let tf = msgs::TfMessage {
                        transforms: vec![t],
                    };
                    self.pubs.tf.publish(&tf.encode_cdr(), stamp)?;
                }
                self.path.push(stamp, est.pose);
                self.pubs
                    .path
                    .publish(&self.path.msg(f).encode_cdr(), stamp)?;
            }
            Output::ImuPose(est) => {
                if self.publish_imu_odometry {
                    let est = port::in_base_frame(&est, &self.imu_t_base);
                    self.pubs
                        .imu_odometry
                        .publish(&odometry_msg(&est, f).encode_cdr(), est.stamp)?;
                    let mut r = lock(&self.record);
                    r.imu_odometry += 1;
                    r.imu_first.get_or_insert(est.stamp);
                    r.imu_last = Some(est.stamp);
                }
            }
            Output::Registered(cloud) => {
                let m = cloud_xyzi_msg(&cloud, &f.odom);
                self.pubs.registered.publish(&m.encode_cdr(), cloud.stamp)?;
                lock(&self.record).lidar_map.insert(&cloud);
            }
            Output::Centres(m) => {
                if self.map_throttle.ready(m.stamp) {
                    let msg = map_centres_msg(&m, &f.odom, self.map_max_points);
                    self.pubs.map.publish(&msg.encode_cdr(), m.stamp)?;
                    lock(&self.record).map_publications += 1;
                }
            }
            Output::Render(r) => {
                let mut img = image_msg(&r.render, &f.camera);
                img.header.stamp = r.camera.stamp;
                self.pubs
                    .rendered
                    .publish(&img.encode_cdr(), r.camera.stamp)?;
                lock(&self.record).renders += 1;
            }
        }
        Ok(())
    }
}

/// The static transforms (`/tf_static`, transient local). With a loaded map to relocalise in,
/// `map -> odom` is withheld until a relocalisation is accepted: before that the odometry frame
/// has no known place in the map, and a static identity would claim one.
pub struct StaticTf {
    publisher: Option<Arc<dyn RawPublisher>>,
    /// The full set, `map -> odom` included, while it is still withheld.
    withheld: Option<msgs::TfMessage>,
}

impl StaticTf {
    /// Advertises `/tf_static` (when any switch allows a transform) and publishes what may be
    /// published now.
    pub fn publish(
        t: &mut dyn Transport,
        config: &Config,
        np: &NodeParams,
        withhold_map_to_odom: bool,
    ) -> Result<Self, TransportError> {
        let frames = OutputFrames::from_config(config);
        let imu_t_base = np
            .imu_t_base()
            .map_err(|(k, e)| TransportError::Setup(format!("{k}: {e}")))?;
        let all = port::static_transforms(
            config,
            &frames,
            &imu_t_base,
            np.publish_map_to_odom,
            np.publish_static_tf,
        );
        if all.transforms.is_empty() {
            return Ok(Self {
                publisher: None,
                withheld: None,
            });
        }
        let p = advertise::<msgs::TfMessage>(t, topics::TF_STATIC, Qos::tf_static())?;
        let now = port::static_transforms(
            config,
            &frames,
            &imu_t_base,
            np.publish_map_to_odom && !withhold_map_to_odom,
            np.publish_static_tf,
        );
        let withheld = (now != all).then_some(all);
        if !now.transforms.is_empty() {
            p.publish(&now.encode_cdr(), 0)?;
        }
        Ok(Self {
            publisher: Some(p),
            withheld,
        })
    }

    /// Whether `map -> odom` is still withheld.
    pub fn withholding(&self) -> bool {
        self.withheld.is_some()
    }

    /// Publishes the withheld `map -> odom` with the rest (a transient-local topic keeps one
    /// message for late joiners: it must hold every static transform).
    pub fn release_map_to_odom(&mut self) -> Result<(), TransportError> {
        if let (Some(p), Some(all)) = (&self.publisher, self.withheld.take()) {
            p.publish(&all.encode_cdr(), 0)?;
        }
        Ok(())
    }
}

/// The diagnostics publisher.
pub fn diagnostics_publisher(
    t: &mut dyn Transport,
) -> Result<Arc<dyn RawPublisher>, TransportError> {
    advertise::<msgs::DiagnosticArray>(t, topics::DIAGNOSTICS, Qos::outputs())
}

/// A diagnostics report as the message.
pub fn diagnostics_msg(
    reports: &[super::stats::DiagnosticReport],
    stamp: Stamp,
    hardware_id: &str,
) -> msgs::DiagnosticArray {
    msgs::DiagnosticArray {
        header: msgs::Header {
            stamp,
            frame_id: String::new(),
        },
        status: reports
            .iter()
            .map(|r| msgs::DiagnosticStatus {
                level: r.level,
                name: r.name.clone(),
                message: r.message.clone(),
                hardware_id: hardware_id.into(),
                values: r
                    .values
                    .iter()
                    .map(|(k, v)| msgs::KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
