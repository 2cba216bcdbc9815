//! SO(3) helpers in the convention the filter uses: right perturbation `R * Exp(d)`.
//!
//! `skew` (sophus's `hat`), Exp and Log come from sophus_lie, on the filter's nalgebra unit
//! quaternions (sophus rounds differently from nalgebra in the last bits). The right Jacobian and its
//! inverse stay closed forms here: sophus has only the left ones (`Jr(v) = Jl(-v)`), with a
//! first-order small-angle branch below `|v|^2 = 1e-6` (relative error up to ~2e-7 at slow
//! rotation); ours switch to second order below `1e-10`. Both are checked against sophus and
//! against finite differences in the tests.

use nalgebra::{Matrix3, Quaternion, UnitQuaternion, Vector3, Vector4};
use sophus_lie::{IsLieGroupImpl, Rotation3F64, Rotation3Impl};

/// sophus's SO(3) on plain parameters `[w, x, y, z]` (no sign disambiguation, no validity
/// assertion: the filter's quaternions are unit by construction).
type So3 = Rotation3Impl<f64, 1, 0, 0>;

/// Skew-symmetric matrix `[v]x` with `[v]x w = v x w` (sophus's `hat`).
pub fn skew(v: &Vector3<f64>) -> Matrix3<f64> {
    Rotation3F64::hat(*v)
}

/// Exponential map R^3 -> SO(3) (sophus).
pub fn exp(v: &Vector3<f64>) -> UnitQuaternion<f64> {
    let p = So3::exp(*v);
    UnitQuaternion::new_unchecked(Quaternion::new(p[0], p[1], p[2], p[3]))
}

/// Logarithm SO(3) -> R^3 (angle in [0, pi]; sophus).
pub fn log(q: &UnitQuaternion<f64>) -> Vector3<f64> {
    let c = q.coords;
    So3::log(&Vector4::new(c.w, c.x, c.y, c.z))
}

/// Rotation matrix of `Exp(v)` (sophus).
pub fn exp_mat(v: &Vector3<f64>) -> Matrix3<f64> {
    So3::matrix(&So3::exp(*v))
}

/// Right Jacobian: `Exp(v + d) ~= Exp(v) Exp(Jr(v) d)`.
pub fn right_jacobian(v: &Vector3<f64>) -> Matrix3<f64> {
    let th2 = v.norm_squared();
    let k = skew(v);
    if th2 < 1e-10 {
        return Matrix3::identity() - 0.5 * k + k * k / 6.0;
    }
    let th = th2.sqrt();
    Matrix3::identity() - (1.0 - th.cos()) / th2 * k + (th - th.sin()) / (th2 * th) * k * k
}

/// Inverse right Jacobian: `Log(Exp(v) Exp(d)) ~= v + Jr^-1(v) d`.
pub fn right_jacobian_inv(v: &Vector3<f64>) -> Matrix3<f64> {
    let th2 = v.norm_squared();
    let k = skew(v);
    if th2 < 1e-10 {
        return Matrix3::identity() + 0.5 * k + k * k / 12.0;
    }
    let th = th2.sqrt();
    let c = 1.0 / th2 - (1.0 + th.cos()) / (2.0 * th * th.sin());
    Matrix3::identity() + 0.5 * k + c * k * k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel_err(a: &Matrix3<f64>, b: &Matrix3<f64>) -> f64 {
        (a - b).norm() / b.norm().max(1e-12)
    }

    #[test]
    fn right_jacobian_matches_finite_differences() {
        for v in [
            Vector3::new(0.3, -0.2, 0.5),
            Vector3::new(1e-7, 2e-7, -1e-7),
            Vector3::new(2.0, 1.0, -0.5),
        ] {
            let r0 = exp(&v);
            let mut fd = Matrix3::zeros();
            let h = 1e-6;
            for i in 0..3 {
                let mut d = Vector3::zeros();
                d[i] = h;
                let plus = log(&(r0.inverse() * exp(&(v + d))));
                let minus = log(&(r0.inverse() * exp(&(v - d))));
                fd.set_column(i, &((plus - minus) / (2.0 * h)));
            }
            assert!(rel_err(&right_jacobian(&v), &fd) < 1e-5, "v={v}");
            let inv = right_jacobian_inv(&v);
            assert!((inv * right_jacobian(&v) - Matrix3::identity()).norm() < 1e-8);
        }
    }

    #[test]
    fn skew_is_cross_product_and_exp_is_rodrigues() {
        let a = Vector3::new(1.0, -2.0, 0.5);
        let b = Vector3::new(0.3, 0.7, -1.1);
        assert!((skew(&a) * b - a.cross(&b)).norm() < 1e-12);
        // Exp of a rotation about z by 90 degrees maps x to y (active rotation).
        let r = exp_mat(&Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2));
        assert!((r * Vector3::x() - Vector3::y()).norm() < 1e-12);
        assert!((log(&exp(&a.scale(0.5))) - a.scale(0.5)).norm() < 1e-12);
    }

    const SAMPLES: [[f64; 3]; 5] = [
        [0.2, -0.4, 0.9],
        [2.0, 1.0, -0.5],
        [1e-3, -2e-3, 5e-4],
        [0.0, 0.0, 3.0],
        [-1.1, 0.3, 0.05],
    ];

    /// Pins sophus_lie's SO3 exp and log to ours (same active rotation, same tangent ordering).
    #[test]
    fn sophus_exp_log_agree() {
        for v in SAMPLES.map(Vector3::from) {
            let r = Rotation3F64::exp(v);
            assert!((r.matrix() - exp_mat(&v)).norm() < 1e-12, "v={v}");
            assert!((r.matrix() - exp(&v).to_rotation_matrix().into_inner()).norm() < 1e-12);
            assert!((r.log() - log(&exp(&v))).norm() < 1e-12, "v={v}");
            assert!((Rotation3F64::hat(v) * v).norm() < 1e-15);
        }
    }

    /// Our right Jacobians equal sophus's left ones at `-v` (`Jr(v) = Jl(-v)`); near zero ours
    /// keep the second-order term that sophus's branch drops.
    #[test]
    fn right_jacobians_match_sophus_left_at_minus_v() {
        for v in SAMPLES.map(Vector3::from) {
            let jl = Rotation3F64::left_jacobian(-v);
            let jl_inv = Rotation3F64::inv_left_jacobian(-v);
            assert!(rel_err(&right_jacobian(&v), &jl) < 1e-12, "v={v}");
            assert!(rel_err(&right_jacobian_inv(&v), &jl_inv) < 1e-12, "v={v}");
        }
        // Below sophus's small-angle threshold the second-order term is still visible.
        let v = Vector3::new(4e-4, -3e-4, 5e-4);
        let second_order = Matrix3::identity() - 0.5 * skew(&v) + skew(&v) * skew(&v) / 6.0;
        assert!(rel_err(&right_jacobian(&v), &second_order) < 1e-10);
        assert!(rel_err(&Rotation3F64::left_jacobian(-v), &second_order) > 1e-8);
    }
}
