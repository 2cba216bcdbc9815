//! A backend that consumes measurements without estimating anything.
//!
//! It stands in while no estimator pipeline is linked into the node, so that `gs_livo node`
//! can already be checked against live sensors and bags (rates, drops and decode errors show in
//! /diagnostics). It publishes nothing and refuses to save a map.

use super::outputs::{Backend, BackendCommand, BackendIo};
use crate::sensors::measurement::SensorKind;

#[derive(Debug, Default)]
pub struct PassiveBackend;

impl Backend for PassiveBackend {
    fn name(&self) -> &str {
        "passive (no estimator)"
    }

    fn run(self: Box<Self>, io: BackendIo) {
        let mut counts = [0u64; 3];
        loop {
            crossbeam::channel::select! {
                recv(io.measurements) -> m => match m {
                    Ok(m) => counts[m.kind().index()] += 1,
                    Err(_) => break,
                },
                recv(io.commands) -> c => match c {
                    Ok(BackendCommand::SaveMap { reply, .. }) => {
                        let _ = reply.send(Err("no estimator is running: no map to save".into()));
                    }
                    Err(_) => break,
                },
            }
        }
        for k in SensorKind::ALL {
            tracing::info!(
                sensor = k.name(),
                messages = counts[k.index()],
                "passive backend done"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::{ImuSample, Measurement};

    #[test]
    fn consumes_until_disconnected_and_refuses_saves() {
        let (mtx, mrx) = crossbeam::channel::bounded(4);
        let (ctx, crx) = crossbeam::channel::bounded(1);
        let (otx, orx) = crossbeam::channel::bounded(1);
        let h = std::thread::spawn(move || {
            Box::new(PassiveBackend).run(BackendIo {
                measurements: mrx,
                commands: crx,
                outputs: otx,
            })
        });
        for i in 0..10 {
            mtx.send(Measurement::Imu(ImuSample {
                stamp: i,
                gyro: Default::default(),
                accel: Default::default(),
            }))
            .unwrap();
        }
        let (rtx, rrx) = crossbeam::channel::bounded(1);
        ctx.send(BackendCommand::SaveMap {
            dir: "x".into(),
            reply: rtx,
        })
        .unwrap();
        assert!(rrx.recv().unwrap().is_err());
        drop(mtx);
        h.join().unwrap();
        assert!(orx.try_recv().is_err(), "publishes nothing");
    }
}
