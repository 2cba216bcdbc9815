//! Depth order and tile binning: visible splats sorted once by (f32 depth, index), then a
//! counting sort by tile that keeps that order, so every tile list is front to back (the
//! reference's order) without a per-tile sort. Each list entry also gets a gradient slot, the
//! slots numbered splat by splat, so a splat's per-tile gradient parts lie side by side and are
//! summed in a fixed order whichever thread computed them.

use super::par_items;
use super::project::Splat;

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
    /// lists on `threads` threads (bands of tile rows; the result does not depend on it).
    pub fn build(&mut self, proj: &[Option<Splat>], tiles: (u32, u32), threads: usize) {
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
        self.slot_start.clear();
        self.slot_start.reserve(self.keys.len() + 1);
        let mut k = 0u32;
        for (r, key) in self.keys.iter().enumerate() {
            let i = (key & 0xffff_ffff) as usize;
            self.rank[i] = r as u32;
            let s = proj[i].expect("visible");
            self.slot_start.push(k);
            let [x0, x1, y0, y1] = s.rect;
            k += (x1 - x0) * (y1 - y0);
            self.order.push(s);
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
        let mut idle = vec![(); threads.max(1)];
        // 1. Entries per tile, counted by the band that holds the tile.
        self.tile_start.clear();
        self.tile_start.resize(ntiles + 1, 0);
        let order = &self.order;
        par_items(
            &mut idle,
            self.tile_start[1..]
                .chunks_mut(band_rows * tx as usize)
                .enumerate(),
            |_, (b, counts)| {
                let (r0, r1) = band_of(b);
                for s in order {
                    let [x0, x1, y0, y1] = s.rect;
                    for y in y0.max(r0)..y1.min(r1) {
                        let row = ((y - r0) * tx) as usize;
                        for c in &mut counts[row + x0 as usize..row + x1 as usize] {
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
        let (tile_start, slot_start) = (&self.tile_start, &self.slot_start);
        par_items(&mut idle, parts.into_iter(), |_, (b, list, slot_of)| {
            let (r0, r1) = band_of(b);
            let t0 = (r0 * tx) as usize;
            let base = tile_start[t0];
            let mut cursor: Vec<u32> = tile_start[t0..(r1 * tx) as usize]
                .iter()
                .map(|&c| c - base)
                .collect();
            for (r, s) in order.iter().enumerate() {
                let [x0, x1, y0, y1] = s.rect;
                for y in y0.max(r0)..y1.min(r1) {
                    // Slots are numbered row by row over the splat's rectangle.
                    let first = slot_start[r] + (y - y0) * (x1 - x0);
                    let row = ((y - r0) * tx) as usize;
                    for x in x0..x1 {
                        let c = &mut cursor[row + x as usize];
                        list[*c as usize] = r as u32;
                        slot_of[*c as usize] = first + (x - x0);
                        *c += 1;
                    }
                }
            }
        });
    }
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
    use rand::{Rng, SeedableRng};

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
