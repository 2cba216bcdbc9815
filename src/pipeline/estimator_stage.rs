//! The estimator thread: measurements in (the rig's corrections applied once, here), sync into
//! packages, LIO and the photometric update per package, then the frame's outputs and the
//! mapper's frame out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};
use nalgebra::{Matrix6, Vector3};

use super::imu_odometry::ImuOdometry;
use super::map_stage::{MapFrame, MapSnapshot, PosedFrameImage};
use super::port::StateEstimate;
use super::register::{interpolate, register_scan_with_intensity};
use super::stages::{
    lock, send, EstimatorCommand, FrameEstimate, Output, PipelineHandle, StageTime,
    VISUAL_AVAILABLE,
};
use super::{Flow, Mode, PipelineOptions};
use crate::config::Config;
use crate::estimator::state::{POS, ROT};
use crate::estimator::visual::{MapView, VisualDriver};
use crate::estimator::{Lio, ScanResult};
use crate::render::create_renderer;
use crate::sensors::measurement::SensorCorrections;
use crate::sensors::{stamp_diff_secs, Image, Measurement, PointCloud, PoseStamped};
use crate::sync::{MeasurementPackage, SyncSettings, Synchronizer};

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

/// The estimator's view of the config: the rig's unit and clock corrections are applied once,
/// as measurements enter the estimator thread ([`Estimator::push`]), so its components see
/// them off.
pub(super) fn estimator_config(cfg: &Config) -> Config {
    let mut c = cfg.clone();
    c.imu.accel_scale = 1.0;
    c.time_offset = Default::default();
    c
}

/// Whether the visual update runs: LIVO mode, `visual.enabled`, and a map to render.
pub(super) fn visual_enabled(cfg: &Config, opts: &PipelineOptions) -> bool {
    VISUAL_AVAILABLE && opts.mode == Mode::Livo && opts.mapping && cfg.visual.enabled
}

/// The visual update for `cfg`: at no finer resolution than the mapper optimises at (the map
/// has no reliable detail below it: `reduction`, the mapper's image reduction), on the render
/// backend when `visual.use_renderer`.
fn visual_driver(cfg: &Config, reduction: f64) -> VisualDriver {
    let mut vcfg = cfg.visual.clone();
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

pub(super) struct Estimator<'a> {
    cfg: Config,
    /// The rig's unit and clock corrections, applied once to every measurement that enters.
    corrections: SensorCorrections,
    opts: &'a PipelineOptions,
    lio: Lio,
    sync: Synchronizer,
    prev: Option<PoseStamped>,
    frame: u64,
    first_stamp: Option<u64>,
    stats: PipelineHandle,
    out: Sender<Output>,
    map: Option<Sender<MapFrame>>,
    snapshots: Option<Receiver<MapSnapshot>>,
    pending_snapshots: BTreeMap<u64, MapSnapshot>,
    /// The photometric update (LIVO with a map), with its statistics.
    visual: Option<VisualDriver>,
    /// IMU-rate odometry ([`PipelineOptions::imu_odometry`]).
    imu_odometry: Option<ImuOdometry>,
    stop: Arc<AtomicBool>,
}

/// What the estimator thread is built from besides the config and options.
pub(super) struct EstimatorPorts {
    pub stats: PipelineHandle,
    pub out: Sender<Output>,
    pub map: Option<Sender<MapFrame>>,
    pub snapshots: Option<Receiver<MapSnapshot>>,
    pub stop: Arc<AtomicBool>,
}

impl<'a> Estimator<'a> {
    /// The estimator for `cfg` (the full config: the corrections are taken from it, and the
    /// components get [`estimator_config`]); `map_reduction` is the mapper's image reduction
    /// when the visual update runs.
    pub(super) fn new(
        cfg: &Config,
        opts: &'a PipelineOptions,
        map_reduction: Option<f64>,
        ports: EstimatorPorts,
    ) -> Self {
        let corrections = cfg.sensor_corrections();
        let cfg = estimator_config(cfg);
        let sync = SyncSettings {
            lidar_offset: cfg.time_offset.lidar,
            camera_offset: cfg.time_offset.camera,
            ..Default::default()
        };
        let visual = map_reduction.map(|r| visual_driver(&cfg, r));
        let imu_odometry = opts
            .imu_odometry
            .then(|| ImuOdometry::new(cfg.imu.accel_scale));
        let mut lio = Lio::new(&cfg.lio_setup());
        if let Some(p) = &opts.prior {
            match p.map.voxel_map(&cfg.lidar_map) {
                Ok(map) => {
                    let reloc = p
                        .relocalise
                        .then(crate::estimator::reloc::RelocConfig::default);
                    lio.use_prior_map(map, p.frozen(), reloc);
                }
                // The map was checked when loaded; a failure here is logged, and the run maps
                // from scratch rather than with half a map.
                Err(e) => tracing::error!("loaded LiDAR map not used: {e}"),
            }
        }
        Self {
            lio,
            corrections,
            cfg,
            opts,
            sync: Synchronizer::new(sync),
            prev: None,
            frame: 0,
            first_stamp: None,
            stats: ports.stats,
            out: ports.out,
            map: ports.map,
            snapshots: ports.snapshots,
            pending_snapshots: BTreeMap::new(),
            visual,
            imu_odometry,
            stop: ports.stop,
        }
    }

    /// Runs until the measurements end or an output's receiver goes; then the last counters.
    /// Returns the LIO's voxel map (to save it).
    pub(super) fn run(
        mut self,
        measurements: Receiver<Measurement>,
        commands: Option<Receiver<EstimatorCommand>>,
    ) -> crate::lidar_map::VoxelMap {
        match commands {
            None => {
                for m in measurements.iter() {
                    self.push(m);
                    if !self.drain() {
                        break;
                    }
                }
            }
            Some(mut commands) => loop {
                crossbeam::select! {
                    recv(measurements) -> m => {
                        let Ok(m) = m else { break };
                        self.push(m);
                        if !self.drain() {
                            break;
                        }
                    }
                    recv(commands) -> c => match c {
                        Ok(c) => self.command(c),
                        // No more commands: measurements alone from here.
                        Err(_) => commands = crossbeam::channel::never(),
                    },
                }
            },
        }
        self.sync.finish();
        let mut s = lock(&self.stats);
        s.sync = self.sync.counters().clone();
        s.lio = self.lio.counters().clone();
        drop(s);
        self.lio.into_map()
    }

    /// Answers a command between two measurements.
    fn command(&mut self, c: EstimatorCommand) {
        match c {
            EstimatorCommand::Hint(h) => match self.lio.hint(h) {
                Ok(()) => tracing::info!(
                    "pose hint: relocalising within {:.1} m of [{:.2}, {:.2}] and {:.0} deg of yaw {:.1} deg",
                    h.radius,
                    h.position.x,
                    h.position.y,
                    h.yaw_range.to_degrees(),
                    h.yaw.to_degrees()
                ),
                Err(e) => tracing::warn!("pose hint ignored: {e}"),
            },
            EstimatorCommand::LidarMap { reply } => {
                let _ = reply.try_send(self.lio.map().clone());
            }
        }
        lock(&self.stats).lio = self.lio.counters().clone();
    }

    pub(super) fn push(&mut self, mut m: Measurement) {
        self.corrections.apply(&mut m);
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
    pub(super) fn drain(&mut self) -> bool {
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

    /// One measurement package through the estimator: LIO, visual update, the frame's outputs
    /// and the mapper's frame. `false` when the pipeline should stop.
    fn package(&mut self, mut pkg: MeasurementPackage) -> bool {
        let Some((res, lio_ms)) = self.lio_step(&pkg) else {
            return true;
        };
        let k = self.frame;
        self.frame += 1;
        let mut times: Vec<StageTime> = vec![("lio", lio_ms)];
        let gains = self.visual_step(k, &res, &pkg, &mut times);
        let res = self.after_updates(res);
        let cur = PoseStamped {
            stamp: res.stamp,
            pose: res.pose,
        };
        let fe = frame_estimate(k, &res, &self.lio, &pkg);
        let first = *self.first_stamp.get_or_insert(res.stamp);
        let t = Instant::now();
        let map_pose = self.map_pose(&res, &cur);
        let reg = map_pose.clone().unwrap_or_else(|| cur.clone());
        let (points, cloud) = self.register(&pkg, &reg, res.stamp);
        // The package's images are not needed after the visual update: moved, not copied.
        let images = self.posed_images(std::mem::take(&mut pkg.images), &gains, &reg);
        times.push(("register", t.elapsed().as_secs_f64() * 1e3));
        let sensor = (reg.pose * self.cfg.extrinsics.imu_T_lidar.0)
            .translation
            .vector;
        self.prev = map_pose.clone();
        self.record(&times, res.stamp, first);
        let map_frame = map_pose.is_some().then(|| MapFrame {
            index: k,
            stamp: res.stamp,
            world_t_imu: reg.pose,
            points,
            sensor: [sensor.x, sensor.y, sensor.z],
            images,
        });
        self.send_frame(fe, cloud, map_frame) && !self.frame_limit_reached()
    }

    /// The LIO on the package, and its time (ms); `None` (counted) before it has a pose.
    fn lio_step(&mut self, pkg: &MeasurementPackage) -> Option<(ScanResult, f64)> {
        let t = Instant::now();
        let res = self.lio.process(pkg);
        let lio_ms = t.elapsed().as_secs_f64() * 1e3;
        if res.is_none() {
            let mut s = lock(&self.stats);
            s.timings.add("lio", lio_ms);
            s.lio = self.lio.counters().clone();
            s.sync = self.sync.counters().clone();
        }
        res.map(|r| (r, lio_ms))
    }

    /// Sequential visual update on the map as of frame k - lag; returns the exposure gain of
    /// each image (1 without the update), which goes to the mapper with it.
    fn visual_step(
        &mut self,
        k: u64,
        res: &ScanResult,
        pkg: &MeasurementPackage,
        times: &mut Vec<StageTime>,
    ) -> Vec<f32> {
        let mut gains = vec![1.0f32; pkg.images.len()];
        if self.visual.is_none() || pkg.images.is_empty() {
            return gains;
        }
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
        gains
    }

    /// The scan's result with the filter's state after all updates; the IMU odometry rebased.
    fn after_updates(&mut self, res: ScanResult) -> ScanResult {
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
        res
    }

    /// The pose the map is built with: the estimate, or ground truth in oracle mode (`None`
    /// where it does not cover the scan: the frame is then odometry only).
    fn map_pose(&self, res: &ScanResult, cur: &PoseStamped) -> Option<PoseStamped> {
        match self.opts.oracle.as_ref() {
            Some(o) => o.pose_at(res.stamp).map(|pose| PoseStamped {
                stamp: res.stamp,
                pose,
            }),
            None => Some(cur.clone()),
        }
    }

    /// The scan deskewed into the map frame at `reg`: the points for the mapper and the
    /// registered cloud for the outputs.
    fn register(
        &self,
        pkg: &MeasurementPackage,
        reg: &PoseStamped,
        stamp: u64,
    ) -> (Vec<[f64; 3]>, PointCloud) {
        let mut intensity = Vec::new();
        let points = register_scan_with_intensity(
            &pkg.scan,
            self.prev.as_ref(),
            reg,
            &self.cfg.extrinsics.imu_T_lidar.0,
            self.cfg.lidar.min_range,
            self.cfg.lidar.max_range,
            Some(&mut intensity),
        );
        let mut cloud = PointCloud::with_capacity(stamp, &self.cfg.frames.map, points.len(), false);
        for (p, &i) in points.iter().zip(&intensity) {
            cloud.push([p[0] as f32, p[1] as f32, p[2] as f32], i, 0.0);
        }
        (points, cloud)
    }

    /// Each image with the body pose at its stamp (ground truth in oracle mode, else
    /// interpolated between the previous and this scan's pose) and its exposure gain.
    fn posed_images(
        &self,
        images: Vec<Image>,
        gains: &[f32],
        reg: &PoseStamped,
    ) -> Vec<PosedFrameImage> {
        let oracle = self.opts.oracle.as_ref();
        images
            .into_iter()
            .zip(gains)
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
                }
            })
            .collect()
    }

    /// Stage times and counters into the shared statistics.
    fn record(&self, times: &[StageTime], stamp: u64, first: u64) {
        let mut s = lock(&self.stats);
        for (n, v) in times {
            s.timings.add(n, *v);
        }
        s.frames = self.frame;
        s.sensor_seconds = stamp_diff_secs(stamp, first);
        s.lio = self.lio.counters().clone();
        s.sync = self.sync.counters().clone();
        if let Some(v) = &self.visual {
            s.visual.run = v.stats().clone();
        }
    }

    /// The frame's pose and cloud to the outputs, its map frame (`None`: no ground truth in
    /// oracle mode) to the mapper. `false` when a receiver has gone.
    fn send_frame(
        &self,
        fe: FrameEstimate,
        cloud: PointCloud,
        map_frame: Option<MapFrame>,
    ) -> bool {
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
        let Some(map) = &self.map else {
            return true;
        };
        match map_frame {
            None => {
                lock(stats).drops.mapper_frames_without_ground_truth += 1;
                true
            }
            Some(f) => send(map, f, flow, || lock(stats).drops.mapper_frames += 1),
        }
    }

    /// `--max-frames` reached (logged once, as the pipeline stops).
    fn frame_limit_reached(&self) -> bool {
        let done = self
            .opts
            .max_frames
            .is_some_and(|n| self.frame as usize >= n);
        if done {
            tracing::info!("stopping after {} frames (--max-frames)", self.frame);
        }
        done
    }
}

/// The frame's estimate for the outputs.
fn frame_estimate(k: u64, res: &ScanResult, lio: &Lio, pkg: &MeasurementPackage) -> FrameEstimate {
    FrameEstimate {
        frame: k,
        estimate: estimate(res, lio, pkg),
        points_in: res.points_in,
        points_used: res.points_used,
        residuals: res.residuals,
        iterations: res.iterations,
        degenerate: res.degeneracy.is_some_and(|d| d.degenerate),
    }
}
