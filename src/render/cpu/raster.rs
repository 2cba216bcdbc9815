//! Tile binning, depth ordering and front-to-back blending in f64, and the reverse pass.

use super::project::{project, project_backward, PoseRt, ProjGrad, Projected};
use crate::render::types::{Camera, GaussianSet, ALPHA_MAX, ALPHA_MIN, TILE, T_MIN};

/// A forward pass in f64, with what the backward pass needs.
#[derive(Debug, Clone)]
pub struct FrameF64 {
    pub cam: Camera,
    pub pose: PoseRt,
    pub proj: Vec<Option<(Projected, [bool; 3])>>,
    /// Per tile, Gaussian indices front to back (depth, then index).
    pub tiles: Vec<Vec<u32>>,
    /// Interleaved RGB.
    pub colour: Vec<f64>,
    pub depth: Vec<f64>,
    pub alpha: Vec<f64>,
}

/// Alpha of a projected Gaussian at pixel (px, py) and the Gaussian falloff, or `None` if skipped.
#[inline]
fn alpha_at(p: &Projected, px: f64, py: f64) -> Option<(f64, f64, f64, f64, f64)> {
    let dx = p.mean2d[0] - px;
    let dy = p.mean2d[1] - py;
    let power = -0.5 * (p.conic[0] * dx * dx + p.conic[2] * dy * dy) - p.conic[1] * dx * dy;
    if power > 0.0 {
        return None;
    }
    let gauss = power.exp();
    let raw = p.opacity * gauss;
    let alpha = raw.min(ALPHA_MAX);
    if alpha < ALPHA_MIN {
        return None;
    }
    Some((alpha, gauss, raw, dx, dy))
}

pub fn forward(g: &GaussianSet<f64>, cam: &Camera, pose: &PoseRt) -> FrameF64 {
    let proj: Vec<_> = (0..g.len()).map(|i| project(g, i, cam, pose)).collect();
    let (tx, ty) = cam.tiles();
    let mut tiles: Vec<Vec<u32>> = vec![Vec::new(); (tx * ty) as usize];
    for (i, p) in proj.iter().enumerate() {
        if let Some((p, _)) = p {
            for y in p.rect[2]..p.rect[3] {
                for x in p.rect[0]..p.rect[1] {
                    tiles[(y * tx + x) as usize].push(i as u32);
                }
            }
        }
    }
    // Order by the depth as the GPU sees it (f32) then index, so both backends agree.
    for t in tiles.iter_mut() {
        t.sort_by(|&a, &b| {
            let da = proj[a as usize].as_ref().map_or(0.0, |p| p.0.depth as f32);
            let db = proj[b as usize].as_ref().map_or(0.0, |p| p.0.depth as f32);
            da.total_cmp(&db).then(a.cmp(&b))
        });
    }
    let npx = cam.pixels();
    let mut colour = vec![0.0; 3 * npx];
    let mut depth = vec![0.0; npx];
    let mut alpha = vec![0.0; npx];
    for py in 0..cam.height {
        for px in 0..cam.width {
            let list = &tiles[((py / TILE) * tx + px / TILE) as usize];
            let mut t = 1.0;
            let mut c = [0.0; 3];
            let mut d = 0.0;
            for &gi in list {
                let p = &proj[gi as usize].as_ref().expect("binned").0;
                let Some((a, ..)) = alpha_at(p, px as f64, py as f64) else {
                    continue;
                };
                let next_t = t * (1.0 - a);
                if next_t < T_MIN {
                    break;
                }
                for (cv, pc) in c.iter_mut().zip(p.colour) {
                    *cv += pc * a * t;
                }
                d += p.depth * a * t;
                t = next_t;
            }
            let pix = (py * cam.width + px) as usize;
            colour[3 * pix..3 * pix + 3].copy_from_slice(&c);
            depth[pix] = d;
            alpha[pix] = 1.0 - t;
        }
    }
    FrameF64 {
        cam: *cam,
        pose: *pose,
        proj,
        tiles,
        colour,
        depth,
        alpha,
    }
}

/// Gradients of a loss given its derivatives w.r.t. the three outputs of `frame`.
pub fn backward(
    g: &GaussianSet<f64>,
    frame: &FrameF64,
    d_colour: &[f64],
    d_depth: Option<&[f64]>,
    d_alpha: Option<&[f64]>,
) -> (GaussianSet<f64>, [f64; 6]) {
    let cam = &frame.cam;
    let (tx, _) = cam.tiles();
    let mut pgrads = vec![ProjGrad::default(); g.len()];
    let mut contrib: Vec<(u32, f64)> = Vec::new();
    for py in 0..cam.height {
        for px in 0..cam.width {
            let pix = (py * cam.width + px) as usize;
            let list = &frame.tiles[((py / TILE) * tx + px / TILE) as usize];
            // Replay the forward pass to find the contributors and their transmittance.
            contrib.clear();
            let mut t = 1.0;
            for &gi in list {
                let p = &frame.proj[gi as usize].as_ref().expect("binned").0;
                let Some((a, ..)) = alpha_at(p, px as f64, py as f64) else {
                    continue;
                };
                let next_t = t * (1.0 - a);
                if next_t < T_MIN {
                    break;
                }
                contrib.push((gi, t));
                t = next_t;
            }
            let dl = [
                d_colour[3 * pix],
                d_colour[3 * pix + 1],
                d_colour[3 * pix + 2],
                d_depth.map_or(0.0, |d| d[pix]),
                d_alpha.map_or(0.0, |d| d[pix]),
            ];
            // Suffix sums of later contributions, per channel (colour, depth, alpha(f=1)).
            let mut accum = [0.0; 5];
            let mut last_alpha = 0.0;
            let mut last_f = [0.0; 5];
            for &(gi, ti) in contrib.iter().rev() {
                let p = &frame.proj[gi as usize].as_ref().expect("binned").0;
                let (a, gauss, raw, dx, dy) =
                    alpha_at(p, px as f64, py as f64).expect("contributor");
                let f = [p.colour[0], p.colour[1], p.colour[2], p.depth, 1.0];
                let mut dl_da = 0.0;
                for ch in 0..5 {
                    accum[ch] = last_alpha * last_f[ch] + (1.0 - last_alpha) * accum[ch];
                    dl_da += (f[ch] - accum[ch]) * dl[ch];
                }
                dl_da *= ti;
                last_alpha = a;
                last_f = f;
                let pg = &mut pgrads[gi as usize];
                for (gc, d) in pg.colour.iter_mut().zip(dl) {
                    *gc += a * ti * d;
                }
                pg.depth += a * ti * dl[3];
                if raw > ALPHA_MAX {
                    continue;
                }
                let dl_dg = p.opacity * dl_da;
                pg.opacity += gauss * dl_da;
                let dl_dpower = gauss * dl_dg;
                pg.mean2d[0] += -dl_dpower * (p.conic[0] * dx + p.conic[1] * dy);
                pg.mean2d[1] += -dl_dpower * (p.conic[2] * dy + p.conic[1] * dx);
                pg.conic[0] += -0.5 * dx * dx * dl_dpower;
                pg.conic[1] += -dx * dy * dl_dpower;
                pg.conic[2] += -0.5 * dy * dy * dl_dpower;
            }
        }
    }
    let mut out = GaussianSet::<f64>::zeros(g.len(), g.sh_degree()).expect("valid degree");
    let mut pose_grad = [0.0; 6];
    for (i, pg) in pgrads.iter().enumerate() {
        if let Some((_, clamped)) = &frame.proj[i] {
            project_backward(
                g,
                i,
                cam,
                &frame.pose,
                pg,
                *clamped,
                &mut out,
                &mut pose_grad,
            );
        }
    }
    (out, pose_grad)
}
