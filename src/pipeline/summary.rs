//! Run summary: per-stage timing statistics, counters of everything skipped, visual update
//! statistics and accuracy, written as `summary.json` (atomically, so an interrupted run
//! always leaves a readable one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::stages::{LiveStats, VisualStats};
use super::{DropCounters, IngestCounters, PipelineError, PipelineOptions};
use crate::estimator::LioCounters;
use crate::sync::SyncCounters;

/// Per-stage samples in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    samples: BTreeMap<String, Vec<f64>>,
    /// Running sum per stage (ms), so per-frame records take differences in O(stages).
    totals: BTreeMap<String, f64>,
}

impl Timings {
    pub fn add(&mut self, stage: &str, ms: f64) {
        match self.samples.get_mut(stage) {
            Some(v) => v.push(ms),
            None => {
                self.samples.insert(stage.to_string(), vec![ms]);
            }
        }
        if ms.is_finite() {
            match self.totals.get_mut(stage) {
                Some(t) => *t += ms,
                None => {
                    self.totals.insert(stage.to_string(), ms);
                }
            }
        }
    }

    /// Sum of the finite samples per stage (ms).
    pub fn totals(&self) -> &BTreeMap<String, f64> {
        &self.totals
    }

    pub fn stats(&self) -> BTreeMap<String, StageStats> {
        self.samples
            .iter()
            .map(|(k, v)| (k.clone(), StageStats::of(v)))
            .collect()
    }
}

/// Timing statistics of one stage (ms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StageStats {
    pub count: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    pub total_ms: f64,
}

impl StageStats {
    /// Median and nearest-rank 95th percentile.
    pub fn of(v: &[f64]) -> Self {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n == 0 {
            return Self {
                count: 0,
                median_ms: 0.0,
                p95_ms: 0.0,
                max_ms: 0.0,
                total_ms: 0.0,
            };
        }
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        };
        let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
        Self {
            count: n,
            median_ms: median,
            p95_ms: s[rank - 1],
            max_ms: s[n - 1],
            total_ms: s.iter().sum(),
        }
    }
}

/// Trajectory accuracy against ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct Accuracy {
    pub source: String,
    pub matched: usize,
    pub ate_rmse_m: f64,
    pub ate_mean_m: f64,
    pub ate_max_m: f64,
    pub ate_rotation_rmse_deg: f64,
    pub rpe_translation_rmse_m: f64,
}

/// Render quality against the camera images.
#[derive(Debug, Clone, Serialize)]
pub struct RenderQuality {
    pub renders: usize,
    /// Training-view PSNR of the renders in camera units (render times the estimated exposure
    /// gain against the raw image), so the map's arbitrary brightness unit does not enter.
    pub psnr_mean_db: f64,
    pub psnr_min_db: f64,
    pub psnr_max_db: f64,
    pub ssim_mean: Option<f64>,
    /// PSNR over time (a map that degrades on revisits shows it only here): means over the
    /// renders of the first and the last third of the rendered time span.
    pub psnr_first_third_db: f64,
    pub psnr_last_third_db: f64,
    /// `[seconds since the first render, PSNR dB]` of every render.
    pub psnr_series: Vec<[f64; 2]>,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `running`, `finished`, `interrupted`, `failed`.
    pub status: String,
    pub bag: String,
    pub options: PipelineOptions,
    pub renderer: Option<String>,
    pub frames: u64,
    pub mapped_frames: u64,
    pub gaussians: usize,
    pub window_gaussians: usize,
    pub wall_seconds: f64,
    pub sensor_seconds: f64,
    /// Sensor time / wall time (> 1: faster than real time).
    pub real_time_factor: f64,
    /// Sensor time / wall time from the first estimate until every frame was estimated and
    /// mapped: the throughput the sensor stream sees, without the start-up and the final writes
    /// (map, plots, results bag) that `real_time_factor` counts. Offline runs only.
    pub streaming_real_time_factor: Option<f64>,
    /// CPU time (user + system, all threads) the process spent during the run, when the OS
    /// reports it: unlike wall time it barely depends on what else the machine runs, so
    /// `cpu_seconds / sensor_seconds` compares runs on a busy machine (and divided by the cores
    /// bounds the real-time factor an idle machine can reach).
    pub cpu_seconds: Option<f64>,
    pub stages: BTreeMap<String, StageStats>,
    pub ingest: IngestCounters,
    pub sync: SyncCounters,
    pub lio: LioCounters,
    pub visual: VisualStats,
    pub dropped: DropCounters,
    pub accuracy: Option<Accuracy>,
    /// The window's renders at training views (a frame's render right after training on it,
    /// background included): the mapper's own figure, not the delivered map's.
    pub render_quality: Option<RenderQuality>,
    /// The delivered map: `map.ply` read back and rendered at held-out views (the headline
    /// map quality).
    pub exported_map: Option<super::held_out::ExportedMapQuality>,
    /// Estimated exposure gains against the simulator's truth (`exposure.txt` beside the bag),
    /// up to the map's brightness unit; `None` without a truth file.
    pub exposure_accuracy: Option<crate::estimator::visual::exposure::ExposureError>,
    /// Files written, relative to the output folder.
    pub outputs: Vec<String>,
    pub error: Option<String>,
}

impl RunSummary {
    pub fn from_live(
        s: &LiveStats,
        status: &str,
        bag: &str,
        options: &PipelineOptions,
        wall_seconds: f64,
    ) -> Self {
        Self {
            status: status.into(),
            bag: bag.into(),
            options: options.clone(),
            renderer: None,
            frames: s.frames,
            mapped_frames: s.mapped_frames,
            gaussians: s.gaussians,
            window_gaussians: s.window,
            wall_seconds,
            sensor_seconds: s.sensor_seconds,
            real_time_factor: if wall_seconds > 0.0 {
                s.sensor_seconds / wall_seconds
            } else {
                0.0
            },
            streaming_real_time_factor: None,
            cpu_seconds: None,
            stages: s.timings.stats(),
            ingest: s.ingest.clone(),
            sync: s.sync.clone(),
            lio: s.lio.clone(),
            visual: s.visual.clone(),
            dropped: s.drops.clone(),
            accuracy: None,
            render_quality: None,
            exported_map: None,
            exposure_accuracy: None,
            outputs: Vec::new(),
            error: None,
        }
    }

    /// Writes `path` atomically (temporary file + rename).
    pub fn write(&self, path: &Path) -> Result<(), PipelineError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| PipelineError::Output(format!("summary: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| PipelineError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| PipelineError::io(path, e))
    }
}

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (Linux); `None` elsewhere or when unreadable.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_proc_stat_cpu(&stat)
}

/// utime + stime of a `/proc/<pid>/stat` line, in seconds. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`. Linux reports both in
/// USER_HZ ticks, which is 100 on every architecture it exposes to user space.
fn parse_proc_stat_cpu(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_stats_median_and_p95() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = StageStats::of(&v);
        assert_eq!(s.count, 100);
        assert_eq!(s.median_ms, 50.5);
        assert_eq!(s.p95_ms, 95.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(s.total_ms, 5050.0);
        let s = StageStats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median_ms, s.p95_ms), (2.0, 3.0));
        assert_eq!(StageStats::of(&[]).count, 0);
    }

    #[test]
    fn proc_stat_cpu_time() {
        // A name with a space and a parenthesis; utime 250 and stime 30 ticks.
        let line = "4242 (gs (livo) 1) R 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 3 0 100 200 300";
        assert_eq!(parse_proc_stat_cpu(line), Some(2.8));
        assert_eq!(parse_proc_stat_cpu("4242 (x) R 1 2"), None);
        assert_eq!(parse_proc_stat_cpu("garbage"), None);
        if cfg!(target_os = "linux") {
            let t = process_cpu_seconds().expect("/proc/self/stat");
            assert!(t >= 0.0 && t.is_finite());
        }
    }
}
