//! Pinhole camera (optional radial-tangential distortion) rendered exactly by ray casting, with
//! supersampling and footprint-filtered textures; pixel = albedo * exposure gain.

use nalgebra::{Isometry3, Vector3};

use super::scene::{Ray, Scene};
use crate::sensors::Camera;
use crate::sensors::Image;

/// Colour of rays that hit nothing (before the exposure gain).
const SKY: [f32; 3] = [0.55, 0.68, 0.85];

/// A camera with its per-pixel ray directions precomputed (distortion inverted once).
#[derive(Debug, Clone)]
pub struct CameraRays {
    pub intrinsics: Camera,
    /// Samples per pixel along each axis at geometric edges (2 = 2x2 supersampling).
    pub supersample: u32,
    /// Unit ray directions (optical frame) through each pixel centre, row-major.
    centres: Vec<Vector3<f64>>,
    /// Sub-pixel ray directions, pixel-major then sample-major (empty when `supersample` is 1).
    subs: Vec<Vector3<f64>>,
}

impl CameraRays {
    pub fn new(intrinsics: &Camera, supersample: u32) -> Self {
        let ss = supersample.max(1);
        let (w, h) = (intrinsics.width, intrinsics.height);
        let mut centres = Vec::with_capacity((w * h) as usize);
        let mut subs = Vec::with_capacity(if ss > 1 {
            (w * h * ss * ss) as usize
        } else {
            0
        });
        for v in 0..h {
            for u in 0..w {
                centres.push(unproject(intrinsics, [u as f64, v as f64]));
                if ss == 1 {
                    continue;
                }
                for sy in 0..ss {
                    for sx in 0..ss {
                        let px = u as f64 + (sx as f64 + 0.5) / ss as f64 - 0.5;
                        let py = v as f64 + (sy as f64 + 0.5) / ss as f64 - 0.5;
                        subs.push(unproject(intrinsics, [px, py]));
                    }
                }
            }
        }
        Self {
            intrinsics: intrinsics.clone(),
            supersample: ss,
            centres,
            subs,
        }
    }

    /// Renders the scene seen from `world_t_camera` (optical frame), pixel = albedo * gain.
    ///
    /// Textures are footprint-filtered, so only pixels on a geometric edge (a neighbour sees
    /// another primitive) are supersampled: same anti-aliasing, a fraction of the rays.
    pub fn render(&self, scene: &Scene, world_t_camera: &Isometry3<f64>, gain: f64) -> Image {
        let (w, h) = (
            self.intrinsics.width as usize,
            self.intrinsics.height as usize,
        );
        let focal = self.intrinsics.fx.max(self.intrinsics.fy);
        let shade = |d: &Vector3<f64>, ang: f64| -> ([f32; 3], u32) {
            let ray = Ray {
                origin: world_t_camera.translation.vector,
                dir: world_t_camera.rotation * d,
            };
            match scene.intersect(&ray) {
                Some(hit) => {
                    // Footprint = distance * angular sample size / cos(incidence).
                    let cos = hit.normal.dot(&-ray.dir).abs().max(0.2);
                    (scene.albedo(&hit, hit.t * ang / cos), hit.primitive as u32)
                }
                None => (SKY, u32::MAX),
            }
        };
        // Pass 1: pixel centres.
        let mut colour = vec![[0.0f32; 3]; w * h];
        let mut prim = vec![0u32; w * h];
        par_rows(&mut colour, &mut prim, w, |pix, c, p| {
            (*c, *p) = shade(&self.centres[pix], 1.0 / focal);
        });
        // Pass 2: supersample pixels on primitive boundaries.
        let ss = self.supersample as usize;
        if ss > 1 {
            let spp = ss * ss;
            let edge = |pix: usize| {
                let (x, y) = (pix % w, pix / w);
                let p = prim[pix];
                (x > 0 && prim[pix - 1] != p)
                    || (x + 1 < w && prim[pix + 1] != p)
                    || (y > 0 && prim[pix - w] != p)
                    || (y + 1 < h && prim[pix + w] != p)
            };
            let edges: Vec<usize> = (0..w * h).filter(|&i| edge(i)).collect();
            let ang = 1.0 / (focal * ss as f64);
            let fixed = super::sequence::parallel_map(edges.len(), |k| {
                let pix = edges[k];
                let mut acc = [0.0f32; 3];
                for d in &self.subs[pix * spp..(pix + 1) * spp] {
                    let (c, _) = shade(d, ang);
                    for i in 0..3 {
                        acc[i] += c[i] / spp as f32;
                    }
                }
                acc
            });
            for (pix, c) in edges.into_iter().zip(fixed) {
                colour[pix] = c;
            }
        }
        let mut img = Image::new(0, w as u32, h as u32);
        for (px, c) in img.rgb.chunks_exact_mut(3).zip(&colour) {
            for i in 0..3 {
                px[i] = (c[i] * gain as f32 * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        img
    }
}

/// Runs `f(pixel index, colour, primitive)` over all pixels, rows split across threads.
fn par_rows(
    colour: &mut [[f32; 3]],
    prim: &mut [u32],
    w: usize,
    f: impl Fn(usize, &mut [f32; 3], &mut u32) + Sync,
) {
    let h = colour.len() / w.max(1);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, h.max(1));
    let per = h.div_ceil(threads).max(1) * w;
    let f = &f;
    std::thread::scope(|s| {
        for (k, (cc, pc)) in colour.chunks_mut(per).zip(prim.chunks_mut(per)).enumerate() {
            s.spawn(move || {
                for (i, (c, p)) in cc.iter_mut().zip(pc.iter_mut()).enumerate() {
                    f(k * per + i, c, p);
                }
            });
        }
    });
}

/// Renders one view with 2x2 supersampling (builds the ray table; reuse a [`CameraRays`] for
/// many views). `world_t_camera` maps optical-frame points into the world.
pub fn render_camera(
    scene: &Scene,
    world_t_camera: &Isometry3<f64>,
    camera: &Camera,
    gain: f64,
) -> Image {
    CameraRays::new(camera, 2).render(scene, world_t_camera, gain)
}

fn distort(c: &Camera, x: f64, y: f64) -> (f64, f64) {
    // Zero coefficients would map (x, y) to itself exactly; skip the arithmetic.
    if !c.has_distortion() {
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
pub fn project(c: &Camera, p: &Vector3<f64>) -> Option<[f64; 2]> {
    if p.z <= 1e-9 {
        return None;
    }
    let (xd, yd) = distort(c, p.x / p.z, p.y / p.z);
    Some([c.fx * xd + c.cx, c.fy * yd + c.cy])
}

/// Unit ray direction (optical frame) through pixel coordinates `uv`.
pub fn unproject(c: &Camera, uv: [f64; 2]) -> Vector3<f64> {
    let xd = (uv[0] - c.cx) / c.fx;
    let yd = (uv[1] - c.cy) / c.fy;
    let (mut x, mut y) = (xd, yd);
    if c.has_distortion() {
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
        let c = Camera {
            distortion: [-0.12, 0.03, 0.001, -0.0005, 0.0],
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
