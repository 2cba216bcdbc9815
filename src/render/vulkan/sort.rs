//! Recording of the sorts: Gaussians by depth, then (tile, Gaussian) keys by tile, each an LSD
//! radix sort of 4-bit digits; then each tile's range of the sorted keys.

use std::sync::Arc;

use vulkano::buffer::view::BufferView;

use super::buffers::BLOCK_KEYS;
use super::context::vk;
use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{Camera, RenderError};

impl VulkanRenderer {
    /// Depth sort of the Gaussians (8 passes over 32-bit keys: the result is back in set 0).
    pub(super) fn record_depth_sort(
        &self,
        b: &mut Builder,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        let depth_passes: Vec<u32> = (0..8).map(|i| 4 * i).collect();
        self.record_radix(b, pc, &depth_passes, 0, true)
    }

    /// Tile counts in depth order, scanned into each Gaussian's first key slot; then the keys
    /// (tile, Gaussian) in depth order into set 1.
    pub(super) fn record_emit_keys(
        &self,
        b: &mut Builder,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        let (g, k) = (&self.g, &self.k);
        let mut p = *pc;
        p[28] = self.n as u32;
        p[29] = 0;
        p[31] = 1;
        let scan: [&dyn super::submit::Bind; 4] =
            [&g.touched, &g.offsets, &self.counters, &k.keys[0][1]];
        self.dispatch(b, &self.pl.scan, &scan, &p, [1, 1, 1])?;
        self.dispatch(
            b,
            &self.pl.emit,
            &[
                &g.proj4,
                &g.offsets,
                &k.vals[0],
                &k.keys[1][0],
                &k.keys[1][1],
            ],
            pc,
            [(self.n as u32).div_ceil(256), 1, 1],
        )
    }

    /// Stable sort of the keys by tile (from set 1), then each tile's range of them.
    pub(super) fn record_tile_sort(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        let img = self.img();
        let k = &self.k;
        let tile_passes: Vec<u32> = (0..tile_sort_passes(cam)).map(|i| 4 * i).collect();
        self.record_radix(b, pc, &tile_passes, 1, false)?;
        let sorted_keys = &k.keyv[(1 + tile_passes.len()) % 2];
        b.fill_buffer(img.ranges.clone(), 0).map_err(vk("fill"))?;
        self.dispatch(
            b,
            &self.pl.ranges,
            &[sorted_keys, &self.counters, &img.ranges],
            pc,
            [(k.cap as u32).div_ceil(256), 1, 1],
        )
    }

    /// LSD radix passes (4-bit digits at `shifts`) over the (key, value) pairs of key set
    /// `first`, ping-ponging between the sets: the result is in set `(first + passes) % 2`. The
    /// count is the Gaussian count (`gaussians`) or the emitted key count (`counters[0]`).
    fn record_radix(
        &self,
        b: &mut Builder,
        pc: &[u32; 32],
        shifts: &[u32],
        first: usize,
        gaussians: bool,
    ) -> Result<(), RenderError> {
        let k = &self.k;
        let blocks = if gaussians {
            self.n.div_ceil(BLOCK_KEYS).max(1) as u32
        } else {
            (k.cap / BLOCK_KEYS) as u32
        };
        for (pi, &shift) in shifts.iter().enumerate() {
            let s = (first + pi) % 2;
            let dst = &k.keys[(first + pi + 1) % 2];
            let mut p = *pc;
            p[28] = shift;
            p[29] = blocks;
            p[31] = u32::from(gaussians);
            let hist: [&dyn super::submit::Bind; 3] = [&k.keyv[s], &self.counters, &k.hist];
            self.dispatch(b, &self.pl.hist, &hist, &p, [blocks, 1, 1])?;
            let mut ps = *pc;
            ps[28] = 16 * blocks;
            ps[29] = 1;
            let scan: [&dyn super::submit::Bind; 4] =
                [&k.hist, &k.hist_scan, &self.counters, &k.hist];
            self.dispatch(b, &self.pl.scan, &scan, &ps, [1, 1, 1])?;
            self.dispatch(
                b,
                &self.pl.scatter,
                &[
                    &k.keyv[s],
                    &k.vals[s],
                    &dst[0],
                    &dst[1],
                    &self.counters,
                    &k.hist_scan,
                ],
                &p,
                [blocks, 1, 1],
            )?;
        }
        Ok(())
    }

    /// The sorted Gaussian ids of the latest forward, as texels.
    pub(super) fn sorted_vals(&self, cam: &Camera) -> Arc<BufferView> {
        self.k.vals[(1 + tile_sort_passes(cam) as usize) % 2].clone()
    }
}

/// Radix passes (4 bits each) over the tile ids of a camera.
fn tile_sort_passes(cam: &Camera) -> u32 {
    let (tx, ty) = cam.tiles();
    let tile_bits = (32 - (tx * ty).saturating_sub(1).leading_zeros()).max(1);
    tile_bits.div_ceil(4)
}
