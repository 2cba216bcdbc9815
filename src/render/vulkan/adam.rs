//! Recording of the Adam update of every parameter, and its push constants and per-step
//! bias corrections.

use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{group_widths, AdamConfig, RenderError};

impl VulkanRenderer {
    /// Push constants of the Adam kernel (its step-dependent values: [`adam_frame`]).
    pub(super) fn adam_pc(&self, cfg: &AdamConfig) -> [u32; 32] {
        let f = [
            cfg.lr[0], cfg.lr[1], cfg.lr[2], cfg.lr[3], cfg.lr[4], cfg.lr[5], cfg.beta1, cfg.beta2,
            cfg.eps,
        ];
        let mut pc = [0u32; 32];
        for (i, v) in f.iter().enumerate() {
            pc[i] = (*v as f32).to_bits();
        }
        pc[24..28].copy_from_slice(&self.size_words());
        pc
    }

    pub(super) fn record_adam(&self, b: &mut Builder, pc: &[u32; 32]) -> Result<(), RenderError> {
        let g = &self.g;
        let per: usize = group_widths(self.sh_degree).iter().sum();
        self.dispatch(
            b,
            &self.pl.adam,
            &[
                &g.params,
                &g.grads_t,
                &g.m,
                &g.v,
                &g.params_t,
                &g.m_t,
                &g.v_t,
                &self.frame,
            ],
            pc,
            [((per * g.cap) as u32).div_ceil(256), 1, 1],
        )
    }
}

/// Adam's bias corrections at `step` (1-based): 1 / (1 - beta1^t), 1 / sqrt(1 - beta2^t).
pub(super) fn adam_frame(cfg: &AdamConfig, step: u32) -> [f32; 2] {
    let t = f64::from(step);
    let bc1 = 1.0 - cfg.beta1.powf(t);
    let bc2 = 1.0 - cfg.beta2.powf(t);
    [(1.0 / bc1) as f32, (1.0 / bc2.sqrt()) as f32]
}
