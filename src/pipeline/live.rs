//! The pipeline behind the ROS 2 node: live flow (bounded queues, drop-newest, counted) over the
//! node's channels ([`crate::ros::outputs::BackendIo`]).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crossbeam::channel::TrySendError;

use super::stages::{run_pipeline, LiveStats, Output, Source};
use super::{Flow, PipelineOptions};
use crate::config::Config;
use crate::ros::outputs::{Backend, BackendCommand, BackendIo, NodeOutput};

/// What the node publishes for one pipeline output.
pub fn node_output(o: Output) -> NodeOutput {
    match o {
        Output::Pose(f) => NodeOutput::Odometry(f.estimate),
        Output::Registered(c) => NodeOutput::RegisteredScan(c),
        Output::Render(r) => NodeOutput::Rendered(r.render),
        Output::Centres(c) => NodeOutput::MapCentres(c),
    }
}

/// The estimator + mapper pipeline as the node's backend.
pub struct PipelineBackend {
    config: Config,
    opts: PipelineOptions,
}

impl PipelineBackend {
    /// Live flow; the node's ingest applies the unit and clock corrections, so the estimator
    /// does not apply them again.
    pub fn new(config: Config, opts: PipelineOptions) -> Self {
        Self {
            config,
            opts: PipelineOptions {
                flow: Flow::Live,
                inputs_corrected: true,
                ..opts
            },
        }
    }
}

impl Backend for PipelineBackend {
    fn name(&self) -> &str {
        "gs_livo pipeline"
    }

    fn run(self: Box<Self>, io: BackendIo) {
        let stats = Arc::new(Mutex::new(LiveStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let BackendIo {
            measurements,
            commands,
            outputs,
        } = io;
        let mut dropped = 0u64;
        let answer = |cmd: BackendCommand| match cmd {
            BackendCommand::SaveMap { dir, reply } => {
                // The map lives in the mapper thread until shutdown.
                let _ = reply.send(Err(format!(
                    "saving into {} while running is not supported yet; the map is written at shutdown",
                    dir.display()
                )));
            }
        };
        let result = run_pipeline(
            &self.config,
            &self.opts,
            Source::Channel(measurements),
            stop,
            stats.clone(),
            |o| {
                while let Ok(c) = commands.try_recv() {
                    answer(c);
                }
                match outputs.try_send(node_output(o)) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped += 1;
                        if dropped % 100 == 1 {
                            tracing::warn!("node output queue full: {dropped} outputs dropped");
                        }
                    }
                }
            },
        );
        match result {
            Ok(_) => {
                let s = stats.lock().unwrap_or_else(|e| e.into_inner());
                tracing::info!(
                    frames = s.frames,
                    mapped = s.mapped_frames,
                    mapper_dropped = s.drops.mapper_frames,
                    outputs_dropped = s.drops.outputs + dropped,
                    "pipeline finished"
                );
            }
            Err(e) => tracing::error!("pipeline failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::{ImuSample, Measurement};
    use crossbeam::channel::bounded;
    use nalgebra::Vector3;

    /// The backend consumes the node's channels, runs the estimator on live input, and ends
    /// when the measurement channel closes.
    #[test]
    fn backend_runs_on_channels_and_ends_when_input_closes() {
        let (mtx, mrx) = bounded(4096);
        let (_ctx, crx) = bounded(1);
        let (otx, orx) = bounded(1024);
        let opts = PipelineOptions {
            mapping: false,
            ..Default::default()
        };
        let backend = Box::new(PipelineBackend::new(Config::default(), opts));
        let h = std::thread::spawn(move || {
            backend.run(BackendIo {
                measurements: mrx,
                commands: crx,
                outputs: otx,
            })
        });
        // Static IMU only: the filter initialises, no scan -> no odometry.
        for i in 0..300u64 {
            mtx.send(Measurement::Imu(ImuSample {
                stamp: 1_000_000_000 + i * 5_000_000,
                gyro: Vector3::zeros(),
                accel: Vector3::new(0.0, 0.0, 9.81),
            }))
            .unwrap();
        }
        drop(mtx);
        h.join().unwrap();
        assert!(orx.try_recv().is_err());
    }
}
