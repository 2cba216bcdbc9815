//! Counters of the node's ingest and output paths, summarised as a diagnostic status.

use crate::sensors::measurement::SensorKind;

/// Per-sensor counts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SensorCounts {
    /// Messages forwarded into the pipeline.
    pub forwarded: u64,
    /// Messages dropped because the pipeline's channel was full.
    pub dropped_full: u64,
    /// Messages that failed to decode (bad layout, unknown encoding, wrong type).
    pub decode_errors: u64,
    /// Messages the transport delivered while the undecoded backlog was at its limit
    /// (`node.queue_bytes` for LiDAR and camera, `node.queue_capacity` for IMU).
    pub dropped_backlog: u64,
    /// Messages still undecoded when the shutdown deadline passed.
    pub dropped_at_shutdown: u64,
}

/// diagnostic_msgs/DiagnosticStatus levels.
pub mod level {
    pub const OK: u8 = 0;
    pub const WARN: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const STALE: u8 = 3;
}

/// A diagnostic status as plain data (converted to diagnostic_msgs by the node).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticReport {
    pub level: u8,
    pub name: String,
    pub message: String,
    pub values: Vec<(String, String)>,
}

/// Counts and rates of the node, reported every diagnostics period.
#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    pub sensors: [SensorCounts; 3],
    /// Outputs published since start (odometry at scan rate).
    pub odometry_published: u64,
    /// Pipeline outputs the node could not publish (ROS error).
    pub publish_errors: u64,
    last: [SensorCounts; 3],
    last_odometry: u64,
}

impl NodeStats {
    pub fn sensor(&mut self, kind: SensorKind) -> &mut SensorCounts {
        &mut self.sensors[kind.index()]
    }

    /// Summarises the `dt_secs` since the previous report; `queue_depth` is the number of
    /// measurements waiting in the pipeline's channel (of `queue_capacity`).
    pub fn report(
        &mut self,
        dt_secs: f64,
        queue_depth: usize,
        queue_capacity: usize,
        expect_camera: bool,
    ) -> DiagnosticReport {
        let dt = dt_secs.max(1e-9);
        let mut values = Vec::new();
        let mut problems = Vec::new();
        let mut level = level::OK;
        for kind in SensorKind::ALL {
            let now = self.sensors[kind.index()];
            let before = self.last[kind.index()];
            let n = kind.name();
            let rate = (now.forwarded - before.forwarded) as f64 / dt;
            values.push((format!("{n} rate (Hz)"), format!("{rate:.1}")));
            values.push((format!("{n} forwarded"), now.forwarded.to_string()));
            values.push((
                format!("{n} dropped (queue full)"),
                now.dropped_full.to_string(),
            ));
            values.push((format!("{n} decode errors"), now.decode_errors.to_string()));
            values.push((
                format!("{n} dropped (backlog)"),
                now.dropped_backlog.to_string(),
            ));
            let dropped = now.dropped_full + now.dropped_backlog;
            let dropped_before = before.dropped_full + before.dropped_backlog;
            if dropped > dropped_before {
                level = level.max(level::WARN);
                problems.push(format!("{} {n} messages dropped", dropped - dropped_before));
            }
            if now.decode_errors > before.decode_errors {
                level = level.max(level::WARN);
                problems.push(format!(
                    "{} {n} messages undecodable",
                    now.decode_errors - before.decode_errors
                ));
            }
            let needed = kind != SensorKind::Camera || expect_camera;
            if needed && rate == 0.0 {
                level = level.max(level::ERROR);
                problems.push(format!("no {n} data"));
            }
        }
        let odo_rate = (self.odometry_published - self.last_odometry) as f64 / dt;
        values.push(("odometry rate (Hz)".into(), format!("{odo_rate:.1}")));
        values.push((
            "queue depth".into(),
            format!("{queue_depth}/{queue_capacity}"),
        ));
        values.push(("publish errors".into(), self.publish_errors.to_string()));
        if queue_depth * 4 >= queue_capacity * 3 {
            level = level.max(level::WARN);
            problems.push("pipeline falling behind".into());
        }
        self.last = self.sensors;
        self.last_odometry = self.odometry_published;
        DiagnosticReport {
            level,
            name: "gs_livo: ingest".into(),
            message: if problems.is_empty() {
                "ok".into()
            } else {
                problems.join("; ")
            },
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(r: &'a DiagnosticReport, key: &str) -> &'a str {
        &r.values.iter().find(|(k, _)| k == key).unwrap().1
    }

    #[test]
    fn report_computes_rates_and_flags_drops() {
        let mut s = NodeStats::default();
        s.sensor(SensorKind::Imu).forwarded = 400;
        s.sensor(SensorKind::Lidar).forwarded = 20;
        s.sensor(SensorKind::Camera).forwarded = 60;
        s.odometry_published = 20;
        let r = s.report(2.0, 3, 100, true);
        assert_eq!(r.level, level::OK, "{}", r.message);
        assert_eq!(value(&r, "imu rate (Hz)"), "200.0");
        assert_eq!(value(&r, "lidar rate (Hz)"), "10.0");
        assert_eq!(value(&r, "odometry rate (Hz)"), "10.0");
        assert_eq!(value(&r, "queue depth"), "3/100");

        // Next window: IMU drops, camera silent but not expected, LiDAR stops.
        s.sensor(SensorKind::Imu).forwarded += 100;
        s.sensor(SensorKind::Imu).dropped_full += 7;
        let r = s.report(1.0, 80, 100, false);
        assert_eq!(r.level, level::ERROR);
        assert!(
            r.message.contains("7 imu messages dropped"),
            "{}",
            r.message
        );
        assert!(r.message.contains("no lidar data"), "{}", r.message);
        assert!(!r.message.contains("camera"), "{}", r.message);
        assert!(r.message.contains("falling behind"), "{}", r.message);
        assert_eq!(value(&r, "imu rate (Hz)"), "100.0");
        assert_eq!(value(&r, "imu dropped (queue full)"), "7");
    }
}
