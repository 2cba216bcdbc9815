//! Depth order and tile binning: visible splats sorted once by (f32 depth, index), then a
//! counting sort by tile that keeps that order, so every tile list is front to back (the
//! reference's order) without a per-tile sort. Each list entry also gets a gradient slot, the
//! slots numbered splat by splat, so a splat's per-tile gradient parts lie side by side and are
//! summed in a fixed order whichever thread computed them.

use super::project::Splat;
use super::{par_items, Pool};
use crate::render::types::TILE;

/// Visible splats in depth order and the per-tile lists of their ranks (buffers are reused).
#[derive(Debug, Default)]
pub struct Bins {
    /// Visible splats, front to back (rank = position).
    pub order: Vec<Splat>,
    /// Per Gaussian index: its rank, or `u32::MAX` when culled.
    pub rank: Vec<u32>,
    /// `tile_start[t]..tile_start[t + 1]` indexes `list` for tile `t`.
    pub tile_start: Vec<u32>,
    /// Ranks per tile, ascending (front to back).
    pub list: Vec<u32>,
    /// `slot_start[r]..slot_start[r + 1]`: the gradient slots of the splat of rank `r`.
    pub slot_start: Vec<u32>,
    /// Per `list` position: its gradient slot.
    pub slot_of: Vec<u32>,
    /// `span_start[r] + (y - y0)`: the listed tile columns and the first gradient slot of the
    /// splat of rank `r` in tile row `y` of its rectangle.
    span_start: Vec<u32>,
    spans: Vec<Span>,
    keys: Vec<u64>,
    tmp: Vec<u64>,
}

impl Bins {
    pub fn tile_list(&self, tile: usize) -> &[u32] {
        &self.list[self.tile_range(tile)]
    }

    /// Positions of tile `tile`'s entries in `list`.
    pub fn tile_range(&self, tile: usize) -> std::ops::Range<usize> {
        self.tile_start[tile] as usize..self.tile_start[tile + 1] as usize
    }

    /// Gradient slots of the splat of rank `r`.
    pub fn slots_of(&self, r: usize) -> std::ops::Range<usize> {
        self.slot_start[r] as usize..self.slot_start[r + 1] as usize
    }

    /// Rebuilds the order and the tile lists from the projections of all Gaussians, the tile
    /// lists on the pool's threads (bands of tile rows; the result does not depend on their
    /// number).
    pub fn build(&mut self, proj: &[Option<Splat>], tiles: (u32, u32), pool: &Pool) {
        let threads = pool.threads();
        let (tx, ty) = tiles;
        let ntiles = (tx * ty) as usize;
        self.keys.clear();
        for (i, p) in proj.iter().enumerate() {
            if let Some(s) = p {
                // Depths are positive, so the f32 bit pattern orders like the value.
                self.keys
                    .push(((s.depth.to_bits() as u64) << 32) | i as u64);
            }
        }
        sort_by_depth(&mut self.keys, &mut self.tmp);
        self.order.clear();
        self.rank.clear();
        self.rank.resize(proj.len(), u32::MAX);
        self.span_start.clear();
        self.span_start.reserve(self.keys.len() + 1);
        let mut rows = 0u32;
        for (r, key) in self.keys.iter().enumerate() {
            let i = (key & 0xffff_ffff) as usize;
            self.rank[i] = r as u32;
            let s = proj[i].expect("visible");
            self.span_start.push(rows);
            rows += s.rect[3] - s.rect[2];
            self.order.push(s);
        }
        self.span_start.push(rows);
        // Each splat's listed columns per tile row (independent, so on all threads).
        self.spans.clear();
        self.spans.resize(rows as usize, Span::default());
        let mut idle = vec![(); threads.max(1)];
        {
            let (order, span_start) = (&self.order, &self.span_start);
            let mut jobs = Vec::new();
            let mut rest = &mut self.spans[..];
            for r0 in (0..order.len()).step_by(SPAN_CHUNK) {
                let r1 = (r0 + SPAN_CHUNK).min(order.len());
                let len = (span_start[r1] - span_start[r0]) as usize;
                let (mine, tail) = std::mem::take(&mut rest).split_at_mut(len);
                rest = tail;
                jobs.push((r0..r1, mine));
            }
            par_items(pool, &mut idle, jobs.into_iter(), |_, (ranks, mut out)| {
                for s in &order[ranks] {
                    let [_, _, y0, y1] = s.rect;
                    let (mine, tail) = std::mem::take(&mut out).split_at_mut((y1 - y0) as usize);
                    out = tail;
                    for (y, sp) in (y0..y1).zip(mine) {
                        let [x0, x1] = tile_span(s, y);
                        *sp = Span { x0, x1, slot: 0 };
                    }
                }
            });
        }
        // Gradient slots numbered splat by splat, row by row over the listed tiles.
        self.slot_start.clear();
        self.slot_start.reserve(self.keys.len() + 1);
        let mut k = 0u32;
        for r in 0..self.order.len() {
            self.slot_start.push(k);
            let rows = self.span_start[r] as usize..self.span_start[r + 1] as usize;
            for sp in &mut self.spans[rows] {
                sp.slot = k;
                k += sp.x1 - sp.x0;
            }
        }
        self.slot_start.push(k);
        let total = k as usize;
        // Bands of whole tile rows: each band's tiles, and so its part of `list`, are contiguous.
        let nb = (2 * threads.max(1)).min(ty.max(1) as usize);
        let band_rows = (ty as usize).div_ceil(nb).max(1);
        let band_of = |b: usize| {
            let r0 = (b * band_rows).min(ty as usize) as u32;
            (r0, ((b + 1) * band_rows).min(ty as usize) as u32)
        };
        // 1. Entries per tile, counted by the band that holds the tile.
        self.tile_start.clear();
        self.tile_start.resize(ntiles + 1, 0);
        let (order, spans, span_start) = (&self.order, &self.spans, &self.span_start);
        par_items(
            pool,
            &mut idle,
            self.tile_start[1..]
                .chunks_mut(band_rows * tx as usize)
                .enumerate(),
            |_, (b, counts)| {
                let (r0, r1) = band_of(b);
                for (s, &first) in order.iter().zip(span_start) {
                    let [_, _, y0, y1] = s.rect;
                    for y in y0.max(r0)..y1.min(r1) {
                        let sp = spans[(first + y - y0) as usize];
                        let row = ((y - r0) * tx) as usize;
                        for c in &mut counts[row + sp.x0 as usize..row + sp.x1 as usize] {
                            *c += 1;
                        }
                    }
                }
            },
        );
        for t in 0..ntiles {
            self.tile_start[t + 1] += self.tile_start[t];
        }
        // 2. Each band fills its part of the lists in rank order (front to back per tile).
        self.list.clear();
        self.list.resize(total, 0);
        self.slot_of.clear();
        self.slot_of.resize(total, 0);
        let mut parts = Vec::with_capacity(nb);
        let (mut list, mut slot_of) = (&mut self.list[..], &mut self.slot_of[..]);
        for b in 0..nb {
            let (r0, r1) = band_of(b);
            let (t0, t1) = ((r0 * tx) as usize, (r1 * tx) as usize);
            let len = (self.tile_start[t1] - self.tile_start[t0]) as usize;
            let (l, lr) = std::mem::take(&mut list).split_at_mut(len);
            let (o, or) = std::mem::take(&mut slot_of).split_at_mut(len);
            (list, slot_of) = (lr, or);
            parts.push((b, l, o));
        }
        let tile_start = &self.tile_start;
        par_items(
            pool,
            &mut idle,
            parts.into_iter(),
            |_, (b, list, slot_of)| {
                let (r0, r1) = band_of(b);
                let t0 = (r0 * tx) as usize;
                let base = tile_start[t0];
                let mut cursor: Vec<u32> = tile_start[t0..(r1 * tx) as usize]
                    .iter()
                    .map(|&c| c - base)
                    .collect();
                for (r, (s, &first)) in order.iter().zip(span_start).enumerate() {
                    let [_, _, y0, y1] = s.rect;
                    for y in y0.max(r0)..y1.min(r1) {
                        // Slots are numbered row by row over the splat's listed tiles.
                        let sp = spans[(first + y - y0) as usize];
                        let row = ((y - r0) * tx) as usize;
                        for x in sp.x0..sp.x1 {
                            let c = &mut cursor[row + x as usize];
                            list[*c as usize] = r as u32;
                            slot_of[*c as usize] = sp.slot + (x - sp.x0);
                            *c += 1;
                        }
                    }
                }
            },
        );
    }
}

/// Splats per job when computing their tile spans.
const SPAN_CHUNK: usize = 1024;

/// The tile columns `[x0, x1)` of a splat's tile row and its first gradient slot there.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    x0: u32,
    x1: u32,
    slot: u32,
}

/// The columns of the splat's rectangle, in tile row `ty`, whose tiles its alpha >= 1/255
/// ellipse touches. A tilted ellipse misses the corners of its bounding box; listing it there
/// would only cost gathering and blending work for pixels it never reaches.
///
/// Over the tile row's pixel band the ellipse's left edge is convex and its right edge concave
/// in `y`, so each is extreme at the ellipse's own leftmost (rightmost) point clamped into the
/// band.
pub fn tile_span(s: &Splat, ty: u32) -> [u32; 2] {
    let [x0, x1, _, _] = s.rect;
    if x1 - x0 <= 1 {
        return [x0, x1];
    }
    let e = s.rows;
    let t = TILE as f32;
    let [mx, my] = s.mean.map(|v| v as f32);
    // Offsets dy = my - py over the band py in [t ty, t (ty + 1)].
    let (dy_lo, dy_hi) = (my - t * (ty + 1) as f32, my - t * ty as f32);
    let edge = |dy: f32, side: f32| {
        // max/min rather than clamp: no panic on a NaN bound.
        #[allow(clippy::manual_clamp)]
        let dy = dy.max(dy_lo).min(dy_hi);
        let half = (e.inv_a * (e.level - e.curv * dy * dy)).max(0.0).sqrt();
        mx + e.slope * dy + side * half
    };
    let left = edge(e.dy_left, -1.0) / t;
    let right = edge(-e.dy_left, 1.0) / t;
    // A margin of a thousandth of a tile for the f32 arithmetic here; NaN lists the whole row.
    let lo = (left - 1e-3).floor().max(x0 as f32).min(x1 as f32);
    let hi = ((right + 1e-3).floor() + 1.0).min(x1 as f32).max(lo);
    if lo.is_nan() || hi.is_nan() {
        return [x0, x1];
    }
    [lo as u32, hi as u32]
}

/// Sorts keys `(depth bits << 32) | index` (pushed in index order) by depth with a stable
/// least-significant-digit radix sort over the 32 depth bits, so equal depths stay in index
/// order: the same order as sorting the whole keys. Digits every key shares are skipped.
fn sort_by_depth(keys: &mut Vec<u64>, tmp: &mut Vec<u64>) {
    const BITS: u32 = 11;
    const MASK: u64 = (1 << BITS) - 1;
    tmp.clear();
    tmp.resize(keys.len(), 0);
    let mut count = vec![0u32; 1 << BITS];
    for shift in [32, 32 + BITS, 32 + 2 * BITS] {
        count.fill(0);
        for k in keys.iter() {
            count[((k >> shift) & MASK) as usize] += 1;
        }
        if count.iter().any(|&c| c as usize == keys.len()) {
            continue;
        }
        let mut sum = 0;
        for c in count.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for &k in keys.iter() {
            let c = &mut count[((k >> shift) & MASK) as usize];
            tmp[*c as usize] = k;
            *c += 1;
        }
        std::mem::swap(keys, tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::cpu::project::Projected;
    use crate::render::fast::forward::{power_at, row_consts, AMIN};
    use crate::render::fast::project::finish;
    use crate::render::fast::tile::{exp_neg, Fused, Plain};
    use rand::{Rng, SeedableRng};

    /// Random splats on a 256x224 screen (16x14 tiles): elongated, tilted, faint or opaque.
    fn random_splats(n: usize, seed: u64) -> Vec<Splat> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        while out.len() < n {
            let (s1, s2): (f64, f64) = (rng.gen_range(0.3..40.0), rng.gen_range(0.3..6.0));
            let th: f64 = rng.gen_range(0.0..std::f64::consts::PI);
            let (c, s) = (th.cos(), th.sin());
            // Covariance R diag(s1^2, s2^2) R^T, inverted into the conic.
            let (v1, v2) = (s1 * s1, s2 * s2);
            let (sxx, sxy, syy) = (
                c * c * v1 + s * s * v2,
                c * s * (v1 - v2),
                s * s * v1 + c * c * v2,
            );
            let det = sxx * syy - sxy * sxy;
            let pr = Projected {
                mean2d: [rng.gen_range(-20.0..276.0), rng.gen_range(-20.0..244.0)],
                conic: [syy / det, -sxy / det, sxx / det],
                opacity: rng.gen_range(0.005..1.0),
                colour: [0.5; 3],
                depth: 1.0,
                rect: [0, 16, 0, 14],
            };
            if let Some(sp) = finish(&pr, [false; 3], out.len()) {
                out.push(sp);
            }
        }
        out
    }

    /// Whether any pixel of tile (tx, ty) gets alpha >= 1/255 from the splat, by the
    /// rasteriser's own f32 arithmetic (both multiply-add variants).
    fn tile_reached(s: &Splat, tx: u32, ty: u32) -> bool {
        fn alpha<M: crate::render::fast::tile::Madd>(s: &Splat, mx: f32, dy: f32, x: f32) -> bool {
            let [ca, cb, cc] = s.conic;
            let (ha, hc, bdy) = row_consts(ca, cb, cc, dy);
            let power = power_at::<M>(mx - x, ha, hc, bdy);
            power <= 0.0 && s.opacity * exp_neg::<M>(power) >= AMIN
        }
        let w = TILE as f64;
        let mx = (s.mean[0] - w * tx as f64) as f32;
        let my = (s.mean[1] - w * ty as f64) as f32;
        (0..TILE).any(|y| {
            (0..TILE).any(|x| {
                let dy = my - y as f32;
                alpha::<Plain>(s, mx, dy, x as f32) || alpha::<Fused>(s, mx, dy, x as f32)
            })
        })
    }

    #[test]
    fn tile_spans_keep_every_reached_tile_and_drop_most_missed_ones() {
        let (mut rect_tiles, mut listed, mut reached) = (0usize, 0usize, 0usize);
        for s in random_splats(400, 11) {
            let [x0, x1, y0, y1] = s.rect;
            for ty in y0..y1 {
                let [a, b] = tile_span(&s, ty);
                assert!(
                    x0 <= a && a <= b && b <= x1,
                    "span {a}..{b} outside {x0}..{x1}"
                );
                rect_tiles += (x1 - x0) as usize;
                listed += (b - a) as usize;
                for tx in x0..x1 {
                    if tile_reached(&s, tx, ty) {
                        reached += 1;
                        assert!(
                            a <= tx && tx < b,
                            "tile ({tx}, {ty}) reached, span {a}..{b}"
                        );
                    }
                }
            }
        }
        // Elongated tilted splats: the rectangles hold far more tiles than the ellipses touch,
        // and the spans list few beyond those.
        assert!(reached * 2 < rect_tiles, "{reached} of {rect_tiles}");
        assert!(
            listed * 10 < reached * 13,
            "listed {listed}, reached {reached}"
        );
    }

    #[test]
    fn radix_sort_matches_a_plain_sort() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for n in [0, 1, 7, 5000] {
            // Depths over a wide range, with ties (ties must stay in index order).
            let mut keys: Vec<u64> = (0..n)
                .map(|i| {
                    let d: f32 = if rng.gen_bool(0.2) {
                        1.5
                    } else {
                        rng.gen_range(0.05f32..400.0)
                    };
                    ((d.to_bits() as u64) << 32) | i as u64
                })
                .collect();
            let mut want = keys.clone();
            want.sort_unstable();
            sort_by_depth(&mut keys, &mut Vec::new());
            assert_eq!(keys, want);
        }
    }
}
