//! L1 + D-SSIM loss and its gradient in f32 (same definition as `cpu::loss`): the 11x11
//! Gaussian window is separable, so every windowed mean is a horizontal then a vertical 11-tap
//! pass over contiguous rows (zero padding), and the adjoint of the window sums is the same
//! blur (the window is symmetric). Three passes over bands of rows (one thread each), with a
//! join where a pass needs rows of other bands: (1) L1 and the horizontal blurs of the five
//! statistics, (2) vertical blurs, SSIM partials and their horizontal blurs, (3) vertical blurs
//! and the chain to the render. The row kernels are plain arithmetic (no fused multiply-adds),
//! compiled for AVX-512 or AVX2 where the CPU has them: the same bits on every CPU, with wide
//! registers where there are some. Buffers are reused.

use super::{par_items, Pool};
use crate::render::cpu::loss::{ssim_weights, SSIM_RADIUS};

const C1: f32 = 0.01 * 0.01;
const C2: f32 = 0.03 * 0.03;
const R: usize = SSIM_RADIUS as usize;
/// Outputs per block of the blur kernels (kept in registers over the 11 taps).
const B: usize = 16;
/// Outputs per block of the vertical blur (four AVX-512 registers).
const VB: usize = 64;

/// Reused buffers (rows of `maps` images side by side: row y holds map 0's row, map 1's, ...).
#[derive(Debug, Default)]
pub struct LossBuffers {
    /// Horizontal blurs of x, y, xx, yy, xy.
    h5: Vec<f32>,
    /// Horizontal blurs of d loss / d (mu_x, E[x^2], E[xy]).
    h3: Vec<f32>,
}

wide! {
/// Horizontal 11-tap blur of one interleaved-RGB row `src` (length `3 w`) into `dst`; `pad`
/// has `3 w + 6 R` values, zero outside its middle (where `src` is copied).
fn blur_row(src: &[f32], dst: &mut [f32], wts: &[f32; 11], pad: &mut [f32]) {
    let n = src.len();
    pad[3 * R..3 * R + n].copy_from_slice(src);
    let pad = &pad[..n + 6 * R];
    let mut i = 0;
    while i + B <= n {
        let mut acc = [0.0f32; B];
        for (k, &wk) in wts.iter().enumerate() {
            let s: &[f32; B] = pad[3 * k + i..3 * k + i + B].try_into().expect("block");
            for l in 0..B {
                acc[l] += wk * s[l];
            }
        }
        dst[i..i + B].copy_from_slice(&acc);
        i += B;
    }
    for i in i..n {
        let mut acc = 0.0f32;
        for (k, &wk) in wts.iter().enumerate() {
            acc += wk * pad[3 * k + i];
        }
        dst[i] = acc;
    }
}
}

wide! {
/// Vertical blur of one row: `out = sum of wk * row_k` over the taps inside the image, in tap
/// order.
fn blur_taps(taps: &[(f32, &[f32])], out: &mut [f32]) {
    // Rows away from the border have all 11 taps: blocks of outputs stay in registers over the
    // taps (several blocks at once, so the additions' latency overlaps), one store each.
    if let Ok(full) = <&[(f32, &[f32]); 11]>::try_from(taps) {
        let n = out.len();
        let mut i = 0;
        while i + VB <= n {
            let mut acc = [0.0f32; VB];
            for &(wk, row) in full {
                let s: &[f32; VB] = row[i..i + VB].try_into().expect("block");
                for l in 0..VB {
                    acc[l] += wk * s[l];
                }
            }
            out[i..i + VB].copy_from_slice(&acc);
            i += VB;
        }
        for (j, o) in out.iter_mut().enumerate().skip(i) {
            let mut acc = 0.0f32;
            for &(wk, row) in full {
                acc += wk * row[j];
            }
            *o = acc;
        }
        return;
    }
    // Near the border the tap count varies: whole rows per tap (read-modify-write in L1), the
    // form that vectorises for a variable count. Same sum order either way.
    out.fill(0.0);
    for &(wk, row) in taps {
        for (d, v) in out.iter_mut().zip(row) {
            *d += wk * v;
        }
    }
}
}

wide! {
/// L1 part of one row: writes `+-l1w` (0 on ties) into `g`, returns the sum of |x - y|.
fn l1_row(x: &[f32], y: &[f32], g: &mut [f32], l1w: f32) -> f64 {
    for ((g, x), y) in g.iter_mut().zip(x).zip(y) {
        let d = x - y;
        *g = if d > 0.0 {
            l1w
        } else if d < 0.0 {
            -l1w
        } else {
            0.0
        };
    }
    sum_lanes(x, y, |p, q| (p - q).abs())
}
}

wide! {
/// The products x^2, y^2, xy of one row.
fn products(x: &[f32], y: &[f32], xx: &mut [f32], yy: &mut [f32], xy: &mut [f32]) {
    for i in 0..x.len().min(y.len()).min(xx.len()).min(yy.len()).min(xy.len()) {
        let (a, b) = (x[i], y[i]);
        xx[i] = a * a;
        yy[i] = b * b;
        xy[i] = a * b;
    }
}
}

wide! {
/// SSIM of one row from its window statistics `mu` (x, y, xx, yy, xy) and its partials
/// (scaled by `scale`) w.r.t. mu_x, E[x^2] and E[xy]; returns the row's SSIM sum.
fn ssim_row(mu: &[Vec<f32>; 5], d: &mut [Vec<f32>; 3], scale: f32, out: &mut [f32]) -> f64 {
    let [m0, m1, m2, m3, m4] = mu;
    let [dmu, dxx, dxy] = d;
    let n = m0.len();
    let (m1, m2, m3, m4) = (&m1[..n], &m2[..n], &m3[..n], &m4[..n]);
    let (dmu, dxx, dxy) = (&mut dmu[..n], &mut dxx[..n], &mut dxy[..n]);
    let out = &mut out[..n];
    for i in 0..n {
        let (mx, my) = (m0[i], m1[i]);
        let (exx, eyy, exy) = (m2[i], m3[i], m4[i]);
        let a1 = 2.0 * mx * my + C1;
        let a2 = 2.0 * (exy - mx * my) + C2;
        let b1 = mx * mx + my * my + C1;
        let b2 = (exx - mx * mx) + (eyy - my * my) + C2;
        let inv = 1.0 / (b1 * b2);
        let ssim = a1 * a2 * inv;
        out[i] = ssim;
        dmu[i] = scale
            * ((2.0 * my * a2 - 2.0 * my * a1) * inv
                - ssim * (2.0 * mx * b2 - 2.0 * mx * b1) * inv);
        dxx[i] = scale * (-ssim / b2);
        dxy[i] = scale * (2.0 * a1 * inv);
    }
    sum_lanes(out, out, |p, _| p)
}
}

/// Sum of `f(a[i], b[i])` in f64, in eight interleaved partial sums (a fixed order, so the
/// same bits every run): a reduction in one running sum would keep its row loop scalar.
#[inline(always)]
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0.0f64; 8];
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (p, q) in (&mut ca).zip(&mut cb) {
        let p: &[f32; 8] = p.try_into().expect("8 lanes");
        let q: &[f32; 8] = q.try_into().expect("8 lanes");
        for l in 0..8 {
            acc[l] += f64::from(f(p[l], q[l]));
        }
    }
    let mut s = acc.iter().sum::<f64>();
    for (p, q) in ca.remainder().iter().zip(cb.remainder()) {
        s += f64::from(f(*p, *q));
    }
    s
}

wide! {
/// Chain of the blurred partials `v` to the render: `g += v0 + 2 x v1 + y v2`.
fn chain_row(g: &mut [f32], v: &[Vec<f32>; 3], x: &[f32], y: &[f32]) {
    let n = g.len();
    let (v0, v1, v2, x, y) = (&v[0][..n], &v[1][..n], &v[2][..n], &x[..n], &y[..n]);
    for i in 0..n {
        g[i] += v0[i] + 2.0 * x[i] * v1[i] + y[i] * v2[i];
    }
}
}

/// The taps of the vertical blur at row `y` of map `m` (of `maps` side by side, rows of length
/// `rl`) over the `rows` rows in `h`: `(weight, row)` pairs inside the image, in tap order.
#[allow(clippy::too_many_arguments)]
fn taps<'a>(
    h: &'a [f32],
    maps: usize,
    m: usize,
    rl: usize,
    y: usize,
    rows: usize,
    wts: &[f32; 11],
    out: &mut Vec<(f32, &'a [f32])>,
) {
    out.clear();
    for (k, &wk) in wts.iter().enumerate() {
        let yy = y as isize + k as isize - R as isize;
        if yy < 0 || yy >= rows as isize {
            continue;
        }
        let o = (yy as usize * maps + m) * rl;
        out.push((wk, &h[o..o + rl]));
    }
}

/// Runs `work(band index, band)` for every band on the pool's threads and returns the sum of
/// the results in band order.
fn bands<T: Send>(pool: &Pool, parts: Vec<T>, work: impl Fn(usize, T) -> f64 + Sync) -> f64 {
    let mut sums = vec![0.0f64; parts.len()];
    let mut idle = vec![(); pool.threads()];
    let items = parts.into_iter().zip(sums.iter_mut()).enumerate();
    par_items(pool, &mut idle, items, |_, (bi, (part, out))| {
        *out = work(bi, part)
    });
    sums.iter().sum()
}

/// Loss of `render` against `target` (interleaved RGB, `w x h`) with D-SSIM weight `lambda`;
/// writes d loss / d render into `grad`.
#[allow(clippy::too_many_arguments)]
pub fn l1_dssim(
    render: &[f32],
    target: &[f32],
    w: usize,
    h: usize,
    lambda: f64,
    buf: &mut LossBuffers,
    grad: &mut Vec<f32>,
    pool: &Pool,
) -> f64 {
    let threads = pool.threads();
    let rl = 3 * w;
    let n = (rl * h) as f64;
    let wts = ssim_weights().map(|v| v as f32);
    let l1w = ((1.0 - lambda) / n) as f32;
    let ssim = lambda != 0.0;
    grad.clear();
    grad.resize(rl * h, 0.0);
    if ssim {
        buf.h5.resize(5 * rl * h, 0.0);
        buf.h3.resize(3 * rl * h, 0.0);
    }
    let band = h.div_ceil(threads.max(1)).max(1);
    let wts = &wts;
    // 1. L1 and the horizontal blurs of x, y, x^2, y^2, xy.
    let parts: Vec<_> = if ssim {
        grad.chunks_mut(rl * band)
            .zip(buf.h5.chunks_mut(5 * rl * band).map(Some))
            .collect()
    } else {
        grad.chunks_mut(rl * band).map(|g| (g, None)).collect()
    };
    let l1 = bands(
        pool,
        parts,
        |bi, (gb, hb): (&mut [f32], Option<&mut [f32]>)| {
            let mut s = 0.0;
            let mut pad = vec![0.0; rl + 6 * R];
            let mut prod: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0; rl]);
            let mut hb = hb;
            for (k, g) in gb.chunks_mut(rl).enumerate() {
                let y = bi * band + k;
                let xr = &render[y * rl..(y + 1) * rl];
                let yr = &target[y * rl..(y + 1) * rl];
                s += l1_row(xr, yr, g, l1w);
                if let Some(hb) = hb.as_deref_mut() {
                    let out = &mut hb[5 * rl * k..5 * rl * (k + 1)];
                    let [xx, yy, xy] = &mut prod;
                    products(xr, yr, xx, yy, xy);
                    let srcs: [&[f32]; 5] = [xr, yr, xx, yy, xy];
                    for (src, o) in srcs.into_iter().zip(out.chunks_mut(rl)) {
                        blur_row(src, o, wts, &mut pad);
                    }
                }
            }
            s
        },
    );
    let mut loss = (1.0 - lambda) * l1 / n;
    if !ssim {
        return loss;
    }
    // 2. Vertical blurs, SSIM and its partials w.r.t. the window statistics, then their
    //    horizontal blurs (row-local, so in the same pass).
    let scale = (-lambda / n) as f32;
    let h5 = &buf.h5;
    let ssim_sum = bands(
        pool,
        buf.h3.chunks_mut(3 * rl * band).collect(),
        |bi, hb| {
            let mut mu: [Vec<f32>; 5] = std::array::from_fn(|_| vec![0.0; rl]);
            let mut d: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0; rl]);
            let mut pad = vec![0.0; rl + 6 * R];
            let mut tp = Vec::with_capacity(2 * R + 1);
            let mut row_ssim = vec![0.0; rl];
            let mut s = 0.0f64;
            for (k, out) in hb.chunks_mut(3 * rl).enumerate() {
                let y = bi * band + k;
                for (m, v) in mu.iter_mut().enumerate() {
                    taps(h5, 5, m, rl, y, h, wts, &mut tp);
                    blur_taps(&tp, v);
                }
                s += ssim_row(&mu, &mut d, scale, &mut row_ssim);
                for (dm, o) in d.iter().zip(out.chunks_mut(rl)) {
                    blur_row(dm, o, wts, &mut pad);
                }
            }
            s
        },
    );
    loss += lambda * (1.0 - ssim_sum / n);
    // 3. Vertical blurs of the partials (the adjoint of the window sums), chained to the
    //    render.
    let h3 = &buf.h3;
    bands(pool, grad.chunks_mut(rl * band).collect(), |bi, gb| {
        let mut v: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0; rl]);
        let mut tp = Vec::with_capacity(2 * R + 1);
        for (k, g) in gb.chunks_mut(rl).enumerate() {
            let y = bi * band + k;
            for (m, vm) in v.iter_mut().enumerate() {
                taps(h3, 3, m, rl, y, h, wts, &mut tp);
                blur_taps(&tp, vm);
            }
            chain_row(
                g,
                &v,
                &render[y * rl..(y + 1) * rl],
                &target[y * rl..(y + 1) * rl],
            );
        }
        0.0
    });
    loss
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Against the f64 reference on the same images, at the benchmark's size (bands of rows
    /// meet inside the image) with one, two and three threads.
    #[test]
    fn matches_reference_on_the_same_images() {
        let (w, h) = (256, 216);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let render: Vec<f32> = (0..3 * w * h)
            .map(|i| {
                let (x, y) = ((i / 3 % w) as f32, (i / 3 / w) as f32);
                (0.5 + 0.4 * (0.05 * x + 0.03 * y + i as f32 % 3.0).sin()).max(0.0)
            })
            .collect();
        let target: Vec<f32> = (0..3 * w * h).map(|_| rng.gen_range(0.0..1.0)).collect();
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let (l_ref, g_ref) =
            crate::render::cpu::loss::l1_dssim(&f64s(&render), &f64s(&target), w, h, 0.2);
        for threads in [1, 2, 3] {
            let (mut buf, mut grad) = (LossBuffers::default(), Vec::new());
            let pool = Pool::new(threads);
            let l = l1_dssim(&render, &target, w, h, 0.2, &mut buf, &mut grad, &pool);
            assert!((l - l_ref).abs() < 1e-5 * l_ref, "{l} {l_ref}");
            let (worst, at) = grad
                .iter()
                .zip(&g_ref)
                .map(|(&a, &b)| (a as f64 - b).abs())
                .enumerate()
                .fold((0.0, 0), |m, (i, d)| if d > m.0 { (d, i) } else { m });
            let e = crate::render::verify::rel_l2(&f64s(&grad), &g_ref);
            assert!(e < 1e-4, "threads {threads}: {e}, worst {worst:e} at {at}");
        }
    }
}
