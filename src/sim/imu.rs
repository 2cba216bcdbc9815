//! IMU model: exact angular velocity and specific force from the trajectory, plus white noise and
//! random-walk biases with the config's continuous-time densities.

use nalgebra::Vector3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::trajectory::Trajectory;
use crate::sensors::{stamp_from_secs, ImuSample};

/// Noise densities (already scaled by the `--noise` factor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuNoise {
    pub gyro_noise: f64,
    pub accel_noise: f64,
    pub gyro_bias_walk: f64,
    pub accel_bias_walk: f64,
}

/// The true biases at one IMU sample (ground truth for the estimator's bias states).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuBias {
    pub gyro: Vector3<f64>,
    pub accel: Vector3<f64>,
}

/// Noise-free IMU reading at `t`: (angular velocity, specific force `R^T (a - g)`), gravity
/// along -z with magnitude `gravity`.
pub fn ideal_imu(traj: &Trajectory, t: f64, gravity: f64) -> (Vector3<f64>, Vector3<f64>) {
    let k = traj.kinematics(t);
    let g = Vector3::new(0.0, 0.0, -gravity);
    let f = k.pose.rotation.inverse() * (k.acceleration - g);
    (k.omega_body, f)
}

fn gauss3(rng: &mut ChaCha8Rng) -> Vector3<f64> {
    Vector3::new(
        rng.sample(StandardNormal),
        rng.sample(StandardNormal),
        rng.sample(StandardNormal),
    )
}

/// Everything the IMU model needs besides the trajectory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuModel {
    pub rate: f64,
    pub gravity: f64,
    pub noise: ImuNoise,
    /// Initial biases (zero for a noise-free run).
    pub bias0: ImuBias,
}

/// Samples at `model.rate` Hz over `[0, duration]`, stamped `t0_ns + k/rate`, with the true
/// biases per sample.
pub fn simulate_imu(
    traj: &Trajectory,
    duration: f64,
    model: &ImuModel,
    t0_ns: u64,
    rng: &mut ChaCha8Rng,
) -> (Vec<ImuSample>, Vec<ImuBias>) {
    let (rate, gravity, noise) = (model.rate, model.gravity, &model.noise);
    let n = (duration * rate).floor() as usize + 1;
    let dt = 1.0 / rate;
    let mut samples = Vec::with_capacity(n);
    let mut biases = Vec::with_capacity(n);
    let mut bias = model.bias0;
    for k in 0..n {
        let t = k as f64 * dt;
        let (w, f) = ideal_imu(traj, t, gravity);
        // Discrete white noise: sigma_d = density / sqrt(dt).
        let wn = gauss3(rng) * (noise.gyro_noise / dt.sqrt());
        let an = gauss3(rng) * (noise.accel_noise / dt.sqrt());
        samples.push(ImuSample {
            stamp: t0_ns + stamp_from_secs(t),
            gyro: w + bias.gyro + wn,
            accel: f + bias.accel + an,
        });
        biases.push(bias);
        // Random walk: sigma_d = density * sqrt(dt).
        bias.gyro += gauss3(rng) * (noise.gyro_bias_walk * dt.sqrt());
        bias.accel += gauss3(rng) * (noise.accel_bias_walk * dt.sqrt());
    }
    (samples, biases)
}
