//! Forward projection sixteen Gaussians at a time. What decides culling, depth order and the
//! screen position (validity, camera-frame mean, near/far and frustum tests, mean on screen)
//! is the reference's f64 code per Gaussian, so those decisions are the reference's; the 2D
//! covariance, SH colour and opacity (most of the arithmetic) run in f32 lanes; the conic,
//! tile rectangle and alpha box follow per Gaussian in f64 from those values. Gaussians whose
//! scales lie outside what f32 lanes hold comfortably, or whose lane values are not finite,
//! take the reference path ([`project`]).

use nalgebra::Vector3;

use super::chain::{arr, basis, rotation, screen_covariance, M3, V};
use super::project::{finish, project, Params, Splat, View};
use crate::render::cpu::project::Projected;
use crate::render::types::TILE;

/// Log-scales the lanes take (beyond: the reference path; squared scales stay far inside f32).
const LOG_SCALE_RANGE: (f32, f32) = (-30.0, 20.0);

wide! {
/// Projects Gaussians `first..first + out.len()` (at most [`super::chain::L`]) into `out`,
/// as [`project`] would.
pub fn project_batch(p: &Params<'_>, v: &View, first: usize, out: &mut [Option<Splat>]) {
    const L: usize = super::chain::L;
    let m = out.len().min(L);
    let cam = &v.cam;
    let lim_x = 1.3 * cam.cx.max(cam.width as f64 - cam.cx) / cam.fx;
    let lim_y = 1.3 * cam.cy.max(cam.height as f64 - cam.cy) / cam.fy;
    let (r64, t64, c64) = (v.pose.r, v.pose.t, v.pose.centre());
    let z0 = V::splat(0.0);
    // Per lane: in the lanes (Some(camera-frame mean)), culled (None, written now) or
    // handed to the reference.
    let mut pcs: [Option<Vector3<f64>>; L] = [None; L];
    let (mut pc, mut dir, mut qn, mut ls) = ([z0; 3], [z0; 3], [V::splat(0.0); 4], [z0; 3]);
    qn[0] = V::splat(1.0);
    pc[2] = V::splat(1.0);
    dir[2] = V::splat(1.0);
    for l in 0..m {
        let i = first + l;
        let lsi: [f32; 3] = arr(|a| p.log_scale[3 * i + a]);
        if !lsi
            .iter()
            .all(|&x| x >= LOG_SCALE_RANGE.0 && x <= LOG_SCALE_RANGE.1)
        {
            out[l] = project(p, i, v);
            continue;
        }
        let pw = Vector3::new(
            p.mean[3 * i] as f64,
            p.mean[3 * i + 1] as f64,
            p.mean[3 * i + 2] as f64,
        );
        let q: [f64; 4] = arr(|a| p.rot[4 * i + a] as f64);
        let qnorm = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
        // The reference's culling (`cpu::project::geometry`); the scales are finite here.
        out[l] = None;
        if !(pw.iter().all(|c| c.is_finite()) && qnorm.is_finite() && qnorm > 1e-12) {
            continue;
        }
        let c = r64 * pw + t64;
        if !(c.z > cam.near && c.z < cam.far) {
            continue;
        }
        if (c.x / c.z).abs() > lim_x || (c.y / c.z).abs() > lim_y {
            continue;
        }
        let d = (pw - c64).normalize();
        for a in 0..3 {
            pc[a].0[l] = c[a] as f32;
            dir[a].0[l] = d[a] as f32;
            ls[a].0[l] = lsi[a];
        }
        for a in 0..4 {
            qn[a].0[l] = (q[a] / qnorm) as f32;
        }
        pcs[l] = Some(c);
    }
    if pcs.iter().all(|c| c.is_none()) {
        return;
    }

    // 2D covariance (`geometry`), colour and opacity in the lanes.
    let s: [V; 3] = arr(|a| ls[a].exp());
    let rot = rotation(qn);
    let msc: M3 = arr(|i| arr(|j| rot[i][j] * s[j]));
    // R msc, then (R msc)(R msc)^T = R sigma R^T.
    let rp: M3 = arr(|i| arr(|j| V::splat(r64[(i, j)] as f32)));
    let rm: M3 = arr(|i| {
        arr(|j| rp[i][0] * msc[0][j] + rp[i][1] * msc[1][j] + rp[i][2] * msc[2][j])
    });
    let sigma_c: M3 = arr(|i| {
        arr(|j| rm[i][0] * rm[j][0] + rm[i][1] * rm[j][1] + rm[i][2] * rm[j][2])
    });
    let (fx, fy) = (cam.fx as f32, cam.fy as f32);
    let (_, _, [ca, cb, cc]) = screen_covariance(pc, &sigma_c, fx, fy);
    let k = p.k;
    let rw = 3 * (k - 1);
    let (mut yb, mut dyb) = ([z0; 16], [[z0; 3]; 16]);
    basis(dir, k, &mut yb, &mut dyb);
    // Opacity logits and SH coefficients transposed (one row of lanes per value).
    let mut raw = [[0.0f32; L]; 1 + 48];
    for l in 0..L {
        let i = first + l.min(m - 1);
        raw[0][l] = p.opacity[i];
        for (r, &x) in raw[1..].iter_mut().zip(&p.dc[3 * i..3 * i + 3]) {
            r[l] = x;
        }
        for (r, &x) in raw[4..].iter_mut().zip(&p.rest[rw * i..rw * (i + 1)]) {
            r[l] = x;
        }
    }
    let colour: [V; 3] = arr(|ch| {
        let mut acc = yb[0] * V(raw[1 + ch]);
        for (kk, ykk) in yb.iter().enumerate().take(k).skip(1) {
            acc = acc + *ykk * V(raw[1 + 3 * kk + ch]);
        }
        acc + 0.5
    });
    let logit = V(raw[0]);
    let opacity = 1.0 / (1.0 + (-logit).exp());

    // Conic, tile rectangle and alpha box per Gaussian in f64 (`project_one`'s tail).
    let (tx, ty) = cam.tiles();
    let t = TILE as f64;
    let rect_lo = |v: f64, n: u32| ((v / t).floor().max(0.0) as u32).min(n);
    let rect_hi = |v: f64, n: u32| (((v / t).floor() + 1.0).max(0.0) as u32).min(n);
    for l in 0..m {
        let Some(c) = pcs[l] else { continue };
        let i = first + l;
        let (a, b, cv) = (ca.0[l] as f64, cb.0[l] as f64, cc.0[l] as f64);
        let col: [f32; 3] = arr(|ch| colour[ch].0[l]);
        let op = opacity.0[l];
        let finite = [a, b, cv].iter().all(|x| x.is_finite())
            && col.iter().all(|x| x.is_finite())
            && op.is_finite();
        if !finite {
            out[l] = project(p, i, v);
            continue;
        }
        let det = a * cv - b * b;
        if det.is_nan() || det <= 0.0 {
            continue;
        }
        let mid = 0.5 * (a + cv);
        let lambda = mid + (mid * mid - det).max(0.1).sqrt();
        let radius = (3.0 * lambda.sqrt()).ceil();
        let mean2d = [cam.fx * c.x / c.z + cam.cx, cam.fy * c.y / c.z + cam.cy];
        let rect = [
            rect_lo(mean2d[0] - radius, tx),
            rect_hi(mean2d[0] + radius, tx),
            rect_lo(mean2d[1] - radius, ty),
            rect_hi(mean2d[1] + radius, ty),
        ];
        if rect[0] >= rect[1] || rect[2] >= rect[3] {
            continue;
        }
        let clamp: [bool; 3] = arr(|ch| col[ch] < 0.0);
        let pr = Projected {
            mean2d,
            conic: [cv / det, -b / det, a / det],
            opacity: op as f64,
            colour: arr(|ch| col[ch].max(0.0) as f64),
            depth: c.z,
            rect,
        };
        out[l] = finish(&pr, clamp, i);
    }
}
}
