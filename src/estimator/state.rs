//! The filter state on SO(3) x R^16 and its boxplus/boxminus.
//!
//! Error-state layout (19): rotation 0..3 (right perturbation), position 3..6, velocity 6..9,
//! gyro bias 9..12, accel bias 12..15, gravity 15..18, inverse exposure 18.

use nalgebra::{Isometry3, SVector, Translation3, UnitQuaternion, Vector3};

use super::so3;

/// Dimension of the error state.
pub const DIM: usize = 19;
pub const ROT: usize = 0;
pub const POS: usize = 3;
pub const VEL: usize = 6;
pub const BG: usize = 9;
pub const BA: usize = 12;
pub const GRAV: usize = 15;
pub const TAU: usize = 18;

pub type ErrVec = SVector<f64, DIM>;
pub type ErrMat = nalgebra::SMatrix<f64, DIM, DIM>;

/// Nominal state: body (IMU) pose in the world frame and the slowly varying quantities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    /// `R_world_body`.
    pub rot: UnitQuaternion<f64>,
    /// Body origin in the world frame.
    pub pos: Vector3<f64>,
    pub vel: Vector3<f64>,
    pub bg: Vector3<f64>,
    pub ba: Vector3<f64>,
    /// Gravity vector in the world frame (m/s^2).
    pub grav: Vector3<f64>,
    /// Inverse exposure (image gain), 1 when unused.
    pub tau: f64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            rot: UnitQuaternion::identity(),
            pos: Vector3::zeros(),
            vel: Vector3::zeros(),
            bg: Vector3::zeros(),
            ba: Vector3::zeros(),
            grav: Vector3::new(0.0, 0.0, -9.81),
            tau: 1.0,
        }
    }
}

impl State {
    /// `x [+] d`.
    pub fn boxplus(&self, d: &ErrVec) -> State {
        let dr: Vector3<f64> = d.fixed_rows::<3>(ROT).into();
        let mut rot = self.rot * so3::exp(&dr);
        rot.renormalize();
        State {
            rot,
            pos: self.pos + d.fixed_rows::<3>(POS),
            vel: self.vel + d.fixed_rows::<3>(VEL),
            bg: self.bg + d.fixed_rows::<3>(BG),
            ba: self.ba + d.fixed_rows::<3>(BA),
            grav: self.grav + d.fixed_rows::<3>(GRAV),
            tau: self.tau + d[TAU],
        }
    }

    /// `self [-] other`, so that `other [+] (self [-] other) == self`.
    pub fn boxminus(&self, other: &State) -> ErrVec {
        let mut d = ErrVec::zeros();
        d.fixed_rows_mut::<3>(ROT)
            .copy_from(&so3::log(&(other.rot.inverse() * self.rot)));
        d.fixed_rows_mut::<3>(POS)
            .copy_from(&(self.pos - other.pos));
        d.fixed_rows_mut::<3>(VEL)
            .copy_from(&(self.vel - other.vel));
        d.fixed_rows_mut::<3>(BG).copy_from(&(self.bg - other.bg));
        d.fixed_rows_mut::<3>(BA).copy_from(&(self.ba - other.ba));
        d.fixed_rows_mut::<3>(GRAV)
            .copy_from(&(self.grav - other.grav));
        d[TAU] = self.tau - other.tau;
        d
    }

    /// `T_world_body`.
    pub fn pose(&self) -> Isometry3<f64> {
        Isometry3::from_parts(Translation3::from(self.pos), self.rot)
    }

    pub fn is_finite(&self) -> bool {
        self.rot.coords.iter().all(|v| v.is_finite())
            && self.pos.iter().all(|v| v.is_finite())
            && self.vel.iter().all(|v| v.is_finite())
            && self.bg.iter().all(|v| v.is_finite())
            && self.ba.iter().all(|v| v.is_finite())
            && self.grav.iter().all(|v| v.is_finite())
            && self.tau.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxplus_boxminus_round_trip() {
        let x = State {
            rot: so3::exp(&Vector3::new(0.3, -1.0, 2.0)),
            pos: Vector3::new(1.0, 2.0, 3.0),
            ..Default::default()
        };
        let mut d = ErrVec::zeros();
        for i in 0..DIM {
            d[i] = 0.01 * (i as f64 + 1.0) * if i % 2 == 0 { 1.0 } else { -1.0 };
        }
        let y = x.boxplus(&d);
        assert!((y.boxminus(&x) - d).norm() < 1e-12);
        // Right perturbation: the rotation increment acts in the body frame.
        let yr = y.rot.to_rotation_matrix().into_inner();
        let want =
            x.rot.to_rotation_matrix().into_inner() * so3::exp_mat(&Vector3::new(d[0], d[1], d[2]));
        assert!((yr - want).norm() < 1e-12);
    }
}
