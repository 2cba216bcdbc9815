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
use super::convert::to_render;
use super::keyframes::{AnchorSet, KeyframePool};
use super::mapper::GaussianMapper;
use super::params::Gaussian;
use super::window::SyncPlan;
use super::GaussianError;
use crate::render::{
    AdamConfig, AdamState, Camera as RenderCamera, Gaussians, RenderError, RenderOutput,
    RenderView, Renderer,
};
use crate::sensors::Camera;
use crate::sensors::Image;

impl From<RenderError> for GaussianError {
    fn from(e: RenderError) -> Self {
        GaussianError::Render(e.to_string())
    }
}

/// A training view kept to fight forgetting.
#[derive(Debug, Clone, PartialEq)]
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
    /// Pruned Gaussians (not counting split parents).
    pub pruned: usize,
    /// Gaussians split into smaller children (see `split`).
    pub split: usize,
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
    /// Milliseconds the frame's optimisation took (what the time budget bounds).
    pub frame_ms: f64,
}

/// [`Gaussian::is_finite`] as one vectorisable pass over the exponent bits (all ones: an
/// infinity or a NaN) instead of a branch per value.
pub(super) fn all_finite(g: &Gaussian) -> bool {
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
pub fn optimisation_camera(cfg: &super::GaussianConfig, camera: &Camera) -> Camera {
    match cfg.resolution {
        Some([w, h]) => camera.resized(w, h),
        None => camera.downsampled(cfg.downsample),
    }
}

/// The renderer's camera for a mapper camera (distortion is not modelled by the rasteriser).
pub fn render_camera(c: &Camera, far: f64) -> RenderCamera {
    RenderCamera {
        width: c.width,
        height: c.height,
        fx: c.fx,
        fy: c.fy,
        cx: c.cx,
        cy: c.cy,
        near: crate::sensors::rig::NEAR,
        far,
    }
}

/// Optimisation state kept by the mapper between frames.
#[derive(Default)]
pub(crate) struct OptimState {
    pub keyframes: KeyframePool,
    /// The first keyframes, kept: the map's brightness reference.
    pub anchors: AnchorSet,
    /// The anchor whose view the last window maintenance holds whole: the only one that may
    /// train and measure the brightness (a partly windowed view renders holes).
    pub anchor_windowed: Option<usize>,
    /// What transparent pixels show (sky, far surfaces), exposure-normalised; `None` until the
    /// first fit, or when disabled.
    pub background: Option<Background>,
    /// Frames optimised so far.
    pub frames: u64,
    /// Per-pixel buffers reused from iteration to iteration and frame to frame.
    pub(super) scratch: Scratch,
    /// Background lookups of recent keyframe views, oldest first.
    pub(super) keyframe_lookups: Vec<BackgroundLookup>,
    /// Costs of an iteration and of a frame's tail, for the time budget.
    pub pace: super::budget::Pace,
    /// The last optimised view's error (from the fill step): where scans may refine.
    pub last_error: Option<super::refine::ErrorView>,
}

/// Per-pixel working buffers of a frame's optimisation (the images are 3 or 1 values a pixel at
/// the optimisation resolution): allocated once, not per iteration.
#[derive(Default)]
pub(super) struct Scratch {
    /// Background behind the render, interleaved RGB.
    pub background: Vec<f32>,
    /// The loss's target: the training image less the background showing through.
    pub adjusted: Vec<f32>,
    pub d_colour: Vec<f32>,
    pub d_alpha: Vec<f32>,
    /// Per-pixel mean absolute error (fill candidates).
    pub error: Vec<f32>,
}

/// The images of the latest forward: the renderer's own (`copy` is `None`) or the copy it
/// returned.
pub(super) fn view<'a>(
    r: &'a dyn Renderer,
    copy: &'a Option<RenderOutput>,
) -> Result<RenderView<'a>, GaussianError> {
    match copy {
        Some(o) => Ok(o.view()),
        None => Ok(r.forward_view().ok_or(RenderError::NoForward)?),
    }
}

impl GaussianMapper {
    pub(super) fn adam(&self) -> AdamConfig {
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

    /// The camera the window is optimised through: `resolution` when set, else the camera
    /// downsampled by `downsample`.
    pub fn optimisation_camera(&self) -> Camera {
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
