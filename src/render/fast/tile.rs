//! What one 16x16 tile works on: its splats gathered into contiguous f32 arrays in depth order
//! (structure of arrays, tile-local coordinates, a row range per splat), the per-pixel state the
//! forward pass leaves for the backward pass, and a vectorisable `exp`.

use super::bin::Bins;
use crate::render::types::TILE;

/// Pixels per tile.
pub const PIX: usize = (TILE * TILE) as usize;
/// Tile width as usize.
pub const W: usize = TILE as usize;
/// Tile-local x coordinate of each lane of a row.
pub const XS: [f32; W] = [
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
];

/// `exp(x)` for `x <= 0` (inputs are clamped to [-87, 0]) with relative error about 2e-7:
/// Cody-Waite reduction to `2^n * exp(r)`, |r| <= ln2/2, and a degree-6 Taylor polynomial.
/// Written without calls, branches or float-to-int conversions (the integer `n` is read from
/// the bits of the rounding sum) so loops over pixel rows vectorise.
#[inline(always)]
pub fn exp_neg(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: in [2^23, 2^24) the spacing is 1, so adding it rounds to an integer that
    // sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const ROUND_BITS: i32 = 0x4B40_0000;
    // max/min rather than clamp: a NaN input becomes a number instead of propagating.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(0.0);
    let y = x * LOG2E + ROUND;
    let n = y - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let ni = (y.to_bits() as i32).wrapping_sub(ROUND_BITS);
    // Wrapping: the dev profile's overflow checks would add a branch that blocks vectorisation.
    p * f32::from_bits((ni.wrapping_add(127) << 23) as u32)
}

/// Per-pixel state of a tile after the forward pass (tile-local, row-major).
#[derive(Clone)]
pub struct TilePix {
    /// Final transmittance.
    pub t: [f32; PIX],
    /// Position (in the tile's gathered list) of the last contributing splat, -1 if none.
    pub last: [i32; PIX],
    /// Colour (r, g, b) and depth.
    pub out: [[f32; PIX]; 4],
}

impl Default for TilePix {
    fn default() -> Self {
        Self {
            t: [1.0; PIX],
            last: [-1; PIX],
            out: [[0.0; PIX]; 4],
        }
    }
}

/// Splats of one tile, front to back, as contiguous arrays (reused between tiles and calls).
#[derive(Debug, Default)]
pub struct TileSplats {
    pub mx: Vec<f32>,
    pub my: Vec<f32>,
    pub ca: Vec<f32>,
    pub cb: Vec<f32>,
    pub cc: Vec<f32>,
    pub op: Vec<f32>,
    /// Colour r, g, b and depth.
    pub f: [Vec<f32>; 4],
    /// Rows [y0, y1) of the tile the splat can reach.
    pub y0: Vec<u8>,
    pub y1: Vec<u8>,
    /// Depth rank of the splat (index into `Bins::order` and the gradient accumulators).
    pub rank: Vec<u32>,
}

impl TileSplats {
    pub fn len(&self) -> usize {
        self.rank.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rank.is_empty()
    }

    fn clear(&mut self) {
        for v in [
            &mut self.mx,
            &mut self.my,
            &mut self.ca,
            &mut self.cb,
            &mut self.cc,
        ] {
            v.clear();
        }
        self.op.clear();
        for v in self.f.iter_mut() {
            v.clear();
        }
        self.y0.clear();
        self.y1.clear();
        self.rank.clear();
    }

    /// Gathers the splats of tile `(tx, ty)` that can reach one of its `rows` valid rows
    /// (deterministic, so the backward pass sees the same list positions as the forward pass).
    pub fn gather(&mut self, bins: &Bins, tile: usize, tx: u32, ty: u32, rows: usize) {
        self.clear();
        let (ox, oy) = ((tx * TILE) as f64, (ty * TILE) as f64);
        for &rank in bins.tile_list(tile) {
            let s = &bins.order[rank as usize];
            let mx = (s.mean[0] - ox) as f32;
            let my = (s.mean[1] - oy) as f32;
            let [ex, ey] = s.extent;
            if mx + ex < 0.0 || mx - ex > (W - 1) as f32 {
                continue;
            }
            let y0 = (my - ey).ceil().max(0.0);
            let y1 = ((my + ey).floor() + 1.0).min(rows as f32);
            if y0 >= y1 {
                continue;
            }
            self.mx.push(mx);
            self.my.push(my);
            self.ca.push(s.conic[0]);
            self.cb.push(s.conic[1]);
            self.cc.push(s.conic[2]);
            self.op.push(s.opacity);
            for ch in 0..3 {
                self.f[ch].push(s.colour[ch]);
            }
            self.f[3].push(s.depth);
            self.y0.push(y0 as u8);
            self.y1.push(y1 as u8);
            self.rank.push(rank);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_is_accurate_on_the_used_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -20.0 * i as f64 / 200_000.0;
            let got = exp_neg(x as f32) as f64;
            let want = (x as f32 as f64).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_neg(0.0), 1.0);
        assert!(exp_neg(-1e30) >= 0.0 && exp_neg(-1e30) < 1e-37);
    }
}
