//! The photometric IESKF update: residuals `tau * I_cam - I_render` over selected pixels of the
//! grey image, Huber-weighted, Jacobians through the rasteriser's forward-mode pose derivatives
//! and the camera extrinsics, iterated with [`Ieskf::update`], gated and verified.

use nalgebra::Isometry3;

use super::chain::{body_to_image, camera_t_world, pose_chain};
use super::image::{select_pixels, Grey};
use super::VisualConfig;
use crate::estimator::ieskf::{Ieskf, Linearization, UpdateSettings};
use crate::estimator::state::{ErrMat, ErrVec, State, POS, ROT, TAU};
use crate::render::{pose_jacobian, PixelJacobian, PoseJacobian};
use crate::render::{Camera, GaussianSet, RenderError, Renderer};
use crate::sensors::{stamp_diff_secs, Image, ImuSample, Stamp};

/// Why an update did not change the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `visual.enabled = false` (LIO-only mode).
    Disabled,
    /// Image size or buffer does not match the configured camera.
    BadImage,
    /// Image stamp after the filter time, or older than `max_image_age`.
    ImageTime,
    /// Too many saturated pixels.
    OverExposed,
    /// Too many dark pixels.
    UnderExposed,
    /// No Gaussians, or too few well-covered textured pixels in view.
    LowCoverage,
    /// The LiDAR update was not degenerate and `visual.pose_update = lidar_degenerate`: the
    /// image updated the exposure only.
    LidarConstrained,
    /// Residuals at the prior are implausibly large (wrong map, occlusion, bad pose).
    Innovation,
    /// The update raised the robust photometric cost.
    CostIncrease,
    /// The update moved the pose more than `max_translation` / `max_rotation`.
    LargeStep,
    /// The filter rejected the update (not positive definite, non-finite).
    Filter,
    /// The render backend failed (only with a renderer, see [`PhotometricUpdate::update_on`]).
    Render,
}

/// Result of one call of [`PhotometricUpdate::update`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VisualUpdateOutcome {
    /// `None` when applied.
    pub skipped: Option<SkipReason>,
    pub iterations: usize,
    /// Pixels used (covered, textured).
    pub pixels: usize,
    /// Covered fraction of the candidate pixels.
    pub coverage: f64,
    /// RMS of the residuals (grey units) before and after (after = before when skipped before
    /// the update ran; the rejected posterior's RMS for `CostIncrease`).
    pub rms_before: f64,
    pub rms_after: f64,
    /// Inverse exposure after the call; the exposure gain is `1 / tau`.
    pub tau: f64,
    /// Whether tau was updated from this image (also when the pose update was skipped).
    pub exposure_updated: bool,
    /// Pose change applied (m, rad).
    pub translation: f64,
    pub rotation: f64,
}

impl VisualUpdateOutcome {
    pub fn applied(&self) -> bool {
        self.skipped.is_none()
    }

    /// Exposure gain `1 / tau` (divide images by it to get map units).
    pub fn exposure(&self) -> f64 {
        1.0 / self.tau
    }
}

/// Counters over a run (for summaries).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct VisualCounters {
    pub frames: usize,
    pub applied: usize,
    pub disabled: usize,
    pub bad_image: usize,
    pub image_time: usize,
    pub over_exposed: usize,
    pub under_exposed: usize,
    pub low_coverage: usize,
    pub lidar_constrained: usize,
    pub innovation: usize,
    pub cost_increase: usize,
    pub large_step: usize,
    pub filter: usize,
    pub render: usize,
    /// Skipped pose updates that still updated the exposure.
    pub exposure_only: usize,
}

impl VisualCounters {
    fn count(&mut self, r: SkipReason) {
        let c = match r {
            SkipReason::Disabled => &mut self.disabled,
            SkipReason::BadImage => &mut self.bad_image,
            SkipReason::ImageTime => &mut self.image_time,
            SkipReason::OverExposed => &mut self.over_exposed,
            SkipReason::UnderExposed => &mut self.under_exposed,
            SkipReason::LowCoverage => &mut self.low_coverage,
            SkipReason::LidarConstrained => &mut self.lidar_constrained,
            SkipReason::Innovation => &mut self.innovation,
            SkipReason::CostIncrease => &mut self.cost_increase,
            SkipReason::LargeStep => &mut self.large_step,
            SkipReason::Filter => &mut self.filter,
            SkipReason::Render => &mut self.render,
        };
        *c += 1;
    }

    pub fn skipped(&self) -> usize {
        self.frames - self.applied
    }
}

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
struct Row {
    px: (u32, u32),
    r: f64,
    h: ErrVec,
    cam: f64,
    ren: f64,
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
fn median_abs_after_tau_fit(rows: &[Row]) -> f64 {
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
struct Evaluation {
    lin: Linearization,
    /// Mean Huber cost (in sigma^2 units) over valid pixels.
    cost: f64,
    rms: f64,
    valid: usize,
}

/// The sequential photometric update; one per camera.
#[derive(Debug, Clone)]
pub struct PhotometricUpdate {
    cfg: VisualConfig,
    /// Full-resolution intrinsics from the config.
    full: crate::sensors::Camera,
    /// Render camera at the optimisation resolution.
    camera: Camera,
    imu_t_camera: Isometry3<f64>,
    counters: VisualCounters,
    last_stamp: Option<Stamp>,
    /// Grey of the map's background colour (0 when the mapper estimates none).
    background: f64,
    /// Whether the next updates may correct the pose (see [`Self::set_pose_allowed`]).
    pose_allowed: bool,
}

impl PhotometricUpdate {
    /// `camera`: the configured intrinsics (full resolution, no distortion used: images are
    /// assumed rectified); `imu_t_camera`: maps camera-frame points into the body frame.
    pub fn new(
        cfg: &VisualConfig,
        camera: &crate::sensors::Camera,
        imu_t_camera: Isometry3<f64>,
    ) -> Self {
        let s = (1u32 << cfg.pyramid_level.min(4)) as f64;
        let mut cam = Camera::new(
            (camera.width as f64 / s) as u32,
            (camera.height as f64 / s) as u32,
            camera.fx / s,
            camera.fy / s,
        );
        cam.cx = (camera.cx + 0.5) / s - 0.5;
        cam.cy = (camera.cy + 0.5) / s - 0.5;
        cam.near = cfg.near;
        if camera.distortion.iter().any(|&d| d != 0.0) {
            tracing::warn!(
                "visual update: camera distortion is ignored (images assumed rectified)"
            );
        }
        Self {
            cfg: cfg.clone(),
            full: camera.clone(),
            camera: cam,
            imu_t_camera,
            counters: VisualCounters::default(),
            last_stamp: None,
            background: 0.0,
            pose_allowed: true,
        }
    }

    pub fn config(&self) -> &VisualConfig {
        &self.cfg
    }

    /// The map's background colour (exposure-normalised RGB in [0, 1]) that its renders are
    /// composited over; black by default.
    pub fn set_background(&mut self, rgb: [f32; 3]) {
        self.background = rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / 3.0;
    }

    /// `false`: the next updates estimate the exposure only and are counted as skipped
    /// ([`SkipReason::LidarConstrained`]); the driver sets it per scan from
    /// `visual.pose_update` and the LiDAR's degeneracy.
    pub fn set_pose_allowed(&mut self, allowed: bool) {
        self.pose_allowed = allowed;
    }

    pub fn counters(&self) -> &VisualCounters {
        &self.counters
    }

    /// The render camera at the optimisation resolution.
    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    /// Runs the update for `image` (stamp already corrected by `time_offset.camera`, not after
    /// the filter time) against `gaussians` (the window, exposure-normalised colours).
    /// `imu` holds the samples around the image and filter times (the scan package's), used to
    /// move the camera from the filter time back to the image time.
    pub fn update(
        &mut self,
        filter: &mut Ieskf,
        image: &Image,
        imu: &[ImuSample],
        gaussians: &GaussianSet<f64>,
    ) -> VisualUpdateOutcome {
        self.update_on(filter, image, imu, gaussians, None)
    }

    /// [`Self::update`], with the iterations' renders and gradients on `renderer` when given
    /// (it must hold `gaussians`): the Gauss-Newton matrix then comes from the CPU forward-mode
    /// rows at the prior only, the residuals and the gradient `H^T R^-1 r` of every further
    /// iteration from the renderer's forward and backward pass (its pose gradient through the
    /// extrinsics chain), and the cost check compares the renderer's costs.
    pub fn update_on(
        &mut self,
        filter: &mut Ieskf,
        image: &Image,
        imu: &[ImuSample],
        gaussians: &GaussianSet<f64>,
        renderer: Option<&mut dyn Renderer>,
    ) -> VisualUpdateOutcome {
        self.counters.frames += 1;
        let tau0 = filter.state().tau;
        let mut out = VisualUpdateOutcome {
            skipped: None,
            iterations: 0,
            pixels: 0,
            coverage: 0.0,
            rms_before: 0.0,
            rms_after: 0.0,
            tau: tau0,
            exposure_updated: false,
            translation: 0.0,
            rotation: 0.0,
        };
        match self.run(filter, image, imu, gaussians, renderer, &mut out) {
            Ok(()) => self.counters.applied += 1,
            Err(r) => {
                self.counters.count(r);
                if out.exposure_updated {
                    self.counters.exposure_only += 1;
                }
                out.skipped = Some(r);
                if out.rms_after == 0.0 {
                    out.rms_after = out.rms_before;
                }
                out.tau = filter.state().tau;
                tracing::debug!(reason = ?r, "visual update skipped");
            }
        }
        out
    }

    fn run(
        &mut self,
        filter: &mut Ieskf,
        image: &Image,
        imu: &[ImuSample],
        gaussians: &GaussianSet<f64>,
        mut renderer: Option<&mut dyn Renderer>,
        out: &mut VisualUpdateOutcome,
    ) -> Result<(), SkipReason> {
        let cfg = self.cfg.clone();
        if !cfg.enabled {
            return Err(SkipReason::Disabled);
        }
        if image.width != self.full.width || image.height != self.full.height {
            return Err(SkipReason::BadImage);
        }
        let grey = Grey::from_image(image, cfg.pyramid_level).ok_or(SkipReason::BadImage)?;
        if grey.width != self.camera.width || grey.height != self.camera.height {
            return Err(SkipReason::BadImage);
        }
        let age = stamp_diff_secs(filter.stamp(), image.stamp);
        if !(-1e-3..=cfg.max_image_age).contains(&age) {
            return Err(SkipReason::ImageTime);
        }
        let (over, under) = grey.clipped_fractions(cfg.dark_level, cfg.saturated_level);
        if over > cfg.max_saturated_fraction {
            return Err(SkipReason::OverExposed);
        }
        if under > cfg.max_dark_fraction {
            return Err(SkipReason::UnderExposed);
        }
        if gaussians.is_empty() {
            return Err(SkipReason::LowCoverage);
        }
        // Camera at the image time, expressed relative to the body at the filter time.
        let prior = *filter.state();
        let rel = body_to_image(&prior, imu, image.stamp, filter.stamp());
        let ext = rel * self.imu_t_camera;

        let candidates = select_pixels(
            &grey,
            cfg.gradient_threshold,
            cfg.grid_size,
            cfg.border,
            cfg.max_pixels,
            cfg.dark_level,
            cfg.saturated_level,
        );
        let frame = pose_jacobian(gaussians, &self.camera, &camera_t_world(&prior, &ext));
        // Rows of the covered candidates: these pixels stay fixed over the iterations.
        let rows0 = self.rows(&frame, &prior, &ext, &grey, &candidates);
        let pixels: Vec<(u32, u32)> = rows0.iter().map(|r| r.px).collect();
        out.coverage = pixels.len() as f64 / candidates.len().max(1) as f64;
        out.pixels = pixels.len();

        // Exposure random walk since the last update of tau (applied only if tau is updated).
        let saved = (prior, *filter.covariance());
        let dt = self
            .last_stamp
            .map_or(0.0, |s| stamp_diff_secs(image.stamp, s).clamp(0.0, 2.0));
        let mut cov = saved.1;
        cov[(TAU, TAU)] += cfg.exposure_walk * cfg.exposure_walk * dt;
        let walked = (prior, cov);

        if pixels.len() < cfg.min_pixels || out.coverage < cfg.min_coverage {
            return self.exposure_only(filter, &rows0, walked, saved, image.stamp, out, {
                SkipReason::LowCoverage
            });
        }
        if !self.pose_allowed {
            return self.exposure_only(filter, &rows0, walked, saved, image.stamp, out, {
                SkipReason::LidarConstrained
            });
        }
        let before = self.evaluate(&rows0, &prior);
        out.rms_before = before.rms;
        // Plausibility after fitting the exposure alone, so an exposure change is no outlier.
        if median_abs_after_tau_fit(&rows0) > cfg.innovation_gate * cfg.sigma {
            return Err(SkipReason::Innovation);
        }
        // With a renderer, costs are compared on its renders only.
        let before_cost = match renderer.as_deref_mut() {
            Some(r) => match self.render_eval(r, &prior, &ext, &grey, &pixels, None) {
                Ok(e) => e.cost,
                Err(e) => {
                    tracing::warn!("visual update: render backend failed: {e}");
                    return Err(SkipReason::Render);
                }
            },
            None => before.cost,
        };
        filter.set_state(walked.0, walked.1);

        let settings = UpdateSettings {
            max_iterations: cfg.iterations,
            eps_rot: 1e-5,
            eps_pos: 1e-5,
        };
        let report = {
            let mut first = Some(before.lin.clone());
            let frozen = &before.lin.hth;
            let mut meas = |x: &State, _it: usize| -> Option<Linearization> {
                if let Some(l) = first.take() {
                    return Some(l);
                }
                let e = match renderer.as_deref_mut() {
                    Some(r) => self
                        .render_eval(r, x, &ext, &grey, &pixels, Some(frozen))
                        .map_err(|e| tracing::warn!("visual update: render backend failed: {e}"))
                        .ok()?,
                    None => {
                        let f = pose_jacobian(gaussians, &self.camera, &camera_t_world(x, &ext));
                        self.evaluate(&self.rows(&f, x, &ext, &grey, &pixels), x)
                    }
                };
                (e.valid >= cfg.min_pixels).then_some(e.lin)
            };
            filter.update(&mut meas, &settings)
        };
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("visual update rejected by the filter: {e}");
                return self.exposure_only(filter, &rows0, walked, saved, image.stamp, out, {
                    SkipReason::Filter
                });
            }
        };
        out.iterations = report.iterations;
        let post = *filter.state();
        let d = post.boxminus(&prior);
        out.translation = d.fixed_rows::<3>(POS).norm();
        out.rotation = d.fixed_rows::<3>(ROT).norm();
        if out.translation > cfg.max_translation || out.rotation > cfg.max_rotation {
            return self.exposure_only(filter, &rows0, walked, saved, image.stamp, out, {
                SkipReason::LargeStep
            });
        }
        let after = match renderer {
            Some(r) => match self.render_eval(r, &post, &ext, &grey, &pixels, None) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("visual update: render backend failed: {e}");
                    filter.set_state(saved.0, saved.1);
                    return Err(SkipReason::Render);
                }
            },
            None => {
                let f = pose_jacobian(gaussians, &self.camera, &camera_t_world(&post, &ext));
                self.evaluate(&self.rows(&f, &post, &ext, &grey, &pixels), &post)
            }
        };
        out.rms_after = after.rms;
        if after.valid < cfg.min_pixels || after.cost > before_cost {
            return self.exposure_only(filter, &rows0, walked, saved, image.stamp, out, {
                SkipReason::CostIncrease
            });
        }
        self.last_stamp = Some(image.stamp);
        out.tau = post.tau;
        out.exposure_updated = true;
        let (p0, p1) = (&saved.1, filter.covariance());
        let std = |p: &ErrMat, i: usize| p[(i, i)].max(0.0).sqrt();
        tracing::debug!(
            pixels = out.pixels,
            coverage = out.coverage,
            rms_before = before.rms,
            rms_after = after.rms,
            "visual update: d pos [{:.4} {:.4} {:.4}] m, pos std [{:.4} {:.4} {:.4}] -> [{:.4} {:.4} {:.4}], tau {:.4} -> {:.4}",
            d[POS],
            d[POS + 1],
            d[POS + 2],
            std(p0, POS),
            std(p0, POS + 1),
            std(p0, POS + 2),
            std(p1, POS),
            std(p1, POS + 1),
            std(p1, POS + 2),
            prior.tau,
            post.tau
        );
        Ok(())
    }

    /// When the pose update is skipped for `reason`, the exposure is still updated from the
    /// covered pixels (the map must not learn colours with a stale exposure): a Schmidt
    /// ("consider") update of tau alone at the prior pose, the other states left as they are,
    /// each residual's variance raised by what the pose uncertainty puts into it
    /// (`h_pose P_pose h_pose^T`). The filter ends at `saved` when that is not possible
    /// either; the skip is reported in any case.
    #[allow(clippy::too_many_arguments)] // the pieces of one update, passed on
    fn exposure_only(
        &mut self,
        filter: &mut Ieskf,
        rows: &[Row],
        walked: (State, ErrMat),
        saved: (State, ErrMat),
        stamp: Stamp,
        out: &mut VisualUpdateOutcome,
        reason: SkipReason,
    ) -> Result<(), SkipReason> {
        let cfg = &self.cfg;
        filter.set_state(saved.0, saved.1);
        if rows.len() < cfg.min_exposure_pixels
            || median_abs_after_tau_fit(rows) > cfg.innovation_gate * cfg.sigma
        {
            return Err(reason);
        }
        let (mut x, cov) = walked;
        let pose_idx = [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2];
        // Information and gradient of the tau-only problem (h = I_cam).
        let (mut info, mut grad) = (0.0, 0.0);
        for r in rows {
            let mut pose_var = 0.0;
            for &i in &pose_idx {
                for &j in &pose_idx {
                    pose_var += r.h[i] * cov[(i, j)] * r.h[j];
                }
            }
            let var = cfg.sigma * cfg.sigma + pose_var;
            let e = (r.r / var.sqrt()).abs();
            let w = if e <= cfg.huber { 1.0 } else { cfg.huber / e };
            info += w * r.cam * r.cam / var;
            grad += w * r.cam * r.r / var;
        }
        let p = cov[(TAU, TAU)];
        if !(info > 0.0 && p > 0.0 && info.is_finite()) {
            return Err(reason);
        }
        // One equivalent scalar measurement of tau with variance 1 / info.
        let gain = p * info / (1.0 + p * info);
        let dtau = -grad / info * gain;
        let mut post = cov;
        for j in 0..crate::estimator::state::DIM {
            if j != TAU {
                post[(TAU, j)] *= 1.0 - gain;
                post[(j, TAU)] *= 1.0 - gain;
            }
        }
        post[(TAU, TAU)] = (1.0 - gain).powi(2) * p + gain * gain / info;
        let tau0 = x.tau;
        x.tau += dtau;
        if !x.tau.is_finite() {
            return Err(reason);
        }
        filter.set_state(x, post);
        self.last_stamp = Some(stamp);
        out.tau = x.tau;
        out.exposure_updated = true;
        tracing::debug!(
            reason = ?reason,
            pixels = rows.len(),
            coverage = out.coverage,
            "exposure-only update: tau {tau0:.4} -> {:.4}",
            x.tau
        );
        Err(reason)
    }

    /// Residuals of `pixels` at `x` from `renderer`'s forward pass (covered ones only, as in
    /// [`Self::rows`]), their Huber cost, and with `hessian` given the normal equations: that
    /// matrix with the gradient `H^T R^-1 r` from the backward pass (`d loss / d colour, alpha`
    /// at the pixels, the renderer's pose gradient chained to the error state) and tau's part.
    fn render_eval(
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
    fn rows(
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

    /// Huber-weighted normal equations and statistics of `rows`.
    fn evaluate(&self, rows: &[Row], _x: &State) -> Evaluation {
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
