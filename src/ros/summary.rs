//! What a node run reports in `summary.json` (and in part in diagnostics): odometry latency and
//! rates, what was mapped and skipped, and every drop by cause, beside the pipeline's own
//! summary.

use serde::Serialize;

use super::publish::NodeRecord;
use super::stats::{NodeStats, SensorCounts};
use crate::pipeline::{LiveStats, PipelineOptions, RunSummary, StageStats};
use crate::sensors::measurement::SensorKind;
use crate::sensors::stamp_diff_secs;

/// Drops of one sensor's messages, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SensorDrops {
    pub received: u64,
    pub forwarded: u64,
    pub decode_errors: u64,
    pub dropped_backlog: u64,
    pub dropped_pipeline_full: u64,
    pub dropped_at_shutdown: u64,
}

impl SensorDrops {
    fn of(c: &SensorCounts) -> Self {
        Self {
            received: c.forwarded
                + c.decode_errors
                + c.dropped_full
                + c.dropped_backlog
                + c.dropped_at_shutdown,
            forwarded: c.forwarded,
            decode_errors: c.decode_errors,
            dropped_backlog: c.dropped_backlog,
            dropped_pipeline_full: c.dropped_full,
            dropped_at_shutdown: c.dropped_at_shutdown,
        }
    }
}

/// Odometry as published.
#[derive(Debug, Clone, Serialize)]
pub struct OdometryReport {
    pub published: usize,
    /// Node clock at publication minus the scan end (the replay clock in a replay).
    pub latency_ms: StageStats,
    pub imu_rate_published: u64,
    /// IMU-rate odometry messages per second of sensor time.
    pub imu_rate_hz: Option<f64>,
}

/// Save requests and their fate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SaveCounts {
    pub requested: u64,
    pub completed: u64,
    pub failed: u64,
    /// Refused at once because saves were already queued (a flood of requests).
    pub refused_busy: u64,
}

/// `summary.json` of a node run.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    /// `running`, `finished`, `interrupted`, `failed`.
    pub status: String,
    pub transport: String,
    pub odometry: OdometryReport,
    pub mapped_frames: u64,
    /// Frames the mapper had no time for (live flow skips rather than queue).
    pub mapper_frames_skipped: u64,
    pub imu: SensorDrops,
    pub lidar: SensorDrops,
    pub camera: SensorDrops,
    pub publish_errors: u64,
    pub renders_published: u64,
    pub map_publications: u64,
    pub lidar_map_points: usize,
    pub saves: SaveCounts,
    /// The pipeline's view: stage timings, sync and filter counters, queue drops, and the
    /// trajectory accuracy when ground truth was given.
    pub pipeline: RunSummary,
}

impl NodeSummary {
    /// Assembles the summary from the node's counters.
    #[allow(clippy::too_many_arguments)] // the sources are distinct and each is needed
    pub fn build(
        status: &str,
        transport: &str,
        record: &NodeRecord,
        ingest: &NodeStats,
        live: &LiveStats,
        options: &PipelineOptions,
        saves: SaveCounts,
        wall_seconds: f64,
    ) -> Self {
        let imu_rate_hz = match (record.imu_first, record.imu_last) {
            (Some(a), Some(b)) if b > a && record.imu_odometry > 1 => {
                Some((record.imu_odometry - 1) as f64 / stamp_diff_secs(b, a))
            }
            _ => None,
        };
        let sensor = |k: SensorKind| SensorDrops::of(&ingest.sensors[k.index()]);
        Self {
            status: status.into(),
            transport: transport.into(),
            odometry: OdometryReport {
                published: record.trajectory.len(),
                latency_ms: StageStats::of(&record.latency_ms),
                imu_rate_published: record.imu_odometry,
                imu_rate_hz,
            },
            mapped_frames: live.mapped_frames,
            mapper_frames_skipped: live.drops.mapper_frames + live.drops.mapper_frames_at_stop,
            imu: sensor(SensorKind::Imu),
            lidar: sensor(SensorKind::Lidar),
            camera: sensor(SensorKind::Camera),
            publish_errors: record.publish_errors,
            renders_published: record.renders,
            map_publications: record.map_publications,
            lidar_map_points: record.lidar_map.len(),
            saves,
            pipeline: RunSummary::from_live(live, status, transport, options, wall_seconds),
        }
    }

    /// Writes `path` atomically (temporary file + rename).
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}
