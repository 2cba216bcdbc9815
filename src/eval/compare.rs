//! Side-by-side comparison of a render with its camera image: camera | render | error map,
//! each labelled, so one PNG shows where the map is wrong.

use std::path::Path;

use plotters::prelude::*;

use super::plot::{perr, register_font, FONT};
use super::EvalError;
use crate::sensors::Image;

/// Error (0-255 units, mean over channels) that maps to the top of the colour scale; larger
/// errors saturate. Fixed, so maps of different frames compare.
pub const ERROR_SCALE: f32 = 64.0;
const HEADER_PX: u32 = 24;

/// Per-pixel mean absolute difference over the channels (0-255 units).
pub fn error_map(a: &Image, b: &Image) -> Result<Vec<f32>, EvalError> {
    let n = a.width as usize * a.height as usize;
    if (a.width, a.height) != (b.width, b.height) || a.rgb.len() != n * 3 || b.rgb.len() != n * 3 {
        return Err(EvalError::ImageMismatch(format!(
            "{}x{} ({} bytes) vs {}x{} ({} bytes)",
            a.width,
            a.height,
            a.rgb.len(),
            b.width,
            b.height,
            b.rgb.len()
        )));
    }
    Ok(a.rgb
        .chunks_exact(3)
        .zip(b.rgb.chunks_exact(3))
        .map(|(p, q)| {
            p.iter()
                .zip(q)
                .map(|(x, y)| (*x as f32 - *y as f32).abs())
                .sum::<f32>()
                / 3.0
        })
        .collect())
}

/// The comparison image (RGB8, 3 w x (h + header)): `camera`, `render`, their error map.
pub fn comparison(camera: &Image, render: &Image) -> Result<image::RgbImage, EvalError> {
    let err = error_map(render, camera)?;
    let (w, h) = (camera.width, camera.height);
    let mut out = image::RgbImage::from_pixel(3 * w, h + HEADER_PX, image::Rgb([255, 255, 255]));
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            let px = |img: &Image| {
                let s = &img.rgb[3 * i..3 * i + 3];
                image::Rgb([s[0], s[1], s[2]])
            };
            out.put_pixel(x, y + HEADER_PX, px(camera));
            out.put_pixel(w + x, y + HEADER_PX, px(render));
            let c = ViridisRGB::get_color_normalized(err[i].min(ERROR_SCALE), 0.0, ERROR_SCALE);
            out.put_pixel(2 * w + x, y + HEADER_PX, image::Rgb([c.0, c.1, c.2]));
        }
    }
    let mean = err.iter().sum::<f32>() / err.len().max(1) as f32;
    register_font();
    {
        let (ow, oh) = out.dimensions();
        let buf: &mut [u8] = std::ops::DerefMut::deref_mut(&mut out);
        let area = BitMapBackend::with_buffer(buf, (ow, oh)).into_drawing_area();
        let style = (FONT, 15).into_font().color(&BLACK);
        let labels = [
            "camera (exposure-normalised)".to_string(),
            "render".to_string(),
            format!("|error| 0-{ERROR_SCALE:.0} (mean {mean:.1})"),
        ];
        for (k, l) in labels.iter().enumerate() {
            area.draw_text(l, &style, (k as i32 * w as i32 + 6, 4))
                .map_err(perr)?;
        }
        area.present().map_err(perr)?;
    }
    Ok(out)
}

/// Writes [`comparison`] to `path`.
pub fn write_comparison(camera: &Image, render: &Image, path: &Path) -> Result<(), EvalError> {
    comparison(camera, render)?
        .save(path)
        .map_err(|e| EvalError::Plot(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Image {
        let mut im = Image::new(0, w, h);
        im.rgb = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect();
        im
    }

    #[test]
    fn comparison_layout_and_error_map() {
        let cam = img(40, 30, |x, _| [x as u8 * 4, 100, 50]);
        // The render is right on the left half and off by 90 on the right half.
        let ren = img(40, 30, |x, _| {
            let v = x as u8 * 4;
            if x < 20 {
                [v, 100, 50]
            } else {
                [v, 190, 140]
            }
        });
        let e = error_map(&ren, &cam).unwrap();
        assert_eq!(e[5], 0.0);
        assert!((e[30] - 60.0).abs() < 1e-4);
        let out = comparison(&cam, &ren).unwrap();
        assert_eq!(out.dimensions(), (120, 30 + HEADER_PX));
        let at = |x, y| out.get_pixel(x, y + HEADER_PX).0;
        assert_eq!(at(3, 10), [12, 100, 50]); // camera
        assert_eq!(at(40 + 30, 10), [120, 190, 140]); // render
                                                      // Error map: zero error is the bottom of viridis, 60/64 near its top.
        assert_eq!(at(80 + 5, 10), [68, 1, 84]);
        let hot = at(80 + 30, 10);
        assert!(hot[0] > 200 && hot[1] > 200, "{hot:?}");
        let small = img(10, 10, |_, _| [0, 0, 0]);
        assert!(comparison(&small, &cam).is_err());
    }
}
