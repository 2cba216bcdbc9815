//! Pinhole camera (optional radial-tangential distortion) rendered exactly by ray casting, with
//! supersampling and footprint-filtered textures; pixel = albedo * exposure gain.

use nalgebra::{Isometry3, Vector3};

use super::scene::{Ray, Scene};
use crate::config;
use crate::sensors::Image;

/// Colour of rays that hit nothing (before the exposure gain).
const SKY: [f32; 3] = [0.55, 0.68, 0.85];

/// A camera with its per-pixel ray directions precomputed (distortion inverted once).
#[derive(Debug, Clone)]
pub struct CameraModel {
    pub intrinsics: config::Camera,
    /// Samples per pixel along each axis (2 = 2x2 supersampling).
    pub supersample: u32,
    /// Unit ray directions in the camera (optical) frame, pixel-major then sample-major.
    dirs: Vec<Vector3<f64>>,
}

impl CameraModel {
    pub fn new(intrinsics: &config::Camera, supersample: u32) -> Self {
        let ss = supersample.max(1);
        let (w, h) = (intrinsics.width, intrinsics.height);
        let mut dirs = Vec::with_capacity((w * h * ss * ss) as usize);
        for v in 0..h {
            for u in 0..w {
                for sy in 0..ss {
                    for sx in 0..ss {
                        let px = u as f64 + (sx as f64 + 0.5) / ss as f64 - 0.5;
                        let py = v as f64 + (sy as f64 + 0.5) / ss as f64 - 0.5;
                        dirs.push(unproject(intrinsics, [px, py]));
                    }
                }
            }
        }
        Self {
            intrinsics: intrinsics.clone(),
            supersample: ss,
            dirs,
        }
    }

    /// Renders the scene seen from `world_t_camera` (optical frame), pixel = albedo * gain.
    pub fn render(&self, scene: &Scene, world_t_camera: &Isometry3<f64>, gain: f64) -> Image {
        let (w, h) = (
            self.intrinsics.width as usize,
            self.intrinsics.height as usize,
        );
        let mut img = Image::new(0, w as u32, h as u32);
        let spp = (self.supersample * self.supersample) as usize;
        // Angular size of one sample; footprint = distance * this / cos(incidence).
        let ang = 1.0 / (self.intrinsics.fx.max(self.intrinsics.fy) * self.supersample as f64);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(h.max(1));
        let rows_per = h.div_ceil(threads);
        std::thread::scope(|s| {
            for (chunk_i, chunk) in img.rgb.chunks_mut(rows_per * w * 3).enumerate() {
                s.spawn(move || {
                    let v0 = chunk_i * rows_per;
                    for (k, px) in chunk.chunks_mut(3).enumerate() {
                        let pix = v0 * w + k;
                        let mut acc = [0.0f32; 3];
                        for d in &self.dirs[pix * spp..(pix + 1) * spp] {
                            let ray = Ray {
                                origin: world_t_camera.translation.vector,
                                dir: world_t_camera.rotation * d,
                            };
                            let c = match scene.intersect(&ray) {
                                Some(hit) => {
                                    let cos = hit.normal.dot(&-ray.dir).abs().max(0.2);
                                    scene.albedo(&hit, hit.t * ang / cos)
                                }
                                None => SKY,
                            };
                            for i in 0..3 {
                                acc[i] += c[i];
                            }
                        }
                        for i in 0..3 {
                            let v = acc[i] / spp as f32 * gain as f32 * 255.0;
                            px[i] = v.round().clamp(0.0, 255.0) as u8;
                        }
                    }
                });
            }
        });
        img
    }
}

/// Renders one view with 2x2 supersampling (builds the ray table; reuse a [`CameraModel`] for
/// many views). `world_t_camera` maps optical-frame points into the world.
pub fn render_camera(
    scene: &Scene,
    world_t_camera: &Isometry3<f64>,
    camera: &config::Camera,
    gain: f64,
) -> Image {
    CameraModel::new(camera, 2).render(scene, world_t_camera, gain)
}

fn distort(c: &config::Camera, x: f64, y: f64) -> (f64, f64) {
    if c.distortion.len() != 5 {
        return (x, y);
    }
    let (k1, k2, p1, p2, k3) = (
        c.distortion[0],
        c.distortion[1],
        c.distortion[2],
        c.distortion[3],
        c.distortion[4],
    );
    let r2 = x * x + y * y;
    let radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
    (
        x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
        y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
    )
}

/// Pixel coordinates of a point in the camera (optical) frame, `None` behind the camera.
/// Pixel centres are at integer coordinates.
pub fn project(c: &config::Camera, p: &Vector3<f64>) -> Option<[f64; 2]> {
    if p.z <= 1e-9 {
        return None;
    }
    let (xd, yd) = distort(c, p.x / p.z, p.y / p.z);
    Some([c.fx * xd + c.cx, c.fy * yd + c.cy])
}

/// Unit ray direction (optical frame) through pixel coordinates `uv`.
pub fn unproject(c: &config::Camera, uv: [f64; 2]) -> Vector3<f64> {
    let xd = (uv[0] - c.cx) / c.fx;
    let yd = (uv[1] - c.cy) / c.fy;
    let (mut x, mut y) = (xd, yd);
    if c.distortion.len() == 5 {
        // Fixed-point inversion; converges for the mild distortion of real lenses.
        for _ in 0..30 {
            let (dx, dy) = distort(c, x, y);
            x -= dx - xd;
            y -= dy - yd;
        }
    }
    Vector3::new(x, y, 1.0).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unproject_inverts_project_with_distortion() {
        let c = config::Camera {
            distortion: vec![-0.12, 0.03, 0.001, -0.0005, 0.0],
            ..Default::default()
        };
        for &(u, v) in &[(0.0, 0.0), (320.0, 240.0), (639.0, 479.0), (100.0, 400.0)] {
            let d = unproject(&c, [u, v]);
            let p = project(&c, &(d * 3.0)).unwrap();
            assert!(
                (p[0] - u).abs() < 1e-6 && (p[1] - v).abs() < 1e-6,
                "{p:?} vs {u},{v}"
            );
        }
    }
}
