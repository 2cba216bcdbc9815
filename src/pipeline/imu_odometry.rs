//! Odometry at IMU rate: the newest scan-updated state, propagated through each IMU sample that
//! arrives after it (the filter itself is untouched). A controller or a motion planner needs
//! pose at 100-400 Hz, while the filter's updates come at the scan rate.

use std::collections::VecDeque;

use nalgebra::Vector3;

use super::port::StateEstimate;
use crate::estimator::ieskf::{step, NoiseVec};
use crate::estimator::state::State;
use crate::sensors::{stamp_diff_secs, ImuSample, Stamp};

/// Longest step integrated between two samples (s): a gap longer than this is not bridged by
/// extrapolation, the next scan update re-anchors instead.
const MAX_STEP: f64 = 0.1;

/// Propagates the last scan's state through newer IMU samples.
#[derive(Debug, Default)]
pub struct ImuOdometry {
    /// Multiplies accelerations (IMUs that report in g).
    accel_scale: f64,
    /// The state at the newest scan end, then propagated: (state, its time).
    current: Option<(State, Stamp)>,
    /// Samples after the newest scan end, to re-propagate when a scan update lands late.
    recent: VecDeque<ImuSample>,
    /// The newest sample already emitted (each sample is published once).
    emitted: Stamp,
}

impl ImuOdometry {
    pub fn new(accel_scale: f64) -> Self {
        Self {
            accel_scale,
            ..Default::default()
        }
    }

    /// One IMU sample: the propagated estimate at its stamp, once a scan has anchored the state.
    pub fn on_imu(&mut self, s: &ImuSample) -> Option<StateEstimate> {
        if let Some(last) = self.recent.back() {
            if s.stamp <= last.stamp {
                return None;
            }
        }
        self.recent.push_back(*s);
        if self.recent.len() > 4096 {
            self.recent.pop_front();
        }
        let (x, t) = self.current.as_mut()?;
        if s.stamp <= *t || s.stamp <= self.emitted {
            return None;
        }
        let dt = stamp_diff_secs(s.stamp, *t);
        if dt > MAX_STEP {
            return None;
        }
        *x = step(
            x,
            &s.gyro,
            &(s.accel * self.accel_scale),
            &NoiseVec::zeros(),
            dt,
        );
        *t = s.stamp;
        self.emitted = s.stamp;
        Some(estimate(x, s, *t))
    }

    /// A scan update: re-anchors at `state` (time `stamp`) and re-propagates through the samples
    /// that arrived after it, without emitting them again.
    pub fn on_scan(&mut self, state: &State, stamp: Stamp) {
        while self.recent.front().is_some_and(|s| s.stamp <= stamp) {
            self.recent.pop_front();
        }
        let mut x = *state;
        let mut t = stamp;
        for s in &self.recent {
            let dt = stamp_diff_secs(s.stamp, t);
            if dt > MAX_STEP {
                break;
            }
            x = step(
                &x,
                &s.gyro,
                &(s.accel * self.accel_scale),
                &NoiseVec::zeros(),
                dt,
            );
            t = s.stamp;
        }
        self.current = Some((x, t));
        self.emitted = self.emitted.max(t);
    }
}

fn estimate(x: &State, s: &ImuSample, stamp: Stamp) -> StateEstimate {
    let omega: Vector3<f64> = s.gyro - x.bg;
    StateEstimate {
        stamp,
        pose: x.pose(),
        velocity: x.vel,
        angular_velocity: omega,
        pose_covariance: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::UnitQuaternion;

    fn sample(stamp: Stamp, accel_x: f64) -> ImuSample {
        ImuSample {
            stamp,
            gyro: Vector3::zeros(),
            accel: Vector3::new(accel_x, 0.0, 9.81),
        }
    }

    fn state_at_rest() -> State {
        State {
            rot: UnitQuaternion::identity(),
            pos: Vector3::zeros(),
            vel: Vector3::new(1.0, 0.0, 0.0),
            bg: Vector3::zeros(),
            ba: Vector3::zeros(),
            grav: Vector3::new(0.0, 0.0, -9.81),
            tau: 1.0,
        }
    }

    /// Constant velocity and constant acceleration integrate as kinematics say; each sample is
    /// emitted once, also after a late scan re-anchors.
    #[test]
    fn propagates_after_the_scan_and_emits_each_sample_once() {
        let mut o = ImuOdometry::new(1.0);
        assert!(o.on_imu(&sample(5_000_000, 0.0)).is_none(), "no anchor yet");
        o.on_scan(&state_at_rest(), 10_000_000);
        let mut last = None;
        for k in 1..=100u64 {
            let e = o.on_imu(&sample(10_000_000 + k * 5_000_000, 2.0));
            last = Some(e.expect("one estimate per sample"));
        }
        // 0.5 s at 1 m/s plus 0.5 * 2 m/s^2 * 0.25 s^2.
        let e = last.unwrap();
        assert!((e.pose.translation.vector.x - 0.75).abs() < 1e-9, "{e:?}");
        assert!((e.velocity.x - 2.0).abs() < 1e-9);
        assert!(o.on_imu(&sample(510_000_000, 2.0)).is_none(), "duplicate");

        // A scan ending at 0.3 s lands late: the samples after it are re-propagated, not
        // re-emitted, and the next sample continues from the new anchor.
        let mut anchored = state_at_rest();
        anchored.pos.x = 10.0;
        o.on_scan(&anchored, 300_000_000);
        let e = o.on_imu(&sample(515_000_000, 2.0)).expect("next sample");
        let dt = 0.215;
        let expect = 10.0 + dt + dt * dt;
        assert!(
            (e.pose.translation.vector.x - expect).abs() < 1e-9,
            "{} vs {expect}",
            e.pose.translation.vector.x
        );
    }
}
