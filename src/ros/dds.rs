//! The DDS transport: a pure-Rust DDS participant (RustDDS) that speaks ROS 2 on the wire with
//! no ROS installation. Topics are `rt/<name>`, types `pkg::msg::dds_::Type_`, payloads the CDR
//! bytes the project's codecs produce and read (encapsulation header included), so this
//! transport and r2r differ only in how bytes move.
//!
//! Discovery is limited to the interfaces in `GS_LIVO_DDS_INTERFACES` (comma-separated IPv4
//! addresses, e.g. `127.0.0.1` for loopback only); RustDDS also announces itself to the
//! well-known unicast ports on 127.0.0.1, so same-host peers find it without multicast.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustdds::mio::{Events, Poll, PollOpt, Ready, Token};
use rustdds::no_key::{
    DataWriter, Decode, DefaultDecoder, DeserializerAdapter, SerializerAdapter, SimpleDataReader,
};
use rustdds::policy::{Durability, History, Reliability as DdsReliability};
use rustdds::{DomainParticipant, QosPolicies, QosPolicyBuilder, RepresentationIdentifier};
use rustdds::{Timestamp, TopicKind};

use super::core::{run_node, NodeError, NodeOutcome, NodeSetup};
use super::params::split_params;
use super::replay::resolve_topic;
use super::ros_args::{self, RosArgs};
use super::transport::{
    Clock, Event, Qos, RawPublisher, Reliability, Spin, SubscriptionId, Transport, TransportError,
};
use crate::config::NODE_NAME;
use crate::sensors::Stamp;

/// Environment variable restricting the interfaces the participant uses.
pub const INTERFACES_ENV: &str = "GS_LIVO_DDS_INTERFACES";

/// `sensor_msgs/msg/Imu` -> `sensor_msgs::msg::dds_::Imu_` (the DDS type of a ROS 2 message).
pub fn dds_type(ros: &str) -> String {
    let parts: Vec<&str> = ros.split('/').collect();
    match parts.as_slice() {
        [pkg, kind, name] => format!("{pkg}::{kind}::dds_::{name}_"),
        _ => ros.to_string(),
    }
}

/// The inverse of [`dds_type`]; `None` for a type that is not a ROS 2 one.
pub fn ros_type(dds: &str) -> Option<String> {
    let parts: Vec<&str> = dds.split("::").collect();
    match parts.as_slice() {
        [pkg, kind, "dds_", name] => Some(format!("{pkg}/{kind}/{}", name.strip_suffix('_')?)),
        _ => None,
    }
}

/// A resolved ROS topic (`/x/y`) as its DDS topic (`rt/x/y`).
pub fn dds_topic(resolved: &str) -> String {
    format!("rt{resolved}")
}

/// A serialized message without its 4-byte encapsulation header (RustDDS writes and strips
/// the header itself), with the representation it came in.
#[derive(Clone)]
pub struct RawCdr {
    pub encoding: RepresentationIdentifier,
    pub body: bytes::Bytes,
}

impl RawCdr {
    /// The message with its encapsulation header, as the CDR decoders read it.
    pub fn with_header(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.body.len() + 4);
        v.extend_from_slice(&self.encoding.to_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&self.body);
        v
    }
}

/// Errors of passing bytes through (none happen; RustDDS's adapters need an error type).
#[derive(Debug, thiserror::Error)]
#[error("raw CDR: {0}")]
pub struct RawError(String);

/// Passes serialized bytes through RustDDS untouched, in both directions.
pub struct RawAdapter;

impl SerializerAdapter<RawCdr> for RawAdapter {
    type Error = RawError;
    fn output_encoding() -> RepresentationIdentifier {
        RepresentationIdentifier::CDR_LE
    }
    fn to_bytes(value: &RawCdr) -> Result<bytes::Bytes, RawError> {
        Ok(value.body.clone())
    }
}

/// The decoder of [`RawAdapter`]: copies the bytes.
#[derive(Clone)]
pub struct RawDecoder;

impl<'de> Decode<'de, RawCdr> for RawDecoder {
    type Error = RawError;
    fn decode_bytes(
        self,
        input: &'de [u8],
        encoding: RepresentationIdentifier,
    ) -> Result<RawCdr, RawError> {
        Ok(RawCdr {
            encoding,
            body: bytes::Bytes::copy_from_slice(input),
        })
    }
}

impl DeserializerAdapter<RawCdr> for RawAdapter {
    type Error = RawError;
    type Decoded = RawCdr;
    fn supported_encodings() -> &'static [RepresentationIdentifier] {
        &[
            RepresentationIdentifier::CDR_LE,
            RepresentationIdentifier::CDR_BE,
        ]
    }
    fn transform_decoded(decoded: RawCdr) -> RawCdr {
        decoded
    }
}

impl DefaultDecoder<RawCdr> for RawAdapter {
    type Decoder = RawDecoder;
    const DECODER: RawDecoder = RawDecoder;
}

/// ROS 2's QoS profile as DDS policies.
fn policies(q: Qos) -> QosPolicies {
    let reliability = match q.reliability {
        Reliability::BestEffort => DdsReliability::BestEffort,
        Reliability::Reliable => DdsReliability::Reliable {
            max_blocking_time: rustdds::Duration::from_millis(100),
        },
    };
    let durability = if q.transient_local {
        Durability::TransientLocal
    } else {
        Durability::Volatile
    };
    QosPolicyBuilder::new()
        .reliability(reliability)
        .durability(durability)
        .history(History::KeepLast {
            depth: q.depth.clamp(1, i32::MAX as usize) as i32,
        })
        .build()
}

fn setup_err(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Setup(format!("DDS: {what}: {e}"))
}

struct DdsPublisher {
    topic: String,
    writer: Mutex<DataWriter<RawCdr, RawAdapter>>,
}

impl RawPublisher for DdsPublisher {
    fn publish(&self, cdr: &[u8], _stamp: Stamp) -> Result<(), TransportError> {
        let fail = |message: String| TransportError::Publish {
            topic: self.topic.clone(),
            message,
        };
        match cdr.get(..2) {
            Some([0, 1]) => {}
            _ => return Err(fail("not little-endian CDR with its header".into())),
        }
        let body = bytes::Bytes::copy_from_slice(&cdr[4..]);
        let raw = RawCdr {
            encoding: RepresentationIdentifier::CDR_LE,
            body,
        };
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write(raw, Some(Timestamp::now()))
            .map_err(|e| fail(e.to_string()))
    }
}

type Reader = SimpleDataReader<RawCdr, RawAdapter>;

/// Sim time from `/clock` (`builtin_interfaces/Time` after the header), 0 until the first.
fn clock_stamp(cdr: &[u8]) -> Option<Stamp> {
    let le = *cdr.get(1)? == 1;
    let (s, n): ([u8; 4], [u8; 4]) = (
        cdr.get(4..8)?.try_into().ok()?,
        cdr.get(8..12)?.try_into().ok()?,
    );
    let (sec, nsec) = if le {
        (i32::from_le_bytes(s), u32::from_le_bytes(n))
    } else {
        (i32::from_be_bytes(s), u32::from_be_bytes(n))
    };
    (sec >= 0).then(|| sec as u64 * 1_000_000_000 + u64::from(nsec))
}

fn system_ns() -> Stamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Stamp)
}

/// One DDS participant as a transport; see the module docs.
pub struct DdsTransport {
    participant: DomainParticipant,
    publisher: rustdds::Publisher,
    subscriber: rustdds::Subscriber,
    readers: Vec<Reader>,
    /// `/clock` under `use_sim_time`.
    clock_reader: Option<Reader>,
    sim_time: Option<Arc<AtomicU64>>,
    poll: Poll,
    events: Events,
    /// Messages received, and samples RustDDS could not hand over.
    pub received: u64,
    pub read_errors: u64,
}

/// Token of the `/clock` reader in the poll set.
const CLOCK_TOKEN: Token = Token(usize::MAX - 1);

impl DdsTransport {
    /// Joins `domain` (with `interfaces` only, where given); follows `/clock` when `sim_time`.
    pub fn new(
        domain: u16,
        interfaces: Option<Vec<IpAddr>>,
        sim_time: bool,
    ) -> Result<Self, TransportError> {
        let mut b = rustdds::DomainParticipantBuilder::new(domain).same_host_loopback(true);
        if let Some(addrs) = interfaces {
            b = b.with_only_networks(addrs);
        }
        let participant = b.build().map_err(|e| setup_err("participant", e))?;
        let qos = QosPolicyBuilder::new().build();
        let publisher = participant
            .create_publisher(&qos)
            .map_err(|e| setup_err("publisher", e))?;
        let subscriber = participant
            .create_subscriber(&qos)
            .map_err(|e| setup_err("subscriber", e))?;
        let poll = Poll::new().map_err(|e| setup_err("poll", e))?;
        let mut t = Self {
            participant,
            publisher,
            subscriber,
            readers: Vec::new(),
            clock_reader: None,
            sim_time: None,
            poll,
            events: Events::with_capacity(64),
            received: 0,
            read_errors: 0,
        };
        if sim_time {
            // rclcpp's clock subscription: best effort, keep last 1 (matches any publisher).
            let r = t.reader("/clock", "rosgraph_msgs/msg/Clock", Qos::sensor(1))?;
            t.poll
                .register(&r, CLOCK_TOKEN, Ready::readable(), PollOpt::edge())
                .map_err(|e| setup_err("poll", e))?;
            t.clock_reader = Some(r);
            t.sim_time = Some(Arc::new(AtomicU64::new(0)));
        }
        Ok(t)
    }

    fn topic(
        &self,
        resolved: &str,
        type_name: &str,
        qos: &QosPolicies,
    ) -> Result<rustdds::Topic, TransportError> {
        self.participant
            .create_topic(
                dds_topic(resolved),
                dds_type(type_name),
                qos,
                TopicKind::NoKey,
            )
            .map_err(|e| setup_err(&format!("topic {resolved}"), e))
    }

    fn reader(&self, topic: &str, type_name: &str, qos: Qos) -> Result<Reader, TransportError> {
        let resolved = resolve_topic(topic, NODE_NAME);
        let p = policies(qos);
        let t = self.topic(&resolved, type_name, &p)?;
        self.subscriber
            .create_simple_datareader_no_key::<RawCdr, RawAdapter>(&t, Some(p))
            .map_err(|e| setup_err(&format!("subscribing to {resolved}"), e))
    }

    /// Takes every sample `r` holds.
    fn drain(r: &Reader, errors: &mut u64, mut f: impl FnMut(Vec<u8>)) {
        r.drain_read_notifications();
        loop {
            match r.try_take_one() {
                Ok(Some(s)) => f(s.into_value().with_header()),
                Ok(None) => break,
                Err(e) => {
                    *errors += 1;
                    if *errors % 100 == 1 {
                        tracing::warn!("DDS: a sample could not be read ({errors}): {e}");
                    }
                    break;
                }
            }
        }
    }
}

impl Transport for DdsTransport {
    fn name(&self) -> &str {
        "dds"
    }

    /// The type a discovered writer publishes on `topic`; waits up to a second for discovery.
    fn advertised_type(&mut self, topic: &str) -> Option<String> {
        let want = dds_topic(&resolve_topic(topic, NODE_NAME));
        let until = Instant::now() + Duration::from_secs(1);
        loop {
            let found = self
                .participant
                .discovered_writers()
                .into_iter()
                .find(|w| w.publication_topic_data.topic_name == want)
                .and_then(|w| ros_type(&w.publication_topic_data.type_name));
            if found.is_some() || Instant::now() >= until {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn subscribe(
        &mut self,
        topic: &str,
        type_name: &str,
        qos: Qos,
    ) -> Result<SubscriptionId, TransportError> {
        let r = self.reader(topic, type_name, qos)?;
        let id = self.readers.len();
        self.poll
            .register(&r, Token(id), Ready::readable(), PollOpt::edge())
            .map_err(|e| setup_err("poll", e))?;
        self.readers.push(r);
        Ok(id)
    }

    fn advertise(
        &mut self,
        topic: &str,
        type_name: &'static str,
        _definition: &'static str,
        qos: Qos,
    ) -> Result<Arc<dyn RawPublisher>, TransportError> {
        let resolved = resolve_topic(topic, NODE_NAME);
        let p = policies(qos);
        let t = self.topic(&resolved, type_name, &p)?;
        let writer = self
            .publisher
            .create_datawriter_no_key::<RawCdr, RawAdapter>(&t, Some(p))
            .map_err(|e| setup_err(&format!("advertising {resolved}"), e))?;
        Ok(Arc::new(DdsPublisher {
            topic: resolved,
            writer: Mutex::new(writer),
        }))
    }

    fn clock(&self) -> Clock {
        match &self.sim_time {
            Some(t) => {
                let t = t.clone();
                Arc::new(move || t.load(Ordering::Relaxed))
            }
            None => Arc::new(system_ns),
        }
    }

    fn spin(&mut self, timeout: Duration, on_event: &mut dyn FnMut(Event)) -> Spin {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            tracing::warn!("DDS: poll: {e}");
        }
        if let (Some(r), Some(t)) = (&self.clock_reader, &self.sim_time) {
            Self::drain(r, &mut self.read_errors, |cdr| {
                if let Some(s) = clock_stamp(&cdr) {
                    t.fetch_max(s, Ordering::Relaxed);
                }
            });
        }
        // Every reader, not only the ones that fired: edge events can merge.
        let mut received = 0;
        for (subscription, r) in self.readers.iter().enumerate() {
            Self::drain(r, &mut self.read_errors, |cdr| {
                received += 1;
                on_event(Event::Message { subscription, cdr });
            });
        }
        self.received += received;
        Spin::Running
    }
}

/// The domain from `ROS_DOMAIN_ID` (0 when unset), as ROS 2 reads it.
pub fn domain_from_env() -> Result<u16, NodeError> {
    match std::env::var("ROS_DOMAIN_ID") {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|d| *d <= 232)
            .ok_or_else(|| NodeError::Setup(format!("ROS_DOMAIN_ID must be 0..=232, got `{s}`"))),
        _ => Ok(0),
    }
}

/// The interfaces from [`INTERFACES_ENV`] (`None`: every interface).
pub fn interfaces_from_env() -> Result<Option<Vec<IpAddr>>, NodeError> {
    let Ok(s) = std::env::var(INTERFACES_ENV) else {
        return Ok(None);
    };
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|e| NodeError::Setup(format!("{INTERFACES_ENV}: `{a}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Runs the node over DDS until `stop`; the parameters come from the ROS command line.
pub fn run(
    args: &RosArgs,
    pipeline: crate::pipeline::PipelineOptions,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<NodeOutcome, NodeError> {
    let params = args.load()?;
    let sim_time = ros_args::use_sim_time(&params);
    let (config, np) = split_params(&params, &format!("ROS parameters of /{NODE_NAME}"))?;
    let domain = domain_from_env()?;
    let interfaces = interfaces_from_env()?;
    tracing::info!(
        domain,
        sim_time,
        interfaces = ?interfaces,
        "DDS transport: joining the ROS 2 domain"
    );
    let mut t = DdsTransport::new(domain, interfaces, sim_time)?;
    let setup = NodeSetup {
        config,
        params: np,
        pipeline,
    };
    let r = run_node(&mut t, setup, stop);
    if t.read_errors > 0 {
        tracing::warn!("DDS: {} samples could not be read", t.read_errors);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_like_rmw() {
        assert_eq!(
            dds_type("sensor_msgs/msg/PointCloud2"),
            "sensor_msgs::msg::dds_::PointCloud2_"
        );
        assert_eq!(
            ros_type("tf2_msgs::msg::dds_::TFMessage_").as_deref(),
            Some("tf2_msgs/msg/TFMessage")
        );
        assert_eq!(ros_type("DCPSParticipant"), None);
        assert_eq!(dds_topic("/gs_livo/save"), "rt/gs_livo/save");
    }

    #[test]
    fn clock_reads_builtin_time() {
        let mut c = vec![0, 1, 0, 0];
        c.extend_from_slice(&12i32.to_le_bytes());
        c.extend_from_slice(&500u32.to_le_bytes());
        assert_eq!(clock_stamp(&c), Some(12_000_000_500));
        assert_eq!(clock_stamp(&c[..10]), None);
    }
}
