//! Geometry between the filter state and the render: the camera pose at the image time and the
//! chain rule from the error state (rotation, position) to the render's pose perturbation.

use nalgebra::{Isometry3, Matrix3, SMatrix, Translation3, UnitQuaternion, Vector3};

use crate::estimator::so3;
use crate::estimator::state::State;
use crate::sensors::{stamp_diff_secs, ImuSample, Stamp};

/// `d xi / d [dtheta, dp]` (6x6): rows `[v; w]` of [`crate::render::perturb_pose`], columns the
/// body rotation (right perturbation) and position errors, for `T_cw = (T_wb T_bc)^-1`.
pub fn pose_chain(x: &State, imu_t_camera: &Isometry3<f64>) -> SMatrix<f64, 6, 6> {
    let r_cb: Matrix3<f64> = imu_t_camera
        .rotation
        .inverse()
        .to_rotation_matrix()
        .into_inner();
    let t_bc = imu_t_camera.translation.vector;
    let r_wb = x.rot.to_rotation_matrix().into_inner();
    let mut m = SMatrix::<f64, 6, 6>::zeros();
    m.fixed_view_mut::<3, 3>(0, 0)
        .copy_from(&(r_cb * so3::skew(&t_bc)));
    m.fixed_view_mut::<3, 3>(0, 3)
        .copy_from(&(-r_cb * r_wb.transpose()));
    m.fixed_view_mut::<3, 3>(3, 0).copy_from(&(-r_cb));
    m
}

/// World-to-camera pose of the render for state `x`.
pub fn camera_t_world(x: &State, imu_t_camera: &Isometry3<f64>) -> Isometry3<f64> {
    (x.pose() * imu_t_camera).inverse()
}

/// Body motion from `from` (image time) to `to` (filter time) integrated from the IMU samples
/// (bias-corrected, midpoint of neighbouring samples, held inputs at the ends), expressed as
/// `T_{b(to) b(from)}` given the state `x` at `to`. Identity when `from >= to` or no samples.
pub fn body_to_image(x: &State, imu: &[ImuSample], from: Stamp, to: Stamp) -> Isometry3<f64> {
    if from >= to || imu.is_empty() {
        return Isometry3::identity();
    }
    // Preintegration from `from` to `to` in the frame of b(from).
    let mut dr = Matrix3::<f64>::identity();
    let mut dv = Vector3::zeros();
    let mut dp = Vector3::zeros();
    let total = stamp_diff_secs(to, from);
    let input_at = |k: usize| -> (Vector3<f64>, Vector3<f64>) {
        let a = &imu[k];
        let b = imu.get(k + 1).unwrap_or(a);
        (
            0.5 * (a.gyro + b.gyro) - x.bg,
            0.5 * (a.accel + b.accel) - x.ba,
        )
    };
    // Interval boundaries: sample stamps inside (from, to).
    let mut t = from;
    let mut k = imu.partition_point(|s| s.stamp <= from).saturating_sub(1);
    while t < to {
        let next = imu.get(k + 1).map_or(to, |s| s.stamp.min(to)).max(t);
        let (w, a) = input_at(k);
        let dt = stamp_diff_secs(next, t);
        if dt > 0.0 {
            // Substeps of at most 1 ms with the midpoint rotation (second order).
            let n = (dt / 1e-3).ceil().max(1.0);
            let h = dt / n;
            let half = so3::exp_mat(&(w * (0.5 * h)));
            for _ in 0..n as usize {
                let acc = dr * half * a;
                dp += dv * h + 0.5 * acc * h * h;
                dv += acc * h;
                dr *= half * half;
            }
        }
        t = if next > t { next } else { to };
        if k + 1 < imu.len() {
            k += 1;
        }
    }
    let r_f = x.rot.to_rotation_matrix().into_inner();
    let r_i = r_f * dr.transpose();
    let v_i = x.vel - x.grav * total - r_i * dv;
    let p_i = x.pos - v_i * total - 0.5 * x.grav * total * total - r_i * dp;
    let rel_rot = r_f.transpose() * r_i;
    let rel_pos = r_f.transpose() * (p_i - x.pos);
    Isometry3::from_parts(
        Translation3::from(rel_pos),
        UnitQuaternion::from_matrix(&rel_rot),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::state::{ErrVec, POS, ROT};
    use crate::render::perturb_pose;

    /// The chain matrix maps state errors to the render perturbation exactly to first order.
    #[test]
    fn pose_chain_matches_finite_differences() {
        let x = State {
            rot: so3::exp(&Vector3::new(0.2, -0.5, 1.1)),
            pos: Vector3::new(1.0, -2.0, 0.5),
            ..Default::default()
        };
        let ext = Isometry3::from_parts(
            Translation3::new(0.1, -0.04, 0.3),
            so3::exp(&Vector3::new(-1.2, 0.3, 0.7)),
        );
        let m = pose_chain(&x, &ext);
        let t0 = camera_t_world(&x, &ext);
        let h = 1e-6;
        // Probe points: the perturbed render pose must map them like the perturbed state does.
        let pts = [Vector3::new(1.0, 2.0, 3.0), Vector3::new(-4.0, 0.5, 2.0)];
        for col in 0..6 {
            let mut d = ErrVec::zeros();
            let idx = if col < 3 { ROT + col } else { POS + col - 3 };
            d[idx] = h;
            let tp = camera_t_world(&x.boxplus(&d), &ext);
            let xi: [f64; 6] = std::array::from_fn(|r| m[(r, col)] * h);
            let tl = perturb_pose(&t0, &xi);
            for p in &pts {
                let a = tp * nalgebra::Point3::from(*p);
                let b = tl * nalgebra::Point3::from(*p);
                let moved = (a - t0 * nalgebra::Point3::from(*p)).norm();
                assert!(moved > 1e-8, "column {col} moves points");
                assert!((a - b).norm() < 1e-4 * moved, "column {col}");
            }
        }
    }

    /// Integrating a constant-rate motion backwards recovers the pose at the earlier time.
    #[test]
    fn body_to_image_recovers_constant_rate_motion() {
        let w = Vector3::new(0.1, -0.2, 0.8);
        let a_body = Vector3::new(0.3, 0.1, 9.81);
        let g = Vector3::new(0.0, 0.0, -9.81);
        let x0 = State {
            vel: Vector3::new(1.0, 0.5, 0.0),
            ..Default::default()
        };
        // Ground truth by fine integration of the same model.
        let (t0, t1) = (1_000_000_000u64, 1_066_000_000u64);
        let imu: Vec<ImuSample> = (0..20)
            .map(|k| ImuSample {
                stamp: t0 - 10_000_000 + k * 5_000_000,
                gyro: w,
                accel: a_body,
            })
            .collect();
        let n = 10000;
        let dt = stamp_diff_secs(t1, t0) / n as f64;
        let (mut r, mut p, mut v) = (Matrix3::identity(), x0.pos, x0.vel);
        let half = so3::exp_mat(&(w * (0.5 * dt)));
        for _ in 0..n {
            let acc = r * half * a_body + g;
            p += v * dt + 0.5 * acc * dt * dt;
            v += acc * dt;
            r *= half * half;
        }
        let x1 = State {
            rot: UnitQuaternion::from_matrix(&r),
            pos: p,
            vel: v,
            grav: g,
            ..Default::default()
        };
        let rel = body_to_image(&x1, &imu, t0, t1);
        let want = x1.pose().inverse() * x0.pose();
        let dp = (rel.translation.vector - want.translation.vector).norm();
        assert!(dp < 1e-5, "{dp}");
        assert!(rel.rotation.angle_to(&want.rotation) < 1e-8);
        assert_eq!(body_to_image(&x1, &imu, t1, t0), Isometry3::identity());
    }
}
