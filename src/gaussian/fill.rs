//! Gaussians for what the camera sees but no LiDAR point explains: pixels the map leaves
//! transparent where the background does not match the image either (the road below the
//! LiDAR's lowest beam while standing still, gaps between sparse rings, image corners outside a
//! narrow LiDAR field of view).
//!
//! Such a pixel takes the plane of the nearest (in the image) windowed Gaussian that its ray
//! meets in front of the camera, not at a grazing angle, and within a bounded distance of that
//! Gaussian: the surfaces the LiDAR measured, extended a little into the gaps. The new point
//! enters the map like a LiDAR point (the same cell rule), coloured by the pixel. Sky and far
//! surfaces, which the background explains, get nothing.

use nalgebra::{Isometry3, Point3, Vector3};

use super::params::Gaussian;
use crate::render::Camera;

/// Settings of one fill pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FillParams {
    /// Candidate pixels every `step` pixels per axis.
    pub step: usize,
    /// Pixels whose accumulated opacity is at least this are covered.
    pub max_alpha: f32,
    /// Smallest mean absolute error per channel (composite against image) worth a Gaussian.
    pub min_error: f32,
    /// Farthest a neighbour may be in the image, in pixels.
    pub radius_px: f64,
    /// Farthest (m) a new point may lie from the neighbour whose plane it extends.
    pub max_extrapolation: f64,
    /// Most points per pass.
    pub max_points: usize,
}

/// A point to insert: world position, unit normal, exposure-normalised colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FillPoint {
    pub p: [f64; 3],
    pub n: [f64; 3],
    pub colour: [f32; 3],
}

/// Cosine below which a ray grazes a plane too much to place a point on it.
const MIN_COS: f64 = 0.2;

/// Points for the uncovered, badly rendered pixels of one view.
///
/// `alpha` per pixel, `error` per pixel (mean absolute error per channel of the composite),
/// `target` RGB per pixel, all at `cam`'s resolution; `window` the Gaussians rendered.
pub(crate) fn fill_points(
    window: &[Gaussian],
    cam: &Camera,
    t_cw: &Isometry3<f64>,
    alpha: &[f32],
    error: &[f32],
    target: &[f32],
    p: &FillParams,
) -> Vec<FillPoint> {
    let (w, h) = (cam.width as usize, cam.height as usize);
    let mut out = Vec::new();
    if w == 0 || h == 0 || window.is_empty() || alpha.len() < w * h || error.len() < w * h {
        return out;
    }
    // Bucket the projected centres on a grid of half the search radius.
    let cell = (p.radius_px / 2.0).max(1.0);
    let (gw, gh) = (
        (w as f64 / cell).ceil() as usize + 1,
        (h as f64 / cell).ceil() as usize + 1,
    );
    let mut grid: Vec<Vec<(f32, f32, u32)>> = vec![Vec::new(); gw * gh];
    for (i, g) in window.iter().enumerate() {
        let pc = t_cw
            * Point3::new(
                f64::from(g.mean[0]),
                f64::from(g.mean[1]),
                f64::from(g.mean[2]),
            );
        if pc.z <= cam.near {
            continue;
        }
        let u = cam.fx * pc.x / pc.z + cam.cx;
        let v = cam.fy * pc.y / pc.z + cam.cy;
        if !(u > -p.radius_px
            && v > -p.radius_px
            && u < w as f64 + p.radius_px
            && v < h as f64 + p.radius_px)
        {
            continue;
        }
        let gx = ((u.max(0.0) / cell) as usize).min(gw - 1);
        let gy = ((v.max(0.0) / cell) as usize).min(gh - 1);
        grid[gy * gw + gx].push((u as f32, v as f32, i as u32));
    }
    let r_wc = t_cw.rotation.inverse();
    let eye = t_cw.inverse() * Point3::origin();
    let reach = (p.radius_px / cell).ceil() as i64;
    let r2 = p.radius_px * p.radius_px;
    let step = p.step.max(1);
    for y in (step / 2..h).step_by(step) {
        for x in (step / 2..w).step_by(step) {
            let i = y * w + x;
            if alpha[i] >= p.max_alpha || error[i] < p.min_error {
                continue;
            }
            let (u, v) = (x as f64, y as f64);
            let d = r_wc * Vector3::new((u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0);
            let d = d.normalize();
            let (gx, gy) = ((u / cell) as i64, (v / cell) as i64);
            let mut best: Option<(f64, FillPoint)> = None;
            for by in (gy - reach).max(0)..=(gy + reach).min(gh as i64 - 1) {
                for bx in (gx - reach).max(0)..=(gx + reach).min(gw as i64 - 1) {
                    for &(gu, gv, k) in &grid[by as usize * gw + bx as usize] {
                        let dist2 = (f64::from(gu) - u).powi(2) + (f64::from(gv) - v).powi(2);
                        if dist2 > r2 || best.as_ref().is_some_and(|b| b.0 <= dist2) {
                            continue;
                        }
                        let g = &window[k as usize];
                        let n = g.normal();
                        let n = Vector3::new(f64::from(n[0]), f64::from(n[1]), f64::from(n[2]));
                        let cos = n.dot(&d);
                        if n.norm() < 0.5 || cos.abs() < MIN_COS {
                            continue;
                        }
                        let m = Vector3::new(
                            f64::from(g.mean[0]),
                            f64::from(g.mean[1]),
                            f64::from(g.mean[2]),
                        );
                        let t = n.dot(&(m - eye.coords)) / cos;
                        let hit = eye.coords + d * t;
                        // In front of the camera (camera-frame depth) and near the neighbour.
                        if t * (t_cw.rotation * d).z <= cam.near
                            || (hit - m).norm() > p.max_extrapolation
                        {
                            continue;
                        }
                        // Normal towards the camera, as LiDAR normals face the sensor.
                        let n = if cos > 0.0 { -n } else { n };
                        best = Some((
                            dist2,
                            FillPoint {
                                p: [hit.x, hit.y, hit.z],
                                n: [n.x, n.y, n.z],
                                colour: [target[3 * i], target[3 * i + 1], target[3 * i + 2]],
                            },
                        ));
                    }
                }
            }
            if let Some((_, f)) = best {
                out.push(f);
                if out.len() >= p.max_points {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::params::rotation_from_normal;

    /// A camera at the origin looking along +z (identity pose), 64x48, f = 40.
    fn cam() -> Camera {
        Camera {
            width: 64,
            height: 48,
            fx: 40.0,
            fy: 40.0,
            cx: 31.5,
            cy: 23.5,
            near: 0.05,
            far: 100.0,
        }
    }

    /// Discs on the plane z = 5 (facing the camera) covering the left half of the view only.
    fn left_half_plane() -> Vec<Gaussian> {
        let mut v = Vec::new();
        for i in 0..10 {
            for j in 0..16 {
                let x = -4.0 + i as f32 * 0.4;
                let y = -3.0 + j as f32 * 0.4;
                v.push(Gaussian {
                    mean: [x, y, 5.0],
                    log_scale: [-1.5, -1.5, -4.0],
                    rotation: rotation_from_normal([0.0, 0.0, -1.0]),
                    ..Default::default()
                });
            }
        }
        v
    }

    fn params() -> FillParams {
        FillParams {
            step: 4,
            max_alpha: 0.5,
            min_error: 0.05,
            radius_px: 16.0,
            max_extrapolation: 1.5,
            max_points: 10_000,
        }
    }

    #[test]
    fn extends_the_measured_plane_only_where_the_image_is_unexplained() {
        let c = cam();
        let (w, h) = (64usize, 48usize);
        let window = left_half_plane();
        // Left half covered; right half transparent. Error high only in the top half.
        let alpha: Vec<f32> = (0..w * h)
            .map(|i| if i % w < 32 { 1.0 } else { 0.0 })
            .collect();
        let error: Vec<f32> = (0..w * h)
            .map(|i| if i / w < 24 { 0.2 } else { 0.0 })
            .collect();
        let target: Vec<f32> = (0..w * h * 3).map(|i| (i % 3) as f32 * 0.25).collect();
        let pts = fill_points(
            &window,
            &c,
            &Isometry3::identity(),
            &alpha,
            &error,
            &target,
            &params(),
        );
        assert!(!pts.is_empty());
        for f in &pts {
            // On the plane z = 5, facing the camera, right of the covered part, within reach.
            assert!((f.p[2] - 5.0).abs() < 1e-6, "{f:?}");
            assert!(f.n[2] < -0.999, "{f:?}");
            assert!(f.p[0] > 0.0 && f.p[0] < -0.4 + 1.5 + 1e-6, "{f:?}");
            // Top half of the image only (y < 0 in the camera frame).
            assert!(f.p[1] < 0.0, "{f:?}");
            assert_eq!(f.colour, [0.0, 0.25, 0.5]);
        }
        // Nothing when the background explains the image, or when the image is covered.
        let none = fill_points(
            &window,
            &c,
            &Isometry3::identity(),
            &alpha,
            &vec![0.0; w * h],
            &target,
            &params(),
        );
        assert!(none.is_empty());
        let covered = fill_points(
            &window,
            &c,
            &Isometry3::identity(),
            &vec![1.0; w * h],
            &error,
            &target,
            &params(),
        );
        assert!(covered.is_empty());
        // Planes behind the rays (vertical planes on the left, rays to the right) give nothing.
        let edge_on: Vec<Gaussian> = window
            .iter()
            .map(|g| Gaussian {
                rotation: rotation_from_normal([1.0, 0.0, 0.0]),
                ..*g
            })
            .collect();
        let grazing = fill_points(
            &edge_on,
            &c,
            &Isometry3::identity(),
            &alpha,
            &error,
            &target,
            &params(),
        );
        assert!(grazing.is_empty(), "{grazing:?}");
    }
}
