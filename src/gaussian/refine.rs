//! Where the map still needs detail: the last optimised view's per-pixel error, kept so that the
//! next scan refines a surface the map already covers (a finer Gaussian below a coarser one)
//! only where the render does not explain the image.
//!
//! Without it the range rule alone decided: every pass from closer than before layered finer
//! Gaussians under converged coarse ones, the map grew on every revisit, the current view's
//! voxels overflowed the window, and the layers' colours compensated each other.

use nalgebra::{Isometry3, Point3};

use crate::render::Camera;

/// Per-pixel mean absolute error of one optimised view (after its last step).
#[derive(Debug, Clone)]
pub(crate) struct ErrorView {
    pub cam: Camera,
    pub t_cw: Isometry3<f64>,
    /// `cam.width * cam.height` values, row-major.
    pub error: Vec<f32>,
}

impl ErrorView {
    /// Whether the view shows world point `p` with at least `min_error` error in the 3x3
    /// pixels around its projection (the largest, so an edge next to it counts). A point
    /// outside the view has no evidence of need: `false`.
    pub fn needs_detail(&self, p: &[f64; 3], min_error: f32) -> bool {
        let (w, h) = (self.cam.width as i64, self.cam.height as i64);
        if self.error.len() < (w * h) as usize {
            return false;
        }
        let pc = self.t_cw * Point3::new(p[0], p[1], p[2]);
        if pc.z <= self.cam.near {
            return false;
        }
        let u = (self.cam.fx * pc.x / pc.z + self.cam.cx).round();
        let v = (self.cam.fy * pc.y / pc.z + self.cam.cy).round();
        if !(u >= 0.0 && v >= 0.0 && u < w as f64 && v < h as f64) {
            return false;
        }
        let (u, v) = (u as i64, v as i64);
        (v - 1..=v + 1)
            .filter(|y| (0..h).contains(y))
            .flat_map(|y| (u - 1..=u + 1).map(move |x| (x, y)))
            .filter(|(x, _)| (0..w).contains(x))
            .any(|(x, y)| self.error[(y * w + x) as usize] >= min_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10x10 view from the origin looking down +z: the error map's bad corner asks for
    /// detail, the rest, points behind the camera and points outside the image do not.
    #[test]
    fn detail_only_where_the_view_shows_error() {
        let cam = Camera::new(10, 10, 10.0, 10.0);
        let mut error = vec![0.01; 100];
        error[2 * 10 + 8] = 0.2; // pixel (8, 2)
        let v = ErrorView {
            cam,
            t_cw: Isometry3::identity(),
            error,
        };
        let at = |u: f64, y: f64| {
            [
                (u - cam.cx) / cam.fx * 2.0,
                (y - cam.cy) / cam.fy * 2.0,
                2.0,
            ]
        };
        assert!(v.needs_detail(&at(8.0, 2.0), 0.05));
        assert!(
            v.needs_detail(&at(9.0, 3.0), 0.05),
            "a neighbour pixel counts"
        );
        assert!(!v.needs_detail(&at(8.0, 2.0), 0.3), "below the threshold");
        assert!(!v.needs_detail(&at(2.0, 7.0), 0.05), "explained pixel");
        assert!(!v.needs_detail(&[0.0, 0.0, -2.0], 0.0), "behind the camera");
        assert!(!v.needs_detail(&at(30.0, 2.0), 0.0), "outside the image");
        let short = ErrorView {
            error: vec![1.0; 10],
            ..v
        };
        assert!(!short.needs_detail(&at(8.0, 2.0), 0.05), "malformed map");
    }
}
