//! One Gaussian's parameters, in the same units as 3DGS stores them.

use nalgebra::{UnitQuaternion, Vector3};

/// Zeroth spherical-harmonics basis constant: colour = 0.5 + SH_C0 * f_dc (3DGS convention).
pub const SH_C0: f32 = 0.282_094_8;

/// Number of SH coefficients per channel for a degree (1, 4, 9, 16).
pub fn sh_coeff_count(degree: u32) -> usize {
    ((degree + 1) * (degree + 1)) as usize
}

/// A 3D Gaussian as 3DGS parameterises it, so the optimiser and the PLY file share one form.
///
/// - `rotation` is a quaternion `(w, x, y, z)` mapping the Gaussian's local axes into the world;
///   covariance = R diag(exp(log_scale))^2 R^T. It need not be normalised (renderers normalise).
/// - `opacity_logit`: opacity = sigmoid(opacity_logit).
/// - `sh[k][c]`: coefficient `k` (0 = DC, 1..3 degree 1, 4..8 degree 2, 9..15 degree 3) of
///   colour channel `c` (RGB); colour in exposure-normalised units, 0.5 + SH_C0 * sh[0][c] for
///   the view-independent part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gaussian {
    pub mean: [f32; 3],
    pub log_scale: [f32; 3],
    pub rotation: [f32; 4],
    pub opacity_logit: f32,
    pub sh: [[f32; 3]; 16],
}

impl Default for Gaussian {
    fn default() -> Self {
        Self {
            mean: [0.0; 3],
            log_scale: [0.0; 3],
            rotation: [1.0, 0.0, 0.0, 0.0],
            opacity_logit: 0.0,
            sh: [[0.0; 3]; 16],
        }
    }
}

impl Gaussian {
    /// Sets the view-independent colour (RGB in [0, 1], exposure-normalised).
    pub fn set_base_colour(&mut self, rgb: [f32; 3]) {
        for (c, v) in rgb.iter().enumerate() {
            self.sh[0][c] = (v - 0.5) / SH_C0;
        }
    }

    /// Multiplies the colour in every direction by `s > 0` (the DC term keeps 3DGS's 0.5
    /// offset: `0.5 + C0 dc` becomes `s (0.5 + C0 dc)`; the higher bands scale). Renders of
    /// Gaussians changed alike, over a background scaled alike, scale by `s` exactly: the
    /// clamp of negative colours at zero commutes with a positive factor.
    pub fn scale_colour(&mut self, s: f32) {
        let offset = (s - 1.0) * 0.5 / SH_C0;
        for v in &mut self.sh[0] {
            *v = s * *v + offset;
        }
        for c in self.sh[1..].iter_mut().flatten() {
            *c *= s;
        }
    }

    /// The view-independent colour (DC term only).
    pub fn base_colour(&self) -> [f32; 3] {
        let d = self.sh[0];
        [0.5 + SH_C0 * d[0], 0.5 + SH_C0 * d[1], 0.5 + SH_C0 * d[2]]
    }

    pub fn opacity(&self) -> f32 {
        opacity_from_logit(self.opacity_logit)
    }

    /// Largest standard deviation (m).
    pub fn max_scale(&self) -> f32 {
        self.log_scale
            .iter()
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
            .exp()
    }

    /// World direction of the smallest axis: the disc normal for a flat Gaussian.
    pub fn normal(&self) -> [f32; 3] {
        let [w, x, y, z] = self.rotation;
        let q = nalgebra::Quaternion::new(w, x, y, z);
        if q.norm().is_nan() || q.norm() <= 1e-12 {
            return [0.0; 3];
        }
        let q = UnitQuaternion::from_quaternion(q);
        let mut axis = 0;
        for k in 1..3 {
            if self.log_scale[k] < self.log_scale[axis] {
                axis = k;
            }
        }
        let n = q * Vector3::ith(axis, 1.0f32);
        [n.x, n.y, n.z]
    }

    /// True when every parameter is finite.
    pub fn is_finite(&self) -> bool {
        self.mean.iter().all(|v| v.is_finite())
            && self.log_scale.iter().all(|v| v.is_finite())
            && self.rotation.iter().all(|v| v.is_finite())
            && self.opacity_logit.is_finite()
            && self.sh.iter().flatten().all(|v| v.is_finite())
    }
}

pub fn opacity_from_logit(l: f32) -> f32 {
    1.0 / (1.0 + (-l).exp())
}

pub fn opacity_to_logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// Quaternion `(w, x, y, z)` whose local z axis maps onto `normal` (the disc's thin axis).
pub fn rotation_from_normal(normal: [f32; 3]) -> [f32; 4] {
    let n = Vector3::new(normal[0], normal[1], normal[2]);
    let len = n.norm();
    if !(len.is_finite() && len > 1e-12) {
        return [1.0, 0.0, 0.0, 0.0];
    }
    let n = n / len;
    let q = UnitQuaternion::rotation_between(&Vector3::z(), &n).unwrap_or_else(|| {
        // Antiparallel: half turn about x.
        UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f32::consts::PI)
    });
    let q = q.quaternion();
    [q.w, q.i, q.j, q.k]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scaling multiplies the colour in every direction (DC plus the higher bands along any
    /// basis vector), offsets included.
    #[test]
    fn scale_colour_scales_the_colour_in_every_direction() {
        let mut g = Gaussian::default();
        g.set_base_colour([0.1, 0.5, 0.9]);
        for (k, c) in g.sh.iter_mut().enumerate().skip(1) {
            *c = [0.01 * k as f32, -0.02, 0.03];
        }
        // Colour with SH basis values `y` (the DC basis value is C0).
        let colour = |g: &Gaussian, y: &[f32]| -> [f32; 3] {
            std::array::from_fn(|c| 0.5 + g.sh.iter().zip(y).map(|(sh, y)| sh[c] * y).sum::<f32>())
        };
        let y: Vec<f32> = (0..16)
            .map(|k| if k == 0 { SH_C0 } else { 0.3 - 0.04 * k as f32 })
            .collect();
        let before = colour(&g, &y);
        let mut h = g;
        h.scale_colour(1.3);
        let after = colour(&h, &y);
        for c in 0..3 {
            assert!(
                (after[c] - 1.3 * before[c]).abs() < 1e-5,
                "{before:?} {after:?}"
            );
        }
        h.scale_colour(1.0 / 1.3);
        assert!(h
            .sh
            .iter()
            .flatten()
            .zip(g.sh.iter().flatten())
            .all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn colour_and_opacity_round_trip() {
        let mut g = Gaussian::default();
        g.set_base_colour([0.1, 0.5, 0.9]);
        let c = g.base_colour();
        assert!((c[0] - 0.1).abs() < 1e-6 && (c[2] - 0.9).abs() < 1e-6);
        assert!((opacity_from_logit(opacity_to_logit(0.9)) - 0.9).abs() < 1e-6);
    }

    #[test]
    fn rotation_maps_z_onto_normal() {
        for n in [
            [0.0, 0.0, 1.0],
            [0.0, 0.0, -1.0],
            [1.0, 0.0, 0.0],
            [0.3, -0.4, 0.5],
        ] {
            let mut g = Gaussian {
                rotation: rotation_from_normal(n),
                log_scale: [0.0, 0.0, -3.0],
                ..Default::default()
            };
            let got = g.normal();
            let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
            for k in 0..3 {
                assert!((got[k] - n[k] / len).abs() < 1e-5, "{n:?} -> {got:?}");
            }
            // The smallest axis is what `normal` reports.
            g.log_scale = [-3.0, 0.0, 0.0];
            let x = g.normal();
            let dot: f32 = (0..3).map(|k| x[k] * n[k] / len).sum();
            assert!(dot.abs() < 1e-5);
        }
    }
}
