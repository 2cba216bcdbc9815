//! The threads: ingest, estimator (sync + LIO + visual), mapper; outputs on the caller's thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam::channel::{bounded, unbounded, Receiver, Sender, TrySendError};
use nalgebra::{Matrix6, Vector3};

use super::imu_odometry::ImuOdometry;
use super::ingest::{bag_measurements, BagInput, IngestCounters};
use super::mapping::{MapFrame, MapSnapshot, MapStage, PosedFrameImage, RenderPair};
use super::port::{MapCentres, StateEstimate};
use super::register::{interpolate, register_scan_with_intensity};
use super::summary::Timings;
use super::{DropCounters, Flow, Mode, PipelineError, PipelineOptions};
use crate::config::Config;
use crate::estimator::state::{POS, ROT};
use crate::estimator::visual::{MapView, VisualDriver, VisualRunStats};
use crate::estimator::{Lio, LioCounters, ScanResult};
use crate::render::create_renderer;
use crate::sensors::{stamp_diff_secs, Measurement, PointCloud, PoseStamped};
use crate::sync::{MeasurementPackage, SyncCounters, SyncSettings, Synchronizer};

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
}

/// How the caller steers a running pipeline.
#[derive(Clone)]
pub struct Control {
    /// Ends the run early: the mapper stops at once, the estimator finishes its input.
    pub stop: Arc<AtomicBool>,
    /// Save requests (answered by the mapper); `None`: none will come.
    pub commands: Option<Receiver<PipelineCommand>>,
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
    pub renderer: Option<String>,
}

fn lock(h: &PipelineHandle) -> std::sync::MutexGuard<'_, LiveStats> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends offline (blocking: nothing dropped) or live (drop the newest when full); false when
/// the receiver is gone.
fn send<T>(tx: &Sender<T>, item: T, flow: Flow, dropped: impl FnOnce()) -> bool {
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

/// Filter state as a publishable estimate (covariance reordered to x y z rx ry rz).
fn estimate(res: &ScanResult, lio: &Lio, pkg: &MeasurementPackage) -> StateEstimate {
    let omega = pkg
        .imu
        .last()
        .map_or(Vector3::zeros(), |s| s.gyro - res.state.bg);
    let pose_covariance = lio.filter().map(|f| {
        let p = f.covariance();
        let idx = [POS, POS + 1, POS + 2, ROT, ROT + 1, ROT + 2];
        let mut c = Matrix6::zeros();
        for (i, a) in idx.iter().enumerate() {
            for (j, b) in idx.iter().enumerate() {
                c[(i, j)] = p[(*a, *b)];
            }
        }
        let mut out = [0.0; 36];
        for i in 0..6 {
            for j in 0..6 {
                out[i * 6 + j] = c[(i, j)];
            }
        }
        out
    });
    StateEstimate {
        stamp: res.stamp,
        pose: res.pose,
        velocity: res.state.vel,
        angular_velocity: omega,
        pose_covariance,
    }
}

/// The estimator's view of the config: corrections off when the inputs carry them already.
fn estimator_config(cfg: &Config, opts: &PipelineOptions) -> Config {
    let mut c = cfg.clone();
    if opts.inputs_corrected {
        c.imu.accel_scale = 1.0;
        c.time_offset = Default::default();
    }
    c
}

/// Whether this build's estimator has a visual update.
pub const VISUAL_AVAILABLE: bool = true;

/// Whether the visual update runs: LIVO mode, `visual.enabled`, and a map to render.
fn visual_enabled(cfg: &Config, opts: &PipelineOptions) -> bool {
    VISUAL_AVAILABLE && opts.mode == Mode::Livo && opts.mapping && cfg.visual.enabled
}

/// The visual update for `cfg`: at no finer resolution than the mapper optimises at (the map
/// has no reliable detail below it), on the render backend when `visual.use_renderer`.
fn visual_driver(cfg: &Config) -> VisualDriver {
    let mut vcfg = cfg.visual.clone();
    let reduction = cfg
        .gaussian
        .optimisation_reduction(cfg.camera.width, cfg.camera.height);
    let map_level = reduction.max(1.0).log2().floor() as u32;
    if map_level > vcfg.pyramid_level {
        tracing::info!(
            "visual update at pyramid level {map_level} (the map is optimised at 1/{reduction:.2} resolution)"
        );
        vcfg.pyramid_level = map_level;
    }
    let d = VisualDriver::new(
        &vcfg,
        &cfg.camera,
        cfg.extrinsics.imu_T_camera.0,
        cfg.imu.accel_scale,
    );
    match vcfg.use_renderer.then(|| create_renderer(&cfg.render)) {
        Some(Ok(r)) => {
            tracing::info!("visual update iterates on {}", r.device_name());
            d.with_renderer(r)
        }
        Some(Err(e)) => {
            tracing::warn!("visual.use_renderer: {e}; CPU forward mode instead");
            d
        }
        None => d,
    }
}

struct Estimator<'a> {
    cfg: Config,
    opts: &'a PipelineOptions,
    lio: Lio,
    sync: Synchronizer,
    prev: Option<PoseStamped>,
    frame: u64,
    first_stamp: Option<u64>,
    stats: PipelineHandle,
    out: Sender<Output>,
    map: Option<Sender<MapFrame>>,
    /// The mapper's camera (for the optimisation targets the estimator prepares).
    map_camera: crate::gaussian::CameraModel,
    snapshots: Option<Receiver<MapSnapshot>>,
    pending_snapshots: BTreeMap<u64, MapSnapshot>,
    /// The photometric update (LIVO with a map), with its statistics.
    visual: Option<VisualDriver>,
    /// IMU-rate odometry ([`PipelineOptions::imu_odometry`]).
    imu_odometry: Option<ImuOdometry>,
    stop: Arc<AtomicBool>,
}

impl Estimator<'_> {
    fn push(&mut self, m: Measurement) {
        let t = Instant::now();
        match m {
            Measurement::Imu(s) => {
                if let Some(e) = self.imu_odometry.as_mut().and_then(|o| o.on_imu(&s)) {
                    let stats = &self.stats;
                    send(
                        &self.out,
                        Output::ImuPose(Box::new(e)),
                        self.opts.flow,
                        || lock(stats).drops.imu_odometry += 1,
                    );
                }
                self.sync.push_imu(s)
            }
            Measurement::Cloud(c) => self.sync.push_scan(c),
            Measurement::Image(i) => {
                if self.map.is_some() || self.opts.mode == Mode::Livo {
                    self.sync.push_image(i)
                }
            }
        }
        let push_ms = t.elapsed().as_secs_f64() * 1e3;
        lock(&self.stats).timings.add("sync", push_ms);
    }

    /// Runs every ready package; false once `max_frames` is reached or outputs are gone.
    fn drain(&mut self) -> bool {
        while let Some(pkg) = self.sync.pop() {
            if !self.package(pkg) {
                return false;
            }
        }
        true
    }

    /// The snapshot the visual update of frame `k` must use (offline: exactly frame k - lag).
    fn snapshot_for(&mut self, k: u64) -> Option<MapSnapshot> {
        let rx = self.snapshots.as_ref()?;
        let lag = self.opts.map_lag.max(1) as u64;
        match self.opts.flow {
            Flow::Offline => {
                let want = k.checked_sub(lag)?;
                while !self.pending_snapshots.contains_key(&want) {
                    // A stopping mapper skips frames: do not wait for it then.
                    match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                        Ok(s) => {
                            self.pending_snapshots.insert(s.frame, s);
                        }
                        Err(crossbeam::channel::RecvTimeoutError::Timeout) => {
                            if self.stop.load(Ordering::Relaxed) {
                                return None;
                            }
                        }
                        Err(crossbeam::channel::RecvTimeoutError::Disconnected) => return None,
                    }
                }
                let s = self.pending_snapshots.remove(&want);
                self.pending_snapshots.retain(|&f, _| f > want);
                s
            }
            Flow::Live => {
                while let Ok(s) = rx.try_recv() {
                    self.pending_snapshots.insert(s.frame, s);
                }
                let last = *self.pending_snapshots.keys().next_back()?;
                self.pending_snapshots.retain(|&f, _| f >= last);
                self.pending_snapshots.get(&last).cloned()
            }
        }
    }

    fn package(&mut self, mut pkg: MeasurementPackage) -> bool {
        let t = Instant::now();
        let res = self.lio.process(&pkg);
        let lio_ms = t.elapsed().as_secs_f64() * 1e3;
        let Some(res) = res else {
            let mut s = lock(&self.stats);
            s.timings.add("lio", lio_ms);
            s.lio = self.lio.counters().clone();
            s.sync = self.sync.counters().clone();
            return true;
        };
        let k = self.frame;
        self.frame += 1;
        let mut times: Vec<StageTime> = vec![("lio", lio_ms)];

        // Sequential visual update on the map as of frame k - lag; the exposure gain of each
        // image (1 without the update) goes to the mapper with it.
        let mut gains = vec![1.0f32; pkg.images.len()];
        if self.visual.is_some() && !pkg.images.is_empty() {
            let t = Instant::now();
            let snap = self.snapshot_for(k);
            // Offline this waits for the mapper (frame k - lag): timed apart from the update.
            times.push(("visual_wait", t.elapsed().as_secs_f64() * 1e3));
            let t = Instant::now();
            if let (Some(vis), Some(f)) = (self.visual.as_mut(), self.lio.filter_mut()) {
                let view = snap.as_ref().map(|s| MapView {
                    frame: s.frame,
                    gaussians: s.gaussians.as_slice(),
                    sh_degree: s.sh_degree,
                    background: s.background,
                });
                let weak = res.degeneracy.filter(|d| d.degenerate).map(|d| d.weakest);
                let results = vis.process(f, &pkg.images, &pkg.imu, view, weak);
                for (g, r) in gains.iter_mut().zip(results) {
                    *g = r.exposure as f32;
                }
            }
            times.push(("visual", t.elapsed().as_secs_f64() * 1e3));
        }
        let res = match self.lio.filter() {
            Some(f) => ScanResult {
                pose: f.state().pose(),
                state: *f.state(),
                ..res
            },
            None => res,
        };
        if let Some(o) = self.imu_odometry.as_mut() {
            o.on_scan(&res.state, res.stamp);
        }
        let cur = PoseStamped {
            stamp: res.stamp,
            pose: res.pose,
        };
        let est = estimate(&res, &self.lio, &pkg);
        let first = *self.first_stamp.get_or_insert(res.stamp);
        let fe = FrameEstimate {
            frame: k,
            estimate: est,
            points_in: res.points_in,
            points_used: res.points_used,
            residuals: res.residuals,
            iterations: res.iterations,
            degenerate: res.degeneracy.is_some_and(|d| d.degenerate),
        };

        let t = Instant::now();
        let imu_t_lidar = self.cfg.extrinsics.imu_T_lidar.0;
        // The poses the map is built with: the estimate, or ground truth in oracle mode (`None`
        // where it does not cover the scan: the frame is then odometry only).
        let oracle = self.opts.oracle.as_ref();
        let map_pose = match oracle {
            Some(o) => o.pose_at(res.stamp).map(|pose| PoseStamped {
                stamp: res.stamp,
                pose,
            }),
            None => Some(cur.clone()),
        };
        let reg = map_pose.clone().unwrap_or_else(|| cur.clone());
        let mut intensity = Vec::new();
        let points = register_scan_with_intensity(
            &pkg.scan,
            self.prev.as_ref(),
            &reg,
            &imu_t_lidar,
            self.cfg.lidar.min_range,
            self.cfg.lidar.max_range,
            Some(&mut intensity),
        );
        // The package's images are not needed after the visual update: moved, not copied.
        let mut images: Vec<PosedFrameImage> = std::mem::take(&mut pkg.images)
            .into_iter()
            .zip(&gains)
            .map(|(img, &exposure)| {
                let world_t_imu = match (oracle.and_then(|o| o.pose_at(img.stamp)), &self.prev) {
                    (Some(gt), _) => gt,
                    (None, Some(p0)) if reg.stamp > p0.stamp => {
                        let a = stamp_diff_secs(img.stamp, p0.stamp)
                            / stamp_diff_secs(reg.stamp, p0.stamp);
                        interpolate(&p0.pose, &reg.pose, a.clamp(-1.0, 1.0))
                    }
                    _ => reg.pose,
                };
                PosedFrameImage {
                    image: img,
                    world_t_imu,
                    exposure,
                    target: None,
                }
            })
            .collect();
        times.push(("register", t.elapsed().as_secs_f64() * 1e3));
        if self.map.is_some() && !images.is_empty() {
            let t = Instant::now();
            for im in &mut images {
                im.target = Some(crate::gaussian::optimisation_target(
                    &self.cfg.gaussian,
                    &self.map_camera,
                    &im.image,
                    im.exposure,
                ));
            }
            times.push(("map_target", t.elapsed().as_secs_f64() * 1e3));
        }
        let mut cloud =
            PointCloud::with_capacity(res.stamp, &self.cfg.frames.map, points.len(), false);
        for (p, &i) in points.iter().zip(&intensity) {
            cloud.push([p[0] as f32, p[1] as f32, p[2] as f32], i, 0.0);
        }
        let sensor = (reg.pose * imu_t_lidar).translation.vector;
        self.prev = map_pose.clone();
        {
            let mut s = lock(&self.stats);
            for (n, v) in &times {
                s.timings.add(n, *v);
            }
            s.frames = self.frame;
            s.sensor_seconds = stamp_diff_secs(res.stamp, first);
            s.lio = self.lio.counters().clone();
            s.sync = self.sync.counters().clone();
            if let Some(v) = &self.visual {
                s.visual.run = v.stats().clone();
            }
        }
        let flow = self.opts.flow;
        let stats = &self.stats;
        // Odometry is never dropped, live either: the sink publishes at once, so this waits at
        // most for the publication of the outputs queued before it (never for the mapper).
        if self.out.send(Output::Pose(Box::new(fe))).is_err() {
            return false;
        }
        let drop_out = || lock(stats).drops.outputs += 1;
        if !send(&self.out, Output::Registered(cloud), flow, drop_out) {
            return false;
        }
        if self.map.is_some() && map_pose.is_none() {
            lock(stats).drops.mapper_frames_without_ground_truth += 1;
        }
        if let (Some(map), Some(_)) = (&self.map, &map_pose) {
            let f = MapFrame {
                index: k,
                stamp: res.stamp,
                world_t_imu: reg.pose,
                points,
                sensor: [sensor.x, sensor.y, sensor.z],
                images,
            };
            let drop_map = || lock(stats).drops.mapper_frames += 1;
            if !send(map, f, flow, drop_map) {
                return false;
            }
        }
        if self
            .opts
            .max_frames
            .is_some_and(|n| self.frame as usize >= n)
        {
            tracing::info!("stopping after {} frames (--max-frames)", self.frame);
            return false;
        }
        true
    }
}

/// Answers one command between frames (the map is consistent there).
fn answer(stage: &mut MapStage, cmd: PipelineCommand) {
    match cmd {
        PipelineCommand::SaveMap { path, reply } => {
            let r = stage
                .save_ply(&path)
                .map(|()| path.clone())
                .map_err(|e| e.to_string());
            let _ = reply.try_send(r);
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
    let Control { stop, commands } = control;
    let cap = opts.queue_capacity.max(1);
    let est_cfg = estimator_config(cfg, opts);
    let map_stage = if opts.mapping {
        Some(MapStage::new(cfg, opts.render_every)?)
    } else {
        None
    };
    let renderer = map_stage.as_ref().map(|m| m.renderer_name());
    let needs_snapshots = visual_enabled(&est_cfg, opts) && map_stage.is_some();
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

        // Ingest.
        let (meas_rx, ingest) = match source {
            Source::Bag(input) => {
                let stop = stop.clone();
                let stats = stats.clone();
                let h = scope.spawn(move || {
                    let t0 = Instant::now();
                    let mut n = 0u64;
                    let r = bag_measurements(&input, &stop, |m| {
                        n += 1;
                        meas_tx.send(m).is_ok()
                    });
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    if let Ok((c, _)) = &r {
                        let mut s = lock(&stats);
                        s.ingest = c.clone();
                        s.timings.add("ingest_total", ms);
                    }
                    r
                });
                (meas_rx, Some(h))
            }
            Source::Channel(rx) => {
                drop(meas_tx);
                (rx, None)
            }
        };

        // Estimator.
        let est = {
            let stats = stats.clone();
            let out = out_tx.clone();
            let map = map_stage.is_some().then_some(map_tx);
            let snapshots = needs_snapshots.then_some(snap_rx);
            let sync = SyncSettings {
                lidar_offset: est_cfg.time_offset.lidar,
                camera_offset: est_cfg.time_offset.camera,
                ..Default::default()
            };
            let cfg = est_cfg.clone();
            let stop = stop.clone();
            scope.spawn(move || {
                let visual = needs_snapshots.then(|| visual_driver(&cfg));
                let imu_odometry = opts
                    .imu_odometry
                    .then(|| ImuOdometry::new(cfg.imu.accel_scale));
                let mut e = Estimator {
                    lio: Lio::new(&cfg),
                    map_camera: crate::gaussian::CameraModel::from_config(&cfg.camera),
                    cfg,
                    opts,
                    sync: Synchronizer::new(sync),
                    prev: None,
                    frame: 0,
                    first_stamp: None,
                    stats,
                    out,
                    map,
                    snapshots,
                    pending_snapshots: BTreeMap::new(),
                    visual,
                    imu_odometry,
                    stop,
                };
                for m in meas_rx.iter() {
                    e.push(m);
                    if !e.drain() {
                        break;
                    }
                }
                e.sync.finish();
                let mut s = lock(&e.stats);
                s.sync = e.sync.counters().clone();
                s.lio = e.lio.counters().clone();
            })
        };

        // Mapper.
        let mapper = map_stage.map(|stage| {
            let out = out_tx.clone();
            let snaps = needs_snapshots.then_some(snap_tx);
            let stats = stats.clone();
            let stop = stop.clone();
            scope.spawn(move || {
                let ports = MapperPorts {
                    frames: map_rx,
                    commands,
                    out,
                    snapshots: snaps,
                };
                mapper_loop(stage, ports, opts, &stats, &stop)
            })
        });
        drop(out_tx);

        // Outputs on this thread.
        for o in out_rx.iter() {
            sink(o);
        }

        est.join()
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
            renderer,
        })
    })
}
