//! The threads: ingest, estimator (sync + LIO + visual), mapper; outputs on the caller's thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::estimator_stage::{estimator_config, visual_enabled, Estimator, EstimatorPorts};
use super::ingest::{bag_measurements, BagInput, IngestCounters};
use super::map_stage::{MapFrame, MapSnapshot, MapStage, RenderPair};
use super::port::{MapCentres, StateEstimate};
use super::summary::Timings;
use super::{DropCounters, Flow, PipelineError, PipelineOptions};
use crate::config::Config;
use crate::estimator::visual::VisualRunStats;
use crate::estimator::LioCounters;
use crate::sensors::{Measurement, PointCloud, PoseStamped};
use crate::sync::SyncCounters;
use crossbeam::channel::{bounded, unbounded, Receiver, Sender, TrySendError};

/// Where measurements come from.
pub enum Source {
    /// A bag, read by the ingest thread.
    Bag(Box<BagInput>),
    /// Decoded measurements from elsewhere (the ROS node); ends when the sender disconnects.
    Channel(Receiver<Measurement>),
}

/// Requests a running pipeline answers between frames (the node's save service).
#[derive(Debug)]
pub enum PipelineCommand {
    /// Write the Gaussian map (3DGS PLY) to `path`; the mapper answers between two frames.
    SaveMap {
        path: std::path::PathBuf,
        reply: Sender<Result<std::path::PathBuf, String>>,
    },
    /// A copy of the Gaussian map with the mapper's state, for a map folder.
    CaptureMap {
        reply: Sender<crate::session::GaussianSection>,
    },
}

/// Requests the estimator answers between two measurements.
#[derive(Debug)]
pub enum EstimatorCommand {
    /// A pose hint in the loaded map (`/initialpose`): the relocalisation (re)starts around
    /// it; a hint without a loaded map is refused with a warning.
    Hint(crate::estimator::reloc::RelocHint),
    /// A copy of the LIO's voxel plane map, for a map folder.
    LidarMap {
        reply: Sender<crate::lidar_map::VoxelMap>,
    },
}

/// How the caller steers a running pipeline.
#[derive(Clone)]
pub struct Control {
    /// Ends the run early: the mapper stops at once, the estimator finishes its input.
    pub stop: Arc<AtomicBool>,
    /// Save requests (answered by the mapper); `None`: none will come.
    pub commands: Option<Receiver<PipelineCommand>>,
    /// Hints and map copies (answered by the estimator); `None`: none will come.
    pub estimator: Option<Receiver<EstimatorCommand>>,
}

/// One frame's estimate with what the filter reported.
#[derive(Debug, Clone)]
pub struct FrameEstimate {
    pub frame: u64,
    pub estimate: StateEstimate,
    pub points_in: usize,
    pub points_used: usize,
    pub residuals: usize,
    pub iterations: usize,
    pub degenerate: bool,
}

/// What the pipeline produces, in order per kind.
#[derive(Debug, Clone)]
pub enum Output {
    /// The state after a scan's updates (scan rate).
    Pose(Box<FrameEstimate>),
    /// The state propagated through one IMU sample after the last scan (IMU rate; only with
    /// [`PipelineOptions::imu_odometry`]).
    ImuPose(Box<StateEstimate>),
    /// The full scan in the world frame.
    Registered(PointCloud),
    /// A render at a camera pose with its camera image.
    Render(RenderPair),
    /// All Gaussian centres (throttled, and once at the end).
    Centres(MapCentres),
}

/// Timing of one stage of one item.
pub type StageTime = (&'static str, f64);

/// Statistics of the visual update.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct VisualStats {
    /// Whether this build has a visual update (LIVO mode uses it when it does).
    pub available: bool,
    /// LIVO mode with `visual.enabled`.
    pub enabled: bool,
    /// Counts, skip reasons, medians and the exposure estimates.
    #[serde(flatten)]
    pub run: VisualRunStats,
}

/// Counters shared by the threads while they run (read by the outputs for summaries).
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    pub timings: Timings,
    pub ingest: IngestCounters,
    pub sync: SyncCounters,
    pub lio: LioCounters,
    pub visual: VisualStats,
    pub drops: DropCounters,
    pub frames: u64,
    pub mapped_frames: u64,
    pub gaussians: usize,
    pub window: usize,
    /// Sensor seconds covered by the estimated frames.
    pub sensor_seconds: f64,
}

/// Shared statistics handle.
pub type PipelineHandle = Arc<Mutex<LiveStats>>;

/// What is left when the pipeline finishes.
pub struct Finished {
    pub ground_truth: Vec<PoseStamped>,
    /// The mapper (to save the map); `None` when mapping was off.
    pub map: Option<MapStage>,
    /// The LIO's voxel plane map at the end (to save the map).
    pub lidar_map: Option<crate::lidar_map::VoxelMap>,
    pub renderer: Option<String>,
}

pub(super) fn lock(h: &PipelineHandle) -> std::sync::MutexGuard<'_, LiveStats> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends offline (blocking: nothing dropped) or live (drop the newest when full); false when
/// the receiver is gone.
pub(super) fn send<T>(tx: &Sender<T>, item: T, flow: Flow, dropped: impl FnOnce()) -> bool {
    match flow {
        Flow::Offline => tx.send(item).is_ok(),
        Flow::Live => match tx.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                dropped();
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        },
    }
}

/// Whether this build's estimator has a visual update.
pub const VISUAL_AVAILABLE: bool = true;

/// Answers one command between frames (the map is consistent there).
fn answer(stage: &mut MapStage, cmd: PipelineCommand) {
    match cmd {
        PipelineCommand::SaveMap { path, reply } => {
            let r = stage
                .save_ply(&path)
                .map(|_| path.clone())
                .map_err(|e| e.to_string());
            let _ = reply.try_send(r);
        }
        PipelineCommand::CaptureMap { reply } => {
            let _ = reply.try_send(crate::session::GaussianSection::capture(stage.mapper_mut()));
        }
    }
}

/// When the mapper sends the Gaussian centres: every `centres_every` mapped frames, or every
/// `centres_period` seconds of sensor time when that is set.
struct CentresSchedule {
    every: u64,
    period_ns: u64,
    last: Option<u64>,
}

impl CentresSchedule {
    fn new(opts: &PipelineOptions) -> Self {
        Self {
            every: opts.centres_every as u64,
            period_ns: (opts.centres_period.max(0.0) * 1e9) as u64,
            last: None,
        }
    }

    fn due(&mut self, mapped: u64, stamp: u64) -> bool {
        let due = if self.period_ns > 0 {
            self.last
                .is_none_or(|l| stamp < l || stamp - l >= self.period_ns)
        } else {
            self.every > 0 && mapped.is_multiple_of(self.every)
        };
        if due {
            self.last = Some(stamp);
        }
        due
    }
}

/// The mapper thread's channels.
struct MapperPorts {
    frames: Receiver<MapFrame>,
    commands: Option<Receiver<PipelineCommand>>,
    out: Sender<Output>,
    snapshots: Option<Sender<MapSnapshot>>,
}

fn mapper_loop(
    mut stage: MapStage,
    ports: MapperPorts,
    opts: &PipelineOptions,
    stats: &PipelineHandle,
    stop: &AtomicBool,
) -> Result<MapStage, PipelineError> {
    let MapperPorts {
        frames: rx,
        commands,
        out,
        snapshots,
    } = ports;
    let mut mapped = 0u64;
    let mut last_stamp = 0;
    let mut centres = CentresSchedule::new(opts);
    let never = crossbeam::channel::never();
    let commands = commands.unwrap_or_else(|| never.clone());
    loop {
        let mut f = crossbeam::select! {
            recv(rx) -> f => match f {
                Ok(f) => f,
                Err(_) => break,
            },
            recv(commands) -> c => {
                if let Ok(c) = c {
                    answer(&mut stage, c);
                }
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            // Shutting down: odometry finishes the queued frames, the map does not wait.
            lock(stats).drops.mapper_frames_at_stop += 1;
            continue;
        }
        let rep = stage.process(&mut f)?;
        last_stamp = f.stamp;
        mapped += 1;
        if let Some(tx) = &snapshots {
            // Unbounded: the mapper never waits for the estimator.
            let _ = tx.send(stage.snapshot(f.index));
        }
        {
            let mut s = lock(stats);
            for (n, v) in [
                ("map_insert", rep.insert_ms),
                ("map_colour", rep.colour_ms),
                ("map_window", rep.window_ms),
                ("map_optimise", rep.optimise_ms),
            ] {
                s.timings.add(n, v);
            }
            if !rep.renders.is_empty() {
                s.timings.add("map_render", rep.render_ms);
            }
            s.mapped_frames = mapped;
            s.gaussians = rep.map_len;
            s.window = rep.window_len;
        }
        for r in rep.renders {
            if !send(&out, Output::Render(r), opts.flow, || {
                lock(stats).drops.outputs += 1
            }) {
                return Ok(stage);
            }
        }
        if centres.due(mapped, f.stamp) {
            let c = stage.centres(f.stamp);
            if !send(&out, Output::Centres(c), opts.flow, || {
                lock(stats).drops.outputs += 1
            }) {
                return Ok(stage);
            }
        }
    }
    // Requests that came with the last frames still get their answer.
    while let Ok(c) = commands.try_recv() {
        answer(&mut stage, c);
    }
    if mapped > 0 {
        let _ = out.send(Output::Centres(stage.centres(last_stamp)));
    }
    Ok(stage)
}

/// Runs the pipeline to the end of `source` (or `stop`, or `max_frames`), calling `sink` on
/// this thread with every output in order.
pub fn run_pipeline(
    cfg: &Config,
    opts: &PipelineOptions,
    source: Source,
    stop: Arc<AtomicBool>,
    stats: PipelineHandle,
    sink: impl FnMut(Output),
) -> Result<Finished, PipelineError> {
    let control = Control {
        stop,
        commands: None,
        estimator: None,
    };
    run_pipeline_with(cfg, opts, source, control, stats, sink)
}

/// [`run_pipeline`] with save requests answered while it runs.
pub fn run_pipeline_with(
    cfg: &Config,
    opts: &PipelineOptions,
    source: Source,
    control: Control,
    stats: PipelineHandle,
    mut sink: impl FnMut(Output),
) -> Result<Finished, PipelineError> {
    let Control {
        stop,
        commands,
        estimator,
    } = control;
    let cap = opts.queue_capacity.max(1);
    if let Some(p) = &opts.prior {
        p.map.check_config(cfg)?;
    }
    let map_stage = if opts.mapping {
        Some(MapStage::with_prior(
            cfg,
            opts.render_every,
            opts.prior.as_ref(),
        )?)
    } else {
        None
    };
    let renderer = map_stage.as_ref().map(|m| m.renderer_name());
    // The visual update renders the mapper's snapshots at the mapper's image reduction.
    let map_reduction = map_stage
        .as_ref()
        .filter(|_| visual_enabled(&estimator_config(cfg), opts))
        .map(|m| m.optimisation_reduction());
    let needs_snapshots = map_reduction.is_some();
    {
        let mut s = lock(&stats);
        s.visual.available = VISUAL_AVAILABLE;
        s.visual.enabled = needs_snapshots;
    }

    std::thread::scope(|scope| {
        let (meas_tx, meas_rx) = bounded::<Measurement>(cap * 8);
        let (out_tx, out_rx) = bounded::<Output>(cap);
        let (map_tx, map_rx) = bounded::<MapFrame>(cap);
        let (snap_tx, snap_rx) = unbounded::<MapSnapshot>();

        let (meas_rx, ingest) = match source {
            Source::Bag(input) => {
                let h = spawn_bag_ingest(scope, input, meas_tx, &stop, &stats);
                (meas_rx, Some(h))
            }
            Source::Channel(rx) => {
                drop(meas_tx);
                (rx, None)
            }
        };
        let ports = EstimatorPorts {
            stats: stats.clone(),
            out: out_tx.clone(),
            map: map_stage.is_some().then_some(map_tx),
            snapshots: needs_snapshots.then_some(snap_rx),
            stop: stop.clone(),
        };
        let est = scope
            .spawn(move || Estimator::new(cfg, opts, map_reduction, ports).run(meas_rx, estimator));
        let mapper = map_stage.map(|stage| {
            let ports = MapperPorts {
                frames: map_rx,
                commands,
                out: out_tx.clone(),
                snapshots: needs_snapshots.then_some(snap_tx),
            };
            let (stats, stop) = (stats.clone(), stop.clone());
            scope.spawn(move || mapper_loop(stage, ports, opts, &stats, &stop))
        });
        drop(out_tx);

        // Outputs on this thread.
        for o in out_rx.iter() {
            sink(o);
        }

        let lidar_map = est
            .join()
            .map_err(|_| PipelineError::Panicked("estimator"))?;
        let map = match mapper {
            Some(h) => Some(h.join().map_err(|_| PipelineError::Panicked("mapper"))??),
            None => None,
        };
        let ground_truth = match ingest {
            Some(h) => h.join().map_err(|_| PipelineError::Panicked("ingest"))??.1,
            None => Vec::new(),
        };
        Ok(Finished {
            ground_truth,
            map,
            lidar_map: Some(lidar_map),
            renderer,
        })
    })
}

/// What the bag's ingest thread returns: its counters and the bag's ground truth.
type BagIngestResult = Result<(IngestCounters, Vec<PoseStamped>), crate::bag::BagError>;

/// The ingest thread of a bag: measurements into `tx` until the bag ends or `stop`; returns
/// the ingest counters and the bag's ground truth.
fn spawn_bag_ingest<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    input: Box<BagInput>,
    tx: Sender<Measurement>,
    stop: &Arc<AtomicBool>,
    stats: &PipelineHandle,
) -> std::thread::ScopedJoinHandle<'scope, BagIngestResult> {
    let (stop, stats) = (stop.clone(), stats.clone());
    scope.spawn(move || {
        let t0 = Instant::now();
        let r = bag_measurements(&input, &stop, |m| tx.send(m).is_ok());
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if let Ok((c, _)) = &r {
            let mut s = lock(&stats);
            s.ingest = c.clone();
            s.timings.add("ingest_total", ms);
        }
        r
    })
}
