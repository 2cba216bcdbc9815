//! Finite-difference checks of every analytic Jacobian of the estimator.

use gs_livo::estimator::ieskf::{step, step_jacobians, NoiseVec, NOISE_DIM};
use gs_livo::estimator::point_to_plane::residual_and_jacobian;
use gs_livo::estimator::so3;
use gs_livo::estimator::state::{ErrVec, State, DIM};
use nalgebra::{DMatrix, UnitQuaternion, Vector3};

fn test_state() -> State {
    State {
        rot: UnitQuaternion::from_scaled_axis(Vector3::new(0.4, -0.7, 1.9)),
        pos: Vector3::new(1.0, -2.0, 0.5),
        vel: Vector3::new(0.8, 0.3, -0.2),
        bg: Vector3::new(0.01, -0.02, 0.015),
        ba: Vector3::new(0.05, 0.1, -0.08),
        grav: Vector3::new(0.1, -0.2, -9.8),
        tau: 1.1,
    }
}

/// Relative error of the analytic matrix against central differences, with a floor on the
/// denominator so that exact zeros are compared absolutely.
fn rel_err(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).norm() / b.norm().max(1e-9)
}

/// Column-wise relative error (each column checked on its own scale).
fn max_col_err(a: &DMatrix<f64>, fd: &DMatrix<f64>) -> f64 {
    (0..a.ncols())
        .map(|j| {
            let d = (a.column(j) - fd.column(j)).norm();
            d / fd.column(j).norm().max(1e-6)
        })
        .fold(0.0, f64::max)
}

#[test]
fn propagation_f_and_g_match_finite_differences() {
    let x = test_state();
    let gyro = Vector3::new(0.9, -1.2, 1.5);
    let accel = Vector3::new(1.0, 9.0, 2.5);
    for dt in [0.005, 0.05] {
        let (f, g) = step_jacobians(&x, &gyro, &accel, dt);
        let x1 = step(&x, &gyro, &accel, &NoiseVec::zeros(), dt);
        let h = 1e-6;
        let mut fd_f = DMatrix::zeros(DIM, DIM);
        for j in 0..DIM {
            let mut d = ErrVec::zeros();
            d[j] = h;
            let p = step(&x.boxplus(&d), &gyro, &accel, &NoiseVec::zeros(), dt).boxminus(&x1);
            let m = step(&x.boxplus(&-d), &gyro, &accel, &NoiseVec::zeros(), dt).boxminus(&x1);
            fd_f.set_column(j, &((p - m) / (2.0 * h)));
        }
        let fa = DMatrix::from_column_slice(DIM, DIM, f.as_slice());
        let e = max_col_err(&fa, &fd_f);
        assert!(e < 1e-5, "F rel error {e} at dt {dt}");
        assert!(rel_err(&fa, &fd_f) < 1e-5);

        let mut fd_g = DMatrix::zeros(DIM, NOISE_DIM);
        for j in 0..NOISE_DIM {
            let mut n = NoiseVec::zeros();
            n[j] = h;
            let p = step(&x, &gyro, &accel, &n, dt).boxminus(&x1);
            let m = step(&x, &gyro, &accel, &-n, dt).boxminus(&x1);
            fd_g.set_column(j, &((p - m) / (2.0 * h)));
        }
        let ga = DMatrix::from_column_slice(DIM, NOISE_DIM, g.as_slice());
        let e = max_col_err(&ga, &fd_g);
        assert!(e < 1e-5, "G rel error {e} at dt {dt}");
    }
}

#[test]
fn point_to_plane_jacobian_matches_finite_differences() {
    let x = test_state();
    let normal = Vector3::new(0.3, -0.5, 0.8).normalize();
    let center = Vector3::new(2.0, -1.0, 1.0);
    for pb in [Vector3::new(4.0, 1.0, -0.5), Vector3::new(-0.3, 7.0, 2.0)] {
        let (z0, h) = residual_and_jacobian(&x, &pb, &normal, &center);
        let eps = 1e-6;
        let mut fd = nalgebra::Vector6::zeros();
        for j in 0..6 {
            let mut d = ErrVec::zeros();
            d[j] = eps;
            let (zp, _) = residual_and_jacobian(&x.boxplus(&d), &pb, &normal, &center);
            let (zm, _) = residual_and_jacobian(&x.boxplus(&-d), &pb, &normal, &center);
            fd[j] = (zp - zm) / (2.0 * eps);
        }
        let e = (h - fd).norm() / fd.norm();
        assert!(e < 1e-5, "residual Jacobian rel error {e}");
        assert!(z0.is_finite());
    }
}

#[test]
fn right_jacobian_inverse_used_by_update_matches_finite_differences() {
    let v = Vector3::new(0.2, 0.9, -0.4);
    let base = so3::exp(&v);
    let h = 1e-6;
    let mut fd = nalgebra::Matrix3::zeros();
    for j in 0..3 {
        let mut d = Vector3::zeros();
        d[j] = h;
        let p = so3::log(&(base * so3::exp(&d)));
        let m = so3::log(&(base * so3::exp(&-d)));
        fd.set_column(j, &((p - m) / (2.0 * h)));
    }
    let e = (so3::right_jacobian_inv(&v) - fd).norm() / fd.norm();
    assert!(e < 1e-5, "Jr^-1 rel error {e}");
}
