//! Static (or low-motion) initialisation: gravity direction and gyro bias from an IMU window.

use nalgebra::{UnitQuaternion, Vector3};

use super::state::State;
use crate::sensors::{stamp_diff_secs, ImuSample, Stamp};

/// What the initialiser estimated, with the statistics that justify it.
#[derive(Debug, Clone, PartialEq)]
pub struct InitEstimate {
    pub state: State,
    /// Stamp of the last sample of the window (the filter starts there).
    pub stamp: Stamp,
    pub samples: usize,
    pub gyro_std: f64,
    pub accel_std: f64,
    /// Mean specific-force magnitude vs the configured gravity.
    pub accel_norm: f64,
    /// False when the window was not static enough for a trustworthy gyro bias.
    pub is_static: bool,
}

/// Collects IMU samples until the window is long enough, then estimates the initial state.
#[derive(Debug, Clone)]
pub struct ImuInitializer {
    duration: f64,
    max_gyro_std: f64,
    gravity: f64,
    samples: Vec<ImuSample>,
}

impl ImuInitializer {
    pub fn new(duration: f64, max_gyro_std: f64, gravity: f64) -> Self {
        Self {
            duration,
            max_gyro_std,
            gravity,
            samples: Vec::new(),
        }
    }

    /// Adds a sample (in SI units); returns the estimate once the window spans `duration`.
    pub fn push(&mut self, s: &ImuSample) -> Option<InitEstimate> {
        if !(s.gyro.iter().chain(s.accel.iter()).all(|v| v.is_finite())) {
            return None;
        }
        if let Some(last) = self.samples.last() {
            if s.stamp <= last.stamp {
                return None;
            }
        }
        self.samples.push(*s);
        let span = stamp_diff_secs(s.stamp, self.samples[0].stamp);
        if span + 1e-9 < self.duration || self.samples.len() < 10 {
            return None;
        }
        Some(self.estimate())
    }

    fn estimate(&self) -> InitEstimate {
        let n = self.samples.len() as f64;
        let mg = self.samples.iter().map(|s| s.gyro).sum::<Vector3<f64>>() / n;
        let ma = self.samples.iter().map(|s| s.accel).sum::<Vector3<f64>>() / n;
        let var = |f: &dyn Fn(&ImuSample) -> Vector3<f64>, m: &Vector3<f64>| {
            (self
                .samples
                .iter()
                .map(|s| (f(s) - m).norm_squared())
                .sum::<f64>()
                / n)
                .sqrt()
        };
        let gyro_std = var(&|s| s.gyro, &mg);
        let accel_std = var(&|s| s.accel, &ma);
        let is_static = gyro_std < self.max_gyro_std && mg.norm() < 10.0 * self.max_gyro_std;
        // At rest the accelerometer measures -g in the body frame: "up". Choose the world frame
        // with z up and the initial yaw at zero.
        let up_body = ma.normalize();
        let rot = UnitQuaternion::rotation_between(&up_body, &Vector3::z()).unwrap_or_else(|| {
            UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::PI)
        });
        let state = State {
            rot,
            bg: if is_static { mg } else { Vector3::zeros() },
            grav: Vector3::new(0.0, 0.0, -self.gravity),
            ..Default::default()
        };
        InitEstimate {
            state,
            stamp: self.samples.last().map(|s| s.stamp).unwrap_or(0),
            samples: self.samples.len(),
            gyro_std,
            accel_std,
            accel_norm: ma.norm(),
            is_static,
        }
    }
}
