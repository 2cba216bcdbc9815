//! The transport interface under the node core: serialized CDR bytes in and out, a clock and
//! save requests. Everything the node does lives in [`super::core`]; a transport only moves bytes
//! (r2r on a ROS 2 installation, a bag replayed in wall-clock time, or a test's channel), so
//! every transport runs the same decoders, queues, threads and drop policy.

use std::sync::Arc;
use std::time::Duration;

use crate::sensors::Stamp;

/// Delivery guarantee of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    BestEffort,
    Reliable,
}

/// The QoS of a subscription or publisher, as ROS 2 profiles name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos {
    pub reliability: Reliability,
    /// Late joiners receive the last `depth` messages (`/tf_static`).
    pub transient_local: bool,
    /// Keep-last history depth.
    pub depth: usize,
}

impl Qos {
    /// Sensor subscriptions: best effort (matches best-effort drivers and reliable publishers
    /// such as `ros2 bag play`), keep the last `depth`.
    pub const fn sensor(depth: usize) -> Self {
        Self {
            reliability: Reliability::BestEffort,
            transient_local: false,
            depth,
        }
    }

    /// Odometry, path, diagnostics: reliable, volatile.
    pub const fn outputs() -> Self {
        Self {
            reliability: Reliability::Reliable,
            transient_local: false,
            depth: 10,
        }
    }

    /// Large, slowly refreshed outputs (map centres, rendered view): only the newest matters.
    pub const fn latest() -> Self {
        Self {
            depth: 1,
            ..Self::outputs()
        }
    }

    /// `/tf`: reliable, deep enough for IMU-rate bursts.
    pub const fn tf() -> Self {
        Self {
            depth: 100,
            ..Self::outputs()
        }
    }

    /// `/tf_static`: reliable and transient local, so late subscribers get the extrinsics.
    pub const fn tf_static() -> Self {
        Self {
            transient_local: true,
            depth: 1,
            ..Self::outputs()
        }
    }
}

/// Index of a subscription, in the order the core subscribed.
pub type SubscriptionId = usize;

/// Errors of a transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport: {0}")]
    Setup(String),
    #[error("publishing on {topic}: {message}")]
    Publish { topic: String, message: String },
}

/// Publishes serialized messages (CDR with the encapsulation header) on one topic. Shared by
/// the core's publishing thread, so it must be thread-safe.
pub trait RawPublisher: Send + Sync {
    /// `stamp` is the message's header stamp (recorders keep it beside the wall time).
    fn publish(&self, cdr: &[u8], stamp: Stamp) -> Result<(), TransportError>;
}

/// The clock the node stamps diagnostics with and measures latency against: system time live,
/// sim time under `use_sim_time`, the replay clock in a replay.
pub type Clock = Arc<dyn Fn() -> Stamp + Send + Sync>;

/// Answer to a save request (`Ok` with what was written, `Err` with why not).
pub type SaveReply = Box<dyn FnOnce(Result<String, String>) + Send>;

/// A request to save the map, trajectory and summary while running.
pub struct SaveRequest {
    /// Target folder; `None`: the node's `node.save_dir`.
    pub dir: Option<String>,
    pub reply: SaveReply,
}

/// What a transport hands the core when it spins.
pub enum Event {
    /// A serialized message on a subscription.
    Message {
        subscription: SubscriptionId,
        cdr: Vec<u8>,
    },
    Save(SaveRequest),
    /// `ros2 param set` of a parameter: `map.save_to` saves into the folder it is set to
    /// (`value`, the string set); the node reads the others at start only.
    ParameterSet {
        name: String,
        value: Option<String>,
    },
}

/// Whether the transport has more to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spin {
    Running,
    /// The input is over (a replay reached the end of its bag).
    Ended,
}

/// Moves bytes between the node core and the world.
pub trait Transport {
    /// A short name for logs (`r2r`, `replay`, ...).
    fn name(&self) -> &str;
    /// The type a publisher advertises on `topic`, where the transport can tell.
    fn advertised_type(&mut self, topic: &str) -> Option<String>;
    fn subscribe(
        &mut self,
        topic: &str,
        type_name: &str,
        qos: Qos,
    ) -> Result<SubscriptionId, TransportError>;
    /// A publisher of `type_name` (whose ros2msg definition recorders need) on `topic`.
    fn advertise(
        &mut self,
        topic: &str,
        type_name: &'static str,
        definition: &'static str,
        qos: Qos,
    ) -> Result<Arc<dyn RawPublisher>, TransportError>;
    fn clock(&self) -> Clock;
    /// Waits at most `timeout` for traffic and hands every pending event to `on_event`.
    fn spin(&mut self, timeout: Duration, on_event: &mut dyn FnMut(Event)) -> Spin;
}
