//! Adam on the flat parameter vector in f32, the reference's formula (`cpu::adam`), with each
//! group split into chunks over threads.

use super::{par_items, Pool};
use crate::render::types::{AdamConfig, AdamState, Gaussians, GROUPS};

/// One Adam update (`state.step` is incremented first).
pub fn adam_update(
    params: &mut Gaussians,
    grads: &Gaussians,
    state: &mut AdamState,
    cfg: &AdamConfig,
    pool: &Pool,
) {
    let threads = pool.threads();
    state.step += 1;
    let t = state.step as f64;
    let bc1 = 1.0 - cfg.beta1.powf(t);
    let bc2 = 1.0 - cfg.beta2.powf(t);
    let inv_bc2_sqrt = (1.0 / bc2.sqrt()) as f32;
    let (b1, b2, eps) = (cfg.beta1 as f32, cfg.beta2 as f32, cfg.eps as f32);
    let total = params.data.len();
    let chunk = total.div_ceil(threads.max(1)).max(4096);
    // Group boundaries in the flat vector, to give each element its learning rate.
    let bounds: Vec<(usize, f32)> = GROUPS
        .iter()
        .map(|&g| {
            (
                params.group_offset(g) + params.group(g).len(),
                (cfg.lr[g as usize] / bc1) as f32,
            )
        })
        .collect();
    let parts = params
        .data
        .chunks_mut(chunk)
        .zip(state.m.data.chunks_mut(chunk))
        .zip(state.v.data.chunks_mut(chunk))
        .zip(grads.data.chunks(chunk))
        .enumerate();
    let mut idle = vec![(); threads];
    let bounds = &bounds;
    par_items(pool, &mut idle, parts, |_, (ci, (((p, m), v), g))| {
        let mut start = ci * chunk;
        let end = start + p.len();
        for &(gend, step_size) in bounds {
            if gend <= start {
                continue;
            }
            let stop = gend.min(end);
            let r = start - ci * chunk..stop - ci * chunk;
            update(
                &mut p[r.clone()],
                &mut m[r.clone()],
                &mut v[r.clone()],
                &g[r],
                [b1, b2, eps, step_size, inv_bc2_sqrt],
            );
            start = stop;
            if start >= end {
                break;
            }
        }
    });
}

wide! {
/// The update of one run of parameters sharing a learning rate (`k`: beta1, beta2, eps, step
/// size, 1 / sqrt(bias correction 2)).
fn update(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 5]) {
    let [b1, b2, eps, step_size, inv_bc2_sqrt] = k;
    for (((p, m), v), &gr) in p.iter_mut().zip(m).zip(v).zip(g) {
        let mm = b1 * *m + (1.0 - b1) * gr;
        let vv = b2 * *v + (1.0 - b2) * gr * gr;
        *m = mm;
        *v = vv;
        *p -= step_size * mm / (vv.sqrt() * inv_bc2_sqrt + eps);
    }
}
}
