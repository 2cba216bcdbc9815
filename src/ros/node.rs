//! The r2r node: parameters, subscriptions, the pipeline thread, publishers and saving.
//!
//! One thread spins the node. After every `spin_once` it drains each subscription at once into
//! the pipeline's bounded channel (r2r's own buffers hold 10 and drop silently), publishes what
//! the pipeline produced, answers save requests without blocking, and reports diagnostics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Receiver};
use futures::{FutureExt, Stream, StreamExt};
use nalgebra::Isometry3;
use r2r::{diagnostic_msgs, nav_msgs, sensor_msgs, std_msgs, tf2_msgs, Publisher};

use super::convert;
use super::ingest::Ingest;
use super::outputs::{self, Backend, BackendIo, NodeOutput, OutputFrames, PathBuffer, Throttle};
use super::params::{param_map_from_r2r, split_params, NodeParams};
use super::qos;
use super::save::PendingSave;
use super::stats::NodeStats;
use crate::config::{Config, ConfigError, NODE_NAME};
use crate::sensors::measurement::SensorCorrections;
use crate::sensors::Stamp;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("ROS: {0}")]
    Ros(#[from] r2r::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Setup(String),
}

/// Runs the node until SIGINT/SIGTERM, feeding the backend that `make_backend` builds from the
/// node's parameters.
pub fn run(
    make_backend: impl FnOnce(&crate::config::Config) -> Box<dyn Backend>,
) -> Result<(), NodeError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, NODE_NAME, "")?;
    let origin = format!("ROS parameters of {}", node.fully_qualified_name()?);
    let params = {
        let p = node
            .params
            .lock()
            .map_err(|_| NodeError::Setup("parameter table poisoned".into()))?;
        param_map_from_r2r(p.iter())
    };
    let (config, np) = split_params(&params, &origin)?;
    let backend = make_backend(&config);
    tracing::info!(
        lidar = %config.topics.lidar,
        imu = %config.topics.imu,
        image = %config.topics.image,
        backend = backend.name(),
        "gs_livo node starting"
    );

    // Parameter services (`ros2 param`) and `use_sim_time` handling run on a local executor.
    let (param_handler, mut param_events) = node.make_parameter_handler()?;
    let mut pool = futures::executor::LocalPool::new();
    {
        use futures::task::LocalSpawnExt;
        pool.spawner()
            .spawn_local(param_handler)
            .map_err(|e| NodeError::Setup(format!("parameter handler: {e}")))?;
    }

    let running = Arc::new(AtomicBool::new(true));
    {
        let r = running.clone();
        ctrlc::set_handler(move || r.store(false, Ordering::SeqCst))
            .map_err(|e| NodeError::Setup(format!("signal handler: {e}")))?;
    }

    let mut lidar_sub =
        node.subscribe::<sensor_msgs::msg::PointCloud2>(&config.topics.lidar, qos::sensor(10))?;
    let mut imu_sub =
        node.subscribe::<sensor_msgs::msg::Imu>(&config.topics.imu, qos::sensor(400))?;
    let camera = !config.topics.image.is_empty();
    let compressed = config.topics.image.ends_with("/compressed");
    let mut image_sub = if camera && !compressed {
        Some(node.subscribe::<sensor_msgs::msg::Image>(&config.topics.image, qos::sensor(10))?)
    } else {
        None
    };
    let mut compressed_sub = if camera && compressed {
        Some(node.subscribe::<sensor_msgs::msg::CompressedImage>(
            &config.topics.image,
            qos::sensor(10),
        )?)
    } else {
        None
    };
    // A topic, not a service: std_srvs and map_msgs are not among the interfaces r2r bundles
    // for type-checking without ROS, and a folder name is all a save needs.
    let mut save_sub = node.subscribe::<std_msgs::msg::String>("~/save", qos::outputs())?;

    let mut out = Outputs::create(&mut node, &config, &np)?;

    let (meas_tx, meas_rx) = bounded(np.queue_capacity);
    let (cmd_tx, cmd_rx) = bounded(4);
    let (out_tx, out_rx) = bounded(1024);
    let backend_thread = std::thread::Builder::new()
        .name("gs_livo-pipeline".into())
        .spawn(move || {
            backend.run(BackendIo {
                measurements: meas_rx,
                commands: cmd_rx,
                outputs: out_tx,
            })
        })
        .map_err(|e| NodeError::Setup(format!("pipeline thread: {e}")))?;

    let mut ingest = Ingest::new(meas_tx, SensorCorrections::from_config(&config));
    let mut pending: Vec<PendingSave> = Vec::new();
    let diag_period = Duration::from_secs_f64(np.diagnostics_period);
    let mut last_diag = Instant::now();
    let clock = node.get_ros_clock();

    while running.load(Ordering::SeqCst) {
        node.spin_once(Duration::from_millis(2));
        pool.run_until_stalled();

        drain(&mut lidar_sub, |m| {
            ingest.cloud(&convert::pointcloud2_from_r2r(m));
        });
        drain(&mut imu_sub, |m| {
            ingest.imu(&convert::imu_from_r2r(m));
        });
        if let Some(s) = image_sub.as_mut() {
            drain(s, |m| {
                ingest.image(&convert::image_from_r2r(m));
            });
        }
        if let Some(s) = compressed_sub.as_mut() {
            drain(s, |m| {
                ingest.compressed_image(&convert::compressed_image_from_r2r(m));
            });
        }
        drain(&mut param_events, |(name, _)| {
            tracing::warn!("parameter `{name}` changed at runtime: takes effect after a restart");
        });
        drain(&mut save_sub, |req| {
            let dir = match req.data.trim() {
                "" => np.save_dir.clone(),
                d => d.to_string(),
            };
            tracing::info!("save requested into {dir}");
            pending.push(PendingSave::start(dir.as_ref(), &out.trajectory, &cmd_tx));
        });
        pending.retain_mut(|save| {
            let done = save.poll();
            if done {
                report_save(save);
            }
            !done
        });
        out.publish_all(&out_rx, &mut ingest.stats);

        if backend_thread.is_finished() {
            tracing::error!("the pipeline stopped; shutting down");
            break;
        }
        if last_diag.elapsed() >= diag_period {
            let dt = last_diag.elapsed().as_secs_f64();
            last_diag = Instant::now();
            let (depth, capacity) = ingest.queue();
            let report = ingest.stats.report(dt, depth, capacity, camera);
            let now = ros_now(&clock);
            if let Err(e) = out
                .diagnostics
                .publish(&convert::diagnostics_to_r2r(&report, now, NODE_NAME))
            {
                tracing::debug!("diagnostics not published: {e}");
            }
        }
    }

    tracing::info!("gs_livo node stopping");
    out.publish_all(&out_rx, &mut ingest.stats);
    if np.save_on_shutdown {
        let mut save = PendingSave::start(np.save_dir.as_ref(), &out.trajectory, &cmd_tx);
        save.wait(Duration::from_secs_f64(np.save_timeout));
        report_save(&save);
    }
    for mut save in pending {
        save.wait(Duration::from_secs(1));
        report_save(&save);
    }
    drop(ingest);
    drop(cmd_tx);
    // Keep draining so a pipeline flushing its last outputs cannot block on a full channel.
    while !backend_thread.is_finished() {
        while out_rx.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    backend_thread
        .join()
        .map_err(|_| NodeError::Setup("the pipeline thread panicked".into()))?;
    Ok(())
}

/// Takes every message a stream holds right now, without waiting.
fn drain<S: Stream + Unpin>(s: &mut S, mut f: impl FnMut(S::Item)) {
    while let Some(Some(m)) = s.next().now_or_never() {
        f(m);
    }
}

fn report_save(save: &PendingSave) {
    if save.errors.is_empty() {
        tracing::info!("{}", save.summary());
    } else {
        tracing::warn!("{}", save.summary());
    }
}

/// The ROS clock (sim time under `use_sim_time`), as a stamp.
fn ros_now(clock: &Arc<std::sync::Mutex<r2r::Clock>>) -> Stamp {
    clock
        .lock()
        .ok()
        .and_then(|mut c| c.get_now().ok())
        .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as Stamp)
}

/// Publishers and the state behind them (path, trajectory, throttles).
struct Outputs {
    frames: OutputFrames,
    publish_tf: bool,
    publish_imu_odometry: bool,
    map_max_points: usize,
    odometry: Publisher<nav_msgs::msg::Odometry>,
    imu_odometry: Publisher<nav_msgs::msg::Odometry>,
    path: Publisher<nav_msgs::msg::Path>,
    tf: Publisher<tf2_msgs::msg::TFMessage>,
    registered: Publisher<sensor_msgs::msg::PointCloud2>,
    map: Publisher<sensor_msgs::msg::PointCloud2>,
    rendered: Publisher<sensor_msgs::msg::Image>,
    diagnostics: Publisher<diagnostic_msgs::msg::DiagnosticArray>,
    path_buffer: PathBuffer,
    map_throttle: Throttle,
    /// Every scan-rate pose published, for the TUM file.
    trajectory: Vec<(Stamp, Isometry3<f64>)>,
    // Kept alive so late joiners still receive the static transforms.
    _tf_static: Publisher<tf2_msgs::msg::TFMessage>,
}

impl Outputs {
    fn create(node: &mut r2r::Node, config: &Config, np: &NodeParams) -> Result<Self, NodeError> {
        let frames = OutputFrames::from_config(config);
        let tf_static =
            node.create_publisher::<tf2_msgs::msg::TFMessage>("/tf_static", qos::tf_static())?;
        tf_static.publish(&convert::tf_to_r2r(&outputs::static_transforms(
            config, &frames,
        )))?;
        Ok(Self {
            publish_tf: np.publish_tf,
            publish_imu_odometry: np.publish_imu_odometry,
            map_max_points: np.map_max_points,
            odometry: node.create_publisher("odometry", qos::outputs())?,
            imu_odometry: node.create_publisher("odometry/imu", qos::outputs())?,
            path: node.create_publisher("path", qos::outputs())?,
            tf: node.create_publisher("/tf", qos::tf())?,
            registered: node.create_publisher("cloud_registered", qos::outputs())?,
            map: node.create_publisher("map/points", qos::latest())?,
            rendered: node.create_publisher("render/image", qos::latest())?,
            diagnostics: node.create_publisher("/diagnostics", qos::outputs())?,
            path_buffer: PathBuffer::new(np.path_max_poses),
            map_throttle: Throttle::new(np.map_publish_period),
            trajectory: Vec::new(),
            frames,
            _tf_static: tf_static,
        })
    }

    fn publish_all(&mut self, rx: &Receiver<NodeOutput>, stats: &mut NodeStats) {
        while let Ok(o) = rx.try_recv() {
            if let Err(e) = self.publish(o, stats) {
                stats.publish_errors += 1;
                tracing::debug!("publish failed: {e}");
            }
        }
    }

    fn publish(&mut self, o: NodeOutput, stats: &mut NodeStats) -> Result<(), r2r::Error> {
        let f = &self.frames;
        match o {
            NodeOutput::Odometry(est) => {
                self.odometry
                    .publish(&convert::odometry_to_r2r(&outputs::odometry_msg(&est, f)))?;
                stats.odometry_published += 1;
                self.trajectory.push((est.stamp, est.pose));
                self.path_buffer.push(est.stamp, est.pose);
                self.path
                    .publish(&convert::path_to_r2r(&self.path_buffer.msg(f)))?;
                if self.publish_tf {
                    let t = outputs::transform_msg(est.stamp, &f.odom, &f.base_link, &est.pose);
                    let tf = crate::bag::msgs::TfMessage {
                        transforms: vec![t],
                    };
                    self.tf.publish(&convert::tf_to_r2r(&tf))?;
                }
            }
            NodeOutput::ImuOdometry(est) => {
                if self.publish_imu_odometry {
                    self.imu_odometry
                        .publish(&convert::odometry_to_r2r(&outputs::odometry_msg(&est, f)))?;
                }
            }
            NodeOutput::RegisteredScan(cloud) => {
                let m = outputs::cloud_xyzi_msg(&cloud, &f.odom);
                self.registered.publish(&convert::pointcloud2_to_r2r(m))?;
            }
            NodeOutput::MapCentres(m) => {
                if self.map_throttle.ready(m.stamp) {
                    let msg = outputs::map_centres_msg(&m, &f.odom, self.map_max_points);
                    self.map.publish(&convert::pointcloud2_to_r2r(msg))?;
                }
            }
            NodeOutput::Rendered(img) => {
                let m = outputs::image_msg(&img, &f.camera);
                self.rendered.publish(&convert::image_to_r2r(m))?;
            }
        }
        Ok(())
    }
}
