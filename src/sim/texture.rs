//! Procedural albedo: deterministic, colourful, high-frequency value noise on surface coordinates.
//!
//! Band-limited on purpose: octaves finer than the pixel footprint fade to their mean, so a
//! rendered pixel approximates the area average of the albedo and views from different
//! distances stay photometrically consistent (what the visual update and the mapping rely on).

/// Per-surface texture parameters: a seed and two colours the noise blends between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Texture {
    pub seed: u32,
    /// Linear RGB in [0, 1].
    pub base: [f32; 3],
    pub accent: [f32; 3],
    /// Multiplies all octave sizes (metres); 1.0 is indoor scale, larger for street facades.
    pub scale: f64,
    /// Paint sharp-edged detail (grout, decals, glyphs; see [`super::detail`]) over the noise.
    pub detail: bool,
}

/// Octave cell sizes in metres (times `Texture::scale`) and their weights in the luminance.
const LUM_OCTAVES: [(f64, f32); 3] = [(0.035, 0.5), (0.12, 0.3), (0.5, 0.2)];
/// Cell size of the hue field.
const HUE_CELL: f64 = 0.25;

impl Texture {
    /// A texture whose colours are drawn deterministically from `seed`.
    pub fn from_seed(seed: u32, scale: f64) -> Self {
        let c = |k: u32| {
            [
                0.25 + 0.75 * hash01(seed, k as i64, 0),
                0.25 + 0.75 * hash01(seed, k as i64, 1),
                0.25 + 0.75 * hash01(seed, k as i64, 2),
            ]
        };
        Self {
            seed,
            base: c(11),
            accent: c(12),
            scale,
            detail: false,
        }
    }

    /// Albedo in [0, 1] at surface coordinates `uv` (metres), averaged over a footprint of
    /// `footprint` metres (the size one sample covers on the surface; 0 = point sample).
    /// Values stay below 0.8 so an exposure gain up to 1.25 does not saturate.
    pub fn albedo(&self, uv: [f64; 2], footprint: f64) -> [f32; 3] {
        let mut lum = 0.0f32;
        for (i, &(cell, w)) in LUM_OCTAVES.iter().enumerate() {
            let cell = cell * self.scale;
            let n = value_noise(self.seed.wrapping_add(101 * i as u32), uv, cell);
            lum += w * fade(n, cell, footprint);
        }
        let hue_cell = HUE_CELL * self.scale;
        let h = fade(
            value_noise(self.seed.wrapping_add(977), uv, hue_cell),
            hue_cell,
            footprint,
        );
        let l = 0.3 + 0.62 * lum;
        let mut out = [0.0f32; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let c = self.base[k] + (self.accent[k] - self.base[k]) * h;
            *o = (c * l * 0.95).clamp(0.0, 1.0);
        }
        if self.detail {
            return super::detail::overlay(self.seed, self.scale, uv, footprint, out);
        }
        out
    }
}

/// Replaces an octave by its mean (0.5) where its cells are smaller than ~2 footprints.
fn fade(n: f32, cell: f64, footprint: f64) -> f32 {
    if footprint <= 0.0 {
        return n;
    }
    let r = cell / footprint;
    let w = ((r - 1.0) / 2.0).clamp(0.0, 1.0) as f32;
    let w = w * w * (3.0 - 2.0 * w);
    0.5 + (n - 0.5) * w
}

/// 2D value noise in [0, 1] with lattice spacing `cell`, smooth (quintic) interpolation.
fn value_noise(seed: u32, uv: [f64; 2], cell: f64) -> f32 {
    let x = uv[0] / cell;
    let y = uv[1] / cell;
    let x0 = x.floor();
    let y0 = y.floor();
    let fx = quintic((x - x0) as f32);
    let fy = quintic((y - y0) as f32);
    let (ix, iy) = (x0 as i64, y0 as i64);
    let h = |dx: i64, dy: i64| hash01(seed, ix + dx, iy + dy);
    let a = h(0, 0) + (h(1, 0) - h(0, 0)) * fx;
    let b = h(0, 1) + (h(1, 1) - h(0, 1)) * fx;
    a + (b - a) * fy
}

fn quintic(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// Integer hash of a lattice point to [0, 1).
pub(super) fn hash01(seed: u32, x: i64, y: i64) -> f32 {
    let mut h = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (x as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (y as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 29;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 32;
    (h >> 40) as f32 / (1u64 << 24) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn albedo_is_deterministic_varied_and_bounded() {
        let t = Texture::from_seed(7, 1.0);
        let a = t.albedo([0.3, 0.7], 0.0);
        assert_eq!(a, t.albedo([0.3, 0.7], 0.0));
        let mut lo = 1.0f32;
        let mut hi = 0.0f32;
        for i in 0..400 {
            let v = t.albedo([i as f64 * 0.013, i as f64 * 0.007], 0.0);
            for c in v {
                assert!((0.0..0.8).contains(&c));
                lo = lo.min(c);
                hi = hi.max(c);
            }
        }
        // High-frequency signal: a wide range of values over a few metres.
        assert!(hi - lo > 0.3, "range {lo}..{hi}");
    }

    #[test]
    fn large_footprint_averages_out_fine_octaves() {
        let t = Texture::from_seed(3, 1.0);
        let mut var_fine = 0.0;
        let mut var_coarse = 0.0;
        for i in 0..200 {
            let uv = [i as f64 * 0.011, 0.5];
            let d = (t.albedo(uv, 0.0)[1] - t.albedo([uv[0] + 0.011, 0.5], 0.0)[1]).abs();
            let e = (t.albedo(uv, 0.2)[1] - t.albedo([uv[0] + 0.011, 0.5], 0.2)[1]).abs();
            var_fine += d;
            var_coarse += e;
        }
        assert!(var_coarse < 0.5 * var_fine, "{var_coarse} vs {var_fine}");
    }
}
