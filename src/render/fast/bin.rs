//! Depth order and tile binning: visible splats sorted once by (f32 depth, index), then a
//! counting sort by tile that keeps that order, so every tile list is front to back (the
//! reference's order) without a per-tile sort. Each list entry also gets a gradient slot, the
//! slots numbered splat by splat, so a splat's per-tile gradient parts lie side by side and are
//! summed in a fixed order whichever thread computed them.

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
    cursor: Vec<u32>,
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

    /// Rebuilds the order and the tile lists from the projections of all Gaussians.
    pub fn build(&mut self, proj: &[Option<Splat>], tiles: (u32, u32)) {
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
        self.keys.sort_unstable();
        self.order.clear();
        self.rank.clear();
        self.rank.resize(proj.len(), u32::MAX);
        for (r, k) in self.keys.iter().enumerate() {
            let i = (k & 0xffff_ffff) as usize;
            self.rank[i] = r as u32;
            self.order.push(proj[i].expect("visible"));
        }
        self.tile_start.clear();
        self.tile_start.resize(ntiles + 1, 0);
        for s in &self.order {
            let [x0, x1, y0, y1] = s.rect;
            for y in y0..y1 {
                for x in x0..x1 {
                    self.tile_start[(y * tx + x) as usize + 1] += 1;
                }
            }
        }
        for t in 0..ntiles {
            self.tile_start[t + 1] += self.tile_start[t];
        }
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.tile_start[..ntiles]);
        let total = self.tile_start[ntiles] as usize;
        self.list.clear();
        self.list.resize(total, 0);
        self.slot_of.clear();
        self.slot_of.resize(total, 0);
        self.slot_start.clear();
        self.slot_start.reserve(self.order.len() + 1);
        let mut k = 0u32;
        for (r, s) in self.order.iter().enumerate() {
            self.slot_start.push(k);
            let [x0, x1, y0, y1] = s.rect;
            for y in y0..y1 {
                for x in x0..x1 {
                    let c = &mut self.cursor[(y * tx + x) as usize];
                    self.list[*c as usize] = r as u32;
                    self.slot_of[*c as usize] = k;
                    k += 1;
                    *c += 1;
                }
            }
        }
        self.slot_start.push(k);
    }
}
