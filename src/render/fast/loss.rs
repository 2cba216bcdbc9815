//! L1 + D-SSIM loss and its gradient in f32 (same definition as `cpu::loss`): the 11x11
//! Gaussian window is separable, so every windowed mean is a horizontal then a vertical 11-tap
//! pass over contiguous rows (zero padding), and the adjoint of the window sums is the same
//! blur (the window is symmetric). Bands of rows run on separate threads; buffers are reused.

use crate::render::cpu::loss::{ssim_weights, SSIM_RADIUS};

const C1: f32 = 0.01 * 0.01;
const C2: f32 = 0.03 * 0.03;
const R: usize = SSIM_RADIUS as usize;

/// Reused buffers (rows of `maps` images side by side: row y holds map 0's row, map 1's, ...).
#[derive(Debug, Default)]
pub struct LossBuffers {
    /// Horizontal blurs of x, y, xx, yy, xy.
    h5: Vec<f32>,
    /// d loss / d (mu_x, E[x^2], E[xy]) per pixel and channel.
    d3: Vec<f32>,
    /// Horizontal blurs of `d3`.
    h3: Vec<f32>,
}

/// Horizontal 11-tap blur of one interleaved-RGB row `src` (length `3 w`) into `dst`.
#[inline]
fn blur_row(src: &[f32], dst: &mut [f32], wts: &[f32; 11], pad: &mut Vec<f32>) {
    let n = src.len();
    pad.clear();
    pad.resize(n + 6 * R, 0.0);
    pad[3 * R..3 * R + n].copy_from_slice(src);
    dst.fill(0.0);
    for (k, &wk) in wts.iter().enumerate() {
        let s = &pad[3 * k..3 * k + n];
        for (d, v) in dst.iter_mut().zip(s) {
            *d += wk * v;
        }
    }
}

/// Vertical 11-tap blur: row `y` of map `m` from the horizontally blurred rows in `h`
/// (`maps` maps of row length `rl` per image row, `h` rows in all).
#[allow(clippy::too_many_arguments)]
#[inline]
fn blur_col(
    h: &[f32],
    maps: usize,
    m: usize,
    rl: usize,
    y: usize,
    rows: usize,
    wts: &[f32; 11],
    out: &mut [f32],
) {
    out.fill(0.0);
    for (k, &wk) in wts.iter().enumerate() {
        let yy = y as isize + k as isize - R as isize;
        if yy < 0 || yy >= rows as isize {
            continue;
        }
        let o = (yy as usize * maps + m) * rl;
        for (d, v) in out.iter_mut().zip(&h[o..o + rl]) {
            *d += wk * v;
        }
    }
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
    threads: usize,
) -> f64 {
    let rl = 3 * w;
    let n = (rl * h) as f64;
    let wts = ssim_weights().map(|v| v as f32);
    let l1w = ((1.0 - lambda) / n) as f32;
    grad.clear();
    grad.resize(rl * h, 0.0);
    let band = h.div_ceil(threads.max(1)).max(1);
    let l1: f64 = std::thread::scope(|sc| {
        let hs: Vec<_> = grad
            .chunks_mut(rl * band)
            .zip(render.chunks(rl * band).zip(target.chunks(rl * band)))
            .map(|(g, (x, y))| {
                sc.spawn(move || {
                    let mut s = 0.0f64;
                    for ((g, x), y) in g.iter_mut().zip(x).zip(y) {
                        let d = x - y;
                        s += d.abs() as f64;
                        *g = if d > 0.0 {
                            l1w
                        } else if d < 0.0 {
                            -l1w
                        } else {
                            0.0
                        };
                    }
                    s
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("l1 band")).sum()
    });
    let mut loss = (1.0 - lambda) * l1 / n;
    if lambda == 0.0 {
        return loss;
    }
    buf.h5.resize(5 * rl * h, 0.0);
    buf.d3.resize(3 * rl * h, 0.0);
    buf.h3.resize(3 * rl * h, 0.0);
    // 1. Horizontal blurs of x, y, x^2, y^2, xy.
    std::thread::scope(|sc| {
        for (bi, hb) in buf.h5.chunks_mut(5 * rl * band).enumerate() {
            let wts = &wts;
            sc.spawn(move || {
                let (mut pad, mut prod) = (Vec::new(), vec![0.0; rl]);
                for (k, out) in hb.chunks_mut(5 * rl).enumerate() {
                    let y = bi * band + k;
                    let xr = &render[y * rl..(y + 1) * rl];
                    let yr = &target[y * rl..(y + 1) * rl];
                    let (o, rest) = out.split_at_mut(rl);
                    blur_row(xr, o, wts, &mut pad);
                    let (o, rest) = rest.split_at_mut(rl);
                    blur_row(yr, o, wts, &mut pad);
                    for (m, o) in rest.chunks_mut(rl).enumerate() {
                        for (p, (a, b)) in prod.iter_mut().zip(xr.iter().zip(yr)) {
                            *p = match m {
                                0 => a * a,
                                1 => b * b,
                                _ => a * b,
                            };
                        }
                        blur_row(&prod, o, wts, &mut pad);
                    }
                }
            });
        }
    });
    // 2. Vertical blurs, SSIM and its partials w.r.t. the window statistics.
    let scale = (-lambda / n) as f32;
    let h5 = &buf.h5;
    let ssim_sum: f64 = std::thread::scope(|sc| {
        let hs: Vec<_> = buf
            .d3
            .chunks_mut(3 * rl * band)
            .enumerate()
            .map(|(bi, db)| {
                let wts = &wts;
                sc.spawn(move || {
                    let mut mu: [Vec<f32>; 5] = std::array::from_fn(|_| vec![0.0; rl]);
                    let mut s = 0.0f64;
                    for (k, out) in db.chunks_mut(3 * rl).enumerate() {
                        let y = bi * band + k;
                        for (m, v) in mu.iter_mut().enumerate() {
                            blur_col(h5, 5, m, rl, y, h, wts, v);
                        }
                        let (dmu, rest) = out.split_at_mut(rl);
                        let (dxx, dxy) = rest.split_at_mut(rl);
                        for i in 0..rl {
                            let (mx, my) = (mu[0][i], mu[1][i]);
                            let (exx, eyy, exy) = (mu[2][i], mu[3][i], mu[4][i]);
                            let a1 = 2.0 * mx * my + C1;
                            let a2 = 2.0 * (exy - mx * my) + C2;
                            let b1 = mx * mx + my * my + C1;
                            let b2 = (exx - mx * mx) + (eyy - my * my) + C2;
                            let inv = 1.0 / (b1 * b2);
                            let ssim = a1 * a2 * inv;
                            s += ssim as f64;
                            dmu[i] = scale
                                * ((2.0 * my * a2 - 2.0 * my * a1) * inv
                                    - ssim * (2.0 * mx * b2 - 2.0 * mx * b1) * inv);
                            dxx[i] = scale * (-ssim / b2);
                            dxy[i] = scale * (2.0 * a1 * inv);
                        }
                    }
                    s
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("ssim band")).sum()
    });
    loss += lambda * (1.0 - ssim_sum / n);
    // 3. Adjoint of the window sums: blur the partials, then chain to the render.
    std::thread::scope(|sc| {
        for (bi, hb) in buf.h3.chunks_mut(3 * rl * band).enumerate() {
            let (wts, d3) = (&wts, &buf.d3);
            sc.spawn(move || {
                let mut pad = Vec::new();
                for (k, out) in hb.chunks_mut(3 * rl).enumerate() {
                    let y = bi * band + k;
                    for (m, o) in out.chunks_mut(rl).enumerate() {
                        let s = &d3[(3 * y + m) * rl..(3 * y + m + 1) * rl];
                        blur_row(s, o, wts, &mut pad);
                    }
                }
            });
        }
    });
    let h3 = &buf.h3;
    std::thread::scope(|sc| {
        for (bi, gb) in grad.chunks_mut(rl * band).enumerate() {
            let wts = &wts;
            sc.spawn(move || {
                let mut v: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0; rl]);
                for (k, g) in gb.chunks_mut(rl).enumerate() {
                    let y = bi * band + k;
                    for (m, vm) in v.iter_mut().enumerate() {
                        blur_col(h3, 3, m, rl, y, h, wts, vm);
                    }
                    let xr = &render[y * rl..(y + 1) * rl];
                    let yr = &target[y * rl..(y + 1) * rl];
                    for i in 0..rl {
                        g[i] += v[0][i] + 2.0 * xr[i] * v[1][i] + yr[i] * v[2][i];
                    }
                }
            });
        }
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
            let l = l1_dssim(&render, &target, w, h, 0.2, &mut buf, &mut grad, threads);
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
