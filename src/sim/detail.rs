//! Sharp-edged surface content for `gs_livo sim --detail`: tile grout lines, decals (discs,
//! rectangles, stripe panels) and text-like glyph blocks with 1 cm strokes, drawn over the
//! smooth value noise. Real walls have edges and print; smooth noise alone flatters coarse maps.
//!
//! Every layer is box-filtered over the sample's footprint (analytically for bands and
//! rectangles, by a small stencil for glyphs), and features far below the footprint fade to their
//! mean, so views from different distances stay photometrically consistent, as with the noise.

use super::texture::hash01;

/// Indoor tile period range (metres, times the texture scale).
const TILE: (f64, f64) = (0.2, 0.45);
/// Grout line width (metres, times scale).
const GROUT: f64 = 0.008;
/// Decal lattice cell (metres, times scale); each decal stays inside its cell.
const DECAL_CELL: f64 = 1.1;
/// Glyph-block lattice cell and glyph pixel size (metres, times scale).
const TEXT_CELL: f64 = 0.9;
const GLYPH_PX: f64 = 0.01;
/// Glyph grid: 5 x 7 ink pixels in a 6 x 9 cell (spacing), share of ink pixels.
const GLYPH_W: i64 = 6;
const GLYPH_H: i64 = 9;
const INK: f32 = 0.45;

/// `albedo` with the detail layers of surface `seed` painted over it at `uv` (metres).
pub fn overlay(seed: u32, scale: f64, uv: [f64; 2], footprint: f64, albedo: [f32; 3]) -> [f32; 3] {
    let fp = footprint.max(0.0);
    let mut out = albedo;
    if let Some((c, col)) = grout(seed, scale, uv, fp) {
        blend(&mut out, col, c);
    }
    if let Some((c, col)) = decal(seed, scale, uv, fp) {
        blend(&mut out, col, c);
    }
    text(seed, scale, uv, fp, &mut out);
    out
}

fn blend(out: &mut [f32; 3], col: [f32; 3], c: f32) {
    for k in 0..3 {
        out[k] += (col[k] - out[k]) * c;
    }
}

/// Fraction of a box footprint of width `fp` centred at signed offset `d` from the centre of a
/// band of width `w` that the band covers (a step when `fp` is 0).
fn band(d: f64, w: f64, fp: f64) -> f32 {
    if fp <= 1e-12 {
        return if d.abs() <= 0.5 * w { 1.0 } else { 0.0 };
    }
    let lo = (d - 0.5 * fp).max(-0.5 * w);
    let hi = (d + 0.5 * fp).min(0.5 * w);
    ((hi - lo).max(0.0) / fp) as f32
}

/// A colour in [0.03, 0.78] from three hashes (saturated, so edges have contrast).
fn colour(seed: u32, i: i64, j: i64) -> [f32; 3] {
    let mut c = [0.0f32; 3];
    for (k, v) in c.iter_mut().enumerate() {
        let h = hash01(seed, i, j * 3 + k as i64);
        *v = if h < 0.5 {
            0.03 + 0.3 * h
        } else {
            0.48 + 0.6 * (h - 0.5)
        };
    }
    c
}

/// Tile grout on half of the surfaces: a grid of thin lines, dark or light per surface.
fn grout(seed: u32, scale: f64, uv: [f64; 2], fp: f64) -> Option<(f32, [f32; 3])> {
    let s = seed.wrapping_add(7001);
    if hash01(s, 0, 0) >= 0.5 {
        return None;
    }
    let period = scale * (TILE.0 + (TILE.1 - TILE.0) * hash01(s, 1, 0) as f64);
    let w = GROUT * scale;
    let off = |x: f64| {
        let f = x / period;
        (f - f.round()) * period
    };
    let cu = band(off(uv[0]), w, fp);
    let cv = band(off(uv[1]), w, fp);
    let c = 1.0 - (1.0 - cu) * (1.0 - cv);
    let col = if hash01(s, 2, 0) < 0.7 { 0.08 } else { 0.72 };
    Some((c, [col; 3]))
}

/// One decal per lattice cell on about 60 % of the cells: a disc, a rectangle or a stripe panel.
fn decal(seed: u32, scale: f64, uv: [f64; 2], fp: f64) -> Option<(f32, [f32; 3])> {
    let s = seed.wrapping_add(7919);
    let cell = DECAL_CELL * scale;
    let (i, j) = ((uv[0] / cell).floor() as i64, (uv[1] / cell).floor() as i64);
    let h = |k: i64| hash01(s, i * 16 + k, j) as f64;
    if h(0) >= 0.6 {
        return None;
    }
    // Half sizes up to 0.35 cell, centre placed so the decal stays inside its cell.
    let hx = cell * (0.05 + 0.3 * h(1));
    let hy = cell * (0.05 + 0.3 * h(2));
    let cx = (i as f64 + 0.5) * cell + (0.5 * cell - hx) * (2.0 * h(3) - 1.0);
    let cy = (j as f64 + 0.5) * cell + (0.5 * cell - hy) * (2.0 * h(4) - 1.0);
    let (du, dv) = (uv[0] - cx, uv[1] - cy);
    let col = colour(s, i * 16 + 5, j);
    let kind = h(6);
    if kind < 0.33 {
        let r = hx.min(hy);
        let dist = (du * du + dv * dv).sqrt();
        let c = if fp <= 1e-12 {
            if dist <= r {
                1.0
            } else {
                0.0
            }
        } else {
            // Box-filtered edge, and a small disc under a large footprint keeps its area.
            let edge = (0.5 + (r - dist) / fp).clamp(0.0, 1.0);
            edge * (std::f64::consts::PI * r * r / (fp * fp)).min(1.0)
        };
        return Some((c as f32, col));
    }
    let rect = band(du, 2.0 * hx, fp) * band(dv, 2.0 * hy, fp);
    if kind < 0.66 || rect == 0.0 {
        return Some((rect, col));
    }
    // Stripe panel: two colours alternating along u with a period of 2-8 cm.
    let period = scale * (0.02 + 0.06 * h(7));
    let f = du / period;
    let d = (f - f.round()) * period;
    let fine = (-1..=1)
        .map(|k| band(d + k as f64 * period, 0.5 * period, fp))
        .sum::<f32>()
        .min(1.0);
    let fade = ((fp / period - 0.5) / 1.0).clamp(0.0, 1.0) as f32;
    let stripe = fine + (0.5 - fine) * fade;
    let col2 = colour(s, i * 16 + 8, j);
    let mut mixed = col2;
    blend(&mut mixed, col, stripe);
    Some((rect, mixed))
}

/// Text-like blocks on about 35 % of the text lattice: a light panel with lines of dark glyphs
/// whose strokes are one glyph pixel (1 cm at indoor scale) wide.
fn text(seed: u32, scale: f64, uv: [f64; 2], fp: f64, out: &mut [f32; 3]) {
    let s = seed.wrapping_add(104_729);
    let cell = TEXT_CELL * scale;
    // Offset lattice so text and decals rarely coincide exactly.
    let (u, v) = (uv[0] + 0.37 * cell, uv[1] + 0.21 * cell);
    let (i, j) = ((u / cell).floor() as i64, (v / cell).floor() as i64);
    let h = |k: i64| hash01(s, i * 8 + k, j) as f64;
    if h(0) >= 0.35 {
        return;
    }
    let px = GLYPH_PX * scale;
    let cols = 8 + (h(1) * 20.0) as i64;
    let rows = 1 + (h(2) * 5.0) as i64;
    let (pw, ph) = (
        (cols * GLYPH_W + 2) as f64 * px,
        (rows * GLYPH_H + 2) as f64 * px,
    );
    let x0 = i as f64 * cell + (cell - pw).max(0.0) * h(3);
    let y0 = j as f64 * cell + (cell - ph).max(0.0) * h(4);
    let (du, dv) = (u - x0, v - y0);
    let panel = band(du - 0.5 * pw, pw, fp) * band(dv - 0.5 * ph, ph, fp);
    if panel == 0.0 {
        return;
    }
    let paper = 0.7 + 0.08 * h(5) as f32;
    blend(out, [paper; 3], panel);
    let ink_col = colour(s, i * 8 + 6, j).map(|c| c * 0.2);
    let ink_at = |x: f64, y: f64| -> f32 {
        let (gx, gy) = ((x / px).floor() as i64 - 1, (y / px).floor() as i64 - 1);
        if gx < 0 || gy < 0 || gx >= cols * GLYPH_W || gy >= rows * GLYPH_H {
            return 0.0;
        }
        let (cx, cy) = (gx % GLYPH_W, gy % GLYPH_H);
        // Last column and last two rows of each glyph cell are spacing.
        if cx == GLYPH_W - 1 || cy >= GLYPH_H - 2 {
            return 0.0;
        }
        let glyph = (gy / GLYPH_H) * cols + gx / GLYPH_W;
        let on = hash01(s ^ 0x5bd1, glyph * 64 + cy * GLYPH_W + cx, i * 1009 + j) < 0.55;
        if on {
            1.0
        } else {
            0.0
        }
    };
    // Box filter by a stencil of up to 4 x 4 samples; far below a pixel, the mean ink density.
    let mean = INK * ((GLYPH_W - 1) * (GLYPH_H - 2)) as f32 / (GLYPH_W * GLYPH_H) as f32;
    let n = ((2.0 * fp / px).ceil() as usize).clamp(1, 4);
    let mut ink = 0.0f32;
    for a in 0..n {
        for b in 0..n {
            let ox = ((a as f64 + 0.5) / n as f64 - 0.5) * fp;
            let oy = ((b as f64 + 0.5) / n as f64 - 0.5) * fp;
            ink += ink_at(du + ox, dv + oy);
        }
    }
    ink /= (n * n) as f32;
    let fade = ((fp / px - 2.0) / 2.0).clamp(0.0, 1.0) as f32;
    let ink = ink + (mean - ink) * fade;
    blend(out, ink_col, ink * panel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_is_a_box_filtered_step() {
        assert_eq!(band(0.0, 0.01, 0.0), 1.0);
        assert_eq!(band(0.006, 0.01, 0.0), 0.0);
        // Footprint twice the band width, centred: covers half.
        assert!((band(0.0, 0.01, 0.02) - 0.5).abs() < 1e-6);
        // Edge exactly at the sample centre: half covered.
        assert!((band(0.005, 0.01, 0.002) - 0.5).abs() < 1e-6);
    }

    /// Detail adds sharp steps: neighbouring point samples 2 mm apart differ by more than 0.2 in
    /// many places, which the smooth noise never does; and it stays in range and deterministic.
    #[test]
    fn overlay_has_sharp_edges_and_is_bounded() {
        let base = [0.4f32, 0.4, 0.4];
        let mut jumps = 0;
        for seed in [1000u32, 1017, 1034, 1051] {
            for k in 0..20_000 {
                let uv = [k as f64 * 0.002, 0.37 + 0.1 * seed as f64];
                let a = overlay(seed, 1.0, uv, 0.0, base);
                assert_eq!(a, overlay(seed, 1.0, uv, 0.0, base));
                assert!(a.iter().all(|c| (0.0..0.8).contains(c)), "{a:?}");
                let b = overlay(seed, 1.0, [uv[0] + 0.002, uv[1]], 0.0, base);
                if (a[1] - b[1]).abs() > 0.2 {
                    jumps += 1;
                }
            }
        }
        assert!(jumps > 100, "{jumps} sharp steps");
    }

    /// Seen from far away (footprint 20 cm) the glyphs and grout average out: neighbouring
    /// samples change little.
    #[test]
    fn large_footprint_smooths_detail() {
        let base = [0.4f32, 0.4, 0.4];
        let (mut near, mut far) = (0.0, 0.0);
        for k in 0..5000 {
            let uv = [k as f64 * 0.004, 1.3];
            let d = |fp: f64| {
                (overlay(1017, 1.0, uv, fp, base)[1]
                    - overlay(1017, 1.0, [uv[0] + 0.004, 1.3], fp, base)[1])
                    .abs()
            };
            near += d(0.0);
            far += d(0.2);
        }
        assert!(far < 0.25 * near, "{far} vs {near}");
    }
}
