//! Bag ingestion: read the configured topics in log-time order, decode them into
//! [`Measurement`]s, collect ground truth, count everything that cannot be used.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};
use serde::Serialize;

use crate::bag::{decode_sensor_message, BagDamage, BagError, BagReader, SensorMessage};
use crate::config::Config;
use crate::sensors::{stamp_diff_secs, Measurement, PoseStamped, Stamp};

/// What ingestion read and what it could not use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestCounters {
    pub messages: u64,
    pub imu: u64,
    pub clouds: u64,
    pub images: u64,
    pub ground_truth: u64,
    /// Messages whose payload did not decode (truncated, unknown encoding, no x/y/z ...).
    pub decode_errors: u64,
    /// Messages on a configured topic with a type the pipeline does not use.
    pub unsupported_type: u64,
    /// Read errors that ended the bag early (a truncated file).
    pub read_errors: u64,
    /// Ground-truth poses with a non-finite or non-unit orientation.
    pub bad_ground_truth: u64,
    /// Seconds between the first and the last message read.
    pub sensor_seconds: f64,
    /// What a damaged recording cost (truncation, skipped chunks by cause, missing files);
    /// `None` for an intact bag.
    pub bag_damage: Option<BagDamage>,
}

/// An opened bag and what the config asks to read from it.
pub struct BagInput {
    reader: BagReader,
    path: PathBuf,
    topics: Vec<String>,
    lidar: String,
    image: String,
    imu: String,
    ground_truth: String,
}

impl BagInput {
    pub fn open(path: &Path, cfg: &Config) -> Result<Self, BagError> {
        let reader = BagReader::open(path)?;
        let present: Vec<&str> = reader.topics().iter().map(|t| t.name.as_str()).collect();
        let t = &cfg.topics;
        let mut topics = Vec::new();
        for (name, what) in [
            (&t.imu, "imu"),
            (&t.lidar, "lidar"),
            (&t.image, "image"),
            (&t.ground_truth, "ground truth"),
        ] {
            if name.is_empty() {
                continue;
            }
            if present.contains(&name.as_str()) {
                topics.push(name.clone());
            } else if what == "imu" || what == "lidar" {
                tracing::warn!(
                    "{}: {what} topic `{name}` is not in the bag (topics: {})",
                    path.display(),
                    present.join(", ")
                );
            } else {
                tracing::info!("{}: no {what} topic `{name}`", path.display());
            }
        }
        Ok(Self {
            reader,
            path: path.to_path_buf(),
            topics,
            lidar: t.lidar.clone(),
            image: t.image.clone(),
            imu: t.imu.clone(),
            ground_truth: t.ground_truth.clone(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scans (LiDAR messages) in the bag: the progress bar's length.
    pub fn scan_count(&self) -> u64 {
        self.count_of(&self.lidar)
    }

    pub fn has_camera(&self) -> bool {
        self.count_of(&self.image) > 0
    }

    pub fn has_ground_truth(&self) -> bool {
        self.count_of(&self.ground_truth) > 0
    }

    /// Every valid ground-truth pose in the bag, read ahead of the run (oracle-pose mapping
    /// needs the pose at a scan's stamp before the replay reaches the next sample). Unreadable
    /// or invalid messages are skipped and counted in the second value.
    pub fn ground_truth_poses(&self) -> Result<(Vec<PoseStamped>, u64), BagError> {
        let mut poses = Vec::new();
        let mut bad = 0u64;
        if self.ground_truth.is_empty() {
            return Ok((poses, bad));
        }
        for raw in self.reader.messages(&[self.ground_truth.as_str()])? {
            let pose = match raw.map(|r| decode_sensor_message(&r)) {
                Ok(Ok(SensorMessage::Odometry(o))) => gt_pose(&o),
                _ => None,
            };
            match pose {
                Some(p) => poses.push(p),
                None => bad += 1,
            }
        }
        Ok((poses, bad))
    }

    fn count_of(&self, topic: &str) -> u64 {
        self.reader
            .topics()
            .iter()
            .find(|t| t.name == topic)
            .map_or(0, |t| t.count)
    }
}

/// Ground truth from a nav_msgs/Odometry message (pose of the child frame in the parent).
fn gt_pose(o: &crate::bag::msgs::Odometry) -> Option<PoseStamped> {
    let [x, y, z] = o.pose.position;
    let [qx, qy, qz, qw] = o.pose.orientation;
    let q = Quaternion::new(qw, qx, qy, qz);
    let n = q.norm();
    if !(x.is_finite() && y.is_finite() && z.is_finite() && n.is_finite() && (n - 1.0).abs() < 1e-3)
    {
        return None;
    }
    Some(PoseStamped {
        stamp: o.header.stamp,
        pose: Isometry3::from_parts(
            Translation3::new(x, y, z),
            UnitQuaternion::from_quaternion(q),
        ),
    })
}

/// Reads the bag and calls `send` with each measurement in log-time order until the bag ends,
/// `stop` is set or `send` returns false (receiver gone). Returns the counters and the
/// ground-truth poses. Unreadable messages are counted, logged and skipped.
pub fn bag_measurements(
    input: &BagInput,
    stop: &AtomicBool,
    mut send: impl FnMut(Measurement) -> bool,
) -> Result<(IngestCounters, Vec<PoseStamped>), BagError> {
    let topics: Vec<&str> = input.topics.iter().map(String::as_str).collect();
    let mut c = IngestCounters::default();
    let mut gt = Vec::new();
    let (mut first, mut last): (Option<Stamp>, Stamp) = (None, 0);
    for raw in input.reader.messages(&topics)? {
        if stop.load(Ordering::Relaxed) {
            tracing::info!("ingest stopped after {} messages", c.messages);
            break;
        }
        let raw = match raw {
            Ok(r) => r,
            Err(e) => {
                // The reader skips a bad record and goes on (it gives up on a file only after a
                // long run of errors), so one corrupt message costs one message.
                c.read_errors += 1;
                if c.read_errors % 100 == 1 {
                    tracing::error!(
                        "{}: unreadable message skipped ({} so far): {e}",
                        input.path.display(),
                        c.read_errors
                    );
                }
                continue;
            }
        };
        c.messages += 1;
        first.get_or_insert(raw.log_time);
        last = last.max(raw.log_time);
        let decoded = match decode_sensor_message(&raw) {
            Ok(d) => d,
            Err(e) => {
                c.decode_errors += 1;
                if c.decode_errors % 100 == 1 {
                    tracing::warn!(
                        "{} on `{}` at {}: skipped ({} so far): {e}",
                        raw.type_name,
                        raw.topic,
                        raw.log_time,
                        c.decode_errors
                    );
                }
                continue;
            }
        };
        let m = match decoded {
            SensorMessage::Imu(s) if raw.topic == input.imu => {
                c.imu += 1;
                Measurement::Imu(s)
            }
            SensorMessage::Cloud(p) if raw.topic == input.lidar => {
                c.clouds += 1;
                Measurement::Cloud(p)
            }
            SensorMessage::Image(i) if raw.topic == input.image => {
                c.images += 1;
                Measurement::Image(i)
            }
            SensorMessage::Odometry(o) if raw.topic == input.ground_truth => {
                match gt_pose(&o) {
                    Some(p) => {
                        c.ground_truth += 1;
                        gt.push(p);
                    }
                    None => c.bad_ground_truth += 1,
                }
                continue;
            }
            _ => {
                c.unsupported_type += 1;
                if c.unsupported_type == 1 {
                    tracing::warn!(
                        "`{}` has type {}, which the pipeline does not read there: skipped",
                        raw.topic,
                        raw.type_name
                    );
                }
                continue;
            }
        };
        if !send(m) {
            break;
        }
    }
    c.sensor_seconds = first.map_or(0.0, |f| stamp_diff_secs(last, f));
    let damage = input.reader.damage();
    if !damage.is_empty() {
        for line in damage.lines() {
            tracing::warn!("{}: {line}", input.path.display());
        }
        c.bag_damage = Some(damage);
    }
    Ok((c, gt))
}
