//! Per-Gaussian projection to a screen splat and the chain rule back to the parameters and the
//! pose, in f64 scalar code (cheap next to the rasteriser, and it keeps the depth order and the
//! culling decisions identical to the f64 reference in `cpu::project`).

use nalgebra::{Matrix2, Matrix2x3, Matrix3, Vector3};

use crate::render::cpu::project::{quaternion_grad, PoseRt};
use crate::render::sh;
use crate::render::types::{
    group_widths, sh_coeffs, Camera, Gaussians, Group, ALPHA_MIN, DILATION, TILE,
};

/// A projected Gaussian as the tile rasteriser reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Splat {
    /// Screen mean (f64 so tile-local coordinates keep full precision).
    pub mean: [f64; 2],
    /// Inverse 2D covariance (a, b, c).
    pub conic: [f32; 3],
    pub opacity: f32,
    pub colour: [f32; 3],
    /// Camera-frame depth (the sort key, rounded like the reference's f32 key).
    pub depth: f32,
    /// Half-widths of the box outside which alpha < 1/255 (pixels there never contribute).
    pub extent: [f32; 2],
    /// Tile rectangle [x0, x1) x [y0, y1) (same rule as the reference).
    pub rect: [u32; 4],
    /// Index of the Gaussian.
    pub index: u32,
    /// Colour channels clamped at zero (bit per channel).
    pub clamped: u8,
}

/// Read-only views of the parameter groups.
pub struct Params<'a> {
    pub mean: &'a [f32],
    pub log_scale: &'a [f32],
    pub rot: &'a [f32],
    pub opacity: &'a [f32],
    pub dc: &'a [f32],
    pub rest: &'a [f32],
    /// SH coefficients per channel.
    pub k: usize,
}

impl<'a> Params<'a> {
    pub fn new(g: &'a Gaussians) -> Self {
        Self {
            mean: g.group(Group::Mean),
            log_scale: g.group(Group::LogScale),
            rot: g.group(Group::Rotation),
            opacity: g.group(Group::Opacity),
            dc: g.group(Group::ShDc),
            rest: g.group(Group::ShRest),
            k: sh_coeffs(g.sh_degree()),
        }
    }
}

/// Precomputed pose and camera constants.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub cam: Camera,
    pub pose: PoseRt,
    pub centre: Vector3<f64>,
    lim: [f64; 2],
}

impl View {
    pub fn new(cam: &Camera, pose: PoseRt) -> Self {
        Self {
            cam: *cam,
            centre: pose.centre(),
            lim: [
                1.3 * cam.cx.max(cam.width as f64 - cam.cx) / cam.fx,
                1.3 * cam.cy.max(cam.height as f64 - cam.cy) / cam.fy,
            ],
            pose,
        }
    }
}

struct Geometry {
    pc: Vector3<f64>,
    qn: [f64; 4],
    qnorm: f64,
    rot: Matrix3<f64>,
    s: Vector3<f64>,
    sigma_c: Matrix3<f64>,
    j: Matrix2x3<f64>,
    cov: Matrix2<f64>,
    dir_raw: Vector3<f64>,
}

fn geometry(p: &Params, i: usize, v: &View) -> Option<Geometry> {
    let m = &p.mean[3 * i..3 * i + 3];
    let pw = Vector3::new(m[0] as f64, m[1] as f64, m[2] as f64);
    let ls = &p.log_scale[3 * i..3 * i + 3];
    let s = Vector3::new(
        (ls[0] as f64).exp(),
        (ls[1] as f64).exp(),
        (ls[2] as f64).exp(),
    );
    let q = &p.rot[4 * i..4 * i + 4];
    let q = [q[0] as f64, q[1] as f64, q[2] as f64, q[3] as f64];
    let qnorm = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    let valid = pw.iter().all(|x| x.is_finite())
        && s.iter().all(|x| x.is_finite())
        && qnorm.is_finite()
        && qnorm > 1e-12;
    if !valid {
        return None;
    }
    let cam = &v.cam;
    let pc = v.pose.r * pw + v.pose.t;
    if !(pc.z > cam.near && pc.z < cam.far) {
        return None;
    }
    if (pc.x / pc.z).abs() > v.lim[0] || (pc.y / pc.z).abs() > v.lim[1] {
        return None;
    }
    let qn = q.map(|c| c / qnorm);
    let rot = quat_to_mat(&qn);
    let msc = rot * Matrix3::from_diagonal(&s);
    let sigma_c = v.pose.r * (msc * msc.transpose()) * v.pose.r.transpose();
    let (x, y, z) = (pc.x, pc.y, pc.z);
    let j = Matrix2x3::new(
        cam.fx / z,
        0.0,
        -cam.fx * x / (z * z),
        0.0,
        cam.fy / z,
        -cam.fy * y / (z * z),
    );
    let cov = j * sigma_c * j.transpose() + Matrix2::identity() * DILATION;
    Some(Geometry {
        pc,
        qn,
        qnorm,
        rot,
        s,
        sigma_c,
        j,
        cov,
        dir_raw: pw - v.centre,
    })
}

fn quat_to_mat(q: &[f64; 4]) -> Matrix3<f64> {
    let [w, x, y, z] = *q;
    Matrix3::new(
        1.0 - 2.0 * (y * y + z * z),
        2.0 * (x * y - w * z),
        2.0 * (x * z + w * y),
        2.0 * (x * y + w * z),
        1.0 - 2.0 * (x * x + z * z),
        2.0 * (y * z - w * x),
        2.0 * (x * z - w * y),
        2.0 * (y * z + w * x),
        1.0 - 2.0 * (x * x + y * y),
    )
}

/// Projects Gaussian `i`; `None` when culled by the reference's rules (invalid, outside the
/// near/far range or the guard frustum, degenerate covariance, off-screen tile rectangle) or
/// when its opacity is below 1/255 (it could never contribute).
pub fn project(p: &Params, i: usize, v: &View) -> Option<Splat> {
    let geo = geometry(p, i, v)?;
    let cam = &v.cam;
    let (a, b, c) = (geo.cov[(0, 0)], geo.cov[(0, 1)], geo.cov[(1, 1)]);
    let det = a * c - b * b;
    if det.is_nan() || det <= 0.0 {
        return None;
    }
    let mid = 0.5 * (a + c);
    let lambda = mid + (mid * mid - det).max(0.1).sqrt();
    let radius = (3.0 * lambda.sqrt()).ceil();
    let mean = [
        cam.fx * geo.pc.x / geo.pc.z + cam.cx,
        cam.fy * geo.pc.y / geo.pc.z + cam.cy,
    ];
    let (tx, ty) = cam.tiles();
    let t = TILE as f64;
    let lo = |v: f64, n: u32| ((v / t).floor().max(0.0) as u32).min(n);
    let hi = |v: f64, n: u32| (((v / t).floor() + 1.0).max(0.0) as u32).min(n);
    let rect = [
        lo(mean[0] - radius, tx),
        hi(mean[0] + radius, tx),
        lo(mean[1] - radius, ty),
        hi(mean[1] + radius, ty),
    ];
    if rect[0] >= rect[1] || rect[2] >= rect[3] {
        return None;
    }
    let l = p.opacity[i] as f64;
    let opacity = 1.0 / (1.0 + (-l).exp());
    // alpha >= 1/255 needs 0.5 d^T conic d <= ln(255 opacity): a box of sqrt(2 ln(..) cov_ii).
    let reach = (opacity / ALPHA_MIN).ln();
    if reach.is_nan() || reach <= 0.0 {
        return None;
    }
    let extent = [
        ((2.0 * reach * a).sqrt() * (1.0 + 1e-4) + 1e-3) as f32,
        ((2.0 * reach * c).sqrt() * (1.0 + 1e-4) + 1e-3) as f32,
    ];
    let d = geo.dir_raw.normalize();
    let (mut y, mut dy) = ([0.0; 16], [[0.0; 3]; 16]);
    sh::basis([d.x, d.y, d.z], p.k, &mut y, &mut dy);
    let dc = &p.dc[3 * i..3 * i + 3];
    let rw = 3 * (p.k - 1);
    let rest = &p.rest[rw * i..rw * (i + 1)];
    let mut colour = [0.0f32; 3];
    let mut clamped = 0u8;
    for ch in 0..3 {
        let mut val = y[0] * dc[ch] as f64;
        for kk in 1..p.k {
            val += y[kk] * rest[(kk - 1) * 3 + ch] as f64;
        }
        val += 0.5;
        if val < 0.0 {
            clamped |= 1 << ch;
        }
        colour[ch] = val.max(0.0) as f32;
    }
    Some(Splat {
        mean,
        conic: [(c / det) as f32, (-b / det) as f32, (a / det) as f32],
        opacity: opacity as f32,
        colour,
        depth: geo.pc.z as f32,
        extent,
        rect,
        index: i as u32,
        clamped,
    })
}

/// Screen-space gradient of one splat, summed over its pixels (see `backward`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScreenGrad {
    pub mean: [f64; 2],
    pub conic: [f64; 3],
    pub opacity: f64,
    pub colour: [f64; 3],
    pub depth: f64,
}

/// Mutable per-Gaussian slices of the six gradient groups (one chunk of Gaussians).
pub struct GradOut<'a> {
    pub first: usize,
    pub groups: [&'a mut [f32]; 6],
}

/// Splits a gradient set into `parts` chunks of consecutive Gaussians, each with its six group
/// slices, so threads can write disjoint Gaussians.
pub fn split_grads(g: &mut Gaussians, parts: usize) -> Vec<GradOut<'_>> {
    let n = g.len();
    let widths = group_widths(g.sh_degree());
    let per = n.div_ceil(parts.max(1)).max(1);
    let mut rest: &mut [f32] = &mut g.data;
    let mut chunks: Vec<std::slice::ChunksMut<'_, f32>> = Vec::with_capacity(6);
    for w in widths {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(w * n);
        // A zero-width group (SH degree 0) yields no chunks; it gets empty slices below.
        chunks.push(head.chunks_mut((w * per).max(1)));
        rest = tail;
    }
    let mut out = Vec::new();
    let mut first = 0;
    while first < n {
        let groups: [&mut [f32]; 6] = std::array::from_fn(|gi| {
            if widths[gi] == 0 {
                Default::default()
            } else {
                chunks[gi].next().expect("chunk per part")
            }
        });
        out.push(GradOut { first, groups });
        first += per;
    }
    out
}

/// Chain rule of Gaussian `i` (at `out.first + local`) from its screen gradient to its parameters
/// (written to `out`) and to the pose perturbation (added to `pose_grad`). Mirrors
/// `cpu::project::project_backward`.
pub fn project_backward(
    p: &Params,
    i: usize,
    v: &View,
    pg: &ScreenGrad,
    clamped: u8,
    out: &mut GradOut,
    pose_grad: &mut [f64; 6],
) {
    let Some(geo) = geometry(p, i, v) else {
        return;
    };
    let cam = &v.cam;
    let li = i - out.first;
    let (x, y, z) = (geo.pc.x, geo.pc.y, geo.pc.z);
    let l = p.opacity[i] as f64;
    let o = 1.0 / (1.0 + (-l).exp());
    out.groups[3][li] = (pg.opacity * o * (1.0 - o)) as f32;

    let k = p.k;
    let n = geo.dir_raw.norm();
    let d = geo.dir_raw / n;
    let (mut yb, mut dyb) = ([0.0; 16], [[0.0; 3]; 16]);
    sh::basis([d.x, d.y, d.z], k, &mut yb, &mut dyb);
    let dcol: [f64; 3] = std::array::from_fn(|ch| {
        if clamped & (1 << ch) != 0 {
            0.0
        } else {
            pg.colour[ch]
        }
    });
    for (o, d) in out.groups[4][3 * li..3 * li + 3].iter_mut().zip(dcol) {
        *o = (yb[0] * d) as f32;
    }
    let rw = 3 * (k - 1);
    let rest_v = &p.rest[rw * i..rw * (i + 1)];
    let mut d_dir = Vector3::zeros();
    for kk in 1..k {
        let mut s = 0.0;
        for ch in 0..3 {
            out.groups[5][rw * li + (kk - 1) * 3 + ch] = (yb[kk] * dcol[ch]) as f32;
            s += rest_v[(kk - 1) * 3 + ch] as f64 * dcol[ch];
        }
        d_dir += Vector3::new(dyb[kk][0], dyb[kk][1], dyb[kk][2]) * s;
    }
    let d_raw = (d_dir - d * d.dot(&d_dir)) / n;

    let (a, b, c) = (geo.cov[(0, 0)], geo.cov[(0, 1)], geo.cov[(1, 1)]);
    let det = a * c - b * b;
    let q = Matrix2::new(c / det, -b / det, -b / det, a / det);
    let gq = Matrix2::new(
        pg.conic[0],
        0.5 * pg.conic[1],
        0.5 * pg.conic[1],
        pg.conic[2],
    );
    let gcov = -(q * gq * q);
    let g_sigma_c = geo.j.transpose() * gcov * geo.j;
    let g_j = 2.0 * gcov * geo.j * geo.sigma_c;
    let (fx, fy) = (cam.fx, cam.fy);
    let z2 = z * z;
    let mut g_pc = Vector3::new(
        pg.mean[0] * fx / z,
        pg.mean[1] * fy / z,
        -pg.mean[0] * fx * x / z2 - pg.mean[1] * fy * y / z2 + pg.depth,
    );
    g_pc.x += g_j[(0, 2)] * (-fx / z2);
    g_pc.y += g_j[(1, 2)] * (-fy / z2);
    g_pc.z += g_j[(0, 0)] * (-fx / z2)
        + g_j[(0, 2)] * (2.0 * fx * x / (z2 * z))
        + g_j[(1, 1)] * (-fy / z2)
        + g_j[(1, 2)] * (2.0 * fy * y / (z2 * z));
    let r = &v.pose.r;
    let g_pw = r.transpose() * g_pc + d_raw;
    for m in 0..3 {
        out.groups[0][3 * li + m] = g_pw[m] as f32;
    }
    let g_sigma = r.transpose() * g_sigma_c * r;
    let msc = geo.rot * Matrix3::from_diagonal(&geo.s);
    let g_m = 2.0 * g_sigma * msc;
    for jj in 0..3 {
        let mut ds = 0.0;
        for ii in 0..3 {
            ds += geo.rot[(ii, jj)] * g_m[(ii, jj)];
        }
        out.groups[1][3 * li + jj] = (ds * geo.s[jj]) as f32;
    }
    let gr = Matrix3::from_fn(|ii, jj| g_m[(ii, jj)] * geo.s[jj]);
    let gq = quaternion_grad(geo.qn, geo.qnorm, &gr);
    for (o, g) in out.groups[2][4 * li..4 * li + 4].iter_mut().zip(gq) {
        *o = g as f32;
    }

    let g_v = g_pc + r * d_raw;
    let g_w_point = geo.pc.cross(&g_pc);
    let am = geo.sigma_c * g_sigma_c - g_sigma_c * geo.sigma_c;
    let g_w = g_w_point + Vector3::new(2.0 * am[(1, 2)], 2.0 * am[(2, 0)], 2.0 * am[(0, 1)]);
    for m in 0..3 {
        pose_grad[m] += g_v[m];
        pose_grad[3 + m] += g_w[m];
    }
}
