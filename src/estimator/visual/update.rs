//! The photometric IESKF update: residuals `tau * I_cam - I_render` over selected pixels of the
//! grey image, Huber-weighted, Jacobians through the rasteriser's forward-mode pose derivatives
//! and the camera extrinsics, iterated with [`Ieskf::update`], gated and verified.

use nalgebra::{Isometry3, Matrix6};

mod direct;
mod residuals;
mod tau_only;

use super::chain::{body_to_image, camera_t_world, pose_chain};
use super::image::{select_pixels, Grey};
use super::outcome::{SkipReason, VisualCounters, VisualUpdateOutcome};
use super::select;
use super::VisualConfig;
use crate::estimator::ieskf::{Ieskf, Linearization, UpdateSettings};
use crate::estimator::state::{ErrMat, ErrVec, State, POS, ROT, TAU};
use crate::render::{pose_jacobian_masked, TileMask};
use crate::render::{Camera, GaussianSet, RenderError, Renderer};
use crate::sensors::{stamp_diff_secs, Image, ImuSample, Stamp};
use residuals::{median_abs_after_tau_fit, Evaluation, Row};
use tau_only::tau_only_step;

/// Margin (pixels at the optimisation resolution) by which a Gaussian may move between the
/// prior and an iterate or the posterior and still be rendered there: the later renders are
/// built from the Gaussians near the selected pixels' tiles at the prior only. Accepted steps
/// move the image by less (`max_rotation` 0.05 rad is 10 px at level 1 of a 640-pixel-wide
/// camera with fx 400; `max_translation` 0.1 m is 20 px at 1 m depth).
const ROI_MARGIN_PX: f64 = 32.0;

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

    /// The pixels the update would linearise for `image` at the filter's state and
    /// covariance (the camera at the filter time: no IMU motion), for tests and diagnostics;
    /// `None` when the image is unusable.
    pub fn selection(
        &self,
        filter: &Ieskf,
        image: &Image,
        gaussians: &GaussianSet<f64>,
    ) -> Option<Vec<(u32, u32)>> {
        let grey = Grey::from_image(image, self.cfg.pyramid_level)?;
        if (grey.width, grey.height) != (self.camera.width, self.camera.height) {
            return None;
        }
        let x = filter.state();
        Some(self.candidates(&grey, gaussians, x, &self.imu_t_camera, filter.covariance()))
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

    /// Gate the image, linearise at the prior (and gate there), iterate the filter, verify the
    /// posterior; every step returns the skip reason that ends the update.
    fn run(
        &mut self,
        filter: &mut Ieskf,
        image: &Image,
        imu: &[ImuSample],
        gaussians: &GaussianSet<f64>,
        mut renderer: Option<&mut dyn Renderer>,
        out: &mut VisualUpdateOutcome,
    ) -> Result<(), SkipReason> {
        let grey = self.gate(filter, image, gaussians)?;
        let direct = self.cfg.direct && renderer.is_none();
        let at = self.linearise(filter, image, imu, gaussians, grey, direct, out);
        let before = self.gate_prior(filter, &at, &mut renderer, out)?;
        self.iterate(filter, &at, &before, gaussians, &mut renderer, out)?;
        self.verify(filter, &at, &before, gaussians, &mut renderer, out)
    }

    /// Checks of the image alone: enabled, size, age, exposure clipping, a map to compare with.
    fn gate(
        &self,
        filter: &Ieskf,
        image: &Image,
        gaussians: &GaussianSet<f64>,
    ) -> Result<Grey, SkipReason> {
        let cfg = &self.cfg;
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
        Ok(grey)
    }

    /// The camera at the image time relative to the body at the filter time, the covered
    /// candidate pixels' rows at the prior (this pixel set stays fixed over the iterations), and
    /// the covariance with the exposure random walk since tau's last update (used only if tau
    /// is updated). `direct`: the pixels are back-projected through the prior's render (no
    /// pose derivatives) and the iterations move those points ([`direct`]).
    #[allow(clippy::too_many_arguments)] // the update's one linearisation step
    fn linearise(
        &self,
        filter: &Ieskf,
        image: &Image,
        imu: &[ImuSample],
        gaussians: &GaussianSet<f64>,
        grey: Grey,
        direct: bool,
        out: &mut VisualUpdateOutcome,
    ) -> AtPrior {
        let cfg = &self.cfg;
        let prior = *filter.state();
        let rel = body_to_image(&prior, imu, image.stamp, filter.stamp());
        let ext = rel * self.imu_t_camera;
        let t_cw = camera_t_world(&prior, &ext);
        let candidates = self.candidates(&grey, gaussians, &prior, &ext, filter.covariance());
        let mask = TileMask::of_pixels(&self.camera, &candidates);
        let frame = pose_jacobian_masked(gaussians, &self.camera, &t_cw, &mask, None);
        let (rows, points, covered) = if direct {
            let (points, covered) = direct::back_project(
                &frame,
                &self.camera,
                &t_cw,
                &candidates,
                cfg.min_alpha,
                self.background,
            );
            let rows = direct::rows(&points, &prior, &ext, &grey, &self.camera);
            (rows, Some(points), covered)
        } else {
            let rows = self.rows(&frame, &prior, &ext, &grey, &candidates);
            let n = rows.len();
            (rows, None, n)
        };
        let pixels: Vec<(u32, u32)> = rows.iter().map(|r| r.px).collect();
        let mask = TileMask::of_pixels(&self.camera, &pixels);
        let near = if direct {
            Vec::new()
        } else {
            mask.gaussians_near(gaussians, &self.camera, &t_cw, ROI_MARGIN_PX)
        };
        out.coverage = covered as f64 / candidates.len().max(1) as f64;
        out.pixels = pixels.len();
        let saved = (prior, *filter.covariance());
        let dt = self
            .last_stamp
            .map_or(0.0, |s| stamp_diff_secs(image.stamp, s).clamp(0.0, 2.0));
        let mut cov = saved.1;
        cov[(TAU, TAU)] += cfg.exposure_walk * cfg.exposure_walk * dt;
        AtPrior {
            grey,
            prior,
            ext,
            rows,
            points,
            pixels,
            mask,
            near,
            saved,
            walked: (prior, cov),
            stamp: image.stamp,
        }
    }

    /// Checks at the prior (coverage, whether the pose may move, plausibility of the residuals
    /// after fitting the exposure alone, so an exposure change is no outlier) and the cost the
    /// posterior must not exceed: the renderer's when given, costs are then compared on its
    /// renders only.
    fn gate_prior(
        &mut self,
        filter: &mut Ieskf,
        at: &AtPrior,
        renderer: &mut Option<&mut dyn Renderer>,
        out: &mut VisualUpdateOutcome,
    ) -> Result<Baseline, SkipReason> {
        let cfg = &self.cfg;
        if at.pixels.len() < cfg.min_pixels || out.coverage < cfg.min_coverage {
            return Err(self.exposure_only(filter, at, out, SkipReason::LowCoverage));
        }
        if !self.pose_allowed {
            return Err(self.exposure_only(filter, at, out, SkipReason::LidarConstrained));
        }
        let eval = self.evaluate(&at.rows, &at.prior);
        out.rms_before = eval.rms;
        if median_abs_after_tau_fit(&at.rows) > cfg.innovation_gate * cfg.sigma {
            return Err(SkipReason::Innovation);
        }
        let cost = match renderer.as_deref_mut() {
            Some(r) => {
                self.render_eval(r, &at.prior, &at.ext, &at.grey, &at.pixels, None)
                    .map_err(render_failed)?
                    .cost
            }
            None => eval.cost,
        };
        Ok(Baseline { eval, cost })
    }

    /// The iterated filter update from the walked prior: the CPU rows' linearisation at the
    /// prior first, then per iteration the renderer's (Gauss-Newton matrix frozen at the prior)
    /// or the CPU rows at the iterate.
    fn iterate(
        &mut self,
        filter: &mut Ieskf,
        at: &AtPrior,
        before: &Baseline,
        gaussians: &GaussianSet<f64>,
        renderer: &mut Option<&mut dyn Renderer>,
        out: &mut VisualUpdateOutcome,
    ) -> Result<(), SkipReason> {
        filter.set_state(at.walked.0, at.walked.1);
        let settings = UpdateSettings {
            max_iterations: self.cfg.iterations,
            eps_rot: 1e-5,
            eps_pos: 1e-5,
            rel_sigma: 0.0,
        };
        let report = {
            let mut first = Some(before.eval.lin.clone());
            let frozen = &before.eval.lin.hth;
            let this = &*self;
            let mut meas = |x: &State, _it: usize| -> Option<Linearization> {
                if let Some(l) = first.take() {
                    return Some(l);
                }
                let e = match renderer.as_deref_mut() {
                    Some(r) => this
                        .render_eval(r, x, &at.ext, &at.grey, &at.pixels, Some(frozen))
                        .map_err(|e| tracing::warn!("visual update: render backend failed: {e}"))
                        .ok()?,
                    None => this.evaluate_cpu(gaussians, x, at),
                };
                (e.valid >= this.cfg.min_pixels).then_some(e.lin)
            };
            filter.update(&mut meas, &settings)
        };
        match report {
            Ok(r) => {
                out.iterations = r.iterations;
                Ok(())
            }
            Err(e) => {
                tracing::debug!("visual update rejected by the filter: {e}");
                Err(self.exposure_only(filter, at, out, SkipReason::Filter))
            }
        }
    }

    /// Accepts the posterior only if the pose step is plausible and the robust cost did not
    /// rise; otherwise the pose is restored and the exposure updated alone.
    fn verify(
        &mut self,
        filter: &mut Ieskf,
        at: &AtPrior,
        before: &Baseline,
        gaussians: &GaussianSet<f64>,
        renderer: &mut Option<&mut dyn Renderer>,
        out: &mut VisualUpdateOutcome,
    ) -> Result<(), SkipReason> {
        let cfg = &self.cfg;
        let post = *filter.state();
        let d = post.boxminus(&at.prior);
        out.translation = d.fixed_rows::<3>(POS).norm();
        out.rotation = d.fixed_rows::<3>(ROT).norm();
        if out.translation > cfg.max_translation || out.rotation > cfg.max_rotation {
            return Err(self.exposure_only(filter, at, out, SkipReason::LargeStep));
        }
        let after = match renderer.as_deref_mut() {
            Some(r) => self
                .render_eval(r, &post, &at.ext, &at.grey, &at.pixels, None)
                .map_err(|e| {
                    filter.set_state(at.saved.0, at.saved.1);
                    render_failed(e)
                })?,
            None if at.points.is_some() => self.evaluate_cpu(gaussians, &post, at),
            None => {
                let t_cw = camera_t_world(&post, &at.ext);
                let f =
                    pose_jacobian_masked(gaussians, &self.camera, &t_cw, &at.mask, Some(&at.near));
                self.cost_only(&f, &post, &at.grey, &at.pixels)
            }
        };
        out.rms_after = after.rms;
        if after.valid < cfg.min_pixels || after.cost > before.cost {
            return Err(self.exposure_only(filter, at, out, SkipReason::CostIncrease));
        }
        self.last_stamp = Some(at.stamp);
        out.tau = post.tau;
        out.exposure_updated = true;
        log_applied(
            out,
            &d,
            (&at.saved.1, filter.covariance()),
            (at.prior.tau, post.tau),
            (before.eval.rms, after.rms),
        );
        Ok(())
    }

    /// The CPU rows' evaluation of the fixed pixel set at `x` (its points, in the direct form).
    fn evaluate_cpu(&self, gaussians: &GaussianSet<f64>, x: &State, at: &AtPrior) -> Evaluation {
        if let Some(points) = &at.points {
            return self.evaluate(&direct::rows(points, x, &at.ext, &at.grey, &self.camera), x);
        }
        let t_cw = camera_t_world(x, &at.ext);
        let f = pose_jacobian_masked(gaussians, &self.camera, &t_cw, &at.mask, Some(&at.near));
        self.evaluate(&self.rows(&f, x, &at.ext, &at.grey, &at.pixels), x)
    }

    /// The pixels to linearise at the prior: one per grid cell above the gradient threshold;
    /// when the pose may move and `visual.rank_by_information`, the `max_pixels` whose predicted
    /// residual varies most under the prior pose covariance ([`select`]), else the strongest
    /// gradients.
    fn candidates(
        &self,
        grey: &Grey,
        gaussians: &GaussianSet<f64>,
        prior: &State,
        ext: &Isometry3<f64>,
        cov: &ErrMat,
    ) -> Vec<(u32, u32)> {
        let cfg = &self.cfg;
        let ranked = self.pose_allowed && cfg.rank_by_information;
        let cells = select_pixels(
            grey,
            cfg.gradient_threshold,
            cfg.grid_size,
            cfg.border,
            if ranked { usize::MAX } else { cfg.max_pixels },
            cfg.dark_level,
            cfg.saturated_level,
        );
        if !ranked || cells.len() <= cfg.max_pixels {
            return cells;
        }
        let t_cw = camera_t_world(prior, ext);
        let Some(depth) = select::centre_depths(gaussians, &self.camera, &t_cw) else {
            return cells.into_iter().take(cfg.max_pixels).collect();
        };
        let idx = [ROT, ROT + 1, ROT + 2, POS, POS + 1, POS + 2];
        let pose_cov = Matrix6::from_fn(|r, c| cov[(idx[r], idx[c])]);
        select::rank_by_prior_variance(
            grey,
            &self.camera,
            &depth,
            &pose_chain(prior, ext),
            &pose_cov,
            &cells,
            cfg.max_pixels,
        )
    }
    /// When the pose update is skipped for `reason`, the exposure is still updated from the
    /// covered pixels (the map must not learn colours with a stale exposure), see
    /// [`tau_only_step`]. The filter ends at `saved` when that is not possible either; returns
    /// `reason`: the skip is reported in any case.
    fn exposure_only(
        &mut self,
        filter: &mut Ieskf,
        at: &AtPrior,
        out: &mut VisualUpdateOutcome,
        reason: SkipReason,
    ) -> SkipReason {
        let cfg = &self.cfg;
        filter.set_state(at.saved.0, at.saved.1);
        if at.rows.len() < cfg.min_exposure_pixels
            || median_abs_after_tau_fit(&at.rows) > cfg.innovation_gate * cfg.sigma
        {
            return reason;
        }
        let (mut x, cov) = at.walked;
        let Some((dtau, post)) = tau_only_step(&at.rows, &cov, cfg.sigma, cfg.huber) else {
            return reason;
        };
        let tau0 = x.tau;
        x.tau += dtau;
        if !x.tau.is_finite() {
            return reason;
        }
        filter.set_state(x, post);
        self.last_stamp = Some(at.stamp);
        out.tau = x.tau;
        out.exposure_updated = true;
        tracing::debug!(
            reason = ?reason,
            pixels = at.rows.len(),
            coverage = out.coverage,
            "exposure-only update: tau {tau0:.4} -> {:.4}",
            x.tau
        );
        reason
    }
}

/// The fixed pixel set and its rows at the prior, and the filter before (`saved`) and after
/// (`walked`) the exposure random walk.
struct AtPrior {
    grey: Grey,
    prior: State,
    /// Camera at the image time relative to the body at the filter time.
    ext: Isometry3<f64>,
    rows: Vec<Row>,
    /// The direct form's back-projected pixels (`None`: the iterations render).
    points: Option<Vec<direct::Point>>,
    pixels: Vec<(u32, u32)>,
    /// The tiles of `pixels`: the only ones the later renders need.
    mask: TileMask,
    /// The Gaussians that reach `mask` at the prior with [`ROI_MARGIN_PX`] to spare: what the
    /// later renders (iterates, posterior) are built from.
    near: Vec<u32>,
    saved: (State, ErrMat),
    walked: (State, ErrMat),
    stamp: Stamp,
}

/// The prior's evaluation and the cost the posterior is compared with.
struct Baseline {
    eval: Evaluation,
    cost: f64,
}

fn render_failed(e: RenderError) -> SkipReason {
    tracing::warn!("visual update: render backend failed: {e}");
    SkipReason::Render
}

/// The debug line of an applied update: pose step, position std before/after, tau, RMS.
fn log_applied(
    out: &VisualUpdateOutcome,
    d: &ErrVec,
    (p0, p1): (&ErrMat, &ErrMat),
    (tau0, tau1): (f64, f64),
    (rms0, rms1): (f64, f64),
) {
    let std = |p: &ErrMat, i: usize| p[(i, i)].max(0.0).sqrt();
    tracing::debug!(
        pixels = out.pixels,
        coverage = out.coverage,
        rms_before = rms0,
        rms_after = rms1,
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
        tau0,
        tau1
    );
}
