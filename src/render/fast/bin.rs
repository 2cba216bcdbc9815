//! Depth order and tile binning: visible splats sorted once by (f32 depth, index), then a
//! counting sort by tile that keeps that order, so every tile list is front to back (the
//! reference's order) without a per-tile sort. Each splat also gets the list positions of its
//! entries (its gradient slots), so its per-tile gradient parts can be summed in a fixed order
//! whichever thread computed them.

use super::project::Splat;
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
    /// `slot_start[r]..slot_start[r + 1]` indexes `slots` for the splat of rank `r`.
    pub slot_start: Vec<u32>,
    /// Positions in `list` of each splat's entries, splat by splat, in tile order.
    pub slots: Vec<u32>,
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

    /// List positions of the entries of the splat of rank `r`.
    pub fn slots_of(&self, r: usize) -> &[u32] {
        &self.slots[self.slot_start[r] as usize..self.slot_start[r + 1] as usize]
    }

    /// Tiles `[x0, x1) x [y0, y1)` a splat is listed in: the reference's rectangle cut down to
    /// the tiles its alpha >= 1/255 box touches (the others could never use it).
    fn tiles_of(s: &Splat) -> [u32; 4] {
        let t = TILE as f64;
        let cut = |lo: u32, hi: u32, c: f64, e: f32| {
            let a = ((c - e as f64) / t).floor().max(0.0);
            let b = ((c + e as f64) / t).floor() + 1.0;
            let a = (a.min(u32::MAX as f64) as u32).max(lo);
            let b = (b.max(0.0).min(u32::MAX as f64) as u32).min(hi);
            (a, b.max(a))
        };
        let (x0, x1) = cut(s.rect[0], s.rect[1], s.mean[0], s.extent[0]);
        let (y0, y1) = cut(s.rect[2], s.rect[3], s.mean[1], s.extent[1]);
        [x0, x1, y0, y1]
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
            let [x0, x1, y0, y1] = Self::tiles_of(s);
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
        self.slots.clear();
        self.slots.reserve(total);
        self.slot_start.clear();
        self.slot_start.reserve(self.order.len() + 1);
        for (r, s) in self.order.iter().enumerate() {
            self.slot_start.push(self.slots.len() as u32);
            let [x0, x1, y0, y1] = Self::tiles_of(s);
            for y in y0..y1 {
                for x in x0..x1 {
                    let c = &mut self.cursor[(y * tx + x) as usize];
                    self.list[*c as usize] = r as u32;
                    self.slots.push(*c);
                    *c += 1;
                }
            }
        }
        self.slot_start.push(self.slots.len() as u32);
    }
}
