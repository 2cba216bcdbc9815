//! A transport that plays a bag into the node core in wall-clock time and records every message
//! the node publishes: `ros2 bag play` and `ros2 bag record` around the node, without ROS.
//!
//! Messages of the subscribed topics are delivered one by one in log-time order when the
//! replay clock (`t0 + rate * wall time since start`) reaches them; the core then runs exactly
//! as under r2r (same queues, threads, drop policy). Published messages go to
//! `published.mcap`: log time on the replay clock (as `ros2 bag record` under sim time, so the
//! node's latency is log time minus header stamp), publish time on the wall clock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use super::transport::{
    Clock, Event, Qos, RawPublisher, SaveRequest, Spin, SubscriptionId, Transport, TransportError,
};
use crate::bag::{BagError, BagReader, BagWriter, WriterOptions};
use crate::sensors::Stamp;

/// File the replay records the node's publications into.
pub const PUBLISHED_FILE: &str = "published.mcap";

/// How to play.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// Bag seconds per wall second; 0: as fast as the reader goes.
    pub rate: f64,
    /// Record publications into this folder's `published.mcap` (`None`: do not record).
    pub record_dir: Option<PathBuf>,
    /// Node name, for `~/` topics.
    pub node_name: String,
    /// Save requests at these bag seconds after the first message (`--save-at`).
    pub save_at: Vec<f64>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            rate: 1.0,
            record_dir: None,
            node_name: crate::config::NODE_NAME.into(),
            save_at: Vec::new(),
        }
    }
}

/// A ROS name as a global topic: `x` -> `/x`, `~/x` -> `/<node>/x`.
pub fn resolve_topic(name: &str, node_name: &str) -> String {
    if let Some(rest) = name.strip_prefix("~/") {
        format!("/{node_name}/{rest}")
    } else if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    }
}

/// The replay clock: bag time as the wall clock advances at `rate`.
struct ReplayClock {
    t0: Stamp,
    rate: f64,
    started: Mutex<Option<Instant>>,
    /// As fast as possible: the newest delivered stamp.
    newest: AtomicU64,
}

impl ReplayClock {
    fn now(&self) -> Stamp {
        if self.rate <= 0.0 {
            return self.newest.load(Ordering::SeqCst).max(self.t0);
        }
        match *self.started.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(w0) => self.t0 + (w0.elapsed().as_secs_f64() * self.rate * 1e9) as Stamp,
            None => self.t0,
        }
    }
}

type SharedWriter = Arc<Mutex<Option<BagWriter>>>;

struct Recorder {
    topic: String,
    type_name: &'static str,
    definition: &'static str,
    writer: SharedWriter,
    clock: Arc<ReplayClock>,
}

fn wall_ns() -> Stamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Stamp)
}

impl RawPublisher for Recorder {
    fn publish(&self, cdr: &[u8], _stamp: Stamp) -> Result<(), TransportError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = w.as_mut() else {
            return Ok(());
        };
        w.write_cdr(
            &self.topic,
            self.type_name,
            self.definition,
            self.clock.now(),
            wall_ns(),
            cdr,
        )
        .map_err(|e| TransportError::Publish {
            topic: self.topic.clone(),
            message: e.to_string(),
        })
    }
}

enum Played {
    Message(SubscriptionId, Vec<u8>),
    Done(Result<u64, String>),
}

/// Plays a bag into the node core; see the module docs.
pub struct ReplayTransport {
    bag: PathBuf,
    options: ReplayOptions,
    types: HashMap<String, String>,
    subscriptions: Vec<String>,
    clock: Arc<ReplayClock>,
    writer: SharedWriter,
    record_tmp: Option<PathBuf>,
    played: Option<Receiver<Played>>,
    player: Option<JoinHandle<()>>,
    halt: Arc<AtomicBool>,
    saves_tx: Sender<SaveRequest>,
    saves_rx: Receiver<SaveRequest>,
    injected_tx: Sender<(String, Vec<u8>)>,
    injected_rx: Receiver<(String, Vec<u8>)>,
    params_tx: Sender<(String, Option<String>)>,
    params_rx: Receiver<(String, Option<String>)>,
    save_at: Vec<f64>,
    /// Messages delivered, and how the player ended.
    pub delivered: u64,
    pub outcome: Option<Result<u64, String>>,
}

impl ReplayTransport {
    pub fn open(bag: &Path, options: ReplayOptions) -> Result<Self, BagError> {
        let reader = BagReader::open(bag)?;
        let types = reader
            .topics()
            .iter()
            .map(|t| (t.name.clone(), t.type_name.clone()))
            .collect();
        let t0 = reader
            .messages(&[])?
            .find_map(|m| m.ok())
            .map_or(0, |m| m.log_time);
        let (writer, record_tmp) = match &options.record_dir {
            Some(dir) => {
                let tmp = dir.join(".published_bag");
                let w = BagWriter::create_with(&tmp, WriterOptions::streaming())?;
                (Some(w), Some(tmp))
            }
            None => (None, None),
        };
        let (saves_tx, saves_rx) = unbounded();
        let (injected_tx, injected_rx) = unbounded();
        let (params_tx, params_rx) = unbounded();
        let mut save_at = options.save_at.clone();
        save_at.sort_by(|a, b| b.total_cmp(a));
        Ok(Self {
            bag: bag.to_path_buf(),
            clock: Arc::new(ReplayClock {
                t0,
                rate: options.rate,
                started: Mutex::new(None),
                newest: AtomicU64::new(t0),
            }),
            options,
            types,
            subscriptions: Vec::new(),
            writer: Arc::new(Mutex::new(writer)),
            record_tmp,
            played: None,
            player: None,
            halt: Arc::new(AtomicBool::new(false)),
            saves_tx,
            saves_rx,
            injected_tx,
            injected_rx,
            params_tx,
            params_rx,
            save_at,
            delivered: 0,
            outcome: None,
        })
    }

    /// Sends save requests into the running node (tests, the CLI's `--save-at`).
    pub fn save_handle(&self) -> Sender<SaveRequest> {
        self.saves_tx.clone()
    }

    /// Sends messages (topic, CDR) into the running node as if another node published them,
    /// e.g. an rviz `/initialpose`; a topic the node does not subscribe to is ignored.
    pub fn inject_handle(&self) -> Sender<(String, Vec<u8>)> {
        self.injected_tx.clone()
    }

    /// Parameter sets while playing (name and string value), as `ros2 param set` gives them to
    /// a live node.
    pub fn parameter_handle(&self) -> Sender<(String, Option<String>)> {
        self.params_tx.clone()
    }

    fn start_player(&mut self) {
        let (tx, rx) = unbounded();
        let bag = self.bag.clone();
        let topics = self.subscriptions.clone();
        let clock = self.clock.clone();
        let halt = self.halt.clone();
        *clock.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let player = std::thread::Builder::new()
            .name("gs_livo-replay".into())
            .spawn(move || {
                let r = play(&bag, &topics, &clock, &halt, &tx);
                let _ = tx.send(Played::Done(r));
            });
        match player {
            Ok(h) => self.player = Some(h),
            Err(e) => {
                let _ = self.outcome.insert(Err(format!("replay thread: {e}")));
            }
        }
        self.played = Some(rx);
    }

    /// Stops the player and closes `published.mcap`; returns its path.
    pub fn finish(mut self) -> Result<Option<PathBuf>, BagError> {
        self.halt.store(true, Ordering::SeqCst);
        if let Some(h) = self.player.take() {
            let _ = h.join();
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (Some(w), Some(tmp), Some(dir)) = (writer, &self.record_tmp, &self.options.record_dir)
        else {
            return Ok(None);
        };
        w.finish()?;
        let src = std::fs::read_dir(tmp)
            .map_err(|e| BagError::io(tmp, e))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "mcap"))
            .ok_or_else(|| BagError::io(tmp, std::io::Error::other("no .mcap written")))?;
        let dst = dir.join(PUBLISHED_FILE);
        std::fs::rename(&src, &dst).map_err(|e| BagError::io(&dst, e))?;
        let _ = std::fs::remove_dir_all(tmp);
        Ok(Some(dst))
    }
}

/// Delivers the messages of `topics` (index = subscription id) at their replay time.
fn play(
    bag: &Path,
    topics: &[String],
    clock: &ReplayClock,
    halt: &AtomicBool,
    tx: &Sender<Played>,
) -> Result<u64, String> {
    let reader = BagReader::open(bag).map_err(|e| e.to_string())?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut n = 0u64;
    let mut unreadable = 0u64;
    for m in reader.messages(&names).map_err(|e| e.to_string())? {
        if halt.load(Ordering::Relaxed) {
            break;
        }
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                unreadable += 1;
                if unreadable % 100 == 1 {
                    tracing::warn!("replay: unreadable message skipped ({unreadable}): {e}");
                }
                continue;
            }
        };
        let Some(id) = topics.iter().position(|t| *t == m.topic) else {
            continue;
        };
        if clock.rate > 0.0 {
            let due = m.log_time.saturating_sub(clock.t0);
            loop {
                let now = clock.now().saturating_sub(clock.t0);
                if now >= due || halt.load(Ordering::Relaxed) {
                    break;
                }
                let wait = (due - now) as f64 / 1e9 / clock.rate;
                std::thread::sleep(Duration::from_secs_f64(wait.min(0.05)));
            }
        } else {
            clock.newest.fetch_max(m.log_time, Ordering::SeqCst);
        }
        if tx.send(Played::Message(id, m.data)).is_err() {
            break;
        }
        n += 1;
    }
    Ok(n)
}

impl Transport for ReplayTransport {
    fn name(&self) -> &str {
        "replay"
    }

    fn advertised_type(&mut self, topic: &str) -> Option<String> {
        self.types.get(topic).cloned()
    }

    fn subscribe(
        &mut self,
        topic: &str,
        _type_name: &str,
        _qos: Qos,
    ) -> Result<SubscriptionId, TransportError> {
        if self.played.is_some() {
            return Err(TransportError::Setup(
                "subscriptions must come before the first spin".into(),
            ));
        }
        self.subscriptions.push(topic.to_string());
        Ok(self.subscriptions.len() - 1)
    }

    fn advertise(
        &mut self,
        topic: &str,
        type_name: &'static str,
        definition: &'static str,
        _qos: Qos,
    ) -> Result<Arc<dyn RawPublisher>, TransportError> {
        Ok(Arc::new(Recorder {
            topic: resolve_topic(topic, &self.options.node_name),
            type_name,
            definition,
            writer: self.writer.clone(),
            clock: self.clock.clone(),
        }))
    }

    fn clock(&self) -> Clock {
        let c = self.clock.clone();
        Arc::new(move || c.now())
    }

    fn spin(&mut self, timeout: Duration, on_event: &mut dyn FnMut(Event)) -> Spin {
        if self.played.is_none() {
            self.start_player();
        }
        while let Ok(s) = self.saves_rx.try_recv() {
            on_event(Event::Save(s));
        }
        while let Ok((name, value)) = self.params_rx.try_recv() {
            on_event(Event::ParameterSet { name, value });
        }
        while let Ok((topic, cdr)) = self.injected_rx.try_recv() {
            if let Some(subscription) = self.subscriptions.iter().position(|t| *t == topic) {
                on_event(Event::Message { subscription, cdr });
            }
        }
        let elapsed = (self.clock.now().saturating_sub(self.clock.t0)) as f64 / 1e9;
        while self.save_at.last().is_some_and(|&t| t <= elapsed) {
            self.save_at.pop();
            on_event(Event::Save(SaveRequest {
                dir: None,
                reply: Box::new(|r| match r {
                    Ok(m) => tracing::info!("--save-at: {m}"),
                    Err(e) => tracing::warn!("--save-at: {e}"),
                }),
            }));
        }
        let Some(rx) = self.played.clone() else {
            return Spin::Ended;
        };
        let deadline = Instant::now() + timeout;
        loop {
            match rx.recv_deadline(deadline) {
                Ok(Played::Message(subscription, cdr)) => {
                    self.delivered += 1;
                    on_event(Event::Message { subscription, cdr });
                }
                Ok(Played::Done(r)) => {
                    if let Err(e) = &r {
                        tracing::error!("replay failed: {e}");
                    }
                    self.outcome = Some(r);
                    return Spin::Ended;
                }
                Err(RecvTimeoutError::Timeout) => return Spin::Running,
                Err(RecvTimeoutError::Disconnected) => return Spin::Ended,
            }
            if Instant::now() >= deadline {
                return Spin::Running;
            }
        }
    }
}

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Bag(#[from] BagError),
    #[error(transparent)]
    Node(#[from] super::core::NodeError),
    #[error("replay: {0}")]
    Player(String),
}

/// What a replay produced.
pub struct ReplayOutcome {
    pub node: super::core::NodeOutcome,
    /// `published.mcap`, when recording.
    pub published: Option<PathBuf>,
    /// Messages the player delivered.
    pub delivered: u64,
}

/// Plays `bag` into a node core set up by `setup` until the bag ends or `stop` is set.
pub fn replay_bag(
    bag: &Path,
    setup: super::core::NodeSetup,
    options: ReplayOptions,
    stop: Arc<AtomicBool>,
) -> Result<ReplayOutcome, ReplayError> {
    let mut t = ReplayTransport::open(bag, options)?;
    let node = super::core::run_node(&mut t, setup, stop);
    let outcome = t.outcome.clone();
    let delivered = t.delivered;
    let published = t.finish()?;
    let node = node?;
    if let Some(Err(e)) = outcome {
        return Err(ReplayError::Player(e));
    }
    Ok(ReplayOutcome {
        node,
        published,
        delivered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_like_ros() {
        assert_eq!(resolve_topic("odometry", "gs_livo"), "/odometry");
        assert_eq!(resolve_topic("~/save", "gs_livo"), "/gs_livo/save");
        assert_eq!(resolve_topic("/tf", "gs_livo"), "/tf");
    }
}
