//! The direct form of the photometric residual: the map is rendered once, at the prior, and
//! each selected pixel is back-projected with the render's depth to a world point carrying the
//! render's grey. The iterations then move those points, not the render: at state `x` a point
//! projects to `u(x)` in the camera image and its residual is `tau * I_cam(u(x)) - I_ref`, with
//! the Jacobian from the camera image's gradient. At the prior this is the rendered residual
//! exactly (same pixel, same render); it costs one render without pose derivatives instead of
//! one with them per iteration, and the gradient is the image's, not the blurred render's.

use nalgebra::{Isometry3, Point3, Vector3};

use super::super::chain::{camera_t_world, pose_chain};
use super::super::image::Grey;
use super::residuals::Row;
use crate::estimator::state::{ErrVec, State, POS, ROT, TAU};
use crate::render::{Camera, PoseJacobian};

/// Largest blend-weighted depth spread, relative to the depth, of a pixel that is
/// back-projected: a pixel that mixes a near and a far surface has no single point to move.
const MAX_RELATIVE_SPREAD: f64 = 0.2;

/// A selected pixel back-projected through the prior's render.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    /// The pixel it came from (at the optimisation resolution).
    pub px: (u32, u32),
    /// World position.
    pub pw: Vector3<f64>,
    /// The map's grey there: the composite `C + (1 - alpha) b`, as the render compares.
    pub reference: f64,
}

/// The points of the `pixels` that `f` (the render at world-to-camera pose `t_cw`) covers with
/// alpha at least `min_alpha` and one surface, and how many it covers (surface or not: the
/// map's coverage, which the coverage gate reads); `background`: the map's background grey.
pub(super) fn back_project(
    f: &impl PoseJacobian,
    cam: &Camera,
    t_cw: &Isometry3<f64>,
    pixels: &[(u32, u32)],
    min_alpha: f64,
    background: f64,
) -> (Vec<Point>, usize) {
    let w_t_c = t_cw.inverse();
    let mut out = Vec::with_capacity(pixels.len());
    let mut covered = 0;
    for &(px, py) in pixels {
        let Some(s) = f.surface(px, py) else { continue };
        if s.alpha < min_alpha {
            continue;
        }
        covered += 1;
        if !(s.depth > cam.near && s.depth.is_finite())
            || s.depth_spread > MAX_RELATIVE_SPREAD * s.depth
        {
            continue;
        }
        let z = s.depth;
        let pc = Point3::new(
            (px as f64 - cam.cx) / cam.fx * z,
            (py as f64 - cam.cy) / cam.fy * z,
            z,
        );
        let grey = (s.colour[0] + s.colour[1] + s.colour[2]) / 3.0;
        out.push(Point {
            px: (px, py),
            pw: (w_t_c * pc).coords,
            reference: grey + (1.0 - s.alpha) * background,
        });
    }
    (out, covered)
}

/// Bilinear value and central-difference gradient (one pixel either side, also bilinear) of
/// `grey` at sub-pixel position `(u, v)` (pixel centres at integers); `None` where the stencil
/// leaves the image or the position is not finite.
pub(super) fn sample(grey: &Grey, u: f64, v: f64) -> Option<(f64, [f64; 2])> {
    let (w, h) = (grey.width as f64, grey.height as f64);
    if !(u >= 1.0 && v >= 1.0 && u < w - 2.0 && v < h - 2.0) {
        return None;
    }
    let at = |x: f64, y: f64| {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as u32, y0 as u32);
        let a = grey.at(x0, y0) * (1.0 - fx) + grey.at(x0 + 1, y0) * fx;
        let b = grey.at(x0, y0 + 1) * (1.0 - fx) + grey.at(x0 + 1, y0 + 1) * fx;
        a * (1.0 - fy) + b * fy
    };
    let gx = 0.5 * (at(u + 1.0, v) - at(u - 1.0, v));
    let gy = 0.5 * (at(u, v + 1.0) - at(u, v - 1.0));
    Some((at(u, v), [gx, gy]))
}

/// Residuals `tau * I_cam(u(x)) - I_ref` and error-state rows of `points` at state `x`
/// (`ext`: the camera relative to the body), for the points that project inside `grey`:
/// `d r / d xi = tau * grad I . J_pi . [I, -[p_c]x]` (the [`crate::render::perturb_pose`]
/// convention), through the chain to the error state; `d r / d tau = I_cam`.
pub(super) fn rows(
    points: &[Point],
    x: &State,
    ext: &Isometry3<f64>,
    grey: &Grey,
    cam: &Camera,
) -> Vec<Row> {
    let t_cw = camera_t_world(x, ext);
    let m = pose_chain(x, ext);
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let pc = t_cw * Point3::from(p.pw);
        if pc.z <= cam.near {
            continue;
        }
        let (u, v) = (cam.fx * pc.x / pc.z + cam.cx, cam.fy * pc.y / pc.z + cam.cy);
        let Some((i, [gx, gy])) = sample(grey, u, v) else {
            continue;
        };
        // grad I . J_pi, then times [I, -[p]x]: a . (w x p) = w . (p x a).
        let z = pc.z;
        let a = Vector3::new(
            gx * cam.fx / z,
            gy * cam.fy / z,
            -(gx * cam.fx * pc.x + gy * cam.fy * pc.y) / (z * z),
        ) * x.tau;
        let wv = pc.coords.cross(&a);
        let d_xi = [a.x, a.y, a.z, wv.x, wv.y, wv.z];
        let mut h = ErrVec::zeros();
        for c in 0..6 {
            let s: f64 = (0..6).map(|r| d_xi[r] * m[(r, c)]).sum();
            h[if c < 3 { ROT + c } else { POS + c - 3 }] = s;
        }
        h[TAU] = i;
        out.push(Row {
            px: p.px,
            r: x.tau * i - p.reference,
            h,
            cam: i,
            ren: p.reference,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::so3;
    use nalgebra::Translation3;

    /// A grey image bilinear in the pixel coordinates: bilinear interpolation and central
    /// differences are then exact, so the residual is smooth and its derivative known.
    fn smooth_grey(w: u32, h: u32) -> Grey {
        let data = (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let (x, y) = (x as f64, y as f64);
                    0.2 + 0.004 * x - 0.003 * y + 0.00005 * x * y
                })
            })
            .collect();
        Grey {
            width: w,
            height: h,
            data,
        }
    }

    /// The rows are the derivatives of the residuals: central differences of `rows` over
    /// every pose and the tau coordinate of the error state. A row with the wrong sign or the
    /// wrong chain (e.g. without `tau`, or `[p]x` transposed) misses by far more than 0.01 %.
    #[test]
    fn direct_rows_match_finite_differences() {
        let cam = crate::render::test_camera(160, 120);
        let grey = smooth_grey(cam.width, cam.height);
        let x = State {
            rot: so3::exp(&Vector3::new(0.1, -0.2, 0.3)),
            pos: Vector3::new(0.4, -0.3, 0.2),
            tau: 1.1,
            ..Default::default()
        };
        let ext = Isometry3::from_parts(
            Translation3::new(0.1, -0.04, 0.03),
            so3::exp(&Vector3::new(-1.2, 0.3, 0.7)),
        );
        let c_t_w = camera_t_world(&x, &ext);
        let w_t_c = c_t_w.inverse();
        let points: Vec<Point> = [(40.0, 30.0, 2.0), (120.0, 80.0, 1.2), (75.5, 61.2, 3.5)]
            .iter()
            .enumerate()
            .map(|(k, &(u, v, z))| Point {
                px: (k as u32, 0),
                pw: (w_t_c * Point3::new((u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z))
                    .coords,
                reference: 0.4,
            })
            .collect();
        let r0 = rows(&points, &x, &ext, &grey, &cam);
        assert_eq!(r0.len(), points.len());
        let h = 1e-6;
        for idx in [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2, TAU] {
            let mut d = ErrVec::zeros();
            d[idx] = h;
            let rp = rows(&points, &x.boxplus(&d), &ext, &grey, &cam);
            let rm = rows(&points, &x.boxplus(&(-d)), &ext, &grey, &cam);
            for k in 0..points.len() {
                let fd = (rp[k].r - rm[k].r) / (2.0 * h);
                let an = r0[k].h[idx];
                assert!(
                    (fd - an).abs() <= 1e-4 * fd.abs().max(1e-3),
                    "state {idx}, point {k}: analytic {an}, numeric {fd}"
                );
            }
        }
        // At the state it was made from, a point projects to its pixel: residual from there.
        let at = sample(&grey, 40.0, 30.0).unwrap().0;
        assert!((r0[0].r - (1.1 * at - 0.4)).abs() < 1e-9);
    }

    /// Bilinear sampling reproduces pixel values at integer positions, interpolates between
    /// them, and refuses positions whose stencil leaves the image.
    #[test]
    fn sample_is_bilinear_and_bounded() {
        let grey = smooth_grey(20, 10);
        let (v, g) = sample(&grey, 5.0, 4.0).unwrap();
        assert!((v - grey.at(5, 4)).abs() < 1e-12);
        assert!((g[0] - 0.5 * (grey.at(6, 4) - grey.at(4, 4))).abs() < 1e-12);
        let mid = sample(&grey, 5.5, 4.0).unwrap().0;
        assert!((mid - 0.5 * (grey.at(5, 4) + grey.at(6, 4))).abs() < 1e-12);
        assert!(sample(&grey, 0.5, 4.0).is_none());
        assert!(sample(&grey, 17.9, 4.0).is_some() && sample(&grey, 18.0, 4.0).is_none());
        assert!(sample(&grey, f64::NAN, 4.0).is_none());
    }
}
