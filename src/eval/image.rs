//! Image metrics: PSNR and SSIM (Wang et al. 2004: Gaussian 11x11 window, sigma 1.5,
//! K1 = 0.01, K2 = 0.03, population covariances), over interior windows only, averaged over
//! channels. Matches scikit-image's `structural_similarity(gaussian_weights=True,
//! use_sample_covariance=False)`, which crops the border by the window radius.

use super::EvalError;
use crate::sensors::Image;

/// A float image, interleaved channels, row-major.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub data: &'a [f32],
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl ImageView<'_> {
    fn check(&self, other: &ImageView) -> Result<(), EvalError> {
        if self.width != other.width
            || self.height != other.height
            || self.channels != other.channels
            || self.data.len() != self.width * self.height * self.channels
            || other.data.len() != self.data.len()
        {
            return Err(EvalError::ImageMismatch(format!(
                "{}x{}x{} ({} values) vs {}x{}x{} ({} values)",
                self.width,
                self.height,
                self.channels,
                self.data.len(),
                other.width,
                other.height,
                other.channels,
                other.data.len()
            )));
        }
        Ok(())
    }
}

/// PSNR in dB for values in `[0, data_range]`; infinite for identical images.
pub fn psnr(a: ImageView, b: ImageView, data_range: f64) -> Result<f64, EvalError> {
    a.check(&b)?;
    if a.data.is_empty() {
        return Err(EvalError::ImageMismatch("empty images".into()));
    }
    let mse = a
        .data
        .iter()
        .zip(b.data)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum::<f64>()
        / a.data.len() as f64;
    Ok(10.0 * (data_range * data_range / mse).log10())
}

const RADIUS: usize = 5;
const SIGMA: f64 = 1.5;

fn gaussian_kernel() -> [f64; 2 * RADIUS + 1] {
    let mut k = [0.0; 2 * RADIUS + 1];
    for (i, w) in k.iter_mut().enumerate() {
        let x = i as f64 - RADIUS as f64;
        *w = (-0.5 * x * x / (SIGMA * SIGMA)).exp();
    }
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= s);
    k
}

/// Outputs per block of [`filter_valid`], kept in registers over the taps.
const BLOCK: usize = 8;

/// Separable "valid" Gaussian filter of one plane: output (w-10) x (h-10).
///
/// Blocks of outputs accumulate their 11 taps in registers (independent sums, so they do not
/// wait on each other's additions) and are stored once; each output still sums its taps in
/// order 0..=10, the rounding of a per-pixel dot product.
fn filter_valid(plane: &[f64], w: usize, h: usize, k: &[f64; 2 * RADIUS + 1]) -> Vec<f64> {
    let ow = w - 2 * RADIUS;
    let oh = h - 2 * RADIUS;
    let mut tmp = vec![0.0; ow * h];
    for (row, line) in plane.chunks_exact(w).zip(tmp.chunks_exact_mut(ow)) {
        let taps: [&[f64]; 2 * RADIUS + 1] = std::array::from_fn(|i| &row[i..i + ow]);
        window_sums(&taps, k, line);
    }
    let mut out = vec![0.0; ow * oh];
    for (y, line) in out.chunks_exact_mut(ow).enumerate() {
        let taps: [&[f64]; 2 * RADIUS + 1] =
            std::array::from_fn(|i| &tmp[(y + i) * ow..(y + i + 1) * ow]);
        window_sums(&taps, k, line);
    }
    out
}

/// `out[x] = sum over i of k[i] * taps[i][x]`, in tap order.
fn window_sums(taps: &[&[f64]; 2 * RADIUS + 1], k: &[f64; 2 * RADIUS + 1], out: &mut [f64]) {
    let n = out.len();
    let mut x = 0;
    while x + BLOCK <= n {
        let mut acc = [0.0f64; BLOCK];
        for (kv, t) in k.iter().zip(taps) {
            let s: &[f64; BLOCK] = t[x..x + BLOCK].try_into().expect("block");
            for (a, v) in acc.iter_mut().zip(s) {
                *a += kv * v;
            }
        }
        out[x..x + BLOCK].copy_from_slice(&acc);
        x += BLOCK;
    }
    for (x, o) in out.iter_mut().enumerate().skip(x) {
        *o = k.iter().zip(taps).map(|(kv, t)| kv * t[x]).sum();
    }
}

/// Mean SSIM over channels; images must be at least 11x11.
pub fn ssim(a: ImageView, b: ImageView, data_range: f64) -> Result<f64, EvalError> {
    a.check(&b)?;
    let (w, h, c) = (a.width, a.height, a.channels);
    if w < 2 * RADIUS + 1 || h < 2 * RADIUS + 1 || c == 0 {
        return Err(EvalError::ImageMismatch(format!(
            "SSIM needs at least 11x11 pixels, got {w}x{h}x{c}"
        )));
    }
    let k = gaussian_kernel();
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let mut total = 0.0;
    for ch in 0..c {
        let x: Vec<f64> = a
            .data
            .iter()
            .skip(ch)
            .step_by(c)
            .map(|&v| v as f64)
            .collect();
        let y: Vec<f64> = b
            .data
            .iter()
            .skip(ch)
            .step_by(c)
            .map(|&v| v as f64)
            .collect();
        let xx: Vec<f64> = x.iter().map(|v| v * v).collect();
        let yy: Vec<f64> = y.iter().map(|v| v * v).collect();
        let xy: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p * q).collect();
        let ux = filter_valid(&x, w, h, &k);
        let uy = filter_valid(&y, w, h, &k);
        let uxx = filter_valid(&xx, w, h, &k);
        let uyy = filter_valid(&yy, w, h, &k);
        let uxy = filter_valid(&xy, w, h, &k);
        let mut sum = 0.0;
        for i in 0..ux.len() {
            let vx = uxx[i] - ux[i] * ux[i];
            let vy = uyy[i] - uy[i] * uy[i];
            let vxy = uxy[i] - ux[i] * uy[i];
            sum += ((2.0 * ux[i] * uy[i] + c1) * (2.0 * vxy + c2))
                / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
        }
        total += sum / ux.len() as f64;
    }
    Ok(total / c as f64)
}

fn rgb_view(img: &Image) -> (Vec<f32>, usize, usize) {
    (
        img.rgb.iter().map(|&v| v as f32).collect(),
        img.width as usize,
        img.height as usize,
    )
}

/// Applies an image metric to two RGB8 images (data range 255), the first scaled by `gain_a`
/// and clipped at the sensor's 255 (1 leaves it as it is).
fn on_rgb8(
    a: &Image,
    b: &Image,
    gain_a: f32,
    metric: fn(ImageView, ImageView, f64) -> Result<f64, EvalError>,
) -> Result<f64, EvalError> {
    if !(gain_a.is_finite() && gain_a > 0.0) {
        return Err(EvalError::ImageMismatch(format!(
            "exposure gain must be positive, got {gain_a}"
        )));
    }
    let (mut da, wa, ha) = rgb_view(a);
    if gain_a != 1.0 {
        da.iter_mut().for_each(|v| *v = (*v * gain_a).min(255.0));
    }
    let (db, wb, hb) = rgb_view(b);
    let view = |data, width, height| ImageView {
        data,
        width,
        height,
        channels: 3,
    };
    metric(view(&da, wa, ha), view(&db, wb, hb), 255.0)
}

/// PSNR of two RGB8 images (data range 255).
pub fn psnr_rgb8(a: &Image, b: &Image) -> Result<f64, EvalError> {
    on_rgb8(a, b, 1.0, psnr)
}

/// PSNR of a render in the map's brightness units against the raw camera image it predicts,
/// in the camera's units: `gain * render` (clamped to the sensor's 255) against `camera`.
///
/// Why not the render against `camera / gain`: the map's brightness unit is arbitrary (the
/// exposure of the first mapped images; map and exposure trade one global factor), and PSNR's
/// fixed 255 peak turns that factor `s` into a `20 log10(s)` dB offset. Here the factor cancels.
pub fn psnr_rgb8_exposed(render: &Image, camera: &Image, gain: f32) -> Result<f64, EvalError> {
    on_rgb8(render, camera, gain, psnr)
}

/// SSIM in camera units, as [`psnr_rgb8_exposed`].
pub fn ssim_rgb8_exposed(render: &Image, camera: &Image, gain: f32) -> Result<f64, EvalError> {
    on_rgb8(render, camera, gain, ssim)
}

/// SSIM of two RGB8 images (data range 255, mean over channels).
pub fn ssim_rgb8(a: &Image, b: &Image) -> Result<f64, EvalError> {
    on_rgb8(a, b, 1.0, ssim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(d: &[f32], w: usize, h: usize, c: usize) -> ImageView<'_> {
        ImageView {
            data: d,
            width: w,
            height: h,
            channels: c,
        }
    }

    #[test]
    fn identical_images_are_perfect() {
        let d: Vec<f32> = (0..20 * 16).map(|i| ((i * 37) % 255) as f32).collect();
        assert_eq!(
            ssim(view(&d, 20, 16, 1), view(&d, 20, 16, 1), 255.0).unwrap(),
            1.0
        );
        assert!(psnr(view(&d, 20, 16, 1), view(&d, 20, 16, 1), 255.0)
            .unwrap()
            .is_infinite());
    }

    #[test]
    fn psnr_of_known_mse() {
        let a = vec![0.0f32; 100];
        let b = vec![10.0f32; 100];
        let p = psnr(view(&a, 10, 10, 1), view(&b, 10, 10, 1), 255.0).unwrap();
        assert!((p - 10.0 * (255.0f64 * 255.0 / 100.0).log10()).abs() < 1e-12);
    }

    fn rgb8(w: u32, h: u32, f: impl Fn(usize) -> u8) -> Image {
        let mut im = Image::new(0, w, h);
        for (i, v) in im.rgb.iter_mut().enumerate() {
            *v = f(i);
        }
        im
    }

    /// The same map error under two brightness units of the map (the exposure scaled the other
    /// way) gives the same camera-unit PSNR; the map-unit PSNR would differ by 20 log10(1.25).
    #[test]
    fn exposed_psnr_is_independent_of_the_map_unit() {
        // Multiples of 4, so the renders in both units are exact in u8.
        let albedo = |i: usize| 40.0 + 4.0 * ((i * 37) % 30) as f32;
        let err = |i: usize| if i.is_multiple_of(3) { 8.0 } else { -4.0 };
        let gain = 1.2f32;
        let camera = rgb8(16, 8, |i| (albedo(i) * gain).round() as u8);
        let mut psnrs = Vec::new();
        for unit in [1.0f32, 1.25] {
            // Map colours in units of `unit` x albedo, exposure gain relative to that unit.
            let render = rgb8(16, 8, |i| ((albedo(i) + err(i)) * unit).round() as u8);
            let p = psnr_rgb8_exposed(&render, &camera, gain / unit).unwrap();
            psnrs.push(p);
            // Independent reference: MSE of gain x (albedo error) in camera units.
            let mse = (0..16 * 8 * 3)
                .map(|i| {
                    let d = (gain / unit) as f64 * render.rgb[i] as f64 - camera.rgb[i] as f64;
                    d * d
                })
                .sum::<f64>()
                / (16.0 * 8.0 * 3.0);
            assert!((p - 10.0 * (255.0f64.powi(2) / mse).log10()).abs() < 1e-4);
        }
        assert!((psnrs[0] - psnrs[1]).abs() < 1e-6, "{psnrs:?}");
        assert!(psnrs[0].is_finite() && psnrs[0] < 40.0);
        // A gain of 1 is the plain PSNR; a bad gain is an error, not a panic.
        let a = rgb8(16, 8, |i| (i % 200) as u8);
        let b = rgb8(16, 8, |i| (i % 190) as u8);
        assert_eq!(
            psnr_rgb8_exposed(&a, &b, 1.0).unwrap(),
            psnr_rgb8(&a, &b).unwrap()
        );
        assert!(psnr_rgb8_exposed(&a, &b, f32::NAN).is_err());
        assert!(psnr_rgb8_exposed(&a, &b, 0.0).is_err());
        // The sensor clips: a bright render times a gain above 1 saturates at 255.
        let white = rgb8(16, 8, |_| 250);
        let sat = rgb8(16, 8, |_| 255);
        assert!(psnr_rgb8_exposed(&white, &sat, 1.3).unwrap().is_infinite());
    }

    #[test]
    fn ssim_drops_with_noise_and_rejects_bad_sizes() {
        let a: Vec<f32> = (0..32 * 32).map(|i| ((i * 53) % 251) as f32).collect();
        let b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, v)| v + ((i * 7) % 40) as f32)
            .collect();
        let s = ssim(view(&a, 32, 32, 1), view(&b, 32, 32, 1), 255.0).unwrap();
        assert!(s < 0.99 && s > 0.0, "{s}");
        assert!(ssim(
            view(&a[..100], 10, 10, 1),
            view(&a[..100], 10, 10, 1),
            255.0
        )
        .is_err());
        assert!(ssim(view(&a, 32, 32, 1), view(&a[..900], 30, 30, 1), 255.0).is_err());
    }

    #[test]
    fn filter_matches_a_direct_2d_window_sum() {
        let (w, h) = (23, 17);
        let plane: Vec<f64> = (0..w * h).map(|i| ((i * 37) % 101) as f64 * 0.5).collect();
        let k = gaussian_kernel();
        let got = filter_valid(&plane, w, h, &k);
        let (ow, oh) = (w - 2 * RADIUS, h - 2 * RADIUS);
        assert_eq!(got.len(), ow * oh);
        for y in 0..oh {
            for x in 0..ow {
                let mut want = 0.0;
                for (j, kj) in k.iter().enumerate() {
                    for (i, ki) in k.iter().enumerate() {
                        want += kj * ki * plane[(y + j) * w + x + i];
                    }
                }
                let g = got[y * ow + x];
                assert!(
                    (g - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "{x},{y}: {g} vs {want}"
                );
            }
        }
        // Bit for bit the per-pixel dot products of the plain separable filter.
        let dot = |f: &dyn Fn(usize) -> f64| (0..k.len()).map(|i| k[i] * f(i)).sum::<f64>();
        let mut tmp = vec![0.0; ow * h];
        for y in 0..h {
            for x in 0..ow {
                tmp[y * ow + x] = dot(&|i| plane[y * w + x + i]);
            }
        }
        for y in 0..oh {
            for x in 0..ow {
                let want = dot(&|i| tmp[(y + i) * ow + x]);
                assert_eq!(got[y * ow + x].to_bits(), want.to_bits(), "{x},{y}");
            }
        }
    }
}
