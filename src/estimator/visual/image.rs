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
        let norm = 1.0 / (3.0 * 255.0 * (f * f) as f64);
        for (yo, row) in data.chunks_mut(wo).enumerate() {
            for (xo, out) in row.iter_mut().enumerate() {
                let mut s = 0u32;
                for y in yo * f..yo * f + f {
                    let base = 3 * (y * w + xo * f);
                    for v in &img.rgb[base..base + 3 * f] {
                        s += *v as u32;
                    }
                }
                *out = s as f64 * norm;
            }
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
    let mut picked: Vec<(f64, u32, u32)> = Vec::new();
    let grid = grid.max(1);
    let mut cy = b;
    while cy < g.height - b {
        let mut cx = b;
        while cx < g.width - b {
            let mut best: Option<(f64, u32, u32)> = None;
            for y in cy..(cy + grid).min(g.height - b) {
                for x in cx..(cx + grid).min(g.width - b) {
                    let v = g.at(x, y);
                    if v <= lo || v >= hi {
                        continue;
                    }
                    let m = g.gradient(x, y);
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
}
