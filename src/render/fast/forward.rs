//! Forward blending of one tile: splats front to back over the pixel rows each one can reach,
//! 16 lanes per row without branches (so the compiler vectorises), stopping per pixel when the
//! transmittance would fall below `T_MIN` and for the whole tile once every pixel has stopped.

use super::tile::{exp_neg, Madd, Plain, Rec, TilePix, PIX, W, XS};
use crate::render::types::{ALPHA_MAX, ALPHA_MIN, T_MIN};

pub const AMAX: f32 = ALPHA_MAX as f32;
pub const AMIN: f32 = ALPHA_MIN as f32;
const TMIN: f32 = T_MIN as f32;

wide! {
    /// Blends the tile's splats `s` (front to back) into `px` (colour, depth, final transmittance
    /// and the position of each pixel's last contributor). Only the first `cols` x `rows` pixels
    /// lie inside the image. The AVX copies use 16- or 8-lane registers and fused multiply-adds
    /// (the same bits as each other); the baseline separate multiplies and adds.
    pub fn raster_tile / raster_tile_on<M = super::tile::Fused | Plain>(
        s: &mut [Rec],
        px: &mut TilePix,
        cols: usize,
        rows: usize,
    ) {
        raster_tile_impl::<M>(s, px, cols, rows)
    }
}

#[inline(always)]
fn raster_tile_impl<M: Madd>(s: &mut [Rec], px: &mut TilePix, cols: usize, rows: usize) {
    let mut alive = [0u32; PIX];
    // Live pixels per row: rows whose pixels have all stopped are skipped.
    let mut row_alive = [0usize; W];
    let mut dead = 0;
    for (p, a) in alive.iter_mut().enumerate() {
        if p % W < cols && p / W < rows {
            *a = 1;
            row_alive[p / W] += 1;
        } else {
            dead += 1;
        }
    }
    px.t = [1.0; PIX];
    px.last = [-1; PIX];
    px.out = [[0.0; PIX]; 4];
    let [o0, o1, o2, o3] = &mut px.out;
    for (j, sp) in s.iter_mut().enumerate() {
        let mut used = 0u16;
        #[allow(clippy::needless_range_loop)] // y also indexes the tile rows
        for y in sp.y0 as usize..sp.y1 as usize {
            if row_alive[y] == 0 {
                continue;
            }
            let r = y * W..y * W + W;
            let (stopped, took) = row::<M>(
                [sp.mx, sp.my - y as f32, sp.ca, sp.cb, sp.cc, sp.op],
                sp.f,
                j as i32,
                lanes(&mut px.t[r.clone()]),
                lanes(&mut px.last[r.clone()]),
                lanes(&mut alive[r.clone()]),
                [
                    lanes(&mut o0[r.clone()]),
                    lanes(&mut o1[r.clone()]),
                    lanes(&mut o2[r.clone()]),
                    lanes(&mut o3[r]),
                ],
            );
            row_alive[y] -= stopped;
            dead += stopped;
            used |= u16::from(took) << y;
        }
        sp.rows = used;
        if dead == PIX {
            break;
        }
    }
}

/// A row of a tile as a fixed-size array.
#[inline(always)]
pub fn lanes<T>(s: &mut [T]) -> &mut [T; W] {
    s.try_into().expect("a tile row")
}

/// One splat over one row; returns how many pixels stopped and whether any pixel took it.
#[inline(always)]
fn row<M: Madd>(
    g: [f32; 6],
    f: [f32; 4],
    j: i32,
    t: &mut [f32; W],
    last: &mut [i32; W],
    alive: &mut [u32; W],
    out: [&mut [f32; W]; 4],
) -> (usize, bool) {
    let [mx, dy, ca, cb, cc, op] = g;
    let [o0, o1, o2, o3] = out;
    let (ha, hc, bdy) = row_consts(ca, cb, cc, dy);
    let (mut stops, mut takes) = (0u32, 0u32);
    for x in 0..W {
        let dx = mx - XS[x];
        let power = power_at::<M>(dx, ha, hc, bdy);
        let a = (op * exp_neg::<M>(power)).min(AMAX);
        // `&` (not `&&`): no branches, so the row vectorises.
        let ok = (power <= 0.0) & (a >= AMIN) & (alive[x] != 0);
        let tt = t[x];
        let nt = tt * (1.0 - a);
        let stop = ok & (nt < TMIN);
        let take = ok & !stop;
        let w = if take { a * tt } else { 0.0 };
        o0[x] = M::madd(f[0], w, o0[x]);
        o1[x] = M::madd(f[1], w, o1[x]);
        o2[x] = M::madd(f[2], w, o2[x]);
        o3[x] = M::madd(f[3], w, o3[x]);
        t[x] = if take { nt } else { tt };
        // A mask blend, not a select: aarch64's cost model prices the select of an index as a
        // conditional store and would leave the whole row scalar (x86 vectorises either form).
        let keep_j = 0i32.wrapping_sub(take as i32);
        last[x] = (j & keep_j) | (last[x] & !keep_j);
        alive[x] = if stop { 0 } else { alive[x] };
        stops = stops.wrapping_add(stop as u32);
        takes |= take as u32;
    }
    (stops as usize, takes != 0)
}

/// The row constants of [`power_at`]: `-a / 2`, `-c dy^2 / 2` and `b dy`.
#[inline(always)]
pub fn row_consts(ca: f32, cb: f32, cc: f32, dy: f32) -> (f32, f32, f32) {
    (-0.5 * ca, -0.5 * cc * dy * dy, cb * dy)
}

/// The power `-0.5 (a dx^2 + c dy^2) - b dx dy` of the splat's Gaussian at `dx` (the row
/// loops' form, shared so the forward and backward passes agree on every alpha).
#[inline(always)]
pub fn power_at<M: Madd>(dx: f32, ha: f32, hc: f32, bdy: f32) -> f32 {
    M::madd(M::madd(ha, dx, -bdy), dx, hc)
}
