//! Iterated error-state Kalman filter: IMU propagation and a generic iterated update.
//!
//! The update is measurement-agnostic: anything implementing [`Measurement`] returns its normal
//! equations (H^T R^-1 H, H^T R^-1 z) at the current linearisation point, so the LiDAR
//! point-to-plane update and the later photometric update run as sequential updates through the
//! same code.

use nalgebra::{Cholesky, SMatrix, SVector, Vector3};

use super::so3;
use super::state::*;
use crate::sensors::{stamp_diff_secs, ImuSample, Stamp};

/// Dimension of the IMU noise vector: gyro, accel, gyro-bias walk, accel-bias walk, tau walk.
pub const NOISE_DIM: usize = 13;
pub type NoiseVec = SVector<f64, NOISE_DIM>;
pub type NoiseJac = SMatrix<f64, DIM, NOISE_DIM>;

/// Continuous-time noise densities (discretised per sample in [`Ieskf::propagate_imu`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessNoise {
    pub gyro: f64,
    pub accel: f64,
    pub gyro_bias_walk: f64,
    pub accel_bias_walk: f64,
    pub tau_walk: f64,
}

impl ProcessNoise {
    pub fn from_config(imu: &crate::sensors::rig::Imu, tau_walk: f64) -> Self {
        Self {
            gyro: imu.gyro_noise,
            accel: imu.accel_noise,
            gyro_bias_walk: imu.gyro_bias_walk,
            accel_bias_walk: imu.accel_bias_walk,
            tau_walk,
        }
    }

    /// Covariance of the discrete noise vector over a step of `dt` seconds.
    pub fn discrete(&self, dt: f64) -> SVector<f64, NOISE_DIM> {
        let dt = dt.max(1e-6);
        let mut q = SVector::<f64, NOISE_DIM>::zeros();
        for i in 0..3 {
            q[i] = self.gyro * self.gyro / dt;
            q[3 + i] = self.accel * self.accel / dt;
            q[6 + i] = self.gyro_bias_walk * self.gyro_bias_walk * dt;
            q[9 + i] = self.accel_bias_walk * self.accel_bias_walk * dt;
        }
        q[12] = self.tau_walk * self.tau_walk * dt;
        q
    }
}

/// One constant-input interval of the propagated trajectory, kept for deskewing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub t0: Stamp,
    pub state: State,
    /// Bias-corrected angular rate in the body frame.
    pub omega: Vector3<f64>,
    /// Acceleration in the world frame (gravity included).
    pub acc_world: Vector3<f64>,
}

impl Segment {
    /// Body pose `(R, p)` at `t` (extrapolated with constant inputs).
    pub fn pose_at(&self, t: Stamp) -> (nalgebra::Matrix3<f64>, Vector3<f64>) {
        let dt = stamp_diff_secs(t, self.t0);
        let r = self.state.rot.to_rotation_matrix().into_inner() * so3::exp_mat(&(self.omega * dt));
        let p = self.state.pos + self.state.vel * dt + 0.5 * self.acc_world * dt * dt;
        (r, p)
    }
}

/// Discrete IMU step with the noise vector `n` (zero for the mean): the function whose
/// Jacobians are [`step_jacobians`].
pub fn step(x: &State, gyro: &Vector3<f64>, accel: &Vector3<f64>, n: &NoiseVec, dt: f64) -> State {
    let w = gyro - x.bg - n.fixed_rows::<3>(0);
    let a = accel - x.ba - n.fixed_rows::<3>(3);
    let acc = x.rot * a + x.grav;
    let mut rot = x.rot * so3::exp(&(w * dt));
    rot.renormalize();
    State {
        rot,
        pos: x.pos + x.vel * dt + 0.5 * acc * dt * dt,
        vel: x.vel + acc * dt,
        bg: x.bg + n.fixed_rows::<3>(6),
        ba: x.ba + n.fixed_rows::<3>(9),
        grav: x.grav,
        tau: x.tau + n[12],
    }
}

/// Error-state transition `F = d(step(x [+] d) [-] step(x)) / d d` and noise Jacobian `G`.
pub fn step_jacobians(
    x: &State,
    gyro: &Vector3<f64>,
    accel: &Vector3<f64>,
    dt: f64,
) -> (ErrMat, NoiseJac) {
    let w = gyro - x.bg;
    let a = accel - x.ba;
    let r = x.rot.to_rotation_matrix().into_inner();
    let ra_skew = r * so3::skew(&a);
    let jr = so3::right_jacobian(&(w * dt));
    let i3 = nalgebra::Matrix3::<f64>::identity();
    let dt2 = 0.5 * dt * dt;

    let mut f = ErrMat::identity();
    f.fixed_view_mut::<3, 3>(ROT, ROT)
        .copy_from(&so3::exp_mat(&(-w * dt)));
    f.fixed_view_mut::<3, 3>(ROT, BG).copy_from(&(-jr * dt));
    f.fixed_view_mut::<3, 3>(POS, ROT)
        .copy_from(&(-ra_skew * dt2));
    f.fixed_view_mut::<3, 3>(POS, VEL).copy_from(&(i3 * dt));
    f.fixed_view_mut::<3, 3>(POS, BA).copy_from(&(-r * dt2));
    f.fixed_view_mut::<3, 3>(POS, GRAV).copy_from(&(i3 * dt2));
    f.fixed_view_mut::<3, 3>(VEL, ROT)
        .copy_from(&(-ra_skew * dt));
    f.fixed_view_mut::<3, 3>(VEL, BA).copy_from(&(-r * dt));
    f.fixed_view_mut::<3, 3>(VEL, GRAV).copy_from(&(i3 * dt));

    let mut g = NoiseJac::zeros();
    g.fixed_view_mut::<3, 3>(ROT, 0).copy_from(&(-jr * dt));
    g.fixed_view_mut::<3, 3>(POS, 3).copy_from(&(-r * dt2));
    g.fixed_view_mut::<3, 3>(VEL, 3).copy_from(&(-r * dt));
    g.fixed_view_mut::<3, 3>(BG, 6).copy_from(&i3);
    g.fixed_view_mut::<3, 3>(BA, 9).copy_from(&i3);
    g[(TAU, 12)] = 1.0;
    (f, g)
}

/// Normal equations of one linearised measurement batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Linearization {
    /// `H^T R^-1 H`.
    pub hth: ErrMat,
    /// `H^T R^-1 z` with `z` the residual at the linearisation point.
    pub htz: ErrVec,
    /// Number of scalar residuals.
    pub count: usize,
    /// `z^T R^-1 z`.
    pub chi2: f64,
}

impl Default for Linearization {
    fn default() -> Self {
        Self {
            hth: ErrMat::zeros(),
            htz: ErrVec::zeros(),
            count: 0,
            chi2: 0.0,
        }
    }
}

impl Linearization {
    /// Adds one scalar residual `z` with Jacobian row `h` and variance `var`.
    pub fn add_row(&mut self, h: &ErrVec, z: f64, var: f64) {
        let w = 1.0 / var;
        self.hth += h * h.transpose() * w;
        self.htz += h * (z * w);
        self.chi2 += z * z * w;
        self.count += 1;
    }
}

/// A measurement model for [`Ieskf::update`].
pub trait Measurement {
    /// Residuals and Jacobians at `x` (iteration `iter`), as normal equations; `None` when
    /// nothing could be associated.
    fn linearize(&mut self, x: &State, iter: usize) -> Option<Linearization>;
}

impl<F: FnMut(&State, usize) -> Option<Linearization>> Measurement for F {
    fn linearize(&mut self, x: &State, iter: usize) -> Option<Linearization> {
        self(x, iter)
    }
}

/// Iteration control of [`Ieskf::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateSettings {
    pub max_iterations: usize,
    /// Convergence: rotation increment (rad) and translation increment (m) below these.
    pub eps_rot: f64,
    pub eps_pos: f64,
    /// Convergence judged against the posterior: the pose increment also counts as converged
    /// when it is small against `rel_sigma` posterior standard deviations plus the absolute
    /// thresholds ([`pose_step_converged`]). Along a nearly unobserved axis the step jitters
    /// with each re-association far above `eps_pos` while being a tiny fraction of what the
    /// filter can resolve there; 0 keeps the absolute rule alone.
    pub rel_sigma: f64,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        Self {
            max_iterations: 5,
            eps_rot: 1e-4,
            eps_pos: 1e-4,
            rel_sigma: 0.0,
        }
    }
}

/// Whether an iterated-update increment `delta` has converged, given the posterior covariance
/// `post_cov` of that iteration.
///
/// Converged when the rotation and translation increments are under their absolute thresholds
/// (the classic rule), or when the pose increment's squared Mahalanobis size against the
/// tolerance `T = rel_sigma^2 P_pose + diag(eps_rot^2, eps_pos^2)` is below 1: in a direction
/// the measurements pin down (small posterior sd) `T` falls back to the absolute thresholds, in
/// a direction they barely observe the step need only be small against its uncertainty.
pub fn pose_step_converged(delta: &ErrVec, post_cov: &ErrMat, s: &UpdateSettings) -> bool {
    let rot = delta.fixed_rows::<3>(ROT);
    let pos = delta.fixed_rows::<3>(POS);
    if rot.norm() < s.eps_rot && pos.norm() < s.eps_pos {
        return true;
    }
    if s.rel_sigma <= 0.0 {
        return false;
    }
    let idx = [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2];
    let mut t = SMatrix::<f64, 6, 6>::zeros();
    let mut d = nalgebra::Vector6::zeros();
    for (a, &i) in idx.iter().enumerate() {
        d[a] = delta[i];
        for (b, &j) in idx.iter().enumerate() {
            t[(a, b)] = s.rel_sigma * s.rel_sigma * post_cov[(i, j)];
        }
        t[(a, a)] += if a < 3 {
            s.eps_rot * s.eps_rot
        } else {
            s.eps_pos * s.eps_pos
        };
    }
    match Cholesky::new(t) {
        Some(c) => d.dot(&c.solve(&d)) < 1.0,
        None => false,
    }
}

/// What an update did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateReport {
    pub iterations: usize,
    pub converged: bool,
    /// Residual count and weighted squared norm at the last linearisation.
    pub count: usize,
    pub chi2: f64,
    /// Measurement information `H^T R^-1 H` at the last linearisation.
    pub information: ErrMat,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterError {
    #[error("no measurement could be associated")]
    NoMeasurement,
    #[error("covariance is not positive definite")]
    NotPositiveDefinite,
    #[error("update produced a non-finite state")]
    NonFinite,
}

/// The filter: nominal state, error covariance and the time they refer to.
#[derive(Debug, Clone)]
pub struct Ieskf {
    state: State,
    cov: ErrMat,
    stamp: Stamp,
    noise: ProcessNoise,
    /// Last IMU sample (inputs held until the next one).
    last_imu: Option<ImuSample>,
    segments: Vec<Segment>,
}

impl Ieskf {
    pub fn new(state: State, cov: ErrMat, stamp: Stamp, noise: ProcessNoise) -> Self {
        Self {
            state,
            cov,
            stamp,
            noise,
            last_imu: None,
            segments: Vec::new(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn covariance(&self) -> &ErrMat {
        &self.cov
    }

    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    pub fn set_state(&mut self, state: State, cov: ErrMat) {
        self.state = state;
        self.cov = cov;
    }

    /// Integrates with the held inputs up to `imu.stamp`, then holds the mean of the held and
    /// the new sample (a midpoint rule when samples are evenly spaced). Stamps not after the
    /// filter time only replace the held inputs.
    pub fn propagate_imu(&mut self, imu: &ImuSample) {
        let held = self.last_imu.unwrap_or(*imu);
        let mean = ImuSample {
            stamp: imu.stamp,
            gyro: 0.5 * (held.gyro + imu.gyro),
            accel: 0.5 * (held.accel + imu.accel),
        };
        if imu.stamp > self.stamp {
            self.integrate(&mean.gyro, &mean.accel, imu.stamp);
        }
        self.last_imu = Some(*imu);
    }

    /// Integrates the held IMU inputs from the filter time up to `stamp` (no-op if not later).
    pub fn propagate_to(&mut self, stamp: Stamp) {
        if stamp <= self.stamp {
            return;
        }
        let Some(held) = self.last_imu else {
            self.stamp = stamp;
            return;
        };
        self.integrate(&held.gyro, &held.accel, stamp);
    }

    /// Moves the filter time without integrating (after a time jump), inflating the position
    /// and velocity covariance by `vel_var` (m^2/s^2).
    pub fn jump_to(&mut self, stamp: Stamp, vel_var: f64) {
        self.stamp = stamp;
        self.last_imu = None;
        for i in 0..3 {
            self.cov[(VEL + i, VEL + i)] += vel_var;
        }
    }

    fn integrate(&mut self, gyro: &Vector3<f64>, accel: &Vector3<f64>, to: Stamp) {
        let dt = stamp_diff_secs(to, self.stamp);
        let x = self.state;
        self.segments.push(Segment {
            t0: self.stamp,
            state: x,
            omega: gyro - x.bg,
            acc_world: x.rot * (accel - x.ba) + x.grav,
        });
        let (f, g) = step_jacobians(&x, gyro, accel, dt);
        let q = self.noise.discrete(dt);
        let gq = g * SMatrix::<f64, NOISE_DIM, NOISE_DIM>::from_diagonal(&q);
        self.cov = f * self.cov * f.transpose() + gq * g.transpose();
        self.cov = 0.5 * (self.cov + self.cov.transpose());
        self.state = step(&x, gyro, accel, &NoiseVec::zeros(), dt);
        self.stamp = to;
    }

    /// The constant-input segments integrated since the last call (oldest first).
    pub fn take_segments(&mut self) -> Vec<Segment> {
        std::mem::take(&mut self.segments)
    }

    /// Iterated update (Gauss-Newton on the MAP cost with the prior), returning what it did;
    /// state and covariance are changed only on success.
    pub fn update<M: Measurement + ?Sized>(
        &mut self,
        meas: &mut M,
        settings: &UpdateSettings,
    ) -> Result<UpdateReport, FilterError> {
        let prior = self.state;
        let p_inv = Cholesky::new(self.cov)
            .ok_or(FilterError::NotPositiveDefinite)?
            .inverse();
        let mut x = prior;
        let mut report = None;
        let mut post_cov = self.cov;
        for it in 0..settings.max_iterations.max(1) {
            let Some(lin) = meas.linearize(&x, it) else {
                break;
            };
            let d0 = x.boxminus(&prior);
            let mut j = ErrMat::identity();
            let dr: Vector3<f64> = d0.fixed_rows::<3>(ROT).into();
            j.fixed_view_mut::<3, 3>(ROT, ROT)
                .copy_from(&so3::right_jacobian_inv(&dr));
            let jt_pinv = j.transpose() * p_inv;
            let a = lin.hth + jt_pinv * j;
            let b = -lin.htz - jt_pinv * d0;
            let chol = Cholesky::new(a).ok_or(FilterError::NotPositiveDefinite)?;
            let delta = chol.solve(&b);
            x = x.boxplus(&delta);
            post_cov = chol.inverse();
            let converged = pose_step_converged(&delta, &post_cov, settings);
            report = Some(UpdateReport {
                iterations: it + 1,
                converged,
                count: lin.count,
                chi2: lin.chi2,
                information: lin.hth,
            });
            if converged {
                break;
            }
        }
        let report = report.ok_or(FilterError::NoMeasurement)?;
        if !x.is_finite() || post_cov.iter().any(|v| !v.is_finite()) {
            return Err(FilterError::NonFinite);
        }
        self.state = x;
        self.cov = 0.5 * (post_cov + post_cov.transpose());
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An update-only filter: nothing is propagated in these tests.
    fn no_process_noise() -> ProcessNoise {
        ProcessNoise {
            gyro: 0.0,
            accel: 0.0,
            gyro_bias_walk: 0.0,
            accel_bias_walk: 0.0,
            tau_walk: 0.0,
        }
    }

    /// A linear measurement (direct position fix) must give exactly the Kalman update.
    #[test]
    fn iterated_update_equals_kalman_for_linear_measurement() {
        let mut p = ErrMat::identity() * 0.01;
        // Correlate position with velocity and bias so the update spreads.
        p[(POS, VEL)] = 0.004;
        p[(VEL, POS)] = 0.004;
        p[(POS + 1, BA)] = -0.002;
        p[(BA, POS + 1)] = -0.002;
        let x0 = State {
            pos: Vector3::new(1.0, 2.0, 3.0),
            ..Default::default()
        };
        let noise = no_process_noise();
        let mut f = Ieskf::new(x0, p, 0, noise);
        let meas = Vector3::new(1.1, 1.95, 3.02);
        let var = 0.004;
        let mut m = |x: &State, _it: usize| {
            let mut l = Linearization::default();
            for k in 0..3 {
                let mut h = ErrVec::zeros();
                h[POS + k] = 1.0;
                l.add_row(&h, x.pos[k] - meas[k], var);
            }
            Some(l)
        };
        let rep = f.update(&mut m, &UpdateSettings::default()).unwrap();
        assert!(rep.converged && rep.iterations <= 2);
        let mut h = SMatrix::<f64, 3, DIM>::zeros();
        for k in 0..3 {
            h[(k, POS + k)] = 1.0;
        }
        let s = h * p * h.transpose() + nalgebra::Matrix3::identity() * var;
        let k = p * h.transpose() * s.try_inverse().unwrap();
        let innov = meas - x0.pos;
        let dx = k * innov;
        let p_post = (ErrMat::identity() - k * h) * p;
        assert!((f.state().boxminus(&x0) - dx).norm() < 1e-9);
        assert!((f.covariance() - p_post).norm() < 1e-9);
    }

    /// A corridor-like problem: y and z fixed to 0.1 mm, x only weakly (sd ~ 5 cm), and the
    /// re-association noise of a real scan imitated by a residual offset along x that changes
    /// each iteration by 0.5 mm: the step along x never falls under the 0.1 mm threshold, but
    /// it is a tiny fraction of x's posterior sd. The relative rule stops in two iterations;
    /// the absolute rule alone runs to the limit.
    #[test]
    fn degenerate_axis_jitter_converges_against_the_posterior() {
        let run = |rel_sigma: f64| {
            let noise = no_process_noise();
            let mut f = Ieskf::new(State::default(), ErrMat::identity() * 0.01, 0, noise);
            let mut m = |x: &State, it: usize| {
                let mut l = Linearization::default();
                for k in 0..3 {
                    let mut h = ErrVec::zeros();
                    h[ROT + k] = 1.0;
                    l.add_row(&h, x.rot.scaled_axis()[k], 1e-8);
                }
                let jitter = if it.is_multiple_of(2) { 5e-4 } else { -5e-4 };
                for (k, var) in [(0, 2.5e-3), (1, 1e-8), (2, 1e-8)] {
                    let mut h = ErrVec::zeros();
                    h[POS + k] = 1.0;
                    let target = if k == 0 { 0.02 + jitter } else { 0.0 };
                    l.add_row(&h, x.pos[k] - target, var);
                }
                Some(l)
            };
            let settings = UpdateSettings {
                max_iterations: 10,
                rel_sigma,
                ..Default::default()
            };
            let rep = f.update(&mut m, &settings).unwrap();
            (rep, f.state().pos, f.covariance()[(POS, POS)].sqrt())
        };
        let (old, _, _) = run(0.0);
        assert!(!old.converged && old.iterations == 10, "{old:?}");
        let (new, pos, sd) = run(0.1);
        assert!(new.converged && new.iterations <= 3, "{new:?}");
        // Same estimate within a small fraction of its uncertainty; the fixed axes exact.
        assert!(
            sd > 0.03 && (pos.x - 0.8 * 0.02).abs() < 0.1 * sd,
            "{pos} {sd}"
        );
        assert!(pos.y.abs() < 1e-9 && pos.z.abs() < 1e-9);
    }

    /// The relative rule must not stop a step that is large against a small posterior sd.
    #[test]
    fn relative_rule_keeps_iterating_on_observed_axes() {
        let mut cov = ErrMat::identity() * 1e-8;
        let mut delta = ErrVec::zeros();
        delta[POS] = 1e-3; // 1 mm where the posterior sd is 0.1 mm
        let s = UpdateSettings {
            rel_sigma: 0.1,
            ..Default::default()
        };
        assert!(!pose_step_converged(&delta, &cov, &s));
        cov[(POS, POS)] = 1e-2; // sd 10 cm: 1 mm is 0.01 sd
        assert!(pose_step_converged(&delta, &cov, &s));
        delta[ROT] = 1e-3; // rotation still well observed
        assert!(!pose_step_converged(&delta, &cov, &s));
    }

    #[test]
    fn no_measurement_leaves_state_untouched() {
        let x0 = State::default();
        let noise = ProcessNoise::from_config(&crate::sensors::rig::Imu::default(), 0.0);
        let mut f = Ieskf::new(x0, ErrMat::identity(), 0, noise);
        let mut m = |_: &State, _: usize| None;
        assert_eq!(
            f.update(&mut m, &UpdateSettings::default()),
            Err(FilterError::NoMeasurement)
        );
        assert_eq!(*f.state(), x0);
    }
}
