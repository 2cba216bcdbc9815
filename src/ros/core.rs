//! The node core: everything `gs_livo node` does, over any [`Transport`].
//!
//! ```text
//! transport thread --RawQueue (bytes)--> decode thread --Measurement--> pipeline
//!   (spin: copy bytes, save requests,        (CDR decoders,             (corrections, estimator,
//!    diagnostics)                             counts)                    outputs published
//!                                                                        mapper; outputs on
//!                                                                        its own thread)
//!                   save thread <--requests--  (trajectory, LiDAR map, map via the mapper)
//! ```
//!
//! Shutdown (SIGINT/SIGTERM, or the end of a replay): input stops, the decoder finishes the
//! backlog it holds for at most `node.shutdown_timeout` s (the rest is dropped and counted),
//! the estimator processes what was decoded, the mapper skips its queue, queued saves finish,
//! and the final save writes every output with every published pose.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Sender};

use super::ingest::{raw_queue, Ingest, QueueRefusal, RawIn, RawQueue, RawQueueLimits, RawQueueRx};
use super::params::{MapParams, NodeParams, LIDAR_TYPES, SAVE_TO_PARAM};
use super::publish::{self, lock, OutputPublisher, Record, StaticTf};
use super::save::{save_all, MapSource, Saver, SessionInfo};
use super::stats::{level, DiagnosticReport, NodeStats};
use super::summary::{NodeSummary, SaveCounts};
use super::transport::{Event, Qos, RawPublisher, Spin, SubscriptionId, Transport, TransportError};
use crate::bag::{msgs, RosMessage};
use crate::config::{Config, NODE_NAME};
use crate::estimator::reloc::{RelocHint, RelocStatus};
use crate::pipeline::{
    run_pipeline_with, Control, EstimatorCommand, Flow, LiveStats, PipelineError, PipelineHandle,
    PipelineOptions, PriorMap, Source, StageStats,
};
use crate::sensors::measurement::SensorKind;

/// Errors that end the node (a non-zero exit).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error("the pipeline failed: {0}")]
    Pipeline(String),
}

/// What the node runs with.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    pub config: Config,
    pub params: NodeParams,
    /// Mode and mapping switches; the core sets live flow, IMU odometry and the map period.
    pub pipeline: PipelineOptions,
}

/// How a node run ended.
pub struct NodeOutcome {
    pub summary: NodeSummary,
    /// The final save (`None` when `node.save_on_shutdown` is off).
    pub final_save: Option<Result<String, String>>,
}

/// Why the spin loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Signal,
    InputEnded,
    PipelineStopped,
}

/// The pipeline options of a live node.
fn live_options(setup: &NodeSetup) -> PipelineOptions {
    PipelineOptions {
        flow: Flow::Live,
        imu_odometry: setup.params.publish_imu_odometry,
        centres_period: setup.params.map_publish_period,
        ..setup.pipeline.clone()
    }
}

/// The LiDAR type to subscribe with: the configured one, checked against what the publisher
/// advertises; `auto` takes the advertised type, else PointCloud2.
pub fn lidar_type(
    configured: &str,
    advertised: Option<&str>,
    topic: &str,
) -> Result<String, NodeError> {
    let advertised = advertised.map(|t| crate::bag::decode::normalize_type(t).into_owned());
    match (configured, advertised) {
        ("auto", None) => {
            tracing::warn!(
                "nothing advertises {topic} yet: subscribing as sensor_msgs/msg/PointCloud2 \
                 (set node.lidar_type for a Livox CustomMsg driver)"
            );
            Ok(LIDAR_TYPES[0].into())
        }
        ("auto", Some(t)) if LIDAR_TYPES.contains(&t.as_str()) => Ok(t),
        ("auto", Some(t)) => Err(NodeError::Setup(format!(
            "{topic} carries {t}, which is not a LiDAR type gs_livo reads ({})",
            LIDAR_TYPES.join(", ")
        ))),
        (c, Some(t)) if c != t => Err(NodeError::Setup(format!(
            "{topic} carries {t} but node.lidar_type is {c}: fix the parameter or the topic"
        ))),
        (c, _) => Ok(c.into()),
    }
}

/// The subscriptions' meaning, indexed by [`SubscriptionId`].
#[derive(Default)]
struct Routes {
    by_id: Vec<Route>,
}

#[derive(Clone)]
enum Route {
    Sensor(SensorKind, Arc<str>),
    Save,
    InitialPose,
}

impl Routes {
    fn add(&mut self, id: SubscriptionId, r: Route) {
        if self.by_id.len() <= id {
            self.by_id.resize(id + 1, Route::Save);
        }
        self.by_id[id] = r;
    }
}

fn subscribe_all(t: &mut dyn Transport, setup: &NodeSetup) -> Result<Routes, NodeError> {
    let topics = &setup.config.topics;
    let mut routes = Routes::default();
    let advertised = t.advertised_type(&topics.lidar);
    let lidar = lidar_type(
        &setup.params.lidar_type,
        advertised.as_deref(),
        &topics.lidar,
    )?;
    let id = t.subscribe(&topics.lidar, &lidar, Qos::sensor(10))?;
    routes.add(id, Route::Sensor(SensorKind::Lidar, lidar.into()));
    let id = t.subscribe(&topics.imu, msgs::Imu::TYPE_NAME, Qos::sensor(400))?;
    routes.add(
        id,
        Route::Sensor(SensorKind::Imu, msgs::Imu::TYPE_NAME.into()),
    );
    if !topics.image.is_empty() {
        let image = match t.advertised_type(&topics.image) {
            Some(a) => crate::bag::decode::normalize_type(&a).into_owned(),
            None if topics.image.ends_with("/compressed") => {
                msgs::CompressedImage::TYPE_NAME.into()
            }
            None => msgs::Image::TYPE_NAME.into(),
        };
        let id = t.subscribe(&topics.image, &image, Qos::sensor(10))?;
        routes.add(id, Route::Sensor(SensorKind::Camera, image.into()));
    }
    let id = t.subscribe(
        publish::topics::SAVE,
        msgs::StringMsg::TYPE_NAME,
        Qos::outputs(),
    )?;
    routes.add(id, Route::Save);
    if setup.pipeline.prior.is_some() {
        let id = t.subscribe(
            publish::topics::INITIAL_POSE,
            msgs::PoseWithCovarianceStamped::TYPE_NAME,
            Qos::outputs(),
        )?;
        routes.add(id, Route::InitialPose);
    }
    Ok(routes)
}

/// The decode thread's shutdown deadline, set when shutdown begins.
type Deadline = Arc<Mutex<Option<Instant>>>;

fn decode_loop(
    rx: RawQueueRx,
    mut ingest: Ingest,
    stats: Arc<Mutex<NodeStats>>,
    deadline: Deadline,
) {
    while let Some(m) = rx.recv() {
        let late = deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|d| Instant::now() > d);
        if late {
            let mut n = rx.discard();
            n[m.kind.index()] += 1;
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            for k in SensorKind::ALL {
                s.sensor(k).dropped_at_shutdown += n[k.index()];
            }
            tracing::warn!("shutdown deadline: {n:?} undecoded imu/lidar/camera messages dropped");
            continue;
        }
        ingest.raw(&m);
    }
}

#[allow(clippy::too_many_arguments)] // one report from the spin loop's parts
fn diagnostics(
    ingest: &Arc<Mutex<NodeStats>>,
    record: &Record,
    live: &PipelineHandle,
    queue_bytes: usize,
    dt: f64,
    camera: bool,
    latency_from: &mut usize,
    saves: SaveCounts,
) -> Vec<DiagnosticReport> {
    let mut ingest_report = ingest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .report(dt, 0, 1, camera);
    ingest_report
        .values
        .push(("backlog (bytes)".into(), queue_bytes.to_string()));
    let r = lock(record);
    let recent = &r.latency_ms[(*latency_from).min(r.latency_ms.len())..];
    let lat = StageStats::of(recent);
    *latency_from = r.latency_ms.len();
    let l = live.lock().unwrap_or_else(|e| e.into_inner());
    let skipped = l.drops.mapper_frames;
    let mut odo = DiagnosticReport {
        level: level::OK,
        name: "gs_livo: odometry".into(),
        message: "ok".into(),
        values: vec![
            ("odometry published".into(), r.trajectory.len().to_string()),
            (
                "latency median (ms)".into(),
                format!("{:.1}", lat.median_ms),
            ),
            ("latency p95 (ms)".into(), format!("{:.1}", lat.p95_ms)),
            ("latency max (ms)".into(), format!("{:.1}", lat.max_ms)),
            ("imu odometry published".into(), r.imu_odometry.to_string()),
            ("frames mapped".into(), l.mapped_frames.to_string()),
            ("frames skipped by the mapper".into(), skipped.to_string()),
            ("gaussians".into(), l.gaussians.to_string()),
            ("publish errors".into(), r.publish_errors.to_string()),
            // How the saves a user asked for (`map.save_to`, `~/save`) ended.
            ("saves requested".into(), saves.requested.to_string()),
            ("saves completed".into(), saves.completed.to_string()),
            ("saves failed".into(), saves.failed.to_string()),
            (
                "saves refused (busy)".into(),
                saves.refused_busy.to_string(),
            ),
        ],
    };
    if lat.count > 0 && lat.p95_ms > 100.0 {
        odo.level = level::WARN;
        odo.message = format!("odometry latency p95 {:.0} ms", lat.p95_ms);
    }
    vec![ingest_report, odo]
}

/// A pose hint from `/initialpose`: of the base frame in the map frame, as rviz's "2D Pose
/// Estimate" gives it; the hint is of the IMU (the filter's body). `None` (with a warning)
/// when it does not decode or names another frame.
fn initial_pose_hint(cdr: &[u8], hint: &HintFrames) -> Option<RelocHint> {
    let m = match msgs::PoseWithCovarianceStamped::decode_cdr(cdr) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(
                "{}: undecodable message ignored: {e}",
                publish::topics::INITIAL_POSE
            );
            return None;
        }
    };
    let frame = m.header.frame_id.trim_start_matches('/');
    if !frame.is_empty() && frame != hint.map_frame {
        tracing::warn!(
            "{}: pose in frame `{frame}` ignored: hints must be in the map frame `{}`",
            publish::topics::INITIAL_POSE,
            hint.map_frame
        );
        return None;
    }
    let Some(map_t_base) = msgs::pose_isometry(&m.pose) else {
        tracing::warn!("{}: non-finite pose ignored", publish::topics::INITIAL_POSE);
        return None;
    };
    let h = RelocHint::from_pose(&(map_t_base * hint.base_t_imu), &m.covariance);
    if !h.is_finite() {
        tracing::warn!("{}: non-finite pose ignored", publish::topics::INITIAL_POSE);
        return None;
    }
    Some(h)
}

/// What a hint needs from the setup.
struct HintFrames {
    map_frame: String,
    base_t_imu: nalgebra::Isometry3<f64>,
}

/// One transport event: a sensor message into the decode queue (counted when the backlog is
/// full), a save request to the saver, a pose hint to the estimator, a parameter change
/// refused with a warning.
#[allow(clippy::too_many_arguments)] // the spin loop's parts, each used by one kind of event
fn route_event(
    ev: Event,
    routes: &Routes,
    raw_tx: &RawQueue,
    ingest_stats: &Mutex<NodeStats>,
    saver: &Saver,
    save_dir: &dyn Fn(Option<String>) -> PathBuf,
    estimator: &Sender<EstimatorCommand>,
    hint: &HintFrames,
) {
    match ev {
        Event::Message { subscription, cdr } => match routes.by_id.get(subscription) {
            Some(Route::Sensor(kind, type_name)) => {
                let m = RawIn {
                    kind: *kind,
                    type_name: type_name.clone(),
                    cdr,
                };
                if raw_tx.push(m) == Err(QueueRefusal::Full) {
                    let mut s = ingest_stats.lock().unwrap_or_else(|e| e.into_inner());
                    let c = s.sensor(*kind);
                    c.dropped_backlog += 1;
                    if c.dropped_backlog % 100 == 1 {
                        tracing::warn!(
                            sensor = kind.name(),
                            count = c.dropped_backlog,
                            "decode backlog full: dropping messages"
                        );
                    }
                }
            }
            Some(Route::InitialPose) => {
                if let Some(h) = initial_pose_hint(&cdr, hint) {
                    if estimator.try_send(EstimatorCommand::Hint(h)).is_err() {
                        tracing::warn!("pose hint dropped: the estimator is busy or stopped");
                    }
                }
            }
            Some(Route::Save) => {
                let dir = msgs::StringMsg::decode_cdr(&cdr).ok().map(|m| m.data);
                saver.request(
                    save_dir(dir),
                    Box::new(|r| {
                        if let Err(e) = r {
                            tracing::warn!("save: {e}");
                        }
                    }),
                );
            }
            None => {}
        },
        Event::Save(req) => saver.request(save_dir(req.dir), req.reply),
        Event::ParameterSet { name, value } if name == SAVE_TO_PARAM => match value {
            Some(dir) if !dir.trim().is_empty() => {
                let dir = dir.trim().to_string();
                tracing::info!("{SAVE_TO_PARAM} set: saving into {dir}");
                saver.request(
                    save_dir(Some(dir)),
                    Box::new(|r| match r {
                        Ok(m) => tracing::info!("{SAVE_TO_PARAM}: {m}"),
                        Err(e) => tracing::warn!("{SAVE_TO_PARAM}: {e}"),
                    }),
                )
            }
            _ => {
                tracing::warn!("{SAVE_TO_PARAM} needs a folder (a non-empty string): nothing saved")
            }
        },
        Event::ParameterSet { name, .. } => tracing::warn!(
            "parameter `{name}` was set while running: gs_livo reads its parameters at \
             start, so the change is not applied; restart the node to use it"
        ),
    }
}

/// `map.load`: the map folder the node starts from, checked against the rig (a pipeline
/// option set by the caller wins).
fn load_map(setup: &mut NodeSetup) -> Result<(), NodeError> {
    let m = &setup.params.map;
    if m.load.trim().is_empty() || setup.pipeline.prior.is_some() {
        return Ok(());
    }
    let dir = PathBuf::from(m.load.trim());
    let map = PriorMap::read(&dir, m.mode)
        .and_then(|map| map.check_config(&setup.config).map(|()| map))
        .map_err(|e| NodeError::Setup(format!("map.load {}: {e}", dir.display())))?;
    tracing::info!(
        "map.load {}: {} LiDAR root voxels, {} Gaussians, {:?} mode{}",
        dir.display(),
        map.lidar_roots.len(),
        map.gaussian_count(),
        m.mode,
        if m.origin {
            ", starting at its origin"
        } else {
            ": relocalising (no map -> odom until accepted)"
        }
    );
    setup.pipeline.prior = Some(PriorMap {
        map: Arc::new(map),
        mode: m.mode,
        relocalise: !m.origin,
    });
    Ok(())
}

/// Where the node stands in a loaded map: WARN while no relocalisation is accepted (nothing
/// in the map frame is published then), with the reason.
fn localisation_report(m: &MapParams, r: Option<&RelocStatus>) -> DiagnosticReport {
    let mut d = DiagnosticReport {
        level: level::OK,
        name: "gs_livo: localisation".into(),
        message: String::new(),
        values: vec![
            ("map".into(), m.load.clone()),
            ("mode".into(), format!("{:?}", m.mode).to_lowercase()),
        ],
    };
    let Some(r) = r else {
        d.message = "starting at the loaded map's origin (map.origin)".into();
        return d;
    };
    d.values.extend([
        ("scans refused".into(), r.refused_scans.to_string()),
        ("pose hints".into(), r.hints.to_string()),
        ("inlier ratio".into(), format!("{:.2}", r.inlier_ratio)),
        ("next best ratio".into(), format!("{:.2}", r.second_ratio)),
    ]);
    if r.pending {
        d.level = level::WARN;
        let why = match &r.last_refusal {
            Some(reason) => format!("last scan refused: {reason}"),
            None if r.hints > 0 => "searching around the pose hint".into(),
            None => "waiting for the IMU initialisation and a scan".into(),
        };
        d.message =
            format!("not localised in the map ({why}): no map -> odom or odometry published");
    } else {
        d.message = match (r.accepted_at_scan, r.pose) {
            (Some(n), Some([x, y, z, yaw])) => format!(
                "relocalised at scan {n}: [{x:.2}, {y:.2}, {z:.2}] m, yaw {yaw:.1} deg, {:.0} % inliers",
                100.0 * r.inlier_ratio
            ),
            _ => "relocalised".into(),
        };
    }
    d
}

/// The save at shutdown (`node.save_on_shutdown`) into `node.save_dir`, logged.
fn save_at_shutdown(
    np: &NodeParams,
    record: &Record,
    summary: &NodeSummary,
    map: MapSource<'_>,
    session: &SessionInfo,
) -> Result<String, String> {
    let r = save_all(
        &PathBuf::from(&np.save_dir),
        record,
        summary,
        map,
        Some(session),
    );
    match &r {
        Ok(m) => tracing::info!("{m}"),
        Err(m) => tracing::warn!("{m}"),
    }
    r
}

/// What the spin loop works with.
struct SpinLoop<'a> {
    stop: &'a AtomicBool,
    pipeline: &'a std::thread::JoinHandle<Result<crate::pipeline::Finished, PipelineError>>,
    routes: &'a Routes,
    raw_tx: &'a RawQueue,
    ingest_stats: &'a Arc<Mutex<NodeStats>>,
    saver: &'a Saver,
    record: &'a Record,
    live: &'a PipelineHandle,
    diagnostics_pub: &'a Arc<dyn RawPublisher>,
    np: &'a NodeParams,
    /// Whether a camera topic is configured (its rate is diagnosed).
    camera: bool,
    estimator: &'a Sender<EstimatorCommand>,
    hint: HintFrames,
    /// `map -> odom`, withheld until relocalised in a loaded map.
    static_tf: StaticTf,
    /// The loaded map, for the localisation diagnostics.
    map: Option<&'a MapParams>,
}

/// Spins the transport until a signal, the end of its input or the pipeline's end: bytes into
/// the decode queue, saves to the saver, diagnostics every `node.diagnostics_period`.
fn spin_until_end(t: &mut dyn Transport, mut l: SpinLoop<'_>) -> Ending {
    let camera = l.camera;
    let clock = t.clock();
    let np = l.np;
    let diag_period = Duration::from_secs_f64(np.diagnostics_period);
    let mut last_diag = Instant::now();
    let mut latency_from = 0;
    let save_dir = |d: Option<String>| -> PathBuf {
        match d.as_deref().map(str::trim) {
            None | Some("") => PathBuf::from(&np.save_dir),
            Some(d) => PathBuf::from(d),
        }
    };
    loop {
        if l.stop.load(Ordering::SeqCst) {
            break Ending::Signal;
        }
        if l.pipeline.is_finished() {
            break Ending::PipelineStopped;
        }
        let spin = t.spin(Duration::from_millis(5), &mut |ev| {
            route_event(
                ev,
                l.routes,
                l.raw_tx,
                l.ingest_stats,
                l.saver,
                &save_dir,
                l.estimator,
                &l.hint,
            )
        });
        let reloc = l
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lio
            .relocalisation
            .clone();
        if l.static_tf.withholding() && reloc.as_ref().is_some_and(|r| !r.pending) {
            tracing::info!("relocalised: publishing map -> odom");
            if l.static_tf.release_map_to_odom().is_err() {
                lock(l.record).publish_errors += 1;
            }
        }
        // Under `use_sim_time` the clock reads 0 until the first /clock message: a report
        // stamped then would lie outside the recording's time, so it waits for the clock.
        let now = clock();
        if last_diag.elapsed() >= diag_period && now != 0 {
            let dt = last_diag.elapsed().as_secs_f64();
            last_diag = Instant::now();
            let mut reports = diagnostics(
                l.ingest_stats,
                l.record,
                l.live,
                l.raw_tx.bytes(),
                dt,
                camera,
                &mut latency_from,
                l.saver.counts(),
            );
            if let Some(m) = l.map {
                reports.push(localisation_report(m, reloc.as_ref()));
            }
            let msg = publish::diagnostics_msg(&reports, now, NODE_NAME);
            if l.diagnostics_pub
                .publish(&msg.encode_cdr(), msg.header.stamp)
                .is_err()
            {
                lock(l.record).publish_errors += 1;
            }
        }
        if spin == Spin::Ended {
            break Ending::InputEnded;
        }
    }
}

/// Runs the node on `t` until `stop` is set, the transport's input ends, or the pipeline stops.
pub fn run_node(
    t: &mut dyn Transport,
    setup: NodeSetup,
    stop: Arc<AtomicBool>,
) -> Result<NodeOutcome, NodeError> {
    let started = Instant::now();
    let mut setup = setup;
    load_map(&mut setup)?;
    let np = setup.params.clone();
    let opts = live_options(&setup);
    let routes = subscribe_all(t, &setup)?;
    let relocalising = opts.prior.as_ref().is_some_and(|p| p.relocalise);
    let static_tf = StaticTf::publish(t, &setup.config, &np, relocalising)?;
    let diagnostics_pub = publish::diagnostics_publisher(t)?;
    let record = Record::default();
    let mut publisher = OutputPublisher::create(t, &setup.config, &np, record.clone())?;
    tracing::info!(
        transport = t.name(),
        lidar = %setup.config.topics.lidar,
        imu = %setup.config.topics.imu,
        image = %setup.config.topics.image,
        "gs_livo node running"
    );

    let ingest_stats = Arc::new(Mutex::new(NodeStats::default()));
    let live: PipelineHandle = Arc::new(Mutex::new(LiveStats::default()));
    let (raw_tx, raw_rx) = raw_queue(RawQueueLimits {
        max_bytes: np.queue_bytes,
        max_imu: np.queue_capacity,
    });
    let (meas_tx, meas_rx) = bounded(np.queue_capacity);
    let (cmd_tx, cmd_rx) = bounded(2);
    let (est_tx, est_rx) = bounded(8);
    let pipeline_stop = Arc::new(AtomicBool::new(false));
    let deadline: Deadline = Arc::default();

    let ingest = Ingest::new(meas_tx, ingest_stats.clone());
    let decoder = {
        let (s, d) = (ingest_stats.clone(), deadline.clone());
        std::thread::Builder::new()
            .name("gs_livo-decode".into())
            .spawn(move || decode_loop(raw_rx, ingest, s, d))
            .map_err(|e| NodeError::Setup(format!("decode thread: {e}")))?
    };
    // The pipeline applies the unit and clock corrections as measurements enter its estimator.
    let pipeline_cfg = setup.config.clone();
    let pipeline = {
        let control = Control {
            stop: pipeline_stop.clone(),
            commands: Some(cmd_rx),
            estimator: Some(est_rx),
        };
        let (live, opts) = (live.clone(), opts.clone());
        std::thread::Builder::new()
            .name("gs_livo-pipeline".into())
            .spawn(move || {
                run_pipeline_with(
                    &pipeline_cfg,
                    &opts,
                    Source::Channel(meas_rx),
                    control,
                    live,
                    |o| publisher.publish(o),
                )
            })
            .map_err(|e| NodeError::Setup(format!("pipeline thread: {e}")))?
    };

    let summary_of = {
        let (record, ingest_stats, live, opts) = (
            record.clone(),
            ingest_stats.clone(),
            live.clone(),
            opts.clone(),
        );
        let transport = t.name().to_string();
        move |status: &str, saves: SaveCounts| {
            let r = lock(&record);
            let i = ingest_stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let l = live.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let wall = started.elapsed().as_secs_f64();
            NodeSummary::build(status, &transport, &r, &i, &l, &opts, saves, wall)
        }
    };
    let session = SessionInfo {
        config: setup.config.clone(),
        source: match &opts.prior {
            Some(p) => format!("{}; gs_livo node ({})", p.map.source, t.name()),
            None => format!("gs_livo node ({})", t.name()),
        },
    };
    let saver = {
        let summary_of = summary_of.clone();
        let commands = opts.mapping.then(|| cmd_tx.clone());
        Saver::start(
            record.clone(),
            commands,
            Some(est_tx.clone()),
            Some(session.clone()),
            Duration::from_secs_f64(np.save_timeout),
            move || summary_of("running", SaveCounts::default()),
        )
    };
    drop(cmd_tx);

    // Spin: bytes into the queue, saves to the saver, diagnostics every period.
    let ending = spin_until_end(
        t,
        SpinLoop {
            stop: &stop,
            pipeline: &pipeline,
            routes: &routes,
            raw_tx: &raw_tx,
            ingest_stats: &ingest_stats,
            saver: &saver,
            record: &record,
            live: &live,
            diagnostics_pub: &diagnostics_pub,
            np: &np,
            camera: !setup.config.topics.image.is_empty(),
            estimator: &est_tx,
            hint: HintFrames {
                map_frame: setup.config.frames.map.clone(),
                base_t_imu: np
                    .imu_t_base()
                    .map_or_else(|_| Default::default(), |t| t.inverse()),
            },
            static_tf,
            map: opts.prior.as_ref().map(|_| &np.map),
        },
    );
    drop(est_tx);

    // Shutdown: no more input; the backlog within the deadline; the mapper stops at once.
    tracing::info!("gs_livo node stopping ({ending:?})");
    *deadline.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(Instant::now() + Duration::from_secs_f64(np.shutdown_timeout));
    drop(raw_tx);
    pipeline_stop.store(true, Ordering::SeqCst);
    let _ = decoder.join();
    let result = pipeline
        .join()
        .map_err(|_| PipelineError::Panicked("pipeline"))
        .and_then(|r| r);
    let saves = saver.finish();
    let (mut finished, error) = match result {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let status = match (&error, ending) {
        (Some(_), _) => "failed",
        (None, Ending::Signal) => "interrupted",
        _ => "finished",
    };
    let mut summary = summary_of(status, saves);
    summary.pipeline.error = error.clone();
    let final_save = np.save_on_shutdown.then(|| {
        let map = match finished.as_mut() {
            Some(f) => MapSource::Finished {
                map: f.map.as_mut(),
                lidar: f.lidar_map.as_ref(),
            },
            None => MapSource::None("the pipeline failed"),
        };
        save_at_shutdown(&np, &record, &summary, map, &session)
    });
    tracing::info!(
        odometry = summary.odometry.published,
        latency_p95_ms = summary.odometry.latency_ms.p95_ms,
        mapped = summary.mapped_frames,
        "gs_livo node stopped after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(e) = error {
        return Err(NodeError::Pipeline(e));
    }
    Ok(NodeOutcome {
        summary,
        final_save,
    })
}
