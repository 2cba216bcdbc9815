//! Per-frame optimisation of the window through the render module: Adam on L1 + D-SSIM over
//! the current frame and a few recent keyframes, then pruning.
//!
//! The renderer's buffers mirror the window. Before optimising, the window's changes since the
//! last frame ([`super::Window::take_sync`]) are applied: Adam moments are read back, permuted
//! by the slot moves and reset for new slots, and the window is uploaded. After optimising,
//! the parameters are read back into the window (so write-back sees them). Moments of a
//! Gaussian that leaves the window are dropped: on its return Adam restarts from zero moments.

use nalgebra::Isometry3;

use super::background::{Background, BackgroundLookup};
use super::camera::CameraModel;
use super::keyframes::{AnchorSet, KeyframePool};
use super::mapper::GaussianMapper;
use super::params::Gaussian;
use super::resample::image_target_sized;
use super::window::SyncPlan;
use super::GaussianError;
use crate::render::{
    AdamConfig, AdamState, Camera as RenderCamera, Gaussians, Group, LossConfig, RenderError,
    RenderOutput, RenderView, Renderer,
};
use crate::sensors::Image;

impl From<RenderError> for GaussianError {
    fn from(e: RenderError) -> Self {
        GaussianError::Render(e.to_string())
    }
}

/// A training view kept to fight forgetting.
#[derive(Debug, Clone)]
pub struct Keyframe {
    pub camera_t_world: Isometry3<f64>,
    /// Exposure-normalised RGB f32 at the optimisation resolution.
    pub target: Vec<f32>,
}

/// What one frame's optimisation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameStats {
    pub window_len: usize,
    pub iterations: u32,
    /// Loss on the current frame before and after the iterations.
    pub loss_before: f64,
    pub loss_after: f64,
    pub pruned: usize,
    pub keyframes: usize,
    /// Factor the target was scaled by (`exposure_fit`), when refitted.
    pub exposure_refit: Option<f32>,
    /// Gaussians created for uncovered pixels of this frame.
    pub filled: usize,
    /// The map's brightness against the photometric anchor in reach (render over target,
    /// [`super::exposure_fit::refit_scale`]), when one was rendered.
    pub anchor_scale: Option<f32>,
    /// Factor the map's colours were multiplied by to return to the anchors' unit.
    pub rescaled: Option<f32>,
}

/// The six groups of a flat parameter vector of `n` Gaussians, in storage order.
fn groups_mut(data: &mut [f32], n: usize, sh_degree: u32) -> [&mut [f32]; 6] {
    let mut rest = data;
    crate::render::group_widths(sh_degree).map(|w| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(w * n);
        rest = tail;
        head
    })
}

/// Converts window Gaussians to the renderer's flat layout in one pass over the window (each
/// Gaussian read once, its values sent to the six group runs).
pub fn to_render(gs: &[Gaussian], sh_degree: u32) -> Result<Gaussians, GaussianError> {
    let mut out = Gaussians::zeros(gs.len(), sh_degree)?;
    let k = crate::render::sh_coeffs(sh_degree);
    let [mean, scale, rot, opacity, dc, rest] = groups_mut(&mut out.data, gs.len(), sh_degree);
    for (i, g) in gs.iter().enumerate() {
        mean[3 * i..3 * i + 3].copy_from_slice(&g.mean);
        scale[3 * i..3 * i + 3].copy_from_slice(&g.log_scale);
        rot[4 * i..4 * i + 4].copy_from_slice(&g.rotation);
        opacity[i] = g.opacity_logit;
        dc[3 * i..3 * i + 3].copy_from_slice(&g.sh[0]);
        let r = 3 * (k - 1) * i;
        for (j, c) in g.sh[1..k].iter().enumerate() {
            rest[r + 3 * j..r + 3 * j + 3].copy_from_slice(c);
        }
    }
    Ok(out)
}

/// Copies the renderer's parameters back into window Gaussians (same count and order), in one
/// pass over the window.
pub fn from_render(src: &Gaussians, gs: &mut [Gaussian]) -> Result<(), GaussianError> {
    if src.len() != gs.len() {
        return Err(GaussianError::Render(format!(
            "renderer holds {} gaussians, window {}",
            src.len(),
            gs.len()
        )));
    }
    let k = crate::render::sh_coeffs(src.sh_degree());
    let [mean, scale, rot, opacity, dc, rest] = crate::render::GROUPS.map(|g| src.group(g));
    for (i, g) in gs.iter_mut().enumerate() {
        g.mean.copy_from_slice(&mean[3 * i..3 * i + 3]);
        g.log_scale.copy_from_slice(&scale[3 * i..3 * i + 3]);
        g.rotation.copy_from_slice(&rot[4 * i..4 * i + 4]);
        g.opacity_logit = opacity[i];
        g.sh[0].copy_from_slice(&dc[3 * i..3 * i + 3]);
        let r = 3 * (k - 1) * i;
        for (j, c) in g.sh[1..k].iter_mut().enumerate() {
            c.copy_from_slice(&rest[r + 3 * j..r + 3 * j + 3]);
        }
    }
    Ok(())
}

/// [`Gaussian::is_finite`] as one vectorisable pass over the exponent bits (all ones: an
/// infinity or a NaN) instead of a branch per value.
fn all_finite(g: &Gaussian) -> bool {
    const EXP: u32 = 0x7f80_0000;
    let bad = |v: &[f32]| {
        v.iter()
            .fold(0u32, |m, x| m | u32::from(x.to_bits() & EXP == EXP))
    };
    (bad(&g.mean)
        | bad(&g.log_scale)
        | bad(&g.rotation)
        | bad(&[g.opacity_logit])
        | bad(g.sh.as_flattened()))
        == 0
}

/// Slots sampled per group for [`fresh_prior`]'s medians.
const PRIOR_SAMPLES: usize = 4096;

/// Per component of one group (`w` values a slot in `buf`), the median over the slots that keep
/// their moments (`fresh[s]` false) of the non-zero values, sampled; zero where there are none.
fn fresh_prior(buf: &[f32], w: usize, fresh: &[bool]) -> Vec<f32> {
    let kept: Vec<usize> = (0..fresh.len()).filter(|&s| !fresh[s]).collect();
    let stride = kept.len().div_ceil(PRIOR_SAMPLES).max(1);
    (0..w)
        .map(|c| {
            let mut v: Vec<f32> = kept
                .iter()
                .step_by(stride)
                .map(|&s| buf[s * w + c])
                .filter(|x| *x > 0.0 && x.is_finite())
                .collect();
            if v.is_empty() {
                return 0.0;
            }
            let mid = v.len() / 2;
            *v.select_nth_unstable_by(mid, f32::total_cmp).1
        })
        .collect()
}

/// Applies a window sync plan to per-slot moments: replay moves, resize, then start the dirty
/// (new or re-uploaded) slots afresh: zero, or with `prior` per group and component
/// ([`fresh_prior`] of the kept slots, for the second moments).
///
/// Why a prior for the second moments: the renderer's Adam corrects the moments' bias with one
/// step count for the whole window, which is thousands of steps after the first frames. A slot
/// restarted from zero moments then gets `m / sqrt(v)` of `(1 - b1^k) / sqrt(1 - b2^k)` after
/// its own k steps: 3.2 at k = 1, 6.5 at k = 10, still 3.2 at k = 100, whatever the
/// gradient's size: sign-descent at several times the learning rate. A Gaussian coming back
/// into the window (a revisit), converged and with small gradients, was knocked about by that
/// for hundreds of steps (see `GaussianMapper::sync_renderer`). Started at the window's typical
/// second moment instead, its steps scale with its gradient as a settled slot's do.
///
/// Works group by group on contiguous runs (one copy per move and group), so the cost is the
/// size of the moments once plus the moves, not a lookup per value.
fn permute_moments(
    old: &Gaussians,
    plan: &SyncPlan,
    prior: bool,
) -> Result<Gaussians, GaussianError> {
    let deg = old.sh_degree();
    let n_old = old.len();
    let span = plan.len.max(n_old);
    let widths = crate::render::group_widths(deg);
    // Each group is permuted in place at the end of `data` (span slots, then cut to the plan's
    // length): one copy of the moments, not two through a scratch buffer.
    let mut data = Vec::with_capacity(span * widths.iter().sum::<usize>());
    for g in crate::render::GROUPS {
        let w = widths[g as usize];
        let start = data.len();
        data.extend_from_slice(old.group(g));
        data.resize(start + span * w, 0.0);
        let buf = &mut data[start..];
        for &(from, to) in &plan.moves {
            let (from, to) = (from as usize, to as usize);
            if from < span && to < span {
                buf.copy_within(from * w..(from + 1) * w, to * w);
            }
        }
        let fill = if prior && !plan.dirty.is_empty() {
            let mut fresh = vec![false; plan.len];
            for &s in &plan.dirty {
                if let Some(f) = fresh.get_mut(s as usize) {
                    *f = true;
                }
            }
            // Slots beyond the old length hold no moments yet: fresh too (they are dirty).
            fresh_prior(&buf[..plan.len * w], w, &fresh)
        } else {
            vec![0.0; w]
        };
        for &s in &plan.dirty {
            let s = s as usize;
            if s < plan.len {
                buf[s * w..(s + 1) * w].copy_from_slice(&fill);
            }
        }
        data.truncate(start + plan.len * w);
    }
    Ok(Gaussians::from_data(plan.len, deg, data)?)
}

/// The camera a window of `cfg` is optimised through for `camera`: `resolution` when set,
/// else the camera downsampled by `downsample`.
pub fn optimisation_camera(cfg: &super::GaussianConfig, camera: &CameraModel) -> CameraModel {
    match cfg.resolution {
        Some([w, h]) => camera.resized(w, h),
        None => camera.downsampled(cfg.downsample),
    }
}

/// The training target of `image` (exposure gain `exposure`) for a window of `cfg`:
/// exposure-normalised RGB f32 at [`optimisation_camera`]'s resolution.
pub fn optimisation_target(
    cfg: &super::GaussianConfig,
    camera: &CameraModel,
    image: &Image,
    exposure: f32,
) -> Vec<f32> {
    let c = optimisation_camera(cfg, camera);
    image_target_sized(image, c.width, c.height, exposure)
}

/// The renderer's camera for a mapper camera (distortion is not modelled by the rasteriser).
pub fn render_camera(c: &CameraModel, far: f64) -> RenderCamera {
    RenderCamera {
        width: c.width,
        height: c.height,
        fx: c.fx,
        fy: c.fy,
        cx: c.cx,
        cy: c.cy,
        near: super::camera::NEAR,
        far,
    }
}

/// Optimisation state kept by the mapper between frames.
#[derive(Default)]
pub(crate) struct OptimState {
    pub keyframes: KeyframePool,
    /// The first keyframes, kept: the map's brightness reference.
    pub anchors: AnchorSet,
    /// What transparent pixels show (sky, far surfaces), exposure-normalised; `None` until the
    /// first fit, or when disabled.
    pub background: Option<Background>,
    /// Frames optimised so far.
    pub frames: u64,
    /// Per-pixel buffers reused from iteration to iteration and frame to frame.
    scratch: Scratch,
    /// Background lookups of recent keyframe views, oldest first.
    keyframe_lookups: Vec<BackgroundLookup>,
}

/// Per-pixel working buffers of a frame's optimisation (the images are 3 or 1 values a pixel at
/// the optimisation resolution): allocated once, not per iteration.
#[derive(Default)]
struct Scratch {
    /// Background behind the render, interleaved RGB.
    background: Vec<f32>,
    /// The loss's target: the training image less the background showing through.
    adjusted: Vec<f32>,
    d_colour: Vec<f32>,
    d_alpha: Vec<f32>,
    /// Per-pixel mean absolute error (fill candidates).
    error: Vec<f32>,
}

/// The images of the latest forward: the renderer's own (`copy` is `None`) or the copy it
/// returned.
fn view<'a>(
    r: &'a dyn Renderer,
    copy: &'a Option<RenderOutput>,
) -> Result<RenderView<'a>, GaussianError> {
    match copy {
        Some(o) => Ok(o.view()),
        None => Ok(r.forward_view().ok_or(RenderError::NoForward)?),
    }
}

/// `target - (1 - alpha) bg` per value (interleaved RGB, one alpha a pixel) into `out`.
fn subtract_background(target: &[f32], alpha: &[f32], bg: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.resize(target.len(), 0.0);
    for (((o, t), b), a) in out
        .chunks_exact_mut(3)
        .zip(target.chunks_exact(3))
        .zip(bg.chunks_exact(3))
        .zip(alpha)
    {
        let k = 1.0 - a;
        for c in 0..3 {
            o[c] = t[c] - k * b[c];
        }
    }
}

/// d loss / d alpha = -bg . d loss / d composite, per pixel, into `out`.
fn alpha_gradient(d_colour: &[f32], bg: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        d_colour
            .chunks_exact(3)
            .zip(bg.chunks_exact(3))
            .map(|(g, b)| -(g[0] * b[0] + g[1] * b[1] + g[2] * b[2])),
    );
}

/// What [`GaussianMapper::refit_target`] found and rendered for it (the first iteration
/// reuses the render and the background: same pose, parameters and fit).
struct Refit {
    /// The factor the target was scaled by, `None` when it was kept.
    scale: Option<f32>,
    /// The render's copy (`None`: the renderer keeps it, [`view`]).
    render: Option<RenderOutput>,
    /// Whether the per-pixel background behind the render is in `Scratch::background` (not
    /// when there is none yet or it is off).
    background: bool,
}

/// Evidence a background cell keeps per fit (per optimisation iteration that sees it).
const BACKGROUND_DECAY: f64 = 0.8;

/// Brightness offsets from the anchors smaller than this (relative) are left alone: each
/// correction re-uploads the window, and the estimator's exposure takes a frame to follow.
const ANCHOR_DEADBAND: f32 = 0.003;
/// Largest brightness correction per frame, either way. With an anchor in reach nearly every
/// frame the drift to correct is a fraction of a per cent a frame, while a measurement far off
/// is an anchor view the window covers badly: on the simulated room, with 5 % allowed, a few
/// such frames (anchor scales 0.84, 0.89, 1.09) each moved the exposure estimate by 5 % and
/// cost 7 dB in the renders around them.
const ANCHOR_MAX_STEP: f32 = 1.01;
/// Frames (images) during which anchors are taken. Taken through the whole run (whenever a
/// view was out of every anchor's reach), the later anchors carried the unit's drift of their
/// time: on the 60 s room, anchors in reach measured the map at 0.80 to 1.21 of their targets
/// and the corrections fought each other (exposure error 10 % RMS, against 6.6 % without).
const ANCHOR_FRAMES: u64 = 100;
/// Fewest pixels of an anchor's view, as a fraction, that the window must cover (accumulated
/// opacity at least [`super::exposure_fit::MIN_ALPHA`]) for its render to be compared.
const ANCHOR_MIN_COVERAGE: f32 = 0.5;

impl GaussianMapper {
    fn adam(&self) -> AdamConfig {
        let c = self.config();
        AdamConfig {
            lr: [
                f64::from(c.lr_mean),
                f64::from(c.lr_scale),
                f64::from(c.lr_rotation),
                f64::from(c.lr_opacity),
                f64::from(c.lr_sh_dc),
                f64::from(c.lr_sh_rest),
            ],
            ..AdamConfig::default()
        }
    }

    /// Brings the renderer's buffers in line with the window (moments carried by slot moves).
    pub fn sync_renderer(&mut self, r: &mut dyn Renderer) -> Result<(), GaussianError> {
        let deg = self.config().sh_degree;
        let plan = self.window_mut().take_sync();
        let unchanged = plan.moves.is_empty() && plan.dirty.is_empty() && r.len() == plan.len;
        if unchanged {
            return Ok(());
        }
        let state = if !r.is_empty() {
            let permuted = |s: &AdamState| -> Result<AdamState, GaussianError> {
                Ok(AdamState {
                    m: permute_moments(&s.m, &plan, false)?,
                    v: permute_moments(&s.v, &plan, true)?,
                    step: s.step,
                })
            };
            Some(match r.adam_state_ref() {
                Some(s) => permuted(s)?,
                None => permuted(&r.adam_state()?)?,
            })
        } else {
            None
        };
        let g = to_render(self.window().gaussians(), deg)?;
        r.set_gaussians_owned(g, state)?;
        Ok(())
    }

    /// One frame of mapping optimisation on `image` (taken at body pose `world_t_imu`, with
    /// exposure gain `exposure`): sync, Adam iterations over the frame and recent keyframes,
    /// read-back, pruning.
    pub fn optimise_frame(
        &mut self,
        r: &mut dyn Renderer,
        image: &Image,
        world_t_imu: &Isometry3<f64>,
        exposure: f32,
    ) -> Result<FrameStats, GaussianError> {
        self.optimise_frame_with_target(r, image, None, world_t_imu, exposure)
    }

    /// [`Self::optimise_frame`] with the training target already computed
    /// ([`optimisation_target`] of `image` and `exposure`), e.g. by a thread that is not on the
    /// mapper's critical path; a target of the wrong size is computed again here.
    pub fn optimise_frame_with_target(
        &mut self,
        r: &mut dyn Renderer,
        image: &Image,
        target: Option<Vec<f32>>,
        world_t_imu: &Isometry3<f64>,
        exposure: f32,
    ) -> Result<FrameStats, GaussianError> {
        let cfg = self.config().clone();
        if image.width != self.camera().width || image.height != self.camera().height {
            return Err(GaussianError::Input(format!(
                "image {}x{} does not match the camera {}x{}",
                image.width,
                image.height,
                self.camera().width,
                self.camera().height
            )));
        }
        self.sync_renderer(r)?;
        let mut stats = FrameStats {
            window_len: self.window().len(),
            ..Default::default()
        };
        if self.window().is_empty() {
            return Ok(stats);
        }
        let opt_camera = self.optimisation_camera();
        let cam = render_camera(&opt_camera, cfg.window_range * 2.0);
        let t_cw = self.camera_t_world(world_t_imu);
        let size = 3 * opt_camera.width as usize * opt_camera.height as usize;
        let mut target = match target.filter(|t| t.len() == size) {
            Some(t) => t,
            None => image_target_sized(image, opt_camera.width, opt_camera.height, exposure),
        };
        // The refit's render is the first iteration's forward too (same pose and parameters,
        // and the latest forward is the one a backward differentiates): rendered once, and so
        // is the background behind it (no fit in between).
        let mut first_forward = None;
        let mut first_background = false;
        // Where the frame's view falls on the background grid: looked up by the refit, the
        // current-frame iterations and the fill (keyframes compute their own).
        let lookup = match &self.optim.background {
            Some(bg) if cfg.background => Some(bg.lookup(&cam, &t_cw)),
            None if cfg.background => {
                Some(Background::new(cfg.background_bins).lookup(&cam, &t_cw))
            }
            _ => None,
        };
        // The first frame sets the map's brightness unit: its fresh discs (opacity 0.9, not yet
        // trained) render darker than the colours they were given, so nothing to refit against.
        if cfg.refit_exposure && cfg.iterations > 0 && self.optim.frames > 0 {
            let refit = self.refit_target(r, &cam, &t_cw, lookup.as_ref(), &mut target)?;
            stats.exposure_refit = refit.scale;
            first_forward = Some(refit.render);
            first_background = refit.background;
        }
        let loss = LossConfig {
            ssim_weight: f64::from(cfg.ssim_weight),
        };
        self.optim.frames += 1;
        let adam = self.adam();
        // Keyframes too far for the window would pull it towards views it cannot explain.
        self.optim.keyframes.drop_far(&t_cw, cfg.window_range);
        // The anchor in reach takes the first keyframe iteration (see `AnchorSet`).
        let anchor = (cfg.anchors > 0)
            .then(|| {
                self.optim
                    .anchors
                    .in_reach(&t_cw, cfg.keyframe_distance, cfg.keyframe_angle_deg)
            })
            .flatten();
        for it in 0..cfg.iterations {
            if let (1, Some(a)) = (it, anchor) {
                if let Some(u) = self.anchor_iteration(r, &cam, a, &loss, &adam)? {
                    stats.anchor_scale = Some(u);
                    stats.iterations += 1;
                    continue;
                }
            }
            // Even iterations: the current frame; odd ones: the keyframes in turn.
            let key = if it % 2 == 1 {
                self.optim.keyframes.next()
            } else {
                None
            };
            let (pose, tgt) = match key {
                Some(k) => (&k.camera_t_world, &k.target),
                None => (&t_cw, &target),
            };
            let current = std::ptr::eq(tgt, &target);
            if cfg.background || (current && (it == 0 || it + 2 >= cfg.iterations)) {
                let first = it == 0 && current;
                let copy = match first_forward.take().filter(|_| first) {
                    Some(out) => out,
                    None => r.forward_kept(&cam, pose)?,
                };
                let first_bg = std::mem::take(&mut first_background) && first;
                let sc = &mut self.optim.scratch;
                let l = if cfg.background {
                    // Composite = colour + (1 - alpha) bg. Fitting the colour to
                    // target - (1 - alpha) bg is the same loss; the gradient through alpha is
                    // d loss / d alpha = -bg . d loss / d composite.
                    let bg = self
                        .optim
                        .background
                        .get_or_insert_with(|| Background::new(cfg.background_bins));
                    // A keyframe's view: its lookup kept while the keyframe is (the pool
                    // is visited in turn, so each comes back every few frames).
                    let lk = if current {
                        lookup.as_ref()
                    } else {
                        let cache = &mut self.optim.keyframe_lookups;
                        let at = match cache.iter().position(|l| l.fits(bg, &cam, pose)) {
                            Some(at) => at,
                            None => {
                                if cache.len() > cfg.keyframes {
                                    cache.remove(0);
                                }
                                cache.push(bg.lookup(&cam, pose));
                                cache.len() - 1
                            }
                        };
                        Some(&cache[at])
                    };
                    if !first_bg {
                        bg.per_pixel_into(&cam, pose, lk, &mut sc.background);
                    }
                    let out = view(r, &copy)?;
                    subtract_background(tgt, out.alpha, &sc.background, &mut sc.adjusted);
                    // The fit changes only the background, which the loss and the backward do
                    // not read (the adjusted target is made): fitted while the images are
                    // at hand.
                    bg.fit_with(&cam, pose, lk, tgt, out.colour, out.alpha, BACKGROUND_DECAY);
                    let l = r.loss_into(&sc.adjusted, &loss, &mut sc.d_colour)?;
                    alpha_gradient(&sc.d_colour, &sc.background, &mut sc.d_alpha);
                    r.backward_kept(&sc.d_colour, None, Some(&sc.d_alpha))?;
                    l
                } else {
                    let l = r.loss_into(tgt, &loss, &mut sc.d_colour)?;
                    r.backward_kept(&sc.d_colour, None, None)?;
                    l
                };
                r.adam_step(&adam)?;
                if current {
                    if it == 0 {
                        stats.loss_before = l;
                    }
                    stats.loss_after = l;
                }
            } else {
                r.step(&cam, pose, tgt, &loss, &adam)?;
            }
            stats.iterations += 1;
        }
        // Read back so the window (and write-back) hold the optimised values.
        match r.gaussians_ref() {
            Some(back) => from_render(back, self.window_mut().gaussians_mut())?,
            None => from_render(&r.gaussians()?, self.window_mut().gaussians_mut())?,
        }
        if let Some(u) = stats
            .anchor_scale
            .filter(|u| u.ln().abs() > ANCHOR_DEADBAND)
        {
            // Half the measured offset: one view's measurement is noisy (about 1 %), and an
            // anchor is in reach nearly every frame.
            let s = (1.0 / u)
                .sqrt()
                .clamp(1.0 / ANCHOR_MAX_STEP, ANCHOR_MAX_STEP);
            self.rescale_brightness(r, s)?;
            stats.rescaled = Some(s);
        }
        let fill = if cfg.fill {
            self.fill_candidates(r, &cam, &t_cw, lookup.as_ref(), &target)?
        } else {
            Vec::new()
        };
        let root = cfg.root_size as f32;
        let (window, map) = self.parts_mut();
        stats.pruned = window.prune(map, |g, depth| {
            // Oversized relative to the Gaussian's own cell.
            let cell = root / (1u32 << depth.min(20)) as f32;
            !all_finite(g)
                || g.opacity() < cfg.prune_opacity
                || g.max_scale() > cfg.prune_scale * cell
        });
        self.counters_mut().pruned += stats.pruned as u64;
        stats.filled = self.insert_fill(&fill, super::mapper::GaussianMapper::eye(&t_cw));
        if let Some(k) = stats.rescaled {
            // The frame's own target is in the unit before the correction, like the pool's.
            target.iter_mut().for_each(|v| *v *= k);
        }
        // Anchors from the first seconds only: later views carry whatever the brightness
        // unit drifted by since (see `ANCHOR_FRAMES`).
        let early = self.optim.frames <= ANCHOR_FRAMES;
        self.optim.anchors.consider(
            || Keyframe {
                camera_t_world: t_cw,
                target: target.clone(),
            },
            &t_cw,
            if early { cfg.anchors } else { 0 },
            cfg.keyframe_distance,
            cfg.keyframe_angle_deg,
        );
        self.optim.keyframes.consider(
            || Keyframe {
                camera_t_world: t_cw,
                target,
            },
            &t_cw,
            cfg.keyframes,
            cfg.keyframe_distance,
            cfg.keyframe_angle_deg,
        );
        stats.keyframes = self.optim.keyframes.len();
        Ok(stats)
    }

    /// One Adam iteration on anchor `i`'s view, its target scaled to the map's current
    /// brightness first (as the current frame's is, so the loss does not pull the brightness
    /// one way: the correction is [`Self::rescale_brightness`]'s). Returns that scale (render
    /// over target), or `None` without a step when the window covers too little of the view.
    fn anchor_iteration(
        &mut self,
        r: &mut dyn Renderer,
        cam: &RenderCamera,
        i: usize,
        loss: &LossConfig,
        adam: &AdamConfig,
    ) -> Result<Option<f32>, GaussianError> {
        let use_bg = self.config().background;
        let Some(anchor) = self.optim.anchors.get(i) else {
            return Ok(None);
        };
        let pose = anchor.camera_t_world;
        let copy = r.forward_kept(cam, &pose)?;
        let sc = &mut self.optim.scratch;
        let with_bg = match (&self.optim.background, use_bg) {
            (Some(bg), true) => {
                bg.per_pixel_into(cam, &pose, None, &mut sc.background);
                true
            }
            _ => false,
        };
        let scale = {
            let out = view(r, &copy)?;
            let covered = out
                .alpha
                .iter()
                .filter(|a| **a >= super::exposure_fit::MIN_ALPHA)
                .count();
            if (covered as f32) < ANCHOR_MIN_COVERAGE * out.alpha.len() as f32 {
                return Ok(None);
            }
            if !with_bg {
                sc.background.clear();
                sc.background.resize(out.colour.len(), 0.0);
            }
            // Composite over the background, as the current frame's refit compares.
            let c = &mut sc.adjusted;
            c.clear();
            c.extend_from_slice(out.colour);
            for ((c, b), a) in c
                .chunks_exact_mut(3)
                .zip(sc.background.chunks_exact(3))
                .zip(out.alpha)
            {
                for ch in 0..3 {
                    c[ch] += (1.0 - a) * b[ch];
                }
            }
            let Some(u) = super::exposure_fit::refit_scale(&anchor.target, c, out.alpha) else {
                return Ok(None);
            };
            // The loss's target: the scaled anchor less the background showing through.
            c.clear();
            c.extend(anchor.target.iter().map(|t| t * u));
            let scaled = std::mem::take(c);
            subtract_background(&scaled, out.alpha, &sc.background, c);
            u
        };
        let sc = &mut self.optim.scratch;
        r.loss_into(&sc.adjusted, loss, &mut sc.d_colour)?;
        if with_bg {
            alpha_gradient(&sc.d_colour, &sc.background, &mut sc.d_alpha);
            r.backward_kept(&sc.d_colour, None, Some(&sc.d_alpha))?;
        } else {
            r.backward_kept(&sc.d_colour, None, None)?;
        }
        r.adam_step(adam)?;
        Ok(Some(scale))
    }

    /// Multiplies the brightness of everything the map renders by `s`: the window (here and on
    /// the renderer, whose Adam moments are kept, scaled as the colour coefficients' gradients
    /// scale), the rest of the map, the background and the keyframes' targets (in the map's
    /// unit). The exposure estimate follows, as it is measured against the map. An exact
    /// change of the brightness unit: renders scale by `s` ([`Gaussian::scale_colour`]).
    fn rescale_brightness(&mut self, r: &mut dyn Renderer, s: f32) -> Result<(), GaussianError> {
        let deg = self.config().sh_degree;
        self.window_mut()
            .gaussians_mut()
            .iter_mut()
            .for_each(|g| g.scale_colour(s));
        let (_, map) = self.parts_mut();
        for id in 0..map.meta.len() {
            let m = &map.meta[id];
            if m.alive && m.slot == super::map::NO_SLOT {
                let mut g = map.store.get(id as u32);
                g.scale_colour(s);
                map.store.set(id as u32, &g);
            }
        }
        if let Some(bg) = self.optim.background.as_mut() {
            bg.scale_colours(s);
        }
        self.optim.keyframes.scale_targets(s);
        let mut state = match r.adam_state_ref() {
            Some(st) => st.clone(),
            None => r.adam_state()?,
        };
        // d loss / d (s p + c) = (d loss / d p) / s.
        for g in [Group::ShDc, Group::ShRest] {
            state.m.group_mut(g).iter_mut().for_each(|v| *v /= s);
            state.v.group_mut(g).iter_mut().for_each(|v| *v /= s * s);
        }
        let g = to_render(self.window().gaussians(), deg)?;
        r.set_gaussians_owned(g, Some(state))?;
        Ok(())
    }

    /// Scales `target` (exposure-normalised, at the optimisation resolution) by
    /// [`super::exposure_fit::refit_scale`] against the composite render at `t_cw`; returns the
    /// factor, or `None` (target unchanged) when the render covers too little or disagrees, with
    /// the render and the background behind it.
    fn refit_target(
        &mut self,
        r: &mut dyn Renderer,
        cam: &RenderCamera,
        t_cw: &Isometry3<f64>,
        lookup: Option<&BackgroundLookup>,
        target: &mut [f32],
    ) -> Result<Refit, GaussianError> {
        let copy = r.forward_kept(cam, t_cw)?;
        let out = view(r, &copy)?;
        let enabled = self.config().background;
        let sc = &mut self.optim.scratch;
        let mut background = false;
        let composite = match (enabled, self.optim.background.as_ref()) {
            (true, Some(bg)) => {
                bg.per_pixel_into(cam, t_cw, lookup, &mut sc.background);
                background = true;
                // The adjusted target's buffer, free until the iterations.
                let c = &mut sc.adjusted;
                c.clear();
                c.extend_from_slice(out.colour);
                for ((c, b), a) in c
                    .chunks_exact_mut(3)
                    .zip(sc.background.chunks_exact(3))
                    .zip(out.alpha)
                {
                    let k = 1.0 - a;
                    for ch in 0..3 {
                        c[ch] += k * b[ch];
                    }
                }
                &sc.adjusted[..]
            }
            _ => out.colour,
        };
        let k = super::exposure_fit::refit_scale(target, composite, out.alpha);
        if let Some(k) = k {
            target.iter_mut().for_each(|v| *v *= k);
        }
        Ok(Refit {
            scale: k,
            render: copy,
            background,
        })
    }

    /// Points extending the window's surfaces into the pixels of the view at `t_cw` (target
    /// `target` at `cam`'s resolution) that the map leaves uncovered and the background does
    /// not explain. Judged on a render after the last Adam step: the last iteration's own
    /// render (before its step) saves a forward pass, but fills more, unoptimised, pixels
    /// (`tests/gaussian_oracle.rs` `write_back_keeps_optimised_region` lost 0.5 dB with it).
    fn fill_candidates(
        &mut self,
        r: &mut dyn Renderer,
        cam: &RenderCamera,
        t_cw: &Isometry3<f64>,
        lookup: Option<&BackgroundLookup>,
        target: &[f32],
    ) -> Result<Vec<super::fill::FillPoint>, GaussianError> {
        let cfg = self.config().clone();
        let copy = r.forward_kept(cam, t_cw)?;
        let out = view(r, &copy)?;
        let sc = &mut self.optim.scratch;
        match &self.optim.background {
            Some(bg) if cfg.background => {
                bg.per_pixel_into(cam, t_cw, lookup, &mut sc.background);
            }
            _ => {
                sc.background.clear();
                sc.background.resize(out.colour.len(), 0.0);
            }
        }
        sc.error.clear();
        sc.error.extend(
            target
                .chunks_exact(3)
                .zip(out.colour.chunks_exact(3))
                .zip(sc.background.chunks_exact(3))
                .zip(out.alpha)
                .map(|(((t, c), b), a)| {
                    let k = 1.0 - a;
                    let e = |ch: usize| (t[ch] - c[ch] - k * b[ch]).abs();
                    (e(0) + e(1) + e(2)) / 3.0
                }),
        );
        let error = std::mem::take(&mut sc.error);
        let params = super::fill::FillParams {
            step: cfg.fill_step as usize,
            max_alpha: 0.5,
            min_error: cfg.fill_min_error,
            radius_px: cfg.fill_radius * f64::from(cam.width),
            max_extrapolation: cfg.fill_max_extrapolation,
            max_points: cfg.fill_max_points,
        };
        let points = super::fill::fill_points(
            self.window().gaussians(),
            cam,
            t_cw,
            out.alpha,
            &error,
            target,
            &params,
        );
        self.optim.scratch.error = error;
        Ok(points)
    }

    /// The camera the window is optimised through: `resolution` when set, else the camera
    /// downsampled by `downsample`.
    pub fn optimisation_camera(&self) -> CameraModel {
        optimisation_camera(self.config(), self.camera())
    }

    /// Renders the window at body pose `world_t_imu` at full camera resolution (RGB8, map units).
    pub fn render(
        &mut self,
        r: &mut dyn Renderer,
        world_t_imu: &Isometry3<f64>,
    ) -> Result<Image, GaussianError> {
        self.sync_renderer(r)?;
        let cam = render_camera(self.camera(), self.config().window_range * 2.0);
        let mut img = Image::new(0, cam.width, cam.height);
        if r.is_empty() {
            return Ok(img);
        }
        let t_cw = self.camera_t_world(world_t_imu);
        let copy = r.forward_kept(&cam, &t_cw)?;
        let out = view(r, &copy)?;
        let bgp = match &self.optim.background {
            Some(bg) if self.config().background => bg.per_pixel(&cam, &t_cw),
            _ => vec![0.0; out.colour.len()],
        };
        for (((d, s), b), a) in img
            .rgb
            .chunks_exact_mut(3)
            .zip(out.colour.chunks_exact(3))
            .zip(bgp.chunks_exact(3))
            .zip(out.alpha)
        {
            let k = 1.0 - a;
            for c in 0..3 {
                let v = s[c] + k * b[c];
                d[c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        Ok(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Group, GROUPS};

    /// Moments whose values name their slot, group and component.
    fn labelled(n: usize, deg: u32) -> Gaussians {
        let mut m = Gaussians::zeros(n, deg).unwrap();
        for (gi, g) in GROUPS.into_iter().enumerate() {
            for i in 0..n {
                for (c, v) in m.get_mut(g, i).iter_mut().enumerate() {
                    *v = (1000 * i + 10 * gi + c) as f32 + 1.0;
                }
            }
        }
        m
    }

    /// The plan replayed value by value on a per-slot mirror (the window's contract).
    fn reference(old: &Gaussians, plan: &SyncPlan) -> Gaussians {
        let span = plan.len.max(old.len());
        let mut slots: Vec<Option<usize>> =
            (0..span).map(|i| (i < old.len()).then_some(i)).collect();
        for &(from, to) in &plan.moves {
            slots[to as usize] = slots[from as usize];
        }
        let mut out = Gaussians::zeros(plan.len, old.sh_degree()).unwrap();
        for (s, slot) in slots.iter().enumerate().take(plan.len) {
            if plan.dirty.contains(&(s as u32)) {
                continue;
            }
            if let Some(src) = *slot {
                for g in GROUPS {
                    out.get_mut(g, s).copy_from_slice(old.get(g, src));
                }
            }
        }
        out
    }

    #[test]
    fn all_finite_agrees_with_is_finite() {
        let mut g = Gaussian::default();
        assert!(all_finite(&g) && g.is_finite());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for (k, ok) in [f32::MAX, f32::MIN_POSITIVE, -0.0, 1e-40]
                .into_iter()
                .enumerate()
            {
                let mut h = g;
                h.sh[15][2] = ok;
                h.mean[k % 3] = ok;
                assert!(all_finite(&h) && h.is_finite());
                match k {
                    0 => h.mean[1] = bad,
                    1 => h.rotation[3] = bad,
                    2 => h.opacity_logit = bad,
                    _ => h.sh[9][1] = bad,
                }
                assert!(!all_finite(&h) && !h.is_finite(), "{h:?}");
            }
        }
        g.log_scale[2] = f32::NAN;
        assert!(!all_finite(&g));
    }

    #[test]
    fn render_layout_round_trips_and_puts_each_value_in_its_group() {
        for deg in [0, 1, 3] {
            let k = crate::render::sh_coeffs(deg);
            // Every value distinct: slot, field and component.
            let gs: Vec<Gaussian> = (0..5)
                .map(|i| {
                    let v = |f: usize, c: usize| (1000 * i + 10 * f + c) as f32;
                    let mut g = Gaussian {
                        mean: [v(0, 0), v(0, 1), v(0, 2)],
                        log_scale: [v(1, 0), v(1, 1), v(1, 2)],
                        rotation: [v(2, 0), v(2, 1), v(2, 2), v(2, 3)],
                        opacity_logit: v(3, 0),
                        ..Default::default()
                    };
                    for (j, c) in g.sh.iter_mut().enumerate().take(k) {
                        *c = [v(4 + j, 0), v(4 + j, 1), v(4 + j, 2)];
                    }
                    g
                })
                .collect();
            let r = to_render(&gs, deg).unwrap();
            for (i, g) in gs.iter().enumerate() {
                assert_eq!(r.get(Group::Mean, i), &g.mean);
                assert_eq!(r.get(Group::LogScale, i), &g.log_scale);
                assert_eq!(r.get(Group::Rotation, i), &g.rotation);
                assert_eq!(r.get(Group::Opacity, i), &[g.opacity_logit]);
                assert_eq!(r.get(Group::ShDc, i), &g.sh[0]);
                assert_eq!(r.get(Group::ShRest, i), g.sh[1..k].concat());
            }
            let mut back = vec![Gaussian::default(); gs.len()];
            from_render(&r, &mut back).unwrap();
            assert_eq!(back, gs, "degree {deg}");
            assert!(from_render(&r, &mut back[1..]).is_err());
        }
    }

    /// Fresh slots start at the kept slots' median second moment (per component, zeros not
    /// counted), so their first steps scale with the gradient; without kept slots, at zero.
    #[test]
    fn fresh_second_moments_start_at_the_kept_slots_median() {
        let deg = 0;
        let mut v = Gaussians::zeros(6, deg).unwrap();
        for i in 0..6 {
            // Slot 5 has no second moment yet (zero): not counted.
            let x = if i == 5 { 0.0 } else { (i + 1) as f32 };
            for g in GROUPS {
                for (c, val) in v.get_mut(g, i).iter_mut().enumerate() {
                    *val = x * (c + 1) as f32;
                }
            }
        }
        // Slot 0 swaps in the last one, slots 2 and 6 (new) start afresh.
        let plan = SyncPlan {
            moves: vec![(5, 0)],
            dirty: vec![2, 6],
            len: 7,
        };
        let got = permute_moments(&v, &plan, true).unwrap();
        // Kept slots 0 (zero, moved from 5), 1, 3, 4 and 5 (zero): the non-zero values 2, 4
        // and 5 (times the component's factor) have the median 4.
        for g in GROUPS {
            for s in [2, 6] {
                for (c, val) in got.get(g, s).iter().enumerate() {
                    assert_eq!(*val, 4.0 * (c + 1) as f32, "{g:?} slot {s}");
                }
            }
            assert_eq!(got.get(g, 1), v.get(g, 1));
        }
        // Zero prior when asked for none, or when no kept slot has a moment.
        let zero = permute_moments(&v, &plan, false).unwrap();
        assert!(zero.get(Group::Opacity, 6).iter().all(|x| *x == 0.0));
        let all = SyncPlan {
            moves: vec![],
            dirty: (0..6).collect(),
            len: 6,
        };
        let fresh = permute_moments(&v, &all, true).unwrap();
        assert!(fresh.data.iter().all(|x| *x == 0.0));
    }

    #[test]
    fn permuted_moments_follow_moves_growth_truncation_and_dirty_slots() {
        for deg in [0, 1, 3] {
            let old = labelled(10, deg);
            // Shrink with swap-removes (a chain through one slot), then regrow with new slots.
            let plans = [
                SyncPlan {
                    moves: vec![(9, 2), (8, 5), (7, 2)],
                    dirty: vec![],
                    len: 7,
                },
                SyncPlan {
                    moves: vec![(9, 0), (8, 3)],
                    dirty: vec![8, 9, 10, 11],
                    len: 12,
                },
                SyncPlan {
                    moves: vec![],
                    dirty: vec![1],
                    len: 10,
                },
            ];
            for plan in &plans {
                let got = permute_moments(&old, plan, false).unwrap();
                assert_eq!(got, reference(&old, plan), "degree {deg}, plan {plan:?}");
            }
        }
    }
}
