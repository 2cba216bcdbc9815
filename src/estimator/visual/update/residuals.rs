//! Residuals and Jacobian rows of the photometric update: from the CPU forward-mode pose
//! derivatives (rows, normal equations) or from a renderer's forward and backward pass.

use nalgebra::Isometry3;

use super::super::chain::{camera_t_world, pose_chain};
use super::super::image::Grey;
use super::PhotometricUpdate;
use crate::estimator::ieskf::Linearization;
use crate::estimator::state::{ErrMat, ErrVec, State, POS, ROT, TAU};
use crate::render::{pose_jacobian, PixelJacobian, PoseJacobian};
use crate::render::{GaussianSet, RenderError, Renderer};

/// Grey value of the map's composite `C + (1 - alpha) b` over background grey `b` (what the
/// mapper renders and trains against the exposure-normalised images, so tau compares like with
/// like; any other model, e.g. `C / alpha`, differs from the trained one where alpha < 1 and
/// biases tau, which the map then absorbs and drifts with), and its pose derivative.
fn grey_render(pj: &PixelJacobian, background: f64) -> (f64, [f64; 6]) {
    let c = (pj.colour[0] + pj.colour[1] + pj.colour[2]) / 3.0;
    let d: [f64; 6] = std::array::from_fn(|j| {
        let dc = (pj.d_colour[0][j] + pj.d_colour[1][j] + pj.d_colour[2][j]) / 3.0;
        dc - background * pj.d_alpha[j]
    });
    (c + (1.0 - pj.alpha) * background, d)
}

/// One covered pixel's residual `tau * I_cam - I_render` and Jacobian row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub px: (u32, u32),
    pub r: f64,
    pub h: ErrVec,
    pub cam: f64,
    pub ren: f64,
}

/// The error-state Jacobian row of a residual: the render's pose derivative `d_ren` (render
/// perturbation order) through the chain `m`, negated; `d r / d tau = I_cam`.
fn jacobian_row(d_ren: &[f64; 6], m: &nalgebra::SMatrix<f64, 6, 6>, cam: f64) -> ErrVec {
    let mut h = ErrVec::zeros();
    for c in 0..6 {
        let mut s = 0.0;
        for (row, dr) in d_ren.iter().enumerate() {
            s += dr * m[(row, c)];
        }
        h[if c < 3 { ROT + c } else { POS + c - 3 }] = -s;
    }
    h[TAU] = cam;
    h
}

/// Median absolute residual after refitting tau alone (`tau = sum I R / sum I^2`): large when
/// the image does not show the map, whatever the exposure change.
pub(super) fn median_abs_after_tau_fit(rows: &[Row]) -> f64 {
    let (num, den) = rows.iter().fold((0.0, 0.0), |(n, d), r| {
        (n + r.cam * r.ren, d + r.cam * r.cam)
    });
    if rows.is_empty() || den <= 0.0 {
        return f64::INFINITY;
    }
    let tau = num / den;
    let mut abs: Vec<f64> = rows.iter().map(|r| (tau * r.cam - r.ren).abs()).collect();
    let mid = abs.len() / 2;
    *abs.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

/// Residuals of the fixed pixel set at one state.
pub(super) struct Evaluation {
    pub lin: Linearization,
    /// Mean Huber cost (in sigma^2 units) over valid pixels.
    pub cost: f64,
    pub rms: f64,
    pub valid: usize,
}

impl PhotometricUpdate {
    /// Residuals of `pixels` at `x` from `renderer`'s forward pass (covered ones only, as in
    /// [`Self::rows`]), their Huber cost, and with `hessian` given the normal equations: that
    /// matrix with the gradient `H^T R^-1 r` from the backward pass (`d loss / d colour, alpha`
    /// at the pixels, the renderer's pose gradient chained to the error state) and tau's part.
    pub(super) fn render_eval(
        &self,
        r: &mut dyn Renderer,
        x: &State,
        ext: &Isometry3<f64>,
        grey: &Grey,
        pixels: &[(u32, u32)],
        hessian: Option<&ErrMat>,
    ) -> Result<Evaluation, RenderError> {
        let o = r.forward(&self.camera, &camera_t_world(x, ext))?;
        let (sigma, k, b) = (self.cfg.sigma, self.cfg.huber, self.background);
        let w_img = self.camera.width as usize;
        let mut d_colour = vec![0f32; o.colour.len()];
        let mut d_alpha = vec![0f32; o.alpha.len()];
        let mut lin = Linearization::default();
        let (mut cost, mut sq, mut valid) = (0.0, 0.0, 0usize);
        for &(px, py) in pixels {
            let i = py as usize * w_img + px as usize;
            let a = f64::from(o.alpha[i]);
            if a < self.cfg.min_alpha {
                continue;
            }
            let c = (0..3)
                .map(|ch| f64::from(o.colour[3 * i + ch]))
                .sum::<f64>()
                / 3.0;
            let cam = grey.at(px, py);
            let res = x.tau * cam - (c + (1.0 - a) * b);
            let e = (res / sigma).abs();
            let (w, rho) = if e <= k {
                (1.0, e * e)
            } else {
                (k / e, 2.0 * k * e - k * k)
            };
            // d (w r^2 / 2 sigma^2) / d r; r falls with the colour and rises with alpha (b).
            let g = w * res / (sigma * sigma);
            for ch in 0..3 {
                d_colour[3 * i + ch] = (-g / 3.0) as f32;
            }
            d_alpha[i] = (g * b) as f32;
            lin.htz[TAU] += g * cam;
            lin.chi2 += w * res * res / (sigma * sigma);
            lin.count += 1;
            cost += rho;
            sq += res * res;
            valid += 1;
        }
        if let Some(h) = hessian {
            lin.hth = *h;
            let grads = r.backward(&d_colour, None, Some(&d_alpha))?;
            let m = pose_chain(x, ext);
            for c in 0..6 {
                let s: f64 = (0..6).map(|row| grads.pose[row] * m[(row, c)]).sum();
                lin.htz[if c < 3 { ROT + c } else { POS + c - 3 }] = s;
            }
        }
        let n = valid.max(1) as f64;
        Ok(Evaluation {
            lin,
            cost: if valid == 0 { f64::INFINITY } else { cost / n },
            rms: (sq / n).sqrt(),
            valid,
        })
    }

    /// The Huber-weighted gradient `H^T R^-1 r` of the covered `pixels` at `x` (camera pose
    /// `ext` relative to the body), from the CPU forward-mode rows or from `renderer` (which
    /// must hold `gaussians`), for tests and diagnostics: the two must agree.
    #[allow(clippy::too_many_arguments)] // one diagnostic entry point
    pub fn gradient(
        &self,
        x: &State,
        ext: &Isometry3<f64>,
        gaussians: &GaussianSet<f64>,
        grey: &Grey,
        pixels: &[(u32, u32)],
        renderer: Option<&mut dyn Renderer>,
    ) -> Result<ErrVec, RenderError> {
        Ok(match renderer {
            Some(r) => {
                self.render_eval(r, x, ext, grey, pixels, Some(&ErrMat::zeros()))?
                    .lin
                    .htz
            }
            None => {
                let f = pose_jacobian(gaussians, &self.camera, &camera_t_world(x, ext));
                self.evaluate(&self.rows(&f, x, ext, grey, pixels), x)
                    .lin
                    .htz
            }
        })
    }

    /// Residuals and Jacobian rows of the `pixels` the map covers (alpha at least `min_alpha`)
    /// at state `x`, rendered in `f`.
    pub(super) fn rows(
        &self,
        f: &impl PoseJacobian,
        x: &State,
        ext: &Isometry3<f64>,
        grey: &Grey,
        pixels: &[(u32, u32)],
    ) -> Vec<Row> {
        let m = pose_chain(x, ext);
        let mut out = Vec::with_capacity(pixels.len());
        for &(px, py) in pixels {
            let Some(pj) = f.pixel(px, py) else { continue };
            if pj.alpha < self.cfg.min_alpha {
                continue;
            }
            let cam = grey.at(px, py);
            let (ren, d_ren) = grey_render(&pj, self.background);
            out.push(Row {
                px: (px, py),
                r: x.tau * cam - ren,
                h: jacobian_row(&d_ren, &m, cam),
                cam,
                ren,
            });
        }
        out
    }

    /// The Huber cost, RMS and count of the covered `pixels` at `x` from the colours and
    /// alphas of `f` alone: what [`Self::evaluate`] of [`Self::rows`] reports (the same
    /// residuals, summed in the same order), without the Jacobian rows and normal equations
    /// (`lin` stays empty), for the cost check at the posterior.
    pub(super) fn cost_only(
        &self,
        f: &impl PoseJacobian,
        x: &State,
        grey: &Grey,
        pixels: &[(u32, u32)],
    ) -> Evaluation {
        let (sigma, k) = (self.cfg.sigma, self.cfg.huber);
        let (mut cost, mut sq, mut valid) = (0.0, 0.0, 0usize);
        for &(px, py) in pixels {
            let Some((colour, alpha)) = f.value(px, py) else {
                continue;
            };
            if alpha < self.cfg.min_alpha {
                continue;
            }
            let c = (colour[0] + colour[1] + colour[2]) / 3.0;
            let r = x.tau * grey.at(px, py) - (c + (1.0 - alpha) * self.background);
            let e = (r / sigma).abs();
            cost += if e <= k { e * e } else { 2.0 * k * e - k * k };
            sq += r * r;
            valid += 1;
        }
        let n = valid.max(1) as f64;
        Evaluation {
            lin: Linearization::default(),
            cost: if valid == 0 { f64::INFINITY } else { cost / n },
            rms: (sq / n).sqrt(),
            valid,
        }
    }

    /// Huber-weighted normal equations and statistics of `rows`.
    pub(super) fn evaluate(&self, rows: &[Row], _x: &State) -> Evaluation {
        let sigma = self.cfg.sigma;
        let k = self.cfg.huber;
        let mut lin = Linearization::default();
        let mut cost = 0.0;
        let mut sq = 0.0;
        for row in rows {
            let e = (row.r / sigma).abs();
            let (w, rho) = if e <= k {
                (1.0, e * e)
            } else {
                (k / e, 2.0 * k * e - k * k)
            };
            lin.add_row(&row.h, row.r, sigma * sigma / w);
            cost += rho;
            sq += row.r * row.r;
        }
        let valid = rows.len();
        let n = valid.max(1) as f64;
        Evaluation {
            lin,
            cost: if valid == 0 { f64::INFINITY } else { cost / n },
            rms: (sq / n).sqrt(),
            valid,
        }
    }

    /// Residual `tau * I_cam - I_render` and its Jacobian row (error-state order) at one pixel,
    /// for tests and diagnostics; `None` when the pixel is outside the image.
    pub fn residual_row(
        &self,
        x: &State,
        ext: &Isometry3<f64>,
        gaussians: &GaussianSet<f64>,
        grey: &Grey,
        px: u32,
        py: u32,
    ) -> Option<(f64, ErrVec)> {
        let f = pose_jacobian(gaussians, &self.camera, &camera_t_world(x, ext));
        let pj = f.pixel(px, py)?;
        let m = pose_chain(x, ext);
        let cam = grey.at(px, py);
        let (ren, d_ren) = grey_render(&pj, self.background);
        Some((x.tau * cam - ren, jacobian_row(&d_ren, &m, cam)))
    }
}
