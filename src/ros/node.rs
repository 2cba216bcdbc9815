//! The r2r transport: raw (serialized) subscriptions and untyped publishers on a ROS 2
//! installation, so live messages go through the same CDR decoders and encoders as bags and
//! the replay. It only moves bytes; everything else is the node core's.
//!
//! r2r's subscription buffers hold what the QoS depth says and drop silently when full, so
//! every spin drains each subscription at once into the core's own queue, where drops are
//! counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use r2r::qos::QosProfile;

use super::core::{run_node, NodeError, NodeOutcome, NodeSetup};
use super::params::{param_map_from_r2r, split_params, SAVE_TO_PARAM};
use super::transport::{
    Clock, Event, Qos, RawPublisher, Reliability, Spin, SubscriptionId, Transport, TransportError,
};
use crate::config::NODE_NAME;
use crate::sensors::Stamp;

type RawStream = Box<dyn Stream<Item = Vec<u8>> + Unpin>;

fn profile(q: Qos) -> QosProfile {
    let p = QosProfile::default().keep_last(q.depth.max(1));
    let p = match q.reliability {
        Reliability::BestEffort => p.best_effort(),
        Reliability::Reliable => p.reliable(),
    };
    if q.transient_local {
        p.transient_local()
    } else {
        p
    }
}

fn ros_err(e: r2r::Error) -> TransportError {
    TransportError::Setup(format!("ROS: {e}"))
}

struct UntypedPublisher {
    topic: String,
    inner: Mutex<r2r::PublisherUntyped>,
}

impl RawPublisher for UntypedPublisher {
    fn publish(&self, cdr: &[u8], _stamp: Stamp) -> Result<(), TransportError> {
        let p = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        p.publish_raw(cdr).map_err(|e| TransportError::Publish {
            topic: self.topic.clone(),
            message: e.to_string(),
        })
    }
}

/// One r2r node as a transport.
pub struct R2rTransport {
    node: r2r::Node,
    subscriptions: Vec<RawStream>,
    params: Box<dyn Stream<Item = (String, r2r::ParameterValue)> + Unpin>,
    pool: futures::executor::LocalPool,
}

impl Transport for R2rTransport {
    fn name(&self) -> &str {
        "r2r"
    }

    fn advertised_type(&mut self, topic: &str) -> Option<String> {
        let all = self.node.get_topic_names_and_types().ok()?;
        all.get(topic).and_then(|t| t.first().cloned())
    }

    fn subscribe(
        &mut self,
        topic: &str,
        type_name: &str,
        qos: Qos,
    ) -> Result<SubscriptionId, TransportError> {
        let s = self
            .node
            .subscribe_raw(topic, type_name, profile(qos))
            .map_err(|e| {
                TransportError::Setup(format!(
                    "subscribing to {topic} as {type_name}: {e} (is the package that defines it \
                     sourced?)"
                ))
            })?;
        self.subscriptions.push(Box::new(s));
        Ok(self.subscriptions.len() - 1)
    }

    fn advertise(
        &mut self,
        topic: &str,
        type_name: &'static str,
        _definition: &'static str,
        qos: Qos,
    ) -> Result<Arc<dyn RawPublisher>, TransportError> {
        let p = self
            .node
            .create_publisher_untyped(topic, type_name, profile(qos))
            .map_err(ros_err)?;
        Ok(Arc::new(UntypedPublisher {
            topic: topic.into(),
            inner: Mutex::new(p),
        }))
    }

    fn clock(&self) -> Clock {
        let c = self.node.get_ros_clock();
        Arc::new(move || {
            c.lock()
                .ok()
                .and_then(|mut c| c.get_now().ok())
                .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as Stamp)
        })
    }

    fn spin(&mut self, timeout: Duration, on_event: &mut dyn FnMut(Event)) -> Spin {
        self.node.spin_once(timeout);
        self.pool.run_until_stalled();
        for (subscription, s) in self.subscriptions.iter_mut().enumerate() {
            while let Some(Some(cdr)) = s.next().now_or_never() {
                on_event(Event::Message { subscription, cdr });
            }
        }
        while let Some(Some((name, value))) = self.params.next().now_or_never() {
            let value = match value {
                r2r::ParameterValue::String(s) => Some(s),
                _ => None,
            };
            if name == SAVE_TO_PARAM {
                // Back to empty, so that setting the same folder again saves again (r2r reports
                // changed values only).
                if let Ok(mut p) = self.node.params.lock() {
                    if let Some(p) = p.get_mut(&name) {
                        p.value = r2r::ParameterValue::String(String::new());
                    }
                }
            }
            on_event(Event::ParameterSet { name, value });
        }
        Spin::Running
    }
}

/// Runs the node on ROS 2 until SIGINT/SIGTERM; the parameters come from ROS (`--params-file`,
/// `-p`), the pipeline options from `pipeline`.
pub fn run(
    pipeline: crate::pipeline::PipelineOptions,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<NodeOutcome, NodeError> {
    let ctx = r2r::Context::create().map_err(|e| NodeError::Transport(ros_err(e)))?;
    let mut node =
        r2r::Node::create(ctx, NODE_NAME, "").map_err(|e| NodeError::Transport(ros_err(e)))?;
    let name = node.name().unwrap_or_default();
    if name != NODE_NAME {
        tracing::warn!(
            "the node runs as `{name}`, not `{NODE_NAME}`: a parameter file's `{NODE_NAME}:` \
             section does not apply to it (use `{name}:` or `/**:`); check the topics below"
        );
    }
    let origin = format!(
        "ROS parameters of {}",
        node.fully_qualified_name().unwrap_or(name)
    );
    let params = {
        let p = node
            .params
            .lock()
            .map_err(|_| NodeError::Setup("parameter table poisoned".into()))?;
        param_map_from_r2r(p.iter())
    };
    let (config, np) = split_params(&params, &origin)?;
    // Parameter services (`ros2 param`) and `use_sim_time` run on a local executor.
    let (handler, events) = node
        .make_parameter_handler()
        .map_err(|e| NodeError::Transport(ros_err(e)))?;
    let pool = futures::executor::LocalPool::new();
    {
        use futures::task::LocalSpawnExt;
        pool.spawner()
            .spawn_local(handler)
            .map_err(|e| NodeError::Setup(format!("parameter handler: {e}")))?;
    }
    let mut t = R2rTransport {
        node,
        subscriptions: Vec::new(),
        params: Box::new(events),
        pool,
    };
    let setup = NodeSetup {
        config,
        params: np,
        pipeline,
    };
    run_node(&mut t, setup, stop)
}
