//! Subscriptions -> pipeline, in two steps on two threads.
//!
//! The transport's thread only copies each serialized message into a [`RawQueue`] (bounded in
//! bytes for clouds and images, in count for the small IMU messages, so a burst of images can
//! never starve the IMU intake); the decode thread turns them into measurements with the same
//! CDR decoders the bag reader uses ([`decode_sensor_message`]: PointCloud2, Livox CustomMsg,
//! Imu, Image, CompressedImage) and forwards them as published into the pipeline's channel
//! (the pipeline applies the rig's corrections). Every message that does not reach the pipeline is counted by sensor
//! and cause.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam::channel::{bounded, unbounded, Receiver, Sender, TrySendError};

use super::stats::NodeStats;
use crate::bag::{decode_sensor_message, RawMessage, SensorMessage};
use crate::sensors::measurement::SensorKind;
use crate::sensors::Measurement;

/// One serialized message waiting to be decoded.
#[derive(Debug)]
pub struct RawIn {
    pub kind: SensorKind,
    pub type_name: Arc<str>,
    pub cdr: Vec<u8>,
}

/// Limits of the raw queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawQueueLimits {
    /// Most bytes of LiDAR and camera messages waiting.
    pub max_bytes: usize,
    /// Most IMU messages waiting.
    pub max_imu: usize,
}

/// The sending half, on the transport's thread.
#[derive(Clone)]
pub struct RawQueue {
    imu: Sender<RawIn>,
    bulk: Sender<RawIn>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving half, on the decode thread.
pub struct RawQueueRx {
    imu: Receiver<RawIn>,
    bulk: Receiver<RawIn>,
    bytes: Arc<AtomicUsize>,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRefusal {
    Full,
    Closed,
}

/// A raw queue with `limits`.
pub fn raw_queue(limits: RawQueueLimits) -> (RawQueue, RawQueueRx) {
    let (imu_tx, imu_rx) = bounded(limits.max_imu.max(1));
    let (bulk_tx, bulk_rx) = unbounded();
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        RawQueue {
            imu: imu_tx,
            bulk: bulk_tx,
            bytes: bytes.clone(),
            max_bytes: limits.max_bytes,
        },
        RawQueueRx {
            imu: imu_rx,
            bulk: bulk_rx,
            bytes,
        },
    )
}

impl RawQueue {
    /// Queues `m`, or refuses it when its class is over its limit (the newest is dropped).
    pub fn push(&self, m: RawIn) -> Result<(), QueueRefusal> {
        if m.kind == SensorKind::Imu {
            return self.imu.try_send(m).map_err(|e| match e {
                TrySendError::Full(_) => QueueRefusal::Full,
                TrySendError::Disconnected(_) => QueueRefusal::Closed,
            });
        }
        let n = m.cdr.len();
        let before = self.bytes.fetch_add(n, Ordering::SeqCst);
        // One message larger than the whole budget is still let through into an empty queue.
        if before > 0 && before + n > self.max_bytes {
            self.bytes.fetch_sub(n, Ordering::SeqCst);
            return Err(QueueRefusal::Full);
        }
        self.bulk.send(m).map_err(|e| {
            self.bytes.fetch_sub(e.0.cdr.len(), Ordering::SeqCst);
            QueueRefusal::Closed
        })
    }

    /// Bytes of LiDAR and camera messages waiting.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::SeqCst)
    }
}

impl RawQueueRx {
    /// The next message (IMU and bulk each in arrival order); `None` once every sender is gone
    /// and both queues are empty.
    pub fn recv(&self) -> Option<RawIn> {
        let m = crossbeam::select! {
            recv(self.imu) -> m => m.ok().or_else(|| self.bulk.recv().ok()),
            recv(self.bulk) -> m => m.ok().or_else(|| self.imu.recv().ok()),
        }?;
        if m.kind != SensorKind::Imu {
            self.bytes.fetch_sub(m.cdr.len(), Ordering::SeqCst);
        }
        Some(m)
    }

    /// Empties both queues, returning how many messages of each sensor were waiting.
    pub fn discard(&self) -> [u64; 3] {
        let mut n = [0u64; 3];
        for m in self.imu.try_iter().chain(self.bulk.try_iter()) {
            if m.kind != SensorKind::Imu {
                self.bytes.fetch_sub(m.cdr.len(), Ordering::SeqCst);
            }
            n[m.kind.index()] += 1;
        }
        n
    }
}

/// What happened to one message at the decode step.
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

/// Decodes and forwards into the pipeline (which applies the rig's corrections), counting into shared node statistics.
pub struct Ingest {
    tx: Sender<Measurement>,
    stats: Arc<Mutex<NodeStats>>,
}

impl Ingest {
    pub fn new(tx: Sender<Measurement>, stats: Arc<Mutex<NodeStats>>) -> Self {
        Self { tx, stats }
    }

    /// Measurements waiting in the pipeline's channel, and its capacity.
    pub fn queue(&self) -> (usize, usize) {
        (self.tx.len(), self.tx.capacity().unwrap_or(usize::MAX))
    }

    /// Decodes one serialized message of `kind` and forwards it.
    pub fn raw(&mut self, m: &RawIn) -> Forwarded {
        let raw = RawMessage {
            topic: String::new(),
            type_name: m.type_name.to_string(),
            log_time: 0,
            data: m.cdr.clone(),
        };
        let decoded = match decode_sensor_message(&raw) {
            Ok(SensorMessage::Cloud(c)) if m.kind == SensorKind::Lidar => Ok(Measurement::Cloud(c)),
            Ok(SensorMessage::Imu(s)) if m.kind == SensorKind::Imu => Ok(Measurement::Imu(s)),
            Ok(SensorMessage::Image(i)) if m.kind == SensorKind::Camera => {
                Ok(Measurement::Image(i))
            }
            Ok(_) => Err(format!(
                "type {} is not a {} message",
                m.type_name,
                m.kind.name()
            )),
            Err(e) => Err(e.to_string()),
        };
        self.forward(m.kind, decoded)
    }

    fn forward(&mut self, kind: SensorKind, decoded: Result<Measurement, String>) -> Forwarded {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let counts = stats.sensor(kind);
        let m = match decoded {
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
                return Forwarded::Undecodable(e);
            }
        };
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
    use crate::bag::{msgs, RosMessage};

    fn imu_raw(stamp: u64) -> RawIn {
        let m = msgs::Imu {
            header: msgs::Header {
                stamp,
                frame_id: "imu".into(),
            },
            angular_velocity: [0.0, 0.0, 0.1],
            linear_acceleration: [0.0, 0.0, 1.0],
            ..Default::default()
        };
        RawIn {
            kind: SensorKind::Imu,
            type_name: msgs::Imu::TYPE_NAME.into(),
            cdr: m.encode_cdr(),
        }
    }

    fn cloud_raw(stamp: u64, with_z: bool) -> RawIn {
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
        let mut fields = vec![f("x", 0), f("y", 4), f("z", 8)];
        if !with_z {
            fields.pop();
        }
        let m = msgs::PointCloud2 {
            header: msgs::Header {
                stamp,
                frame_id: "lidar".into(),
            },
            height: 1,
            width: 1,
            fields,
            point_step: 12,
            row_step: 12,
            data,
            ..Default::default()
        };
        RawIn {
            kind: SensorKind::Lidar,
            type_name: msgs::PointCloud2::TYPE_NAME.into(),
            cdr: m.encode_cdr(),
        }
    }

    fn counts(s: &Arc<Mutex<NodeStats>>, k: SensorKind) -> super::super::stats::SensorCounts {
        s.lock().unwrap().sensors[k.index()]
    }

    #[test]
    fn forwards_as_decoded_and_counts_drops() {
        let (tx, rx) = bounded(2);
        let stats = Arc::new(Mutex::new(NodeStats::default()));
        let mut ingest = Ingest::new(tx, stats.clone());
        assert_eq!(ingest.raw(&imu_raw(10)), Forwarded::Sent);
        assert_eq!(ingest.raw(&cloud_raw(5_000, true)), Forwarded::Sent);
        // Channel full: the newest is dropped and counted, nothing blocks.
        assert_eq!(ingest.raw(&imu_raw(20)), Forwarded::Dropped);
        assert_eq!(ingest.queue(), (2, 2));
        assert_eq!(counts(&stats, SensorKind::Imu).forwarded, 1);
        assert_eq!(counts(&stats, SensorKind::Imu).dropped_full, 1);
        assert_eq!(counts(&stats, SensorKind::Lidar).forwarded, 1);

        let Measurement::Imu(imu) = rx.recv().unwrap() else {
            panic!("IMU first")
        };
        assert_eq!(imu.accel.z, 1.0, "as published: the pipeline scales");
        let Measurement::Cloud(c) = rx.recv().unwrap() else {
            panic!("then the cloud")
        };
        assert_eq!(c.stamp, 5_000, "as published: the pipeline shifts");
        assert_eq!(c.len(), 1);

        drop(rx);
        assert_eq!(ingest.raw(&imu_raw(30)), Forwarded::Closed);
    }

    #[test]
    fn undecodable_and_mistyped_messages_are_counted_not_forwarded() {
        let (tx, rx) = bounded(4);
        let stats = Arc::new(Mutex::new(NodeStats::default()));
        let mut ingest = Ingest::new(tx, stats.clone());
        assert!(matches!(
            ingest.raw(&cloud_raw(1, false)),
            Forwarded::Undecodable(_)
        ));
        let mut truncated = imu_raw(1);
        truncated.cdr.truncate(20);
        assert!(matches!(ingest.raw(&truncated), Forwarded::Undecodable(_)));
        // An IMU message on the LiDAR subscription.
        let mut wrong = imu_raw(2);
        wrong.kind = SensorKind::Lidar;
        assert!(
            matches!(ingest.raw(&wrong), Forwarded::Undecodable(e) if e.contains("not a lidar"))
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(counts(&stats, SensorKind::Lidar).decode_errors, 2);
        assert_eq!(counts(&stats, SensorKind::Imu).decode_errors, 1);
    }

    #[test]
    fn raw_queue_bounds_bulk_bytes_and_imu_count_separately() {
        let (q, rx) = raw_queue(RawQueueLimits {
            max_bytes: 1000,
            max_imu: 2,
        });
        let big = |n: usize| RawIn {
            kind: SensorKind::Camera,
            type_name: "sensor_msgs/msg/Image".into(),
            cdr: vec![0; n],
        };
        assert_eq!(
            q.push(big(5000)),
            Ok(()),
            "one oversized message into an empty queue"
        );
        assert_eq!(q.push(big(10)), Err(QueueRefusal::Full));
        // IMU is not crowded out by the bulk budget.
        assert_eq!(q.push(imu_raw(1)), Ok(()));
        assert_eq!(q.push(imu_raw(2)), Ok(()));
        assert_eq!(q.push(imu_raw(3)), Err(QueueRefusal::Full));
        assert_eq!(q.bytes(), 5000);
        let kinds: Vec<SensorKind> = (0..3).map(|_| rx.recv().unwrap().kind).collect();
        assert_eq!(q.bytes(), 0);
        assert_eq!(kinds.iter().filter(|k| **k == SensorKind::Imu).count(), 2);
        assert_eq!(q.push(big(600)), Ok(()));
        assert_eq!(q.push(big(600)), Err(QueueRefusal::Full));
        assert_eq!(rx.discard(), [0, 0, 1]);
        assert_eq!(q.bytes(), 0);
        drop(rx);
        assert_eq!(q.push(big(1)), Err(QueueRefusal::Closed));
    }
}
