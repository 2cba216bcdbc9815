//! Image conversions: raw `sensor_msgs/Image` encodings and jpeg/png `CompressedImage` to RGB8.

use super::error::DecodeError;
use super::msgs;
use crate::sensors::Image;

/// Bayer pattern as the colour (0 = R, 1 = G, 2 = B) of the 2x2 cell [(0,0), (1,0), (0,1), (1,1)].
fn bayer_pattern(enc: &str) -> Option<[usize; 4]> {
    Some(match enc {
        "bayer_rggb8" => [0, 1, 1, 2],
        "bayer_bggr8" => [2, 1, 1, 0],
        "bayer_gbrg8" => [1, 2, 0, 1],
        "bayer_grbg8" => [1, 0, 2, 1],
        _ => return None,
    })
}

/// Decodes a raw image (rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1/8UC3, bayer_*8) to RGB8.
pub fn image_from_msg(msg: &msgs::Image) -> Result<Image, DecodeError> {
    let enc = msg.encoding.to_ascii_lowercase();
    let bpp = match enc.as_str() {
        "rgb8" | "bgr8" | "8uc3" => 3,
        "rgba8" | "bgra8" | "8uc4" => 4,
        "mono8" | "8uc1" => 1,
        "mono16" | "16uc1" => 2,
        e if bayer_pattern(e).is_some() => 1,
        _ => return Err(DecodeError::UnsupportedEncoding(msg.encoding.clone())),
    };
    let (w, h, step) = (msg.width as usize, msg.height as usize, msg.step as usize);
    let row = w
        .checked_mul(bpp)
        .filter(|&r| r <= step || h == 0)
        .ok_or_else(|| DecodeError::Image(format!("step {step} < width {w} * {bpp} bytes")))?;
    let needed = if h == 0 {
        0
    } else {
        (h - 1).saturating_mul(step).saturating_add(row)
    };
    if msg.data.len() < needed {
        return Err(DecodeError::Image(format!(
            "{}x{} {} needs {needed} bytes, has {}",
            w,
            h,
            msg.encoding,
            msg.data.len()
        )));
    }
    let mut out = Image::new(msg.header.stamp, msg.width, msg.height);
    out.frame_id = msg.header.frame_id.clone();
    if let Some(pat) = bayer_pattern(&enc) {
        demosaic(&msg.data, w, h, step, pat, &mut out.rgb);
        return Ok(out);
    }
    for y in 0..h {
        let src = &msg.data[y * step..y * step + row];
        let dst = &mut out.rgb[y * w * 3..(y + 1) * w * 3];
        for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(bpp)) {
            match enc.as_str() {
                "rgb8" | "rgba8" => d.copy_from_slice(&s[..3]),
                "bgr8" | "bgra8" | "8uc3" | "8uc4" => d.copy_from_slice(&[s[2], s[1], s[0]]),
                "mono16" | "16uc1" => {
                    let v = if msg.is_bigendian != 0 { s[0] } else { s[1] };
                    d.fill(v);
                }
                _ => d.fill(s[0]),
            }
        }
    }
    Ok(out)
}

/// Bilinear-style demosaic: each output channel is the mean of that colour's samples in the
/// 3x3 neighbourhood (clamped at the borders).
fn demosaic(data: &[u8], w: usize, h: usize, step: usize, pat: [usize; 4], rgb: &mut [u8]) {
    for y in 0..h {
        for x in 0..w {
            let mut sum = [0u32; 3];
            let mut cnt = [0u32; 3];
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let c = pat[(ny % 2) * 2 + nx % 2];
                    sum[c] += data[ny * step + nx] as u32;
                    cnt[c] += 1;
                }
            }
            let o = (y * w + x) * 3;
            for (c, out) in rgb[o..o + 3].iter_mut().enumerate() {
                *out = (sum[c] + cnt[c] / 2).checked_div(cnt[c]).unwrap_or(0) as u8;
            }
        }
    }
}

/// Decodes a jpeg or png `CompressedImage` to RGB8 (format detected from the bytes).
pub fn image_from_compressed(msg: &msgs::CompressedImage) -> Result<Image, DecodeError> {
    let fmt = msg.format.to_ascii_lowercase();
    if fmt.contains("compresseddepth") {
        return Err(DecodeError::UnsupportedEncoding(msg.format.clone()));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&msg.data))
        .with_guessed_format()
        .map_err(|e| DecodeError::Image(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16384);
    limits.max_image_height = Some(16384);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| DecodeError::Image(format!("{}: {e}", msg.format)))?
        .to_rgb8();
    let (width, height) = img.dimensions();
    Ok(Image {
        stamp: msg.header.stamp,
        frame_id: msg.header.frame_id.clone(),
        width,
        height,
        rgb: img.into_raw(),
    })
}

/// Wraps an RGB8 image as a `sensor_msgs/Image` (encoding rgb8).
pub fn image_to_msg(img: &Image) -> msgs::Image {
    msgs::Image {
        header: msgs::Header {
            stamp: img.stamp,
            frame_id: img.frame_id.clone(),
        },
        height: img.height,
        width: img.width,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: img.width * 3,
        data: img.rgb.clone(),
    }
}
