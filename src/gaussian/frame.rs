//! One frame of the mapper's optimisation, as named steps: check the image, sync the renderer,
//! the frame's view and target, the exposure refit, the Adam iterations over the frame, the
//! keyframes and an anchor, the read-back, the brightness correction, pruning and fill, and
//! the view kept as a keyframe or anchor.

use nalgebra::Isometry3;

use super::background::{Background, BackgroundLookup};
use super::budget::Limit;
use super::convert::{from_render, to_render};
use super::mapper::GaussianMapper;
use super::optimise::{all_finite, render_camera, view, FrameStats, Keyframe};
use super::resample::image_target_sized;
use super::GaussianError;
use crate::render::{
    AdamConfig, Camera as RenderCamera, Group, LossConfig, RenderOutput, Renderer,
};
use crate::sensors::Image;

/// One frame's view and training target while it is optimised.
struct FrameView {
    /// The renderer's camera at the optimisation resolution.
    cam: RenderCamera,
    t_cw: Isometry3<f64>,
    /// Exposure-normalised RGB at the optimisation resolution.
    target: Vec<f32>,
    /// Where the view falls on the background grid: looked up once for the refit, the
    /// current-frame iterations and the fill (keyframes compute their own).
    lookup: Option<BackgroundLookup>,
    /// The refit's render, which is the first iteration's forward too (same pose and
    /// parameters, and the latest forward is the one a backward differentiates).
    first_forward: Option<Option<RenderOutput>>,
    /// Whether the background behind that render is in the scratch buffer already.
    first_background: bool,
}

/// What one iteration of a frame needs besides the mapper: its index, the frame's iteration
/// limit and anchor, and the settings fixed for the frame.
struct Step<'a> {
    it: u32,
    limit: Limit,
    anchor: Option<usize>,
    cfg: &'a super::GaussianConfig,
    loss: &'a LossConfig,
    adam: &'a AdamConfig,
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

/// Gaussians more transparent than this are not split: splitting haze makes more haze.
const SPLIT_MIN_OPACITY: f32 = 0.1;

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
        self.optim.pace.start_frame();
        self.check_image(image)?;
        self.sync_renderer(r)?;
        let mut stats = FrameStats {
            window_len: self.window().len(),
            ..Default::default()
        };
        if self.window().is_empty() {
            return Ok(stats);
        }
        let mut frame = self.frame_view(image, world_t_imu, exposure);
        self.refit_exposure(r, &mut frame, &mut stats)?;
        self.iterate(r, &mut frame, &mut stats)?;
        self.optim.pace.start_tail();
        self.read_back(r)?;
        self.correct_brightness(r, &mut stats)?;
        self.prune_and_fill(r, &frame, &mut stats)?;
        self.keep_view(frame, &mut stats);
        self.optim.pace.end_tail();
        stats.frame_ms = self.optim.pace.elapsed_ms();
        Ok(stats)
    }

    /// The image must be the camera's size.
    fn check_image(&self, image: &Image) -> Result<(), GaussianError> {
        if image.width != self.camera().width || image.height != self.camera().height {
            return Err(GaussianError::Input(format!(
                "image {}x{} does not match the camera {}x{}",
                image.width,
                image.height,
                self.camera().width,
                self.camera().height
            )));
        }
        Ok(())
    }

    /// The frame's camera, pose, target and background lookup.
    fn frame_view(&self, image: &Image, world_t_imu: &Isometry3<f64>, exposure: f32) -> FrameView {
        let cfg = self.config();
        let opt_camera = self.optimisation_camera();
        let cam = render_camera(&opt_camera, cfg.window_range * 2.0);
        let t_cw = self.camera_t_world(world_t_imu);
        let target = image_target_sized(image, opt_camera.width, opt_camera.height, exposure);
        let lookup = match &self.optim.background {
            Some(bg) if cfg.background => Some(bg.lookup(&cam, &t_cw)),
            None if cfg.background => {
                Some(Background::new(cfg.background_bins).lookup(&cam, &t_cw))
            }
            _ => None,
        };
        FrameView {
            cam,
            t_cw,
            target,
            lookup,
            first_forward: None,
            first_background: false,
        }
    }

    /// Scales the target to the map's brightness unit. The first frame sets that unit: its
    /// fresh discs (opacity 0.9, not yet trained) render darker than the colours they were
    /// given, so there is nothing to refit against.
    fn refit_exposure(
        &mut self,
        r: &mut dyn Renderer,
        frame: &mut FrameView,
        stats: &mut FrameStats,
    ) -> Result<(), GaussianError> {
        let cfg = self.config();
        if cfg.refit_exposure && cfg.iterations > 0 && self.optim.frames > 0 {
            let lookup = frame.lookup.as_ref();
            let refit = self.refit_target(r, &frame.cam, &frame.t_cw, lookup, &mut frame.target)?;
            stats.exposure_refit = refit.scale;
            frame.first_forward = Some(refit.render);
            frame.first_background = refit.background;
        }
        Ok(())
    }

    /// The Adam iterations: even ones on the current frame, odd ones on the keyframes in turn,
    /// the second on the anchor in reach (see `AnchorSet`).
    fn iterate(
        &mut self,
        r: &mut dyn Renderer,
        frame: &mut FrameView,
        stats: &mut FrameStats,
    ) -> Result<(), GaussianError> {
        let cfg = self.config().clone();
        let t_cw = frame.t_cw;
        self.optim.frames += 1;
        // Keyframes too far for the window would pull it towards views it cannot explain.
        self.optim.keyframes.drop_far(&t_cw, cfg.window_range);
        let anchor = (cfg.anchors > 0)
            .then(|| {
                self.optim
                    .anchors
                    .in_reach(&t_cw, cfg.keyframe_distance, cfg.keyframe_angle_deg)
            })
            .flatten()
            .filter(|&a| self.optim.anchor_windowed == Some(a));
        let limit = Limit::from_config(cfg.iterations, cfg.time_budget_ms, cfg.max_iterations);
        let loss = LossConfig {
            ssim_weight: f64::from(cfg.ssim_weight),
        };
        let adam = self.adam();
        // A time budget always leaves room for the second iteration when an anchor or a
        // keyframe can take it: with the first alone (the current frame) on every frame the
        // brightness has no reference and the map forgets what the keyframes saw (the room
        // at a 60 ms budget: 13.9 % exposure RMS error against 5.3 % at fixed 3 iterations).
        let reserved = match limit {
            Limit::Budget { max, .. }
                if anchor.is_some() || self.optim.keyframes.any_windowed() =>
            {
                max.min(2)
            }
            _ => 0,
        };
        let mut it = 0;
        while it < reserved || self.optim.pace.more(limit, it) {
            self.optim.pace.start_iteration();
            let step = Step {
                it,
                limit,
                anchor,
                cfg: &cfg,
                loss: &loss,
                adam: &adam,
            };
            self.iteration(r, frame, stats, step)?;
            self.optim.pace.end_iteration();
            it += 1;
        }
        Ok(())
    }

    /// Iteration `it` of [`Self::iterate`].
    fn iteration(
        &mut self,
        r: &mut dyn Renderer,
        frame: &mut FrameView,
        stats: &mut FrameStats,
        step: Step<'_>,
    ) -> Result<(), GaussianError> {
        let Step {
            it,
            limit,
            anchor,
            cfg,
            loss,
            adam,
        } = step;
        let cam = frame.cam;
        let t_cw = frame.t_cw;
        {
            if let (1, Some(a)) = (it, anchor) {
                if let Some(u) = self.anchor_iteration(r, &cam, a, loss, adam)? {
                    stats.anchor_scale = Some(u);
                    stats.iterations += 1;
                    return Ok(());
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
                None => (&t_cw, &frame.target),
            };
            let current = std::ptr::eq(tgt, &frame.target);
            let near_end = self.optim.pace.near_end(limit, it);
            if cfg.background || (current && (it == 0 || near_end)) {
                let first = it == 0 && current;
                let copy = match frame.first_forward.take().filter(|_| first) {
                    Some(out) => out,
                    None => r.forward_kept(&cam, pose)?,
                };
                let first_bg = std::mem::take(&mut frame.first_background) && first;
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
                        frame.lookup.as_ref()
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
                    let l = r.loss_into(&sc.adjusted, loss, &mut sc.d_colour)?;
                    alpha_gradient(&sc.d_colour, &sc.background, &mut sc.d_alpha);
                    r.backward_kept(&sc.d_colour, None, Some(&sc.d_alpha))?;
                    l
                } else {
                    let l = r.loss_into(tgt, loss, &mut sc.d_colour)?;
                    r.backward_kept(&sc.d_colour, None, None)?;
                    l
                };
                r.adam_step(adam)?;
                if current {
                    if it == 0 {
                        stats.loss_before = l;
                    }
                    stats.loss_after = l;
                }
            } else {
                r.step(&cam, pose, tgt, loss, adam)?;
            }
            stats.iterations += 1;
        }
        Ok(())
    }

    /// Reads the parameters back so the window (and write-back) hold the optimised values.
    fn read_back(&mut self, r: &mut dyn Renderer) -> Result<(), GaussianError> {
        match r.gaussians_ref() {
            Some(back) => from_render(back, self.window_mut().gaussians_mut())?,
            None => from_render(&r.gaussians()?, self.window_mut().gaussians_mut())?,
        }
        Ok(())
    }

    /// Half the brightness offset an anchor measured, when past the deadband: one view's
    /// measurement is noisy (about 1 %), and an anchor is in reach nearly every frame.
    fn correct_brightness(
        &mut self,
        r: &mut dyn Renderer,
        stats: &mut FrameStats,
    ) -> Result<(), GaussianError> {
        if let Some(u) = stats
            .anchor_scale
            .filter(|u| u.ln().abs() > ANCHOR_DEADBAND)
        {
            let s = (1.0 / u)
                .sqrt()
                .clamp(1.0 / ANCHOR_MAX_STEP, ANCHOR_MAX_STEP);
            self.rescale_brightness(r, s)?;
            stats.rescaled = Some(s);
        }
        Ok(())
    }

    /// Prunes broken, transparent and oversized Gaussians, and fills what the map leaves
    /// uncovered in the view (candidates judged before the pruning).
    fn prune_and_fill(
        &mut self,
        r: &mut dyn Renderer,
        frame: &FrameView,
        stats: &mut FrameStats,
    ) -> Result<(), GaussianError> {
        let cfg = self.config().clone();
        let fill = if cfg.fill {
            let lookup = frame.lookup.as_ref();
            self.fill_candidates(r, &frame.cam, &frame.t_cw, lookup, &frame.target)?
        } else {
            Vec::new()
        };
        let children = self.mark_splits(frame);
        stats.split = children.len();
        let root = cfg.root_size as f32;
        let (window, map) = self.parts_mut();
        // Split parents carry a non-finite opacity (`mark_splits`) and go with the pruned.
        let removed = window.prune(map, |g, depth| {
            // Oversized relative to the Gaussian's own cell.
            let cell = root / (1u32 << depth.min(20)) as f32;
            !all_finite(g)
                || g.opacity() < cfg.prune_opacity
                || g.max_scale() > cfg.prune_scale * cell
        });
        stats.pruned = removed.saturating_sub(stats.split);
        for (kids, depth) in children {
            for g in kids {
                let id = map.insert_child(g, depth)?;
                window.adopt(map, id);
            }
        }
        self.counters_mut().pruned += stats.pruned as u64;
        self.counters_mut().split += stats.split as u64;
        stats.filled = self.insert_fill(&fill, GaussianMapper::eye(&frame.t_cw));
        Ok(())
    }

    /// Chooses the windowed Gaussians to split in the frame's view (see `split`), marks each for
    /// removal by the pruning that follows (opacity logit -inf, which no kept Gaussian has) and
    /// returns their children with the octree level they go to: one below the parent's. Uses
    /// the frame's error view, which [`Self::fill_candidates`] has just refreshed.
    fn mark_splits(&mut self, frame: &FrameView) -> Vec<(Vec<super::Gaussian>, u32)> {
        let cfg = self.config();
        if cfg.split_footprint <= 0.0 || cfg.split_max == 0 || cfg.leaf_pixels <= 0.0 {
            return Vec::new();
        }
        let finest_disc = cfg.init_scale * cfg.leaf_size() as f32;
        let c = self.camera();
        let params = super::split::SplitParams {
            focal: c.fx.max(c.fy),
            min_footprint_px: cfg.split_footprint * cfg.leaf_pixels,
            min_scale: finest_disc / (1u32 << cfg.split_levels.min(20)) as f32,
            max_splits: cfg.split_max,
            min_opacity: SPLIT_MIN_OPACITY,
        };
        let min_error = cfg.split_min_error;
        // Room in the window for the children: a full window refuses whole root voxels of
        // the view, which costs more than a blurred surface.
        let room = self.window().capacity().saturating_sub(self.window().len()) / 3;
        let errors = self.optim.last_error.as_ref().filter(|_| min_error > 0.0);
        let mut picked = super::split::split_candidates(
            self.window().gaussians(),
            &frame.cam,
            &frame.t_cw,
            &params,
            |m| errors.is_none_or(|e| e.needs_detail(m, min_error)),
        );
        picked.truncate(room);
        let (window, map) = self.parts_mut();
        picked
            .into_iter()
            .map(|i| {
                let id = window.ids()[i];
                let depth = u32::from(map.meta[id as usize].depth) + 1;
                let g = &mut window.gaussians_mut()[i];
                let kids = super::split::split_children(g, params.min_scale);
                g.opacity_logit = f32::NEG_INFINITY;
                (kids, depth)
            })
            .collect()
    }

    /// The view as an anchor (in the first seconds) and a keyframe, its target in the map's
    /// brightness unit.
    fn keep_view(&mut self, frame: FrameView, stats: &mut FrameStats) {
        let cfg = self.config().clone();
        let FrameView {
            t_cw, mut target, ..
        } = frame;
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
        match &mut self.optim.last_error {
            Some(v) => {
                v.cam = *cam;
                v.t_cw = *t_cw;
                v.error.clear();
                v.error.extend_from_slice(&error);
            }
            None => {
                self.optim.last_error = Some(super::refine::ErrorView {
                    cam: *cam,
                    t_cw: *t_cw,
                    error: error.clone(),
                });
            }
        }
        self.optim.scratch.error = error;
        Ok(points)
    }
}
