//! Saving while the node runs and at shutdown: `trajectory.tum` (every published scan-rate
//! pose), `lidar_map.ply` (registered scans, voxel-downsampled), `map.ply` (the Gaussian map,
//! written by the mapper between two frames) and `summary.json`.
//!
//! Saves run on their own thread, so odometry never waits for a disk; requests beyond a small
//! queue are refused at once (a flood of `ros2 topic pub` never blocks anything).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{bounded, Receiver, Sender, TrySendError};

use super::lidar_cloud;
use super::publish::{lock, Record};
use super::summary::{NodeSummary, SaveCounts};
use super::transport::SaveReply;
use crate::config::Config;
use crate::lidar_map::VoxelMap;
use crate::pipeline::{EstimatorCommand, MapStage, PipelineCommand};
use crate::session::{GaussianSection, SessionMap};

/// File names inside a save folder.
pub const TRAJECTORY_FILE: &str = "trajectory.tum";
pub const MAP_FILE: &str = "map.ply";
pub const LIDAR_MAP_FILE: &str = "lidar_map.ply";
pub const SUMMARY_FILE: &str = "summary.json";
/// The map folder a later run or node loads (`map.load`, `gs_livo run --map`).
pub const SESSION_DIR: &str = "map";

/// Saves queued at most; more are refused until one finishes.
const QUEUED_SAVES: usize = 2;

/// Where the maps come from.
pub enum MapSource<'a> {
    /// A running pipeline: the mapper (`None` when mapping is off) and the estimator (the
    /// LiDAR map) are asked through their command channels.
    Running {
        commands: Option<&'a Sender<PipelineCommand>>,
        estimator: Option<&'a Sender<EstimatorCommand>>,
        timeout: Duration,
    },
    /// A finished pipeline's mapper (`None` when mapping was off) and LiDAR map.
    Finished {
        map: Option<&'a mut MapStage>,
        lidar: Option<&'a VoxelMap>,
    },
    /// No map because the pipeline failed: the reason goes into the reply, as an error.
    None(&'a str),
}

/// What a map folder records besides the maps: the rig (from the config) and its source.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub config: Config,
    /// The recording(s) the map comes from (a loaded map's source, then this node).
    pub source: String,
}

/// Asks a running stage for something and waits at most `timeout` for the answer.
fn ask<C, T>(
    to: &Sender<C>,
    make: impl FnOnce(Sender<T>) -> C,
    timeout: Duration,
    who: &str,
) -> Result<T, String> {
    let (tx, rx) = bounded(1);
    match to.try_send(make(tx)) {
        Ok(()) => rx
            .recv_timeout(timeout)
            .map_err(|_| format!("no answer from the {who} in {timeout:?}")),
        Err(TrySendError::Full(_)) => Err(format!("the {who} is busy saving")),
        Err(TrySendError::Disconnected(_)) => Err("the pipeline has stopped".into()),
    }
}

/// The map folder (`DIR/map/`) from the running or finished stages.
fn save_session(
    dir: &Path,
    info: &SessionInfo,
    map: &mut MapSource<'_>,
) -> Result<&'static str, String> {
    let (lidar, gaussian) = match map {
        MapSource::Running {
            commands,
            estimator,
            timeout,
        } => {
            let Some(estimator) = estimator else {
                return Err("no LiDAR map to save".into());
            };
            let lidar = ask(
                estimator,
                |reply| EstimatorCommand::LidarMap { reply },
                *timeout,
                "estimator",
            )?;
            let gaussian = match commands {
                Some(c) => Some(ask(
                    c,
                    |reply| PipelineCommand::CaptureMap { reply },
                    *timeout,
                    "mapper",
                )?),
                None => None,
            };
            (std::borrow::Cow::Owned(lidar), gaussian)
        }
        MapSource::Finished { map, lidar } => {
            let Some(lidar) = lidar else {
                return Err("no LiDAR map to save".into());
            };
            let gaussian = map
                .as_deref_mut()
                .map(|m| GaussianSection::capture(m.mapper_mut()));
            (std::borrow::Cow::Borrowed(*lidar), gaussian)
        }
        MapSource::None(why) => return Err((*why).to_string()),
    };
    let session = SessionMap::from_sections(&info.config, &info.source, &lidar, gaussian);
    session
        .save(&dir.join(SESSION_DIR))
        .map_err(|e| e.to_string())?;
    Ok(SESSION_DIR)
}

/// Writes every output into `dir`; `Ok` lists the files, `Err` says what failed (the files
/// that could be written are still there). With `session`, the map folder too.
pub fn save_all(
    dir: &Path,
    record: &Record,
    summary: &NodeSummary,
    mut map: MapSource<'_>,
    session: Option<&SessionInfo>,
) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut errors = Vec::new();
    let (trajectory, (leaf, points)) = {
        let r = lock(record);
        (r.trajectory.clone(), r.lidar_map.snapshot())
    };
    let tum = dir.join(TRAJECTORY_FILE);
    match crate::eval::tum::write_tum(&tum, &trajectory) {
        Ok(()) => written.push(TRAJECTORY_FILE),
        Err(e) => errors.push(e.to_string()),
    }
    let lidar = dir.join(LIDAR_MAP_FILE);
    match lidar_cloud::write_ply(&lidar, leaf, &points) {
        Ok(()) => written.push(LIDAR_MAP_FILE),
        Err(e) => errors.push(format!("{}: {e}", lidar.display())),
    }
    let ply = dir.join(MAP_FILE);
    match &mut map {
        MapSource::Running {
            commands: Some(commands),
            timeout,
            ..
        } => match ask(
            commands,
            |reply| PipelineCommand::SaveMap {
                path: ply.clone(),
                reply,
            },
            *timeout,
            "mapper",
        ) {
            Ok(Ok(_)) => written.push(MAP_FILE),
            Ok(Err(e)) => errors.push(format!("map: {e}")),
            Err(e) => errors.push(format!("map: {e}")),
        },
        MapSource::Finished {
            map: Some(stage), ..
        } => match stage.save_ply(&ply) {
            Ok(_) => written.push(MAP_FILE),
            Err(e) => errors.push(format!("map: {e}")),
        },
        MapSource::None(why) => errors.push(format!("map: {why}")),
        // Mapping is off: no Gaussian map is expected, so none is no error.
        _ => {}
    }
    if let Some(info) = session {
        match save_session(dir, info, &mut map) {
            Ok(name) => written.push(name),
            Err(e) => errors.push(format!("{SESSION_DIR}/: {e}")),
        }
    }
    match summary.write(&dir.join(SUMMARY_FILE)) {
        Ok(()) => written.push(SUMMARY_FILE),
        Err(e) => errors.push(format!("summary: {e}")),
    }
    let files = written.join(", ");
    if errors.is_empty() {
        Ok(format!("saved {files} in {}", dir.display()))
    } else {
        Err(format!(
            "saved [{files}] in {}; {}",
            dir.display(),
            errors.join("; ")
        ))
    }
}

struct Job {
    dir: PathBuf,
    reply: SaveReply,
}

/// The saving thread and its bounded request queue.
pub struct Saver {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Mutex<SaveCounts>>,
}

impl Saver {
    /// Starts the thread; `summary` gives the node's summary as of the moment of a save.
    pub fn start(
        record: Record,
        commands: Option<Sender<PipelineCommand>>,
        estimator: Option<Sender<EstimatorCommand>>,
        session: Option<SessionInfo>,
        map_timeout: Duration,
        summary: impl Fn() -> NodeSummary + Send + 'static,
    ) -> Self {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = bounded(QUEUED_SAVES);
        let counts = Arc::new(Mutex::new(SaveCounts::default()));
        let c = counts.clone();
        let thread = std::thread::Builder::new()
            .name("gs_livo-save".into())
            .spawn(move || {
                for job in rx {
                    let map = MapSource::Running {
                        commands: commands.as_ref(),
                        estimator: estimator.as_ref(),
                        timeout: map_timeout,
                    };
                    let r = save_all(&job.dir, &record, &summary(), map, session.as_ref());
                    {
                        let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                        match &r {
                            Ok(_) => c.completed += 1,
                            Err(_) => c.failed += 1,
                        }
                    }
                    match &r {
                        Ok(m) => tracing::info!("{m}"),
                        Err(m) => tracing::warn!("{m}"),
                    }
                    (job.reply)(r);
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the save thread: saving while running is off");
        }
        Self {
            jobs: thread.as_ref().map(|_| tx),
            thread,
            counts,
        }
    }

    /// Queues a save into `dir`; answers at once when the queue is full.
    pub fn request(&self, dir: PathBuf, reply: SaveReply) {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requested += 1;
        let Some(jobs) = &self.jobs else {
            reply(Err("saving is unavailable (no save thread)".into()));
            return;
        };
        match jobs.try_send(Job { dir, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                self.counts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .refused_busy += 1;
                (job.reply)(Err(format!(
                    "busy: {QUEUED_SAVES} saves are queued; request for {} refused",
                    job.dir.display()
                )));
            }
        }
    }

    pub fn counts(&self) -> SaveCounts {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finishes the queued saves and stops the thread.
    pub fn finish(mut self) -> SaveCounts {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{LiveStats, PipelineOptions};
    use crate::ros::stats::NodeStats;
    use crate::sensors::PoseStamped;
    use nalgebra::Isometry3;

    fn summary() -> NodeSummary {
        NodeSummary::build(
            "running",
            "test",
            &Default::default(),
            &NodeStats::default(),
            &LiveStats::default(),
            &PipelineOptions::default(),
            SaveCounts::default(),
            1.0,
        )
    }

    fn record_with_poses(n: u64) -> Record {
        let r = Record::default();
        for i in 0..n {
            lock(&r).trajectory.push(PoseStamped {
                stamp: 1_000_000_000 + i,
                pose: Isometry3::translation(i as f64, 0.0, 0.0),
            });
        }
        r
    }

    /// The mapper's answer is waited for; the trajectory holds every pose recorded.
    #[test]
    fn save_writes_trajectory_summary_and_asks_the_mapper() {
        let dir = tempfile::tempdir().unwrap();
        let record = record_with_poses(3);
        let (tx, rx) = bounded(1);
        let mapper = std::thread::spawn(move || {
            let Ok(PipelineCommand::SaveMap { path, reply }) = rx.recv() else {
                panic!("a save asks for the PLY");
            };
            std::fs::write(&path, b"ply").unwrap();
            reply.send(Ok(path)).unwrap();
        });
        let map = MapSource::Running {
            commands: Some(&tx),
            estimator: None,
            timeout: Duration::from_secs(5),
        };
        let r = save_all(dir.path(), &record, &summary(), map, None).unwrap();
        mapper.join().unwrap();
        assert!(r.contains(MAP_FILE) && r.contains(TRAJECTORY_FILE), "{r}");
        let poses = crate::eval::tum::read_tum(&dir.path().join(TRAJECTORY_FILE)).unwrap();
        assert_eq!(poses.len(), 3);
        assert!(dir.path().join(SUMMARY_FILE).exists());
        assert!(dir.path().join(LIDAR_MAP_FILE).exists());

        // A stopped pipeline is reported; the other files are still written.
        let (tx, rx) = bounded::<PipelineCommand>(1);
        drop(rx);
        let map = MapSource::Running {
            commands: Some(&tx),
            estimator: None,
            timeout: Duration::from_millis(10),
        };
        let err = save_all(&dir.path().join("b"), &record, &summary(), map, None).unwrap_err();
        assert!(
            err.contains("stopped") && err.contains(TRAJECTORY_FILE),
            "{err}"
        );
    }

    /// A flood of requests is answered, beyond the queue at once, and nothing blocks.
    #[test]
    fn a_flood_of_requests_is_answered_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = bounded::<PipelineCommand>(4);
        // A slow mapper: each map takes 50 ms.
        let mapper = std::thread::spawn(move || {
            for c in rx {
                if let PipelineCommand::SaveMap { path, reply } = c {
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = reply.send(Ok(path));
                }
            }
        });
        let saver = Saver::start(
            record_with_poses(2),
            Some(tx),
            None,
            None,
            Duration::from_secs(5),
            summary,
        );
        let (answers_tx, answers) = crossbeam::channel::unbounded();
        let t0 = std::time::Instant::now();
        for i in 0..30 {
            let a = answers_tx.clone();
            saver.request(
                dir.path().join(format!("s{i}")),
                Box::new(move |r| a.send(r).unwrap()),
            );
        }
        // Requests return at once, though 30 saves in a row would take 1.5 s.
        assert!(t0.elapsed() < Duration::from_secs(1));
        let counts = saver.finish();
        drop(answers_tx);
        let all: Vec<_> = answers.iter().collect();
        assert_eq!(all.len(), 30, "every request answered");
        let ok = all.iter().filter(|r| r.is_ok()).count() as u64;
        assert!(ok >= 1);
        assert_eq!(counts.requested, 30);
        assert_eq!(counts.completed + counts.refused_busy + counts.failed, 30);
        assert!(counts.refused_busy > 0);
        mapper.join().unwrap();
    }
}
