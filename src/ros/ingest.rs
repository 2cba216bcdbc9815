//! Subscriptions -> pipeline: decode each message, apply the config's corrections and forward
//! it at once into the pipeline's bounded channel, counting what is dropped.
//!
//! r2r's own subscription buffers hold 10 messages and drop silently when full, so the node
//! calls these right after every spin; a full pipeline channel drops the newest message here,
//! where it is counted and reported, instead of blocking the executor.

use crossbeam::channel::{Sender, TrySendError};

use super::stats::NodeStats;
use crate::bag::{convert, msgs};
use crate::sensors::measurement::{SensorCorrections, SensorKind};
use crate::sensors::Measurement;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    Sent,
    /// The pipeline's channel was full.
    Dropped,
    /// The pipeline has stopped.
    Closed,
    /// The message could not be decoded.
    Undecodable(String),
}

pub struct Ingest {
    tx: Sender<Measurement>,
    corrections: SensorCorrections,
    pub stats: NodeStats,
}

impl Ingest {
    pub fn new(tx: Sender<Measurement>, corrections: SensorCorrections) -> Self {
        Self {
            tx,
            corrections,
            stats: NodeStats::default(),
        }
    }

    /// Messages waiting in the pipeline's channel, and its capacity.
    pub fn queue(&self) -> (usize, usize) {
        (self.tx.len(), self.tx.capacity().unwrap_or(usize::MAX))
    }

    pub fn cloud(&mut self, msg: &msgs::PointCloud2) -> Forwarded {
        let r = convert::pointcloud_from_msg(msg).map(Measurement::Cloud);
        self.forward(SensorKind::Lidar, r)
    }

    pub fn imu(&mut self, msg: &msgs::Imu) -> Forwarded {
        let m = Measurement::Imu(convert::imu_from_msg(msg));
        self.forward(SensorKind::Imu, Ok::<_, String>(m))
    }

    pub fn image(&mut self, msg: &msgs::Image) -> Forwarded {
        let r = convert::image_from_msg(msg).map(Measurement::Image);
        self.forward(SensorKind::Camera, r)
    }

    pub fn compressed_image(&mut self, msg: &msgs::CompressedImage) -> Forwarded {
        let r = convert::image_from_compressed(msg).map(Measurement::Image);
        self.forward(SensorKind::Camera, r)
    }

    fn forward<E: std::fmt::Display>(
        &mut self,
        kind: SensorKind,
        decoded: Result<Measurement, E>,
    ) -> Forwarded {
        let counts = self.stats.sensor(kind);
        let mut m = match decoded {
            Ok(m) => m,
            Err(e) => {
                counts.decode_errors += 1;
                // The first error and then one in a hundred: a bad stream must not flood logs.
                if counts.decode_errors % 100 == 1 {
                    tracing::warn!(
                        sensor = kind.name(),
                        count = counts.decode_errors,
                        "skipping undecodable message: {e}"
                    );
                }
                return Forwarded::Undecodable(e.to_string());
            }
        };
        self.corrections.apply(&mut m);
        match self.tx.try_send(m) {
            Ok(()) => {
                counts.forwarded += 1;
                Forwarded::Sent
            }
            Err(TrySendError::Full(_)) => {
                counts.dropped_full += 1;
                if counts.dropped_full % 100 == 1 {
                    tracing::warn!(
                        sensor = kind.name(),
                        count = counts.dropped_full,
                        "pipeline queue full: dropping messages"
                    );
                }
                Forwarded::Dropped
            }
            Err(TrySendError::Disconnected(_)) => Forwarded::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::measurement::SensorKind;

    fn imu_msg(stamp: u64) -> msgs::Imu {
        msgs::Imu {
            header: msgs::Header {
                stamp,
                frame_id: "imu".into(),
            },
            angular_velocity: [0.0, 0.0, 0.1],
            linear_acceleration: [0.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    fn xyz_cloud(stamp: u64) -> msgs::PointCloud2 {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f = |name: &str, offset| msgs::PointField {
            name: name.into(),
            offset,
            datatype: msgs::point_field::FLOAT32,
            count: 1,
        };
        msgs::PointCloud2 {
            header: msgs::Header {
                stamp,
                frame_id: "lidar".into(),
            },
            height: 1,
            width: 1,
            fields: vec![f("x", 0), f("y", 4), f("z", 8)],
            point_step: 12,
            row_step: 12,
            data,
            ..Default::default()
        }
    }

    #[test]
    fn forwards_with_corrections_and_counts_drops() {
        let (tx, rx) = crossbeam::channel::bounded(2);
        let corr = SensorCorrections {
            accel_scale: 9.81,
            lidar_offset_ns: -1_000,
            camera_offset_ns: 0,
        };
        let mut ingest = Ingest::new(tx, corr);
        assert_eq!(ingest.imu(&imu_msg(10)), Forwarded::Sent);
        assert_eq!(ingest.cloud(&xyz_cloud(5_000)), Forwarded::Sent);
        // Channel full: the newest is dropped and counted, nothing blocks.
        assert_eq!(ingest.imu(&imu_msg(20)), Forwarded::Dropped);
        assert_eq!(ingest.queue(), (2, 2));
        let s = &ingest.stats;
        assert_eq!(s.sensors[SensorKind::Imu.index()].forwarded, 1);
        assert_eq!(s.sensors[SensorKind::Imu.index()].dropped_full, 1);
        assert_eq!(s.sensors[SensorKind::Lidar.index()].forwarded, 1);

        let Measurement::Imu(imu) = rx.recv().unwrap() else {
            panic!("IMU first")
        };
        assert!((imu.accel.z - 9.81).abs() < 1e-12, "accel in g scaled");
        let Measurement::Cloud(c) = rx.recv().unwrap() else {
            panic!("then the cloud")
        };
        assert_eq!(c.stamp, 4_000, "LiDAR time offset applied");
        assert_eq!(c.len(), 1);

        drop(rx);
        assert_eq!(ingest.imu(&imu_msg(30)), Forwarded::Closed);
    }

    #[test]
    fn undecodable_messages_are_counted_not_forwarded() {
        let (tx, rx) = crossbeam::channel::bounded(4);
        let mut ingest = Ingest::new(tx, SensorCorrections::default());
        let mut bad = xyz_cloud(1);
        bad.fields.retain(|f| f.name != "z");
        assert!(matches!(ingest.cloud(&bad), Forwarded::Undecodable(_)));
        let img = msgs::Image {
            encoding: "no_such_encoding".into(),
            width: 2,
            height: 2,
            step: 6,
            data: vec![0; 12],
            ..Default::default()
        };
        assert!(matches!(ingest.image(&img), Forwarded::Undecodable(_)));
        assert!(rx.try_recv().is_err());
        assert_eq!(
            ingest.stats.sensors[SensorKind::Lidar.index()].decode_errors,
            1
        );
        assert_eq!(
            ingest.stats.sensors[SensorKind::Camera.index()].decode_errors,
            1
        );
    }
}
