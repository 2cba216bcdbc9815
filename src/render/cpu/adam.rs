//! Adam on the flat parameter vector (f32, like shaders/adam.comp).

use crate::render::types::{AdamConfig, AdamState, Gaussians, GROUPS};

/// One Adam update: `state.step` is incremented first (bias correction uses the new count).
pub fn adam_update(
    params: &mut Gaussians,
    grads: &Gaussians,
    state: &mut AdamState,
    cfg: &AdamConfig,
) {
    state.step += 1;
    let t = state.step as f64;
    let bc1 = 1.0 - cfg.beta1.powf(t);
    let bc2 = 1.0 - cfg.beta2.powf(t);
    for g in GROUPS {
        let o = params.group_offset(g);
        let len = params.group(g).len();
        let step_size = (cfg.lr[g as usize] / bc1) as f32;
        let inv_bc2_sqrt = (1.0 / bc2.sqrt()) as f32;
        let (b1, b2, eps) = (cfg.beta1 as f32, cfg.beta2 as f32, cfg.eps as f32);
        for k in o..o + len {
            let gr = grads.data[k];
            let m = b1 * state.m.data[k] + (1.0 - b1) * gr;
            let v = b2 * state.v.data[k] + (1.0 - b2) * gr * gr;
            state.m.data[k] = m;
            state.v.data[k] = v;
            params.data[k] -= step_size * m / (v.sqrt() * inv_bc2_sqrt + eps);
        }
    }
}
