//! What one 16x16 tile works on: its splats gathered into contiguous f32 records in depth order
//! (tile-local coordinates, a row range per splat), the per-pixel state the forward pass leaves
//! for the backward pass, and a vectorisable `exp`.

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

/// Multiply-add `a * b + c` as the row loops use it: [`Fused`] (one rounding, one instruction)
/// in the code compiled for CPUs with FMA, [`Plain`] (a multiply and an add) in the portable
/// code. Rust never fuses on its own, so each variant gives the same bits on every CPU that
/// runs it.
pub trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// Fused multiply-add (only for code compiled with the `fma` target feature: elsewhere it is a
/// slow library call).
pub struct Fused;

/// Separate multiply and add.
pub struct Plain;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `exp(x)` for `x <= 0` (inputs are clamped to [-87, 0]), see [`exp_clamped`].
#[inline(always)]
pub fn exp_neg<M: Madd>(x: f32) -> f32 {
    exp_clamped::<M>(x, 0.0)
}

/// `exp(x)` of `x` clamped to [-87, `hi`] (`hi` <= 88) with relative error about 2e-7:
/// Cody-Waite reduction to `2^n * exp(r)`, |r| <= ln2/2, and a degree-6 Taylor polynomial.
/// Written without calls, branches or float-to-int conversions (the integer `n` is read from
/// the bits of the rounding sum) so loops over pixel rows and lanes vectorise.
#[inline(always)]
pub fn exp_clamped<M: Madd>(x: f32, hi: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: in [2^23, 2^24) the spacing is 1, so adding it rounds to an integer that
    // sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const ROUND_BITS: i32 = 0x4B40_0000;
    // max/min rather than clamp: a NaN input becomes a number instead of propagating.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(hi);
    let y = M::madd(x, LOG2E, ROUND);
    let n = y - ROUND;
    let r = M::madd(n, -LN2_LO, M::madd(n, -LN2_HI, x));
    let mut p = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = M::madd(p, r, c);
    }
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

/// One splat as a tile reads it: tile-local mean, conic, opacity, colour and depth, and the
/// rows `[y0, y1)` of the tile it can reach (empty when it reaches none). One record per entry
/// of the tile lists, written by the forward pass and read again by the backward pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rec {
    pub mx: f32,
    pub my: f32,
    /// Conic (a, b, c).
    pub ca: f32,
    pub cb: f32,
    pub cc: f32,
    pub op: f32,
    /// Colour r, g, b and depth.
    pub f: [f32; 4],
    pub y0: u8,
    pub y1: u8,
    /// Rows (bit `y`) where the forward pass blended the splat into some pixel: the backward
    /// pass visits only those (elsewhere its terms are all zero).
    pub rows: u16,
}

wide! {
/// Fills `out` (one record per entry of tile `(tx, ty)`'s list, in list order, so the backward
/// pass and the per-splat gradient slots see the same positions) for a tile with `rows` valid
/// rows.
pub fn gather(bins: &Bins, tile: usize, tx: u32, ty: u32, rows: usize, out: &mut [Rec]) {
    let (ox, oy) = ((tx * TILE) as f64, (ty * TILE) as f64);
    for (&rank, r) in bins.tile_list(tile).iter().zip(out.iter_mut()) {
        let s = &bins.order[rank as usize];
        let mx = (s.mean[0] - ox) as f32;
        let my = (s.mean[1] - oy) as f32;
        let [ex, ey] = s.extent;
        let y0 = (my - ey).ceil().max(0.0);
        let y1 = ((my + ey).floor() + 1.0).min(rows as f32);
        let reach = mx + ex >= 0.0 && mx - ex <= (W - 1) as f32 && y0 < y1;
        *r = Rec {
            mx,
            my,
            ca: s.conic[0],
            cb: s.conic[1],
            cc: s.conic[2],
            op: s.opacity,
            f: [s.colour[0], s.colour[1], s.colour[2], s.depth],
            y0: if reach { y0 as u8 } else { 0 },
            y1: if reach { y1 as u8 } else { 0 },
            rows: 0,
        };
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_is_accurate_on_the_used_range() {
        fn worst<M: Madd>() -> f64 {
            let mut worst = 0.0f64;
            for i in 0..=200_000 {
                let x = -20.0 * i as f64 / 200_000.0;
                let got = exp_neg::<M>(x as f32) as f64;
                let want = (x as f32 as f64).exp();
                worst = worst.max((got - want).abs() / want);
            }
            worst
        }
        for w in [worst::<Plain>(), worst::<Fused>()] {
            assert!(w < 5e-7, "relative error {w}");
        }
        assert_eq!(exp_neg::<Plain>(0.0), 1.0);
        assert_eq!(exp_neg::<Fused>(0.0), 1.0);
        assert!(exp_neg::<Plain>(-1e30) >= 0.0 && exp_neg::<Plain>(-1e30) < 1e-37);
        assert!(exp_neg::<Plain>(f32::NAN).is_finite());
    }
}
