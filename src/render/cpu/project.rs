//! Per-Gaussian projection (3D -> screen) and its exact adjoint, in f64.
//! The same math as shaders/project.comp and shaders/project_bwd.comp. The core works on one
//! Gaussian's values ([`One`]), so the fast backend (f32 storage) runs the same code.

use nalgebra::{Matrix2, Matrix2x3, Matrix3, Quaternion, Vector3};

use crate::render::sh;
use crate::render::types::{sh_coeffs, Camera, GaussianSet, Group, DILATION, TILE};

/// World-to-camera pose as rotation and translation (`p_c = R p_w + t`).
#[derive(Debug, Clone, Copy)]
pub struct PoseRt {
    pub r: Matrix3<f64>,
    pub t: Vector3<f64>,
    /// Camera centre `-R^T t` (computed once: every Gaussian's view direction needs it).
    centre: Vector3<f64>,
}

impl PoseRt {
    pub fn from_iso(p: &nalgebra::Isometry3<f64>) -> Self {
        let r = *p.rotation.to_rotation_matrix().matrix();
        let t = p.translation.vector;
        Self {
            r,
            t,
            centre: -r.transpose() * t,
        }
    }

    /// Camera centre in the world.
    pub fn centre(&self) -> Vector3<f64> {
        self.centre
    }
}

/// A Gaussian on screen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Projected {
    pub mean2d: [f64; 2],
    /// Inverse 2D covariance (a, b, c) = [[a, b], [b, c]].
    pub conic: [f64; 3],
    pub opacity: f64,
    pub colour: [f64; 3],
    pub depth: f64,
    /// Tile rectangle [x0, x1) x [y0, y1).
    pub rect: [u32; 4],
}

/// Gradient of the loss w.r.t. one projected Gaussian (accumulated by the rasteriser).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProjGrad {
    pub mean2d: [f64; 2],
    pub conic: [f64; 3],
    pub opacity: f64,
    pub colour: [f64; 3],
    pub depth: f64,
}

impl ProjGrad {
    /// Adds another accumulator (per-thread partial sums).
    pub fn add(&mut self, o: &ProjGrad) {
        for (a, b) in self.mean2d.iter_mut().zip(o.mean2d) {
            *a += b;
        }
        for (a, b) in self.conic.iter_mut().zip(o.conic) {
            *a += b;
        }
        self.opacity += o.opacity;
        for (a, b) in self.colour.iter_mut().zip(o.colour) {
            *a += b;
        }
        self.depth += o.depth;
    }
}

/// One Gaussian's parameters, read from whatever storage a backend keeps (f64 or f32); the
/// math runs in f64.
#[derive(Debug, Clone, Copy)]
pub struct One<'a, T> {
    pub mean: [f64; 3],
    pub log_scale: [f64; 3],
    /// Raw (unnormalised) quaternion `[w, x, y, z]`.
    pub rot: [f64; 4],
    /// Opacity logit.
    pub opacity: f64,
    /// DC colour (3 values) and the other `k - 1` SH coefficients (`3 (k - 1)` values,
    /// coefficient-major).
    pub dc: &'a [T],
    pub rest: &'a [T],
    /// SH coefficients in use.
    pub k: usize,
}

impl<'a> One<'a, f64> {
    /// Gaussian `i` of an f64 set.
    pub fn from_set(g: &'a GaussianSet<f64>, i: usize) -> Self {
        let arr = |grp: Group| g.get(grp, i);
        Self::from_groups(
            [arr(Group::Mean), arr(Group::LogScale), arr(Group::Rotation)],
            arr(Group::Opacity)[0],
            arr(Group::ShDc),
            arr(Group::ShRest),
            sh_coeffs(g.sh_degree()),
        )
    }
}

impl<'a, T: Copy + Into<f64>> One<'a, T> {
    /// From one Gaussian's slices of the groups (mean, log-scale, rotation), its opacity logit,
    /// DC colour and other SH coefficients.
    pub fn from_groups(geo: [&[T]; 3], opacity: T, dc: &'a [T], rest: &'a [T], k: usize) -> Self {
        let v = |s: &[T], m: usize| s[m].into();
        Self {
            mean: std::array::from_fn(|m| v(geo[0], m)),
            log_scale: std::array::from_fn(|m| v(geo[1], m)),
            rot: std::array::from_fn(|m| v(geo[2], m)),
            opacity: opacity.into(),
            dc,
            rest,
            k,
        }
    }

    /// SH coefficient `kk` (0: DC) of channel `ch`.
    #[inline]
    pub fn sh(&self, kk: usize, ch: usize) -> f64 {
        if kk == 0 {
            self.dc[ch].into()
        } else {
            self.rest[(kk - 1) * 3 + ch].into()
        }
    }
}

/// Gradient with respect to one Gaussian's parameters (the layout of [`One`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OneGrad {
    pub mean: [f64; 3],
    pub log_scale: [f64; 3],
    pub rot: [f64; 4],
    pub opacity: f64,
    pub sh: [[f64; 3]; 16],
}

impl OneGrad {
    /// Writes the gradient into Gaussian `i` of `out` (`k` SH coefficients).
    #[allow(clippy::needless_range_loop)] // m indexes several arrays
    pub fn write<T: Copy>(&self, out: [&mut [T]; 6], k: usize, conv: impl Fn(f64) -> T) {
        let [mean, ls, rot, op, dc, rest] = out;
        for m in 0..3 {
            mean[m] = conv(self.mean[m]);
            ls[m] = conv(self.log_scale[m]);
            dc[m] = conv(self.sh[0][m]);
        }
        for m in 0..4 {
            rot[m] = conv(self.rot[m]);
        }
        op[0] = conv(self.opacity);
        for kk in 1..k {
            for ch in 0..3 {
                rest[(kk - 1) * 3 + ch] = conv(self.sh[kk][ch]);
            }
        }
    }
}

struct Geometry {
    pc: Vector3<f64>,
    qn: Quaternion<f64>,
    qnorm: f64,
    rot: Matrix3<f64>,
    s: Vector3<f64>,
    sigma_c: Matrix3<f64>,
    j: Matrix2x3<f64>,
    cov: Matrix2<f64>,
    dir_raw: Vector3<f64>,
}

/// The rotation matrix of a unit quaternion.
pub(crate) fn quat_to_mat(q: &Quaternion<f64>) -> Matrix3<f64> {
    let (w, x, y, z) = (q.w, q.i, q.j, q.k);
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

fn geometry<T: Copy + Into<f64>>(g: &One<T>, cam: &Camera, pose: &PoseRt) -> Option<Geometry> {
    let pw = Vector3::from(g.mean);
    let ls = g.log_scale;
    let q = g.rot;
    let s = Vector3::new(ls[0].exp(), ls[1].exp(), ls[2].exp());
    let qnorm = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    let valid = pw.iter().all(|v| v.is_finite())
        && s.iter().all(|v| v.is_finite())
        && qnorm.is_finite()
        && qnorm > 1e-12;
    if !valid {
        return None;
    }
    let pc = pose.r * pw + pose.t;
    if !(pc.z > cam.near && pc.z < cam.far) {
        return None;
    }
    let lim_x = 1.3 * cam.cx.max(cam.width as f64 - cam.cx) / cam.fx;
    let lim_y = 1.3 * cam.cy.max(cam.height as f64 - cam.cy) / cam.fy;
    if (pc.x / pc.z).abs() > lim_x || (pc.y / pc.z).abs() > lim_y {
        return None;
    }
    let qn = Quaternion::new(q[0] / qnorm, q[1] / qnorm, q[2] / qnorm, q[3] / qnorm);
    let rot = quat_to_mat(&qn);
    let msc = rot * Matrix3::from_diagonal(&s);
    let sigma = msc * msc.transpose();
    let sigma_c = pose.r * sigma * pose.r.transpose();
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
        dir_raw: pw - pose.centre(),
    })
}

/// Projects Gaussian `i`; `None` when culled (invalid, behind/near, outside the frustum,
/// off-screen). `clamp` reports which colour channels were clamped at zero.
pub fn project(
    g: &GaussianSet<f64>,
    i: usize,
    cam: &Camera,
    pose: &PoseRt,
) -> Option<(Projected, [bool; 3])> {
    project_one(&One::from_set(g, i), cam, pose)
}

/// [`project`] of one Gaussian's values.
#[allow(clippy::needless_range_loop)] // kk and ch index several arrays
pub fn project_one<T: Copy + Into<f64>>(
    g: &One<T>,
    cam: &Camera,
    pose: &PoseRt,
) -> Option<(Projected, [bool; 3])> {
    let geo = geometry(g, cam, pose)?;
    let (a, b, c) = (geo.cov[(0, 0)], geo.cov[(0, 1)], geo.cov[(1, 1)]);
    let det = a * c - b * b;
    if det.is_nan() || det <= 0.0 {
        return None;
    }
    let conic = [c / det, -b / det, a / det];
    let mid = 0.5 * (a + c);
    let lambda = mid + (mid * mid - det).max(0.1).sqrt();
    let radius = (3.0 * lambda.sqrt()).ceil();
    let mean2d = [
        cam.fx * geo.pc.x / geo.pc.z + cam.cx,
        cam.fy * geo.pc.y / geo.pc.z + cam.cy,
    ];
    let (tx, ty) = cam.tiles();
    let t = TILE as f64;
    let rect_lo = |v: f64, n: u32| ((v / t).floor().max(0.0) as u32).min(n);
    let rect_hi = |v: f64, n: u32| (((v / t).floor() + 1.0).max(0.0) as u32).min(n);
    let rect = [
        rect_lo(mean2d[0] - radius, tx),
        rect_hi(mean2d[0] + radius, tx),
        rect_lo(mean2d[1] - radius, ty),
        rect_hi(mean2d[1] + radius, ty),
    ];
    if rect[0] >= rect[1] || rect[2] >= rect[3] {
        return None;
    }
    // Colour from SH along the viewing direction.
    let k = g.k;
    let d = geo.dir_raw.normalize();
    let (mut y, mut dy) = ([0.0; 16], [[0.0; 3]; 16]);
    sh::basis([d.x, d.y, d.z], k, &mut y, &mut dy);
    let mut colour = [0.0; 3];
    let mut clamped = [false; 3];
    for ch in 0..3 {
        let mut v = y[0] * g.sh(0, ch);
        for kk in 1..k {
            v += y[kk] * g.sh(kk, ch);
        }
        v += 0.5;
        clamped[ch] = v < 0.0;
        colour[ch] = v.max(0.0);
    }
    let l = g.opacity;
    let opacity = 1.0 / (1.0 + (-l).exp());
    Some((
        Projected {
            mean2d,
            conic,
            opacity,
            colour,
            depth: geo.pc.z,
            rect,
        },
        clamped,
    ))
}

/// Chain rule from the screen-space gradient of Gaussian `i` to its parameters (written into
/// `out` at Gaussian `i`) and to the pose perturbation (added to `pose_grad`).
#[allow(clippy::too_many_arguments)]
pub fn project_backward(
    g: &GaussianSet<f64>,
    i: usize,
    cam: &Camera,
    pose: &PoseRt,
    pg: &ProjGrad,
    clamped: [bool; 3],
    out: &mut GaussianSet<f64>,
    pose_grad: &mut [f64; 6],
) {
    let one = One::from_set(g, i);
    let mut og = OneGrad::default();
    if !project_backward_one(&one, cam, pose, pg, clamped, &mut og, pose_grad) {
        return;
    }
    out.get_mut(Group::Mean, i).copy_from_slice(&og.mean);
    out.get_mut(Group::LogScale, i)
        .copy_from_slice(&og.log_scale);
    out.get_mut(Group::Rotation, i).copy_from_slice(&og.rot);
    out.get_mut(Group::Opacity, i)[0] = og.opacity;
    out.get_mut(Group::ShDc, i).copy_from_slice(&og.sh[0]);
    let rest = out.get_mut(Group::ShRest, i);
    for kk in 1..one.k {
        rest[(kk - 1) * 3..kk * 3].copy_from_slice(&og.sh[kk]);
    }
}

/// [`project_backward`] of one Gaussian's values into `out`; false (and nothing written) when
/// the Gaussian is culled.
#[allow(clippy::needless_range_loop)] // kk and ch index several arrays
pub fn project_backward_one<T: Copy + Into<f64>>(
    g: &One<T>,
    cam: &Camera,
    pose: &PoseRt,
    pg: &ProjGrad,
    clamped: [bool; 3],
    out: &mut OneGrad,
    pose_grad: &mut [f64; 6],
) -> bool {
    let Some(geo) = geometry(g, cam, pose) else {
        return false;
    };
    let (x, y, z) = (geo.pc.x, geo.pc.y, geo.pc.z);
    // Opacity logit.
    let l = g.opacity;
    let o = 1.0 / (1.0 + (-l).exp());
    out.opacity = pg.opacity * o * (1.0 - o);

    // SH coefficients and the view-direction gradient.
    let k = g.k;
    let n = geo.dir_raw.norm();
    let d = geo.dir_raw / n;
    let (mut yb, mut dyb) = ([0.0; 16], [[0.0; 3]; 16]);
    sh::basis([d.x, d.y, d.z], k, &mut yb, &mut dyb);
    let dcol: [f64; 3] = std::array::from_fn(|ch| if clamped[ch] { 0.0 } else { pg.colour[ch] });
    for ch in 0..3 {
        out.sh[0][ch] = yb[0] * dcol[ch];
    }
    let mut d_dir = Vector3::zeros();
    for kk in 1..k {
        let mut s = 0.0;
        for ch in 0..3 {
            out.sh[kk][ch] = yb[kk] * dcol[ch];
            s += g.sh(kk, ch) * dcol[ch];
        }
        d_dir += Vector3::new(dyb[kk][0], dyb[kk][1], dyb[kk][2]) * s;
    }
    // d/d(dir_raw) of the normalisation; dir_raw = p_w - centre.
    let d_raw = (d_dir - d * d.dot(&d_dir)) / n;

    // Conic -> 2D covariance.
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
    // 2D covariance -> camera-frame covariance and Jacobian.
    let g_sigma_c = geo.j.transpose() * gcov * geo.j;
    let g_j = 2.0 * gcov * geo.j * geo.sigma_c;
    // Camera-frame point: mean2d, Jacobian, depth.
    let mut g_pc = Vector3::new(
        pg.mean2d[0] * cam.fx / z,
        pg.mean2d[1] * cam.fy / z,
        -pg.mean2d[0] * cam.fx * x / (z * z) - pg.mean2d[1] * cam.fy * y / (z * z) + pg.depth,
    );
    g_pc.x += g_j[(0, 2)] * (-cam.fx / (z * z));
    g_pc.y += g_j[(1, 2)] * (-cam.fy / (z * z));
    g_pc.z += g_j[(0, 0)] * (-cam.fx / (z * z))
        + g_j[(0, 2)] * (2.0 * cam.fx * x / (z * z * z))
        + g_j[(1, 1)] * (-cam.fy / (z * z))
        + g_j[(1, 2)] * (2.0 * cam.fy * y / (z * z * z));
    // Mean in the world.
    let g_pw = pose.r.transpose() * g_pc + d_raw;
    out.mean = [g_pw.x, g_pw.y, g_pw.z];
    // World covariance -> scale and rotation.
    let g_sigma = pose.r.transpose() * g_sigma_c * pose.r;
    let msc = geo.rot * Matrix3::from_diagonal(&geo.s);
    let g_m = 2.0 * g_sigma * msc;
    let mut g_ls = [0.0; 3];
    for (jj, gl) in g_ls.iter_mut().enumerate() {
        let mut ds = 0.0;
        for ii in 0..3 {
            ds += geo.rot[(ii, jj)] * g_m[(ii, jj)];
        }
        *gl = ds * geo.s[jj];
    }
    out.log_scale = g_ls;
    let gr = Matrix3::from_fn(|ii, jj| g_m[(ii, jj)] * geo.s[jj]);
    out.rot = quaternion_grad([geo.qn.w, geo.qn.i, geo.qn.j, geo.qn.k], geo.qnorm, &gr);

    // Pose (left perturbation p_c -> exp(w) p_c + v; the centre moves by -R^T v).
    let g_v = g_pc + pose.r * d_raw;
    let g_w_point = geo.pc.cross(&g_pc);
    let am = geo.sigma_c * g_sigma_c - g_sigma_c * geo.sigma_c;
    let g_w_cov = Vector3::new(2.0 * am[(1, 2)], 2.0 * am[(2, 0)], 2.0 * am[(0, 1)]);
    let g_w = g_w_point + g_w_cov;
    for m in 0..3 {
        pose_grad[m] += g_v[m];
        pose_grad[3 + m] += g_w[m];
    }
    true
}

/// Gradient with respect to a raw quaternion `[w, x, y, z]` of norm `qnorm` (`qn` normalised)
/// given the gradient `gr` with respect to the rotation matrix of `qn`: the derivative of
/// R(q) and then of the normalisation (the radial part is projected out).
pub fn quaternion_grad(qn: [f64; 4], qnorm: f64, gr: &Matrix3<f64>) -> [f64; 4] {
    let [w, qx, qy, qz] = qn;
    let gqn = [
        2.0 * (-qz * gr[(0, 1)] + qy * gr[(0, 2)] + qz * gr[(1, 0)]
            - qx * gr[(1, 2)]
            - qy * gr[(2, 0)]
            + qx * gr[(2, 1)]),
        2.0 * (qy * gr[(0, 1)] + qz * gr[(0, 2)] + qy * gr[(1, 0)]
            - 2.0 * qx * gr[(1, 1)]
            - w * gr[(1, 2)]
            + qz * gr[(2, 0)]
            + w * gr[(2, 1)]
            - 2.0 * qx * gr[(2, 2)]),
        2.0 * (-2.0 * qy * gr[(0, 0)]
            + qx * gr[(0, 1)]
            + w * gr[(0, 2)]
            + qx * gr[(1, 0)]
            + qz * gr[(1, 2)]
            - w * gr[(2, 0)]
            + qz * gr[(2, 1)]
            - 2.0 * qy * gr[(2, 2)]),
        2.0 * (-2.0 * qz * gr[(0, 0)] - w * gr[(0, 1)] + qx * gr[(0, 2)] + w * gr[(1, 0)]
            - 2.0 * qz * gr[(1, 1)]
            + qy * gr[(1, 2)]
            + qx * gr[(2, 0)]
            + qy * gr[(2, 1)]),
    ];
    let dot: f64 = (0..4).map(|m| qn[m] * gqn[m]).sum();
    std::array::from_fn(|m| (gqn[m] - qn[m] * dot) / qnorm)
}
