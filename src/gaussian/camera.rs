//! Pinhole camera with radial-tangential distortion: projection of map points into images
//! (for colouring new Gaussians) and view-frustum tests (for the window).
//!
//! Pixel convention as OpenCV: the centre of pixel (i, j) is at (u, v) = (i, j).

use nalgebra::{Isometry3, Point3, Vector3};

use crate::sensors::Image;

/// Intrinsics and image size; distortion `[k1, k2, p1, p2, k3]` (zeros = none).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraModel {
    pub width: u32,
    pub height: u32,
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    pub distortion: [f64; 5],
}

/// Points closer than this to the camera plane are not projected (m).
pub const NEAR: f64 = 0.05;

impl CameraModel {
    pub fn from_config(c: &crate::config::Camera) -> Self {
        let mut d = [0.0; 5];
        if c.distortion.len() == 5 {
            d.copy_from_slice(&c.distortion);
        }
        Self {
            width: c.width,
            height: c.height,
            fx: c.fx,
            fy: c.fy,
            cx: c.cx,
            cy: c.cy,
            distortion: d,
        }
    }

    /// The same camera at `1/factor` resolution (pixel centres stay consistent).
    pub fn downsampled(&self, factor: u32) -> Self {
        if factor <= 1 {
            return self.clone();
        }
        self.resized(self.width / factor, self.height / factor)
    }

    /// The same camera imaging `width` x `height` pixels over the same field of view: the
    /// image borders stay where they were, so each axis scales by its size ratio (pixel centres
    /// consistent with area resampling, see `resample`). Distortion acts on normalised
    /// coordinates and is unchanged.
    pub fn resized(&self, width: u32, height: u32) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let sx = f64::from(width) / f64::from(self.width.max(1));
        let sy = f64::from(height) / f64::from(self.height.max(1));
        Self {
            width,
            height,
            fx: self.fx * sx,
            fy: self.fy * sy,
            cx: (self.cx + 0.5) * sx - 0.5,
            cy: (self.cy + 0.5) * sy - 0.5,
            distortion: self.distortion,
        }
    }

    pub fn has_distortion(&self) -> bool {
        self.distortion.iter().any(|&v| v != 0.0)
    }

    /// Pixel of a point given in the camera optical frame; `None` behind the near plane.
    pub fn project_camera(&self, p: &Vector3<f64>) -> Option<[f64; 2]> {
        if p.z.is_nan() || p.z <= NEAR {
            return None;
        }
        let (x, y) = (p.x / p.z, p.y / p.z);
        let [k1, k2, p1, p2, k3] = self.distortion;
        let (xd, yd) = if self.has_distortion() {
            let r2 = x * x + y * y;
            // Far outside the field of view the polynomial folds back; refuse such points.
            if r2 > 4.0 {
                return None;
            }
            let radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
            (
                x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
                y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
            )
        } else {
            (x, y)
        };
        Some([self.fx * xd + self.cx, self.fy * yd + self.cy])
    }

    /// Pixel of a world point seen from `camera_t_world`, when inside the image.
    pub fn project_world(
        &self,
        camera_t_world: &Isometry3<f64>,
        p: &Vector3<f64>,
    ) -> Option<[f64; 2]> {
        let pc = camera_t_world * Point3::from(*p);
        let uv = self.project_camera(&pc.coords)?;
        let inside = uv[0] >= 0.0
            && uv[1] >= 0.0
            && uv[0] <= f64::from(self.width) - 1.0
            && uv[1] <= f64::from(self.height) - 1.0;
        inside.then_some(uv)
    }

    /// Inward normals `(n, d)` of the four side planes of the (undistorted) frustum in the camera
    /// frame, widened by `margin` of the image size on every border; a point p is inside when
    /// `n . p >= 0` for all of them.
    pub fn side_planes(&self, margin: f64) -> [Vector3<f64>; 4] {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let u0 = (-0.5 - margin * w - self.cx) / self.fx;
        let u1 = (w - 0.5 + margin * w - self.cx) / self.fx;
        let v0 = (-0.5 - margin * h - self.cy) / self.fy;
        let v1 = (h - 0.5 + margin * h - self.cy) / self.fy;
        [
            Vector3::new(1.0, 0.0, -u0).normalize(),
            Vector3::new(-1.0, 0.0, u1).normalize(),
            Vector3::new(0.0, 1.0, -v0).normalize(),
            Vector3::new(0.0, -1.0, v1).normalize(),
        ]
    }
}

/// Bilinear RGB sample in [0, 1] at pixel coordinates (centre-of-pixel convention).
pub fn sample_bilinear(img: &Image, u: f64, v: f64) -> Option<[f32; 3]> {
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 || img.rgb.len() < w * h * 3 {
        return None;
    }
    if !(u >= 0.0 && v >= 0.0 && u <= (w - 1) as f64 && v <= (h - 1) as f64) {
        return None;
    }
    let x0 = (u.floor() as usize).min(w - 1);
    let y0 = (v.floor() as usize).min(h - 1);
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let (fx, fy) = ((u - x0 as f64) as f32, (v - y0 as f64) as f32);
    let px = |x: usize, y: usize, c: usize| f32::from(img.rgb[(y * w + x) * 3 + c]) / 255.0;
    let mut out = [0.0f32; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
        let bot = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
        *o = top * (1.0 - fy) + bot * fy;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> CameraModel {
        CameraModel {
            width: 64,
            height: 48,
            fx: 50.0,
            fy: 50.0,
            cx: 31.5,
            cy: 23.5,
            distortion: [0.0; 5],
        }
    }

    #[test]
    fn projects_centre_and_rejects_behind() {
        let c = cam();
        let uv = c.project_camera(&Vector3::new(0.0, 0.0, 2.0)).unwrap();
        assert_eq!(uv, [31.5, 23.5]);
        assert!(c.project_camera(&Vector3::new(0.0, 0.0, -1.0)).is_none());
        let uv = c.project_camera(&Vector3::new(0.2, -0.1, 2.0)).unwrap();
        assert!((uv[0] - 36.5).abs() < 1e-12 && (uv[1] - 21.0).abs() < 1e-12);
    }

    #[test]
    fn distortion_moves_off_axis_points_outward_for_positive_k1() {
        let mut c = cam();
        c.distortion = [0.1, 0.0, 0.0, 0.0, 0.0];
        let p = Vector3::new(0.4, 0.0, 1.0);
        let uv = c.project_camera(&p).unwrap();
        // x_d = 0.4 * (1 + 0.1 * 0.16)
        assert!((uv[0] - (31.5 + 50.0 * 0.4 * 1.016)).abs() < 1e-9);
    }

    #[test]
    fn resized_camera_sees_points_at_the_scaled_pixel() {
        // A point imaged at source pixel (u, v) lands where the area resampling puts that
        // source position: (u + 0.5) * s - 0.5 per axis.
        let c = cam();
        let r = c.resized(40, 36);
        let (sx, sy) = (40.0 / 64.0, 36.0 / 48.0);
        for p in [Vector3::new(0.3, -0.2, 2.0), Vector3::new(-0.5, 0.4, 3.0)] {
            let a = c.project_camera(&p).unwrap();
            let b = r.project_camera(&p).unwrap();
            assert!((b[0] - ((a[0] + 0.5) * sx - 0.5)).abs() < 1e-12);
            assert!((b[1] - ((a[1] + 0.5) * sy - 0.5)).abs() < 1e-12);
        }
        // The image corners map to the corners.
        assert!((r.cx - (32.0 * sx - 0.5)).abs() < 1e-12);
        assert_eq!(c.downsampled(2), c.resized(32, 24));
        assert_eq!(c.downsampled(1), c);
    }

    #[test]
    fn bilinear_interpolates() {
        let mut img = Image::new(0, 2, 2);
        img.rgb = vec![0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255];
        let s = sample_bilinear(&img, 0.25, 0.5).unwrap();
        assert!((s[0] - 0.25).abs() < 1e-6);
        assert!(sample_bilinear(&img, 1.5, 0.0).is_none());
    }

    #[test]
    fn side_planes_contain_image_and_exclude_outside() {
        let c = cam();
        let planes = c.side_planes(0.0);
        let inside = Vector3::new(0.1, 0.1, 2.0);
        let outside = Vector3::new(3.0, 0.0, 2.0);
        assert!(planes.iter().all(|n| n.dot(&inside) >= 0.0));
        assert!(planes.iter().any(|n| n.dot(&outside) < 0.0));
        // A corner pixel's ray lies (just) inside.
        let corner = Vector3::new((0.0 - 31.5) / 50.0, (0.0 - 23.5) / 50.0, 1.0);
        assert!(planes.iter().all(|n| n.dot(&corner) >= -1e-12));
    }
}
