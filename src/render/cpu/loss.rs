//! L1 + D-SSIM photometric loss with its gradient, in f64 (mirrors shaders/loss_*.comp).

/// SSIM window radius (11x11 window).
pub const SSIM_RADIUS: i32 = 5;
const SSIM_SIGMA: f64 = 1.5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// Normalised 1D Gaussian weights of the SSIM window (the 2D window is their outer product).
pub fn ssim_weights() -> [f64; 11] {
    let mut w = [0.0; 11];
    for (i, v) in w.iter_mut().enumerate() {
        let x = i as f64 - SSIM_RADIUS as f64;
        *v = (-x * x / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = w.iter().sum();
    w.map(|v| v / s)
}

/// Loss value and d loss / d render for interleaved RGB images of `w x h`.
/// `loss = (1 - lambda) * mean|x - y| + lambda * (1 - mean SSIM)` over pixels and channels.
pub fn l1_dssim(
    render: &[f64],
    target: &[f64],
    w: usize,
    h: usize,
    lambda: f64,
) -> (f64, Vec<f64>) {
    let n = (w * h * 3) as f64;
    let wts = ssim_weights();
    let r = SSIM_RADIUS;
    let mut grad = vec![0.0; render.len()];
    let mut loss = 0.0;
    for (i, g) in grad.iter_mut().enumerate() {
        let d = render[i] - target[i];
        loss += (1.0 - lambda) * d.abs() / n;
        *g = (1.0 - lambda)
            * if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            }
            / n;
    }
    if lambda == 0.0 {
        return (loss, grad);
    }
    // Per pixel and channel: SSIM and its partials w.r.t. mu_x, E[x^2], E[xy].
    let mut dmu = vec![0.0; render.len()];
    let mut dxx = vec![0.0; render.len()];
    let mut dxy = vec![0.0; render.len()];
    let at = |img: &[f64], x: i32, y: i32, ch: usize| -> f64 {
        if x < 0 || y < 0 || x >= w as i32 || y >= h as i32 {
            0.0
        } else {
            img[(y as usize * w + x as usize) * 3 + ch]
        }
    };
    let mut ssim_sum = 0.0;
    for y in 0..h as i32 {
        for x in 0..w as i32 {
            for ch in 0..3 {
                let (mut mx, mut my, mut exx, mut eyy, mut exy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for dy in -r..=r {
                    for dx in -r..=r {
                        let wt = wts[(dy + r) as usize] * wts[(dx + r) as usize];
                        let a = at(render, x + dx, y + dy, ch);
                        let b = at(target, x + dx, y + dy, ch);
                        mx += wt * a;
                        my += wt * b;
                        exx += wt * a * a;
                        eyy += wt * b * b;
                        exy += wt * a * b;
                    }
                }
                let a1 = 2.0 * mx * my + C1;
                let a2 = 2.0 * (exy - mx * my) + C2;
                let b1 = mx * mx + my * my + C1;
                let b2 = (exx - mx * mx) + (eyy - my * my) + C2;
                let s = a1 * a2 / (b1 * b2);
                ssim_sum += s;
                let k = (y as usize * w + x as usize) * 3 + ch;
                let scale = -lambda / n;
                dmu[k] = scale
                    * ((2.0 * my * a2 + a1 * (-2.0 * my)) / (b1 * b2)
                        - s * (2.0 * mx * b2 + b1 * (-2.0 * mx)) / (b1 * b2));
                dxx[k] = scale * (-s / b2);
                dxy[k] = scale * (2.0 * a1 / (b1 * b2));
            }
        }
    }
    loss += lambda * (1.0 - ssim_sum / n);
    // Adjoint of the window sums (the window is symmetric).
    for y in 0..h as i32 {
        for x in 0..w as i32 {
            for ch in 0..3 {
                let (mut gmu, mut gxx, mut gxy) = (0.0, 0.0, 0.0);
                for dy in -r..=r {
                    for dx in -r..=r {
                        let wt = wts[(dy + r) as usize] * wts[(dx + r) as usize];
                        gmu += wt * at(&dmu, x + dx, y + dy, ch);
                        gxx += wt * at(&dxx, x + dx, y + dy, ch);
                        gxy += wt * at(&dxy, x + dx, y + dy, ch);
                    }
                }
                let k = (y as usize * w + x as usize) * 3 + ch;
                grad[k] += gmu + 2.0 * render[k] * gxx + target[k] * gxy;
            }
        }
    }
    (loss, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn loss_gradient_matches_finite_differences() {
        let (w, h) = (9, 7);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f64> = (0..w * h * 3).map(|_| rng.gen_range(0.0..1.0)).collect();
        let y: Vec<f64> = (0..w * h * 3).map(|_| rng.gen_range(0.0..1.0)).collect();
        let (_, g) = l1_dssim(&x, &y, w, h, 0.3);
        let eps = 1e-6;
        for k in [0, 5, 31, 100, w * h * 3 - 1] {
            let mut p = x.clone();
            p[k] += eps;
            let mut m = x.clone();
            m[k] -= eps;
            let fd = (l1_dssim(&p, &y, w, h, 0.3).0 - l1_dssim(&m, &y, w, h, 0.3).0) / (2.0 * eps);
            assert!(
                (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{k}: {fd} vs {}",
                g[k]
            );
        }
    }

    #[test]
    fn identical_images_have_zero_loss() {
        let img: Vec<f64> = (0..5 * 4 * 3)
            .map(|i| (i as f64 * 0.37).sin().abs())
            .collect();
        let (l, _) = l1_dssim(&img, &img, 5, 4, 0.2);
        assert!(l.abs() < 1e-12, "{l}");
    }
}
