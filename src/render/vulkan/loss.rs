//! Recording of the loss: L1 + D-SSIM of the colour image against the target, and its
//! gradient into `dl_c`.

use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{Camera, RenderError};

impl VulkanRenderer {
    /// SSIM window sums (separable: rows, then columns with the loss and its partials), then
    /// their adjoint the same way.
    pub(super) fn record_loss(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
        lambda: f32,
    ) -> Result<(), RenderError> {
        let img = self.img();
        let mut p = *pc;
        p[18] = lambda.to_bits();
        let groups = [(cam.pixels() as u32).div_ceil(256), 1, 1];
        let (colour, target) = (&img.colour_t, &img.target_t);
        self.dispatch(b, &self.pl.ssim_h, &[colour, target, &img.hsum], &p, groups)?;
        self.dispatch(
            b,
            &self.pl.loss_fwd,
            &[
                colour,
                target,
                &img.hsum_t,
                &img.dpart,
                &img.lmap,
                &img.dl_c,
            ],
            &p,
            groups,
        )?;
        self.dispatch(b, &self.pl.ssim_bh, &[&img.dpart_t, &img.hsum], &p, groups)?;
        self.dispatch(
            b,
            &self.pl.loss_bwd,
            &[colour, target, &img.hsum_t, &img.dl_c],
            &p,
            groups,
        )
    }
}
