//! Image sampling for the map: bilinear colour lookup at sub-pixel positions (the camera
//! itself is [`crate::sensors::Camera`]).

use crate::sensors::Image;

/// Bilinear RGB sample in [0, 1] at pixel coordinates (centre-of-pixel convention).
pub fn sample_bilinear(img: &Image, u: f64, v: f64) -> Option<[f32; 3]> {
    let (w, h) = (img.width as usize, img.height as usize);
    if w == 0 || h == 0 || img.rgb.len() < w * h * 3 {
        return None;
    }
    if !(u >= 0.0 && v >= 0.0 && u <= (w - 1) as f64 && v <= (h - 1) as f64) {
        return None;
    }
    let x0 = (u.floor() as usize).min(w - 1);
    let y0 = (v.floor() as usize).min(h - 1);
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let (fx, fy) = ((u - x0 as f64) as f32, (v - y0 as f64) as f32);
    let px = |x: usize, y: usize, c: usize| f32::from(img.rgb[(y * w + x) * 3 + c]) / 255.0;
    let mut out = [0.0f32; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
        let bot = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
        *o = top * (1.0 - fy) + bot * fy;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_interpolates() {
        let mut img = Image::new(0, 2, 2);
        img.rgb = vec![0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255];
        let s = sample_bilinear(&img, 0.25, 0.5).unwrap();
        assert!((s[0] - 0.25).abs() < 1e-6);
        assert!(sample_bilinear(&img, 1.5, 0.0).is_none());
    }
}
