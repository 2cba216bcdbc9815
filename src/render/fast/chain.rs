//! The chain rule from screen-space gradients to the parameters and the pose, sixteen
//! Gaussians at a time in f32 lanes: the reference's formulas (`cpu::project::
//! project_backward_one`) written on a 16-lane value type, so each operation is one vector
//! instruction where the CPU has AVX-512 (two with AVX2). The camera-frame mean and the view
//! direction (differences of world coordinates) are computed per lane in f64 first, as the
//! reference does; a lane whose results are not all finite is redone by the f64 reference.
//! Lanes are independent and the pose gradient is added lane by lane in Gaussian order, so
//! the results do not depend on the thread count.

use std::ops::{Add, Mul, Neg, Sub};

use super::project::{project_backward, GradOut, Params, View};
use super::tile::{exp_clamped, Plain};
use crate::render::cpu::project::ProjGrad;
use crate::render::types::DILATION;

/// Lanes per batch.
pub const L: usize = 16;

/// Sixteen f32 lanes.
#[derive(Clone, Copy, Debug, Default)]
pub struct V(pub [f32; L]);

/// `[f(0), .., f(N - 1)]`, always inlined (`std::array::from_fn` is not always inlined, and
/// then runs as baseline code outside the wide function that calls it).
#[inline(always)]
pub fn arr<T: Copy + Default, const N: usize>(mut f: impl FnMut(usize) -> T) -> [T; N] {
    let mut a = [T::default(); N];
    for (i, x) in a.iter_mut().enumerate() {
        *x = f(i);
    }
    a
}

macro_rules! lanewise {
    ($tr:ident, $f:ident, $op:tt) => {
        impl $tr for V {
            type Output = V;
            #[inline(always)]
            #[allow(clippy::assign_op_pattern)] // the generic `$op`
            fn $f(self, o: V) -> V {
                {
                    let mut r = self.0;
                    for l in 0..L {
                        r[l] = r[l] $op o.0[l];
                    }
                    V(r)
                }
            }
        }
        impl $tr<f32> for V {
            type Output = V;
            #[inline(always)]
            #[allow(clippy::assign_op_pattern)] // the generic `$op`
            fn $f(self, o: f32) -> V {
                {
                    let mut r = self.0;
                    for x in r.iter_mut() {
                        *x = *x $op o;
                    }
                    V(r)
                }
            }
        }
        impl $tr<V> for f32 {
            type Output = V;
            #[inline(always)]
            #[allow(clippy::assign_op_pattern)] // the generic `$op`
            fn $f(self, o: V) -> V {
                {
                    let mut r = o.0;
                    for x in r.iter_mut() {
                        *x = self $op *x;
                    }
                    V(r)
                }
            }
        }
    };
}
lanewise!(Add, add, +);
lanewise!(Sub, sub, -);
lanewise!(Mul, mul, *);

impl std::ops::Div for V {
    type Output = V;
    #[inline(always)]
    fn div(self, o: V) -> V {
        let mut r = self.0;
        for (x, d) in r.iter_mut().zip(o.0) {
            *x /= d;
        }
        V(r)
    }
}

impl std::ops::Div<V> for f32 {
    type Output = V;
    #[inline(always)]
    fn div(self, o: V) -> V {
        let mut r = o.0;
        for x in r.iter_mut() {
            *x = self / *x;
        }
        V(r)
    }
}

impl Neg for V {
    type Output = V;
    #[inline(always)]
    fn neg(self) -> V {
        let mut r = self.0;
        for x in r.iter_mut() {
            *x = -*x;
        }
        V(r)
    }
}

impl V {
    #[inline(always)]
    pub fn splat(x: f32) -> V {
        V([x; L])
    }

    #[inline(always)]
    pub fn sqrt(self) -> V {
        let mut r = self.0;
        for x in r.iter_mut() {
            *x = x.sqrt();
        }
        V(r)
    }

    /// `exp` on [-87, 88] (inputs clamped), relative error about 2e-7: Cody-Waite reduction
    /// and a degree-6 polynomial (as `tile::exp_neg`, without calls or branches).
    #[inline(always)]
    pub fn exp(self) -> V {
        let mut r = self.0;
        for x in r.iter_mut() {
            *x = exp_clamped::<Plain>(*x, 88.0);
        }
        V(r)
    }
}

const C0: f32 = crate::render::sh::C0 as f32;
const C1: f32 = 0.488_602_5;
const C2: [f32; 5] = [
    1.092_548_4,
    -1.092_548_4,
    0.315_391_57,
    -1.092_548_4,
    0.546_274_2,
];
const C3: [f32; 7] = [
    -0.590_043_6,
    2.890_611_4,
    -0.457_045_8,
    0.373_176_33,
    -0.457_045_8,
    1.445_305_7,
    -0.590_043_6,
];

/// SH basis values and their direction gradients (`crate::render::sh::basis` in lanes).
#[inline(always)]
pub fn basis(d: [V; 3], k: usize, y: &mut [V; 16], dy: &mut [[V; 3]; 16]) {
    let [x, yy, z] = d;
    let (xx, y2, zz) = (x * x, yy * yy, z * z);
    let o = V::splat(0.0);
    y[0] = V::splat(C0);
    dy[0] = [o; 3];
    if k > 1 {
        y[1] = -C1 * yy;
        dy[1] = [o, V::splat(-C1), o];
        y[2] = C1 * z;
        dy[2] = [o, o, V::splat(C1)];
        y[3] = -C1 * x;
        dy[3] = [V::splat(-C1), o, o];
    }
    if k > 4 {
        y[4] = C2[0] * x * yy;
        dy[4] = [C2[0] * yy, C2[0] * x, o];
        y[5] = C2[1] * yy * z;
        dy[5] = [o, C2[1] * z, C2[1] * yy];
        y[6] = C2[2] * (2.0 * zz - xx - y2);
        dy[6] = [-2.0 * C2[2] * x, -2.0 * C2[2] * yy, 4.0 * C2[2] * z];
        y[7] = C2[3] * x * z;
        dy[7] = [C2[3] * z, o, C2[3] * x];
        y[8] = C2[4] * (xx - y2);
        dy[8] = [2.0 * C2[4] * x, -2.0 * C2[4] * yy, o];
    }
    if k > 9 {
        y[9] = C3[0] * yy * (3.0 * xx - y2);
        dy[9] = [C3[0] * 6.0 * x * yy, C3[0] * (3.0 * xx - 3.0 * y2), o];
        y[10] = C3[1] * x * yy * z;
        dy[10] = [C3[1] * yy * z, C3[1] * x * z, C3[1] * x * yy];
        y[11] = C3[2] * yy * (4.0 * zz - xx - y2);
        dy[11] = [
            C3[2] * (-2.0 * x * yy),
            C3[2] * (4.0 * zz - xx - 3.0 * y2),
            C3[2] * 8.0 * yy * z,
        ];
        y[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * y2);
        dy[12] = [
            C3[3] * (-6.0 * x * z),
            C3[3] * (-6.0 * yy * z),
            C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * y2),
        ];
        y[13] = C3[4] * x * (4.0 * zz - xx - y2);
        dy[13] = [
            C3[4] * (4.0 * zz - 3.0 * xx - y2),
            C3[4] * (-2.0 * x * yy),
            C3[4] * 8.0 * x * z,
        ];
        y[14] = C3[5] * z * (xx - y2);
        dy[14] = [
            C3[5] * 2.0 * x * z,
            C3[5] * (-2.0 * yy * z),
            C3[5] * (xx - y2),
        ];
        y[15] = C3[6] * x * (xx - 3.0 * y2);
        dy[15] = [C3[6] * (3.0 * xx - 3.0 * y2), C3[6] * (-6.0 * x * yy), o];
    }
}

/// A 3x3 matrix of lanes.
pub type M3 = [[V; 3]; 3];

/// The rotation matrix of unit quaternions `[w, x, y, z]` (the reference's `geometry`).
#[inline(always)]
pub fn rotation(qn: [V; 4]) -> M3 {
    let [w, x, y, zq] = qn;
    [
        [
            1.0 - 2.0 * (y * y + zq * zq),
            2.0 * (x * y - w * zq),
            2.0 * (x * zq + w * y),
        ],
        [
            2.0 * (x * y + w * zq),
            1.0 - 2.0 * (x * x + zq * zq),
            2.0 * (y * zq - w * x),
        ],
        [
            2.0 * (x * zq - w * y),
            2.0 * (y * zq + w * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// The EWA step in lanes: the perspective Jacobian `J` at the camera-frame mean `pc`,
/// `J sigma_c` (2x3), and the dilated screen covariance `J sigma_c J^T + dilation` as (a, b, c).
#[inline(always)]
pub fn screen_covariance(
    pc: [V; 3],
    sigma_c: &M3,
    fx: f32,
    fy: f32,
) -> ([[V; 3]; 2], [[V; 3]; 2], [V; 3]) {
    let z0 = V::splat(0.0);
    let [px, py, pz] = pc;
    let iz = 1.0 / pz;
    let iz2 = iz * iz;
    let j: [[V; 3]; 2] = [[fx * iz, z0, -fx * px * iz2], [z0, fy * iz, -fy * py * iz2]];
    let js: [[V; 3]; 2] = arr(|i| {
        arr(|c| j[i][0] * sigma_c[0][c] + j[i][1] * sigma_c[1][c] + j[i][2] * sigma_c[2][c])
    });
    let cov = |i: usize, jj: usize| js[i][0] * j[jj][0] + js[i][1] * j[jj][1] + js[i][2] * j[jj][2];
    let dil = DILATION as f32;
    (j, js, [cov(0, 0) + dil, cov(0, 1), cov(1, 1) + dil])
}

/// `a b` of two [`M3`] (a macro, so its closures are compiled with the caller's features).
macro_rules! mat_mul {
    ($a:expr, $b:expr) => {{
        let (a, b): (&M3, &M3) = ($a, $b);
        let m: M3 = arr(|i| arr(|j| a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j]));
        m
    }};
}

/// The transpose of an [`M3`].
macro_rules! transpose {
    ($a:expr) => {{
        let a: &M3 = $a;
        let t: M3 = arr(|i| arr(|j| a[j][i]));
        t
    }};
}

/// One Gaussian of a batch: its index, screen gradient and clamped colour channels.
#[derive(Debug, Clone, Copy)]
pub struct Item {
    pub index: usize,
    pub pg: ProjGrad,
    pub clamped: u8,
}

wide! {
/// Chain rule of up to [`L`] Gaussians (`items`, all inside `out`'s chunk and all visible in
/// the forward pass) into `out`, their pose parts added to `pose_grad` in item order.
pub fn chain_batch(
    p: &Params<'_>,
    v: &View,
    items: &[Item],
    out: &mut GradOut<'_>,
    pose_grad: &mut [f64; 6],
) {
    let m = items.len().min(L);
    if m == 0 {
        return;
    }
    // Unused lanes repeat the last item (their results are dropped).
    let item = |l: usize| &items[l.min(m - 1)];
    let z0 = V::splat(0.0);
    // Camera-frame mean and view direction per lane in f64, as the reference computes them.
    let (mut pc, mut dr) = ([z0; 3], [z0; 3]);
    let (r64, t64, c64) = (v.pose.r, v.pose.t, v.pose.centre());
    for l in 0..L {
        let i = item(l).index;
        let pw = nalgebra::Vector3::new(
            p.mean[3 * i] as f64,
            p.mean[3 * i + 1] as f64,
            p.mean[3 * i + 2] as f64,
        );
        let c = r64 * pw + t64;
        let d = pw - c64;
        for a in 0..3 {
            pc[a].0[l] = c[a] as f32;
            dr[a].0[l] = d[a] as f32;
        }
    }
    let rp: [[f32; 3]; 3] = arr(|i| arr(|j| r64[(i, j)] as f32));
    let rpv: M3 = arr(|i| arr(|j| V::splat(rp[i][j])));
    let (fx, fy) = (v.cam.fx as f32, v.cam.fy as f32);
    let k = p.k;
    let rw = 3 * (k - 1);
    // The lanes' inputs transposed (one row of lanes per value): log-scale, rotation, opacity
    // logit, the screen gradient (mean 2, conic 3, opacity, depth, colour 3 with clamped
    // channels zeroed), then the SH coefficients.
    const SH0: usize = 18;
    let mut raw = [[0.0f32; L]; SH0 + 48];
    for l in 0..L {
        let it = item(l);
        let i = it.index;
        let pg = &it.pg;
        let head: [f32; SH0] = [
            p.log_scale[3 * i],
            p.log_scale[3 * i + 1],
            p.log_scale[3 * i + 2],
            p.rot[4 * i],
            p.rot[4 * i + 1],
            p.rot[4 * i + 2],
            p.rot[4 * i + 3],
            p.opacity[i],
            pg.mean2d[0] as f32,
            pg.mean2d[1] as f32,
            pg.conic[0] as f32,
            pg.conic[1] as f32,
            pg.conic[2] as f32,
            pg.opacity as f32,
            pg.depth as f32,
            if it.clamped & 1 != 0 { 0.0 } else { pg.colour[0] as f32 },
            if it.clamped & 2 != 0 { 0.0 } else { pg.colour[1] as f32 },
            if it.clamped & 4 != 0 { 0.0 } else { pg.colour[2] as f32 },
        ];
        for (r, x) in raw.iter_mut().zip(head) {
            r[l] = x;
        }
        for (r, &x) in raw[SH0..].iter_mut().zip(&p.dc[3 * i..3 * i + 3]) {
            r[l] = x;
        }
        for (r, &x) in raw[SH0 + 3..].iter_mut().zip(&p.rest[rw * i..rw * (i + 1)]) {
            r[l] = x;
        }
    }
    let lane = |c: usize| V(raw[c]);
    let ls: [V; 3] = arr(lane);
    let q: [V; 4] = arr(|a| lane(3 + a));
    let logit = lane(7);
    let g_m2 = [lane(8), lane(9)];
    let g_con: [V; 3] = arr(|a| lane(10 + a));
    let g_op = lane(13);
    let g_depth = lane(14);
    let dcol: [V; 3] = arr(|ch| lane(15 + ch));
    let mut sh = [[z0; 3]; 16];
    for (kk, c) in sh.iter_mut().enumerate().take(k) {
        for (ch, s) in c.iter_mut().enumerate() {
            *s = lane(SH0 + 3 * kk + ch);
        }
    }

    // Geometry (the reference's `geometry`).
    let s: [V; 3] = arr(|a| ls[a].exp());
    let qnorm = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    let qn: [V; 4] = arr(|a| q[a] / qnorm);
    let (w, x, y, zq) = (qn[0], qn[1], qn[2], qn[3]);
    let rot = rotation(qn);
    let msc: M3 = arr(|i| arr(|j| rot[i][j] * s[j]));
    let sigma = mat_mul!(&msc, &transpose!(&msc));
    let sigma_c = mat_mul!(&mat_mul!(&rpv, &sigma), &transpose!(&rpv));
    let (j, js, [ca, cb, cc]) = screen_covariance(pc, &sigma_c, fx, fy);
    let [px, py, pz] = pc;
    let iz = 1.0 / pz;
    let iz2 = iz * iz;

    // Opacity logit.
    let o = 1.0 / (1.0 + (-logit).exp());
    let g_logit = g_op * o * (1.0 - o);

    // SH coefficients and the view-direction gradient.
    let n = (dr[0] * dr[0] + dr[1] * dr[1] + dr[2] * dr[2]).sqrt();
    let d: [V; 3] = arr(|a| dr[a] / n);
    let (mut yb, mut dyb) = ([z0; 16], [[z0; 3]; 16]);
    basis(d, k, &mut yb, &mut dyb);
    let mut g_sh = [[z0; 3]; 16];
    for ch in 0..3 {
        g_sh[0][ch] = yb[0] * dcol[ch];
    }
    let mut d_dir = [z0; 3];
    for kk in 1..k {
        let mut acc = z0;
        for ch in 0..3 {
            g_sh[kk][ch] = yb[kk] * dcol[ch];
            acc = acc + sh[kk][ch] * dcol[ch];
        }
        for a in 0..3 {
            d_dir[a] = d_dir[a] + dyb[kk][a] * acc;
        }
    }
    let dd = d[0] * d_dir[0] + d[1] * d_dir[1] + d[2] * d_dir[2];
    let d_raw: [V; 3] = arr(|a| (d_dir[a] - d[a] * dd) / n);

    // Conic -> 2D covariance: gcov = -(Q gQ Q).
    let det = ca * cc - cb * cb;
    let (qa, qb, qc) = (cc / det, -cb / det, ca / det);
    let (ga, gb, gc) = (g_con[0], 0.5 * g_con[1], g_con[2]);
    // Q gQ (2x2), then times Q.
    let (t00, t01) = (qa * ga + qb * gb, qa * gb + qb * gc);
    let (t10, t11) = (qb * ga + qc * gb, qb * gb + qc * gc);
    let gcov = [
        [-(t00 * qa + t01 * qb), -(t00 * qb + t01 * qc)],
        [-(t10 * qa + t11 * qb), -(t10 * qb + t11 * qc)],
    ];
    // g_sigma_c = J^T gcov J; g_j = 2 gcov J sigma_c.
    let gj: [[V; 3]; 2] = arr(|i| {
        arr(|c| gcov[i][0] * j[0][c] + gcov[i][1] * j[1][c])
    });
    let g_sigma_c: M3 =
        arr(|a| arr(|b| j[0][a] * gj[0][b] + j[1][a] * gj[1][b]));
    let g_j: [[V; 3]; 2] = arr(|i| {
        arr(|c| {
            2.0 * (gcov[i][0] * js[0][c] + gcov[i][1] * js[1][c])
        })
    });
    // Camera-frame point: mean2d, Jacobian, depth.
    let iz3 = iz2 * iz;
    let mut g_pc = [
        g_m2[0] * fx * iz,
        g_m2[1] * fy * iz,
        -g_m2[0] * fx * px * iz2 - g_m2[1] * fy * py * iz2 + g_depth,
    ];
    g_pc[0] = g_pc[0] + g_j[0][2] * (-fx * iz2);
    g_pc[1] = g_pc[1] + g_j[1][2] * (-fy * iz2);
    g_pc[2] = g_pc[2]
        + g_j[0][0] * (-fx * iz2)
        + g_j[0][2] * (2.0 * fx * px * iz3)
        + g_j[1][1] * (-fy * iz2)
        + g_j[1][2] * (2.0 * fy * py * iz3);
    // Mean in the world: R^T g_pc + d_raw.
    let g_pw: [V; 3] = arr(|a| {
        rp[0][a] * g_pc[0] + rp[1][a] * g_pc[1] + rp[2][a] * g_pc[2] + d_raw[a]
    });
    // World covariance -> scale and rotation.
    let g_sigma = mat_mul!(&mat_mul!(&transpose!(&rpv), &g_sigma_c), &rpv);
    let g_m: M3 = arr(|a| {
        arr(|b| {
            2.0 * (g_sigma[a][0] * msc[0][b] + g_sigma[a][1] * msc[1][b] + g_sigma[a][2] * msc[2][b])
        })
    });
    let g_ls: [V; 3] = arr(|b| {
        (rot[0][b] * g_m[0][b] + rot[1][b] * g_m[1][b] + rot[2][b] * g_m[2][b]) * s[b]
    });
    let gr: M3 = arr(|a| arr(|b| g_m[a][b] * s[b]));
    let gqn = [
        2.0 * (-zq * gr[0][1] + y * gr[0][2] + zq * gr[1][0] - x * gr[1][2] - y * gr[2][0]
            + x * gr[2][1]),
        2.0 * (y * gr[0][1] + zq * gr[0][2] + y * gr[1][0] - 2.0 * x * gr[1][1] - w * gr[1][2]
            + zq * gr[2][0]
            + w * gr[2][1]
            - 2.0 * x * gr[2][2]),
        2.0 * (-2.0 * y * gr[0][0] + x * gr[0][1] + w * gr[0][2] + x * gr[1][0] + zq * gr[1][2]
            - w * gr[2][0]
            + zq * gr[2][1]
            - 2.0 * y * gr[2][2]),
        2.0 * (-2.0 * zq * gr[0][0] - w * gr[0][1] + x * gr[0][2] + w * gr[1][0]
            - 2.0 * zq * gr[1][1]
            + y * gr[1][2]
            + x * gr[2][0]
            + y * gr[2][1]),
    ];
    let qdot = qn[0] * gqn[0] + qn[1] * gqn[1] + qn[2] * gqn[2] + qn[3] * gqn[3];
    let g_rot: [V; 4] = arr(|a| (gqn[a] - qn[a] * qdot) / qnorm);

    // Pose (left perturbation p_c -> exp(w) p_c + v; the centre moves by -R^T v).
    let g_v: [V; 3] = arr(|a| {
        g_pc[a] + rp[a][0] * d_raw[0] + rp[a][1] * d_raw[1] + rp[a][2] * d_raw[2]
    });
    let g_w_point = [
        py * g_pc[2] - pz * g_pc[1],
        pz * g_pc[0] - px * g_pc[2],
        px * g_pc[1] - py * g_pc[0],
    ];
    let am1 = mat_mul!(&sigma_c, &g_sigma_c);
    let am2 = mat_mul!(&g_sigma_c, &sigma_c);
    let g_w = [
        g_w_point[0] + 2.0 * (am1[1][2] - am2[1][2]),
        g_w_point[1] + 2.0 * (am1[2][0] - am2[2][0]),
        g_w_point[2] + 2.0 * (am1[0][1] - am2[0][1]),
    ];

    // Results of the lanes in use; a lane with a non-finite value is redone in f64.
    let [mean, lsg, rotg, opg, dcg, restg] = &mut out.groups;
    for l in 0..m {
        let it = item(l);
        let i = it.index;
        let li = i - out.first;
        let mut vals = [0.0f32; 14 + 48];
        vals[..3].copy_from_slice(&arr::<f32, 3>(|a| g_pw[a].0[l]));
        vals[3..6].copy_from_slice(&arr::<f32, 3>(|a| g_ls[a].0[l]));
        vals[6..10].copy_from_slice(&arr::<f32, 4>(|a| g_rot[a].0[l]));
        vals[10] = g_logit.0[l];
        let pose: [f32; 6] = [
            g_v[0].0[l],
            g_v[1].0[l],
            g_v[2].0[l],
            g_w[0].0[l],
            g_w[1].0[l],
            g_w[2].0[l],
        ];
        for kk in 0..k {
            for ch in 0..3 {
                vals[14 + 3 * kk + ch] = g_sh[kk][ch].0[l];
            }
        }
        let finite = vals.iter().chain(&pose).all(|x| x.is_finite());
        if !finite {
            let mut go = GradOut {
                first: out.first,
                groups: [
                    &mut mean[..],
                    &mut lsg[..],
                    &mut rotg[..],
                    &mut opg[..],
                    &mut dcg[..],
                    &mut restg[..],
                ],
            };
            project_backward(p, i, v, &it.pg, it.clamped, &mut go, pose_grad);
            continue;
        }
        mean[3 * li..3 * li + 3].copy_from_slice(&vals[..3]);
        lsg[3 * li..3 * li + 3].copy_from_slice(&vals[3..6]);
        rotg[4 * li..4 * li + 4].copy_from_slice(&vals[6..10]);
        opg[li] = vals[10];
        dcg[3 * li..3 * li + 3].copy_from_slice(&vals[14..17]);
        restg[rw * li..rw * (li + 1)].copy_from_slice(&vals[17..17 + rw]);
        for (a, b) in pose_grad.iter_mut().zip(pose) {
            *a += b as f64;
        }
    }
}
}
