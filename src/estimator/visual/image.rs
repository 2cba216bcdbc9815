//! Grey image at the optimisation resolution, exposure statistics and pixel selection.

use crate::sensors::Image;

/// A grey image in [0, 1] (mean of R, G, B).
#[derive(Debug, Clone, PartialEq)]
pub struct Grey {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f64>,
}

impl Grey {
    /// Box-downsamples `img` by `2^level` (pixel centres stay consistent with
    /// `cx' = (cx + 0.5) / 2^level - 0.5`). `None` if the buffer size is wrong.
    pub fn from_image(img: &Image, level: u32) -> Option<Self> {
        let (w, h) = (img.width as usize, img.height as usize);
        if img.rgb.len() != 3 * w * h || w == 0 || h == 0 {
            return None;
        }
        let f = 1usize << level;
        let (wo, ho) = (w / f, h / f);
        if wo == 0 || ho == 0 {
            return None;
        }
        let mut data = vec![0.0; wo * ho];
        // The usual factors as constants, so the block loops unroll.
        match f {
            1 => box_sums(&img.rgb, w, 1, &mut data, wo),
            2 => box_sums(&img.rgb, w, 2, &mut data, wo),
            4 => box_sums(&img.rgb, w, 4, &mut data, wo),
            _ => box_sums(&img.rgb, w, f, &mut data, wo),
        }
        Some(Self {
            width: wo as u32,
            height: ho as u32,
            data,
        })
    }

    pub fn at(&self, x: u32, y: u32) -> f64 {
        self.data[(y * self.width + x) as usize]
    }

    /// Fractions of pixels at or above `hi` and at or below `lo`.
    pub fn clipped_fractions(&self, lo: f64, hi: f64) -> (f64, f64) {
        let n = self.data.len().max(1) as f64;
        let over = self.data.iter().filter(|&&v| v >= hi).count() as f64 / n;
        let under = self.data.iter().filter(|&&v| v <= lo).count() as f64 / n;
        (over, under)
    }

    /// Gradient magnitude (central differences, per pixel) at an interior pixel.
    pub fn gradient(&self, x: u32, y: u32) -> f64 {
        let gx = 0.5 * (self.at(x + 1, y) - self.at(x - 1, y));
        let gy = 0.5 * (self.at(x, y + 1) - self.at(x, y - 1));
        (gx * gx + gy * gy).sqrt()
    }
}

wide! {
/// The gradient magnitudes of [`select_pixels`]: `-inf` outside `[b, size - b)` and at clipped
/// pixels. Multiversioned (`wide!`):
/// wider sqrt where the CPU has it, the same IEEE operations, so the same values.
fn magnitudes(g: &Grey, b: usize, lo: f64, hi: f64) -> Vec<f64> {
    let (w, h) = (g.width as usize, g.height as usize);
    let (x0, x1) = (b, w - b);
    let mut mag = vec![f64::NEG_INFINITY; w * h];
    for y in b..h - b {
        let row = &g.data[y * w..(y + 1) * w];
        let (above, below) = (
            &g.data[(y - 1) * w..y * w],
            &g.data[(y + 1) * w..(y + 2) * w],
        );
        let out = &mut mag[y * w + x0..y * w + x1];
        let cols = row[x0..x1]
            .iter()
            .zip(&row[x0 + 1..x1 + 1])
            .zip(&row[x0 - 1..x1 - 1])
            .zip(above[x0..x1].iter().zip(&below[x0..x1]));
        for (m, (((&v, &right), &left), (&up, &down))) in out.iter_mut().zip(cols) {
            let gx = 0.5 * (right - left);
            let gy = 0.5 * (down - up);
            let grad = (gx * gx + gy * gy).sqrt();
            *m = if v <= lo || v >= hi {
                f64::NEG_INFINITY
            } else {
                grad
            };
        }
    }
    mag
}
}

/// `data` (`wo` wide) = the means of the `f x f` blocks of `rgb` (`w` wide, interleaved RGB)
/// in [0, 1]. The integer sums are exact in any order; inlined so a constant `f` unrolls.
#[inline(always)]
fn box_sums(rgb: &[u8], w: usize, f: usize, data: &mut [f64], wo: usize) {
    let norm = 1.0 / (3.0 * 255.0 * (f * f) as f64);
    for (yo, row) in data.chunks_exact_mut(wo).enumerate() {
        let block_rows = &rgb[3 * w * yo * f..3 * w * (yo * f + f)];
        for (xo, out) in row.iter_mut().enumerate() {
            let mut s = 0u32;
            for src in block_rows.chunks_exact(3 * w) {
                for v in &src[3 * f * xo..3 * f * (xo + 1)] {
                    s += u32::from(*v);
                }
            }
            *out = s as f64 * norm;
        }
    }
}

/// Pixel selection: the strongest gradient per `grid x grid` cell when above `threshold` and not
/// clipped (`lo < I < hi`), at least `border` px from the edge; strongest first, at most `max`.
pub fn select_pixels(
    g: &Grey,
    threshold: f64,
    grid: u32,
    border: u32,
    max: usize,
    lo: f64,
    hi: f64,
) -> Vec<(u32, u32)> {
    let b = border.max(1);
    if g.width <= 2 * b || g.height <= 2 * b {
        return Vec::new();
    }
    // Gradient magnitudes of the usable pixels (interior, not clipped; -inf otherwise, which
    // never passes `m > threshold`), row by row over slices so the loop vectorises; the cell
    // scan below then compares the same values in the same order as a per-pixel evaluation.
    let mag = magnitudes(g, b as usize, lo, hi);
    let w = g.width as usize;
    let mut picked: Vec<(f64, u32, u32)> = Vec::new();
    let grid = grid.max(1);
    let mut cy = b;
    while cy < g.height - b {
        let mut cx = b;
        while cx < g.width - b {
            let mut best: Option<(f64, u32, u32)> = None;
            for y in cy..(cy + grid).min(g.height - b) {
                let row = &mag[y as usize * w..(y as usize + 1) * w];
                let xe = (cx + grid).min(g.width - b);
                for (x, &m) in (cx..xe).zip(&row[cx as usize..xe as usize]) {
                    if m > threshold && best.is_none_or(|(bm, ..)| m > bm) {
                        best = Some((m, x, y));
                    }
                }
            }
            picked.extend(best);
            cx += grid;
        }
        cy += grid;
    }
    picked.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.2, a.1).cmp(&(b.2, b.1))));
    picked.truncate(max);
    picked.into_iter().map(|(_, x, y)| (x, y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_blocks_and_selection_finds_edges() {
        let mut img = Image::new(0, 32, 16);
        img.rgb = vec![0; 32 * 16 * 3];
        // Left half dark (60), right half bright (200): one vertical edge at x = 16.
        for y in 0..16 {
            for x in 16..32 {
                for c in 0..3 {
                    img.rgb[3 * (y * 32 + x) + c] = 200;
                }
            }
            for x in 0..16 {
                for c in 0..3 {
                    img.rgb[3 * (y * 32 + x) + c] = 60;
                }
            }
        }
        let g = Grey::from_image(&img, 1).unwrap();
        assert_eq!((g.width, g.height), (16, 8));
        assert!((g.at(0, 0) - 60.0 / 255.0).abs() < 1e-12);
        assert!((g.at(15, 7) - 200.0 / 255.0).abs() < 1e-12);
        let px = select_pixels(&g, 0.05, 4, 1, 100, 0.02, 0.98);
        assert!(!px.is_empty());
        assert!(px.iter().all(|&(x, _)| x == 7 || x == 8), "{px:?}");
        let (over, under) = g.clipped_fractions(0.02, 0.98);
        assert_eq!((over, under), (0.0, 0.0));
        assert!(Grey::from_image(&Image::new(0, 0, 0), 0).is_none());
    }

    /// A pseudo-random image with flat, clipped and textured parts.
    fn noisy(w: u32, h: u32, seed: u64) -> Image {
        let mut img = Image::new(0, w, h);
        let mut st = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for (i, v) in img.rgb.iter_mut().enumerate() {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            let x = (i / 3) as u32 % w;
            *v = match x * 4 / w {
                0 => 0,
                1 => 255,
                _ => (st >> 40) as u8,
            };
        }
        img
    }

    /// The block sums and the vectorised selection equal the per-pixel definitions exactly.
    #[test]
    fn downsample_and_selection_equal_per_pixel_definitions() {
        for (w, h, level, seed) in [(64u32, 48u32, 1u32, 1u64), (50, 37, 0, 2), (81, 66, 2, 3)] {
            let img = noisy(w, h, seed);
            let g = Grey::from_image(&img, level).unwrap();
            let f = 1usize << level;
            assert_eq!((g.width, g.height), (w / f as u32, h / f as u32));
            for yo in 0..g.height as usize {
                for xo in 0..g.width as usize {
                    let mut s = 0u32;
                    for y in yo * f..yo * f + f {
                        for x in xo * f..xo * f + f {
                            for c in 0..3 {
                                s += u32::from(img.rgb[3 * (y * w as usize + x) + c]);
                            }
                        }
                    }
                    let want = s as f64 * (1.0 / (3.0 * 255.0 * (f * f) as f64));
                    assert_eq!(g.at(xo as u32, yo as u32), want);
                }
            }
            for (grid, border, max) in [(6u32, 4u32, 1500usize), (3, 1, 40), (1, 2, 10_000)] {
                let (lo, hi) = (0.02, 0.98);
                let mut want: Vec<(f64, u32, u32)> = Vec::new();
                let mut cy = border;
                while cy < g.height - border {
                    let mut cx = border;
                    while cx < g.width - border {
                        let mut best: Option<(f64, u32, u32)> = None;
                        for y in cy..(cy + grid).min(g.height - border) {
                            for x in cx..(cx + grid).min(g.width - border) {
                                let v = g.at(x, y);
                                let m = g.gradient(x, y);
                                if v > lo && v < hi && m > 0.05 && best.is_none_or(|b| m > b.0) {
                                    best = Some((m, x, y));
                                }
                            }
                        }
                        want.extend(best);
                        cx += grid;
                    }
                    cy += grid;
                }
                want.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.2, a.1).cmp(&(b.2, b.1))));
                want.truncate(max);
                let want: Vec<(u32, u32)> = want.into_iter().map(|(_, x, y)| (x, y)).collect();
                assert!(want.len() > 3, "{}", want.len());
                assert_eq!(select_pixels(&g, 0.05, grid, border, max, lo, hi), want);
            }
        }
    }
}
