//! Area resampling of camera images to the optimisation resolution.
//!
//! Each target pixel is the mean of the source area its footprint covers (fractional pixels
//! weighted by overlap), so an integer factor is exactly the box average and any other size
//! (e.g. 640x480 to the embedded 256x216) neither aliases nor shifts pixel centres: the
//! footprints tile the source image, matching [`crate::sensors::Camera::resized`].

use crate::sensors::Image;

/// Per target index along one axis: the first source index and the overlap weights (summing
/// to one) of the source pixels from there on.
fn axis_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let (a, b) = (i as f64 * scale, (i + 1) as f64 * scale);
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).min(src).max(first + 1);
            let w = (first..last)
                .map(|s| {
                    let lo = a.max(s as f64);
                    let hi = b.min((s + 1) as f64);
                    ((hi - lo).max(0.0) / scale) as f32
                })
                .collect();
            (first, w)
        })
        .collect()
}

wide! {
/// `img` area-resampled to `width` x `height`, divided by 255 and by the exposure `gain`
/// (invalid gains count as 1): interleaved RGB f32 in exposure-normalised map units.
pub fn image_target_sized(img: &Image, width: u32, height: u32, gain: f32) -> Vec<f32> {
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || sw == 0 || sh == 0 || img.rgb.len() < sw * sh * 3 {
        return vec![0.0; w * h * 3];
    }
    let gain = if gain.is_finite() && gain > 1e-3 {
        gain
    } else {
        1.0
    };
    let scale = 1.0 / (255.0 * gain);
    // Horizontal pass into f32 rows, then vertical: each target row sums its source rows'
    // horizontal results in order. The horizontal results live in a ring of the few rows the
    // current target row needs (footprints advance monotonically, consecutive ones sharing at
    // most one row), not in a whole-image buffer. The horizontal taps are laid out flat with
    // one count for all targets (missing taps weigh +0: adding `+0 * p` leaves the
    // non-negative sums unchanged), over the row converted to f32 once with 4 lanes per pixel,
    // so every tap is one 4-wide multiply-add of the same per-channel products.
    let xs = axis_weights(sw, w);
    let taps = xs.iter().map(|(_, wt)| wt.len()).max().unwrap_or(1);
    let mut first = Vec::with_capacity(w);
    let mut wflat = vec![0f32; w * taps];
    for ((f, wt), dst) in xs.iter().zip(wflat.chunks_exact_mut(taps)) {
        first.push(*f);
        dst[..wt.len()].copy_from_slice(wt);
    }
    let ys = axis_weights(sh, h);
    let ring_len = ys.iter().map(|(_, wt)| wt.len()).max().unwrap_or(1) + 1;
    let mut ring = vec![0f32; ring_len * w * 3];
    let mut src_f = vec![[0f32; 4]; sw + taps];
    let mut next_row = 0;
    let mut out = vec![0f32; w * h * 3];
    for ((first_y, wts_y), out_row) in ys.iter().zip(out.chunks_exact_mut(w * 3)) {
        while next_row < (first_y + wts_y.len()).min(sh) {
            let src_row = &img.rgb[next_row * sw * 3..(next_row + 1) * sw * 3];
            for (d, p) in src_f.iter_mut().zip(src_row.chunks_exact(3)) {
                *d = [f32::from(p[0]), f32::from(p[1]), f32::from(p[2]), 0.0];
            }
            let slot = next_row % ring_len;
            let dst = &mut ring[slot * w * 3..(slot + 1) * w * 3];
            for ((&f, wts), o) in first
                .iter()
                .zip(wflat.chunks_exact(taps))
                .zip(dst.chunks_exact_mut(3))
            {
                let mut acc = [0f32; 4];
                for (wt, p) in wts.iter().zip(&src_f[f..f + taps]) {
                    for c in 0..4 {
                        acc[c] += wt * p[c];
                    }
                }
                // Element stores: a slice copy reloaded `acc` from the stack in wider words than
                // it was stored with (a store-forwarding stall per target).
                o[0] = acc[0];
                o[1] = acc[1];
                o[2] = acc[2];
            }
            next_row += 1;
        }
        for (k, wt) in wts_y.iter().enumerate() {
            let slot = (first_y + k) % ring_len;
            let src = &ring[slot * w * 3..(slot + 1) * w * 3];
            for (o, s) in out_row.iter_mut().zip(src) {
                *o += wt * s;
            }
        }
        for o in out_row.iter_mut() {
            *o *= scale;
        }
    }
    out
}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, f: impl Fn(u32, u32, usize) -> u8) -> Image {
        let mut img = Image::new(0, w, h);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    img.rgb[((y * w + x) * 3) as usize + c] = f(x, y, c);
                }
            }
        }
        img
    }

    #[test]
    fn integer_factor_is_the_box_average() {
        let img = image(8, 6, |x, y, c| {
            ((x * 31 + y * 17 + c as u32 * 5) % 256) as u8
        });
        let out = image_target_sized(&img, 4, 3, 1.0);
        for y in 0..3u32 {
            for x in 0..4u32 {
                for c in 0..3 {
                    let mut s = 0.0;
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        s += f32::from(img.rgb[(((2 * y + dy) * 8 + 2 * x + dx) * 3) as usize + c]);
                    }
                    let want = s / 4.0 / 255.0;
                    let got = out[((y * 4 + x) * 3) as usize + c];
                    assert!((got - want).abs() < 1e-6, "{x},{y},{c}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn fractional_factor_keeps_mean_and_gradients() {
        // A horizontal ramp: the mean is preserved and each target pixel holds the ramp's value
        // at its footprint centre (a linear function's area mean is its value at the centre).
        let (sw, sh, w, h) = (640u32, 480u32, 256u32, 216u32);
        let img = image(sw, sh, |x, _, _| (x * 255 / (sw - 1)) as u8);
        let out = image_target_sized(&img, w, h, 1.0);
        let mean_src: f64 =
            img.rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / img.rgb.len() as f64 / 255.0;
        let mean_dst: f64 = out.iter().map(|&v| f64::from(v)).sum::<f64>() / out.len() as f64;
        assert!(
            (mean_src - mean_dst).abs() < 1e-4,
            "{mean_src} vs {mean_dst}"
        );
        let sx = f64::from(sw) / f64::from(w);
        for x in [0u32, 17, 128, 255] {
            // Centre of the footprint in source pixel coordinates.
            let centre = (f64::from(x) + 0.5) * sx - 0.5;
            let want = centre * 255.0 / f64::from(sw - 1) / 255.0;
            let got = f64::from(out[((100 * w + x) * 3) as usize]);
            // Source values are floored to integers: up to one grey level.
            assert!((got - want).abs() < 1.5 / 255.0, "x {x}: {got} vs {want}");
        }
    }

    #[test]
    fn gain_divides_and_bad_input_is_zero() {
        let img = image(4, 4, |_, _, _| 200);
        let out = image_target_sized(&img, 2, 2, 2.0);
        assert!(out.iter().all(|&v| (v - 100.0 / 255.0).abs() < 1e-6));
        let out = image_target_sized(&img, 2, 2, f32::NAN);
        assert!(out.iter().all(|&v| (v - 200.0 / 255.0).abs() < 1e-6));
        let mut short = img.clone();
        short.rgb.truncate(5);
        assert_eq!(image_target_sized(&short, 2, 2, 1.0), vec![0.0; 12]);
    }

    /// The flat-tap horizontal pass sums the same products in the same order as the per-target
    /// weight lists: bit-equal to that definition.
    #[test]
    fn resampling_equals_the_two_pass_definition_exactly() {
        for (sw, sh, w, h, gain) in [
            (640u32, 480u32, 256u32, 216u32, 1.3f32),
            (37, 29, 11, 10, 1.0),
            (20, 10, 20, 10, 0.7),
        ] {
            let img = image(sw, sh, |x, y, c| {
                ((x * 37 + y * 101 + c as u32 * 59) % 256) as u8
            });
            let got = image_target_sized(&img, w, h, gain);
            let (sw, sh, w, h) = (sw as usize, sh as usize, w as usize, h as usize);
            let xs = axis_weights(sw, w);
            let mut rows = vec![0f32; sh * w * 3];
            for y in 0..sh {
                for (x, (first, wts)) in xs.iter().enumerate() {
                    for c in 0..3 {
                        let mut acc = 0f32;
                        for (k, wt) in wts.iter().enumerate() {
                            acc += wt * f32::from(img.rgb[(y * sw + first + k) * 3 + c]);
                        }
                        rows[(y * w + x) * 3 + c] = acc;
                    }
                }
            }
            let scale = 1.0 / (255.0 * gain);
            for (y, (first, wts)) in axis_weights(sh, h).iter().enumerate() {
                for i in 0..w * 3 {
                    let mut acc = 0f32;
                    for (k, wt) in wts.iter().enumerate() {
                        acc += wt * rows[(first + k) * w * 3 + i];
                    }
                    assert_eq!(got[y * w * 3 + i].to_bits(), (acc * scale).to_bits());
                }
            }
        }
    }
}
