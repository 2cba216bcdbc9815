//! Recording of the whole forward pass and its last stage, the tile blend.

use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{Camera, RenderError};

impl VulkanRenderer {
    /// Records forward: project, depth sort, emit keys, tile sort and ranges, blend.
    pub(super) fn record_forward(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        self.record_project(b, pc)?;
        self.record_depth_sort(b, pc)?;
        self.record_emit_keys(b, pc)?;
        self.record_tile_sort(b, cam, pc)?;
        self.record_blend(b, cam, pc)
    }

    /// Blends each tile's sorted Gaussians front to back into the images.
    fn record_blend(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        let img = self.img();
        let (tx, ty) = cam.tiles();
        let mut p = *pc;
        p[30] = 1; // "one" for the raster kernels' skip loops
        self.dispatch(
            b,
            &self.pl.fwd,
            &[
                &self.g.proj4,
                &self.sorted_vals(cam),
                &img.ranges,
                &img.colour,
                &img.depth,
                &img.alpha,
                &img.final_t,
                &img.n_contrib,
            ],
            &p,
            [tx, ty, 1],
        )
    }
}
