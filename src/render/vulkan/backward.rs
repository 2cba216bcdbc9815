//! Recording of the backward pass: the tile blend in reverse into 2D gradients, then the
//! projection's adjoint into parameter and pose gradients.

use super::context::vk;
use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{Camera, RenderError};

impl VulkanRenderer {
    /// Records backward from the gradient images in `dl_*` (flags: bit0 depth, bit1 alpha).
    pub(super) fn record_backward(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
        flags: u32,
    ) -> Result<(), RenderError> {
        let img = self.img();
        let g = &self.g;
        b.fill_buffer(g.g2d.clone().reinterpret::<[u32]>(), 0)
            .map_err(vk("fill"))?;
        b.fill_buffer(self.pose_grad.clone().reinterpret::<[u32]>(), 0)
            .map_err(vk("fill"))?;
        let (tx, ty) = cam.tiles();
        let mut p = *pc;
        p[30] = 1; // "one" for the skip loops
        p[31] = flags;
        self.dispatch(
            b,
            &self.pl.bwd,
            &[
                &g.proj4,
                &self.sorted_vals(cam),
                &img.ranges,
                &img.final_t,
                &img.n_contrib,
                &img.dl_c,
                &img.dl_d,
                &img.dl_a,
                &g.g2d,
            ],
            &p,
            [tx, ty, 1],
        )?;
        self.dispatch(
            b,
            &self.pl.pbwd,
            &[
                &g.params_t,
                &g.proj,
                &g.g2d,
                &g.grads,
                &self.pose_grad,
                &self.frame,
            ],
            pc,
            [(self.n as u32).div_ceil(256), 1, 1],
        )
    }
}
