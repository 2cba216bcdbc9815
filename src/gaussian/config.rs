//! `gaussian.*`: map resolution, initialisation, window and optimisation settings.

use serde::{Deserialize, Serialize};

use super::GaussianError;

/// Parameters of the Gaussian map (its section of the parameter file).
///
/// Two profiles exist as constructors: [`GaussianConfig::desktop`] (100k-Gaussian window) and
/// [`GaussianConfig::embedded`] (20k, for Jetson-class boards); the default is desktop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianConfig {
    /// Edge of a root voxel in metres (paper: 0.03-0.06 indoor, 0.5-1.0 outdoor).
    pub root_size: f64,
    /// Octree levels including the root: leaves are `root_size / 2^(levels-1)` wide.
    pub levels: u32,
    /// Gaussians a cell may hold; 1 means "only empty cells get a Gaussian".
    pub leaf_capacity: u32,
    /// Size of a new Gaussian's octree cell in pixels of the full-resolution camera at the range
    /// it is inserted from: each point goes into the finest cell at least this wide, so far
    /// surfaces get coarse cells (down to the root) and near ones the finest leaves, and a view
    /// holds about as many Gaussians however deep it is. 0 = always the finest leaves.
    pub leaf_pixels: f64,
    /// Opacity (probability, not logit) of a new Gaussian.
    pub init_opacity: f32,
    /// In-plane standard deviation of a new disc as a fraction of the leaf size.
    pub init_scale: f32,
    /// Thickness of a new disc along its normal relative to its in-plane scale.
    pub disc_thickness: f32,
    /// Spherical-harmonics degree used (0..=3); higher coefficients stay zero.
    pub sh_degree: u32,
    /// Points farther than this from the sensor (m) create no Gaussians. Far enough for the
    /// facades down a street; beyond it the background stands in.
    pub insert_max_range: f64,
    /// Neighbour radius for normal estimation as a multiple of the leaf size.
    pub normal_radius: f64,
    /// Largest neighbour radius (m): the radius doubles up to this until the neighbourhood is
    /// planar (sparse, far LiDAR rings need more than the leaf-sized radius).
    pub normal_max_radius: f64,
    /// Uncoloured Gaussians waiting for a camera view; the oldest beyond this stay grey.
    pub pending_capacity: usize,
    /// Window capacity in Gaussians (100k desktop, 20k embedded).
    pub window_capacity: usize,
    /// Root voxels farther than this from the camera (m) leave the window (renders cull beyond
    /// twice this depth).
    pub window_range: f64,
    /// Extra field of view on every image border for window selection, as a fraction of size.
    pub window_margin: f64,
    /// Adam iterations per frame (when `time_budget_ms` is 0).
    pub iterations: u32,
    /// Per-frame time budget of the mapper's optimisation in milliseconds (0 = off: a fixed
    /// `iterations`, reproducible on every machine). With a budget, each frame runs as many
    /// iterations as its measured costs say fit (at least one, at most `max_iterations`), so
    /// the mapper keeps up with the camera and spends what it has; the map then depends on
    /// the machine's speed. E.g. 70 for a 10 Hz camera leaves room for insertion and windowing.
    pub time_budget_ms: f64,
    /// Most iterations per frame under a time budget (GS-LIVO runs 40 on a desktop GPU).
    pub max_iterations: u32,
    /// Keyframes optimised with the current frame (against forgetting), spread over the area
    /// within `window_range`; their views join the window.
    pub keyframes: usize,
    /// A frame becomes a keyframe when it is this far (m) or this many degrees from the last.
    pub keyframe_distance: f64,
    pub keyframe_angle_deg: f64,
    /// Photometric anchors: the first keyframes this many (spread out) are kept for the whole
    /// run and fix the map's brightness unit (see `AnchorSet`); 0 = none, and the unit then
    /// random-walks with the exposure estimate over long runs.
    pub anchors: usize,
    /// Weight of D-SSIM in the loss `(1-w) L1 + w D-SSIM`.
    pub ssim_weight: f32,
    /// Learning rates per parameter group: higher than offline 3DGS because each frame gets
    /// only a few iterations (tuned on the simulated room, oracle poses).
    pub lr_mean: f32,
    pub lr_scale: f32,
    pub lr_rotation: f32,
    pub lr_opacity: f32,
    pub lr_sh_dc: f32,
    pub lr_sh_rest: f32,
    /// Gaussians with opacity below this are pruned after optimisation.
    pub prune_opacity: f32,
    /// Gaussians whose largest standard deviation exceeds this multiple of the leaf size are pruned.
    pub prune_scale: f32,
    /// Fit a background (sky, surfaces beyond range) behind the map and composite renders over
    /// it; see `Background`.
    pub background: bool,
    /// Azimuth cells of the background's latitude-longitude grid (elevation gets half).
    pub background_bins: u32,
    /// Append the fitted background to the exported PLY as a sphere of opaque discs around
    /// the map (see `shell`), so a viewer at the camera's poses shows what the program renders.
    /// Off for a file of the measured surfaces alone (a viewer orbiting from outside the sphere
    /// sees only the sphere).
    pub background_shell: bool,
    /// Refit each frame's exposure gain against the map's render before training on it
    /// (`exposure_fit`): keeps the map's brightness unit fixed when the gain is estimated.
    pub refit_exposure: bool,
    /// After each frame's optimisation, extend measured surfaces into pixels the map leaves
    /// transparent and the background does not explain (see the `fill` module).
    pub fill: bool,
    /// Fill candidates every this many optimisation pixels per axis.
    pub fill_step: u32,
    /// Smallest mean absolute error per channel (0..1) of a pixel worth filling.
    pub fill_min_error: f32,
    /// Farthest neighbour whose plane a pixel may take, as a fraction of the image width.
    pub fill_radius: f64,
    /// Farthest (m) a filled point may lie from the Gaussian whose plane it extends.
    pub fill_max_extrapolation: f64,
    /// Most filled points per frame.
    pub fill_max_points: usize,
    /// A LiDAR point makes a finer Gaussian below a coarser one that already covers its
    /// surface only where the last optimised view renders that point's pixel with at least
    /// this mean absolute error per channel (0..1); 0 refines wherever the range allows.
    /// Without the gate every revisit from closer layered finer Gaussians under converged
    /// coarse ones (75-85 % of the Gaussians created after the first 5 s of the looping room):
    /// the window overflowed and the layers' colours compensated each other, so the exported
    /// map (all layers) rendered far worse than any window had.
    pub refine_min_error: f32,
    /// After each frame's optimisation, split a windowed Gaussian whose largest standard
    /// deviation, projected into the frame's view, is wider than this many times `leaf_pixels`
    /// full-resolution pixels (see `split`): surfaces first mapped from afar get detail when
    /// the camera comes close. A new disc's is about 0.6-1.2 times. 0 = off (the default):
    /// at 2.0 on the first 20 s of the looping room (default profile, seeds 0 and 1) the
    /// first third's renders gained 0.65-0.76 dB (1.8-3.1 dB at 4 and 8 s), but the map held
    /// 1.9x the Gaussians, the window ran full, and the 16 s render that fails the long-run
    /// floor moved -0.5 and +1.6 dB, staying under the (raised) floor.
    pub split_footprint: f64,
    /// Splits may go this many halvings below a finest-leaf disc (`init_scale` x leaf size),
    /// and no further.
    pub split_levels: u32,
    /// Most Gaussians split per frame (the widest footprints first).
    pub split_max: usize,
    /// Split only where the frame's render (after its optimisation) has at least this mean
    /// absolute error per channel (0..1) within a pixel of the Gaussian's centre; 0 = wherever
    /// the footprint rule says.
    pub split_min_error: f32,
    /// Resolution divisor for optimisation renders (1 = full camera resolution).
    pub downsample: u32,
    /// Optimisation resolution `[width, height]` in pixels; when set it replaces `downsample`
    /// (any size up to the camera's: images are area-resampled, intrinsics scaled per axis).
    pub resolution: Option<[u32; 2]>,
    /// Every this many-th camera image (the last of each group: images 7, 15, ... for 8) is
    /// held out: it never trains the map (no optimisation target, keyframe, anchor, fill or
    /// colour source) and the delivered map is scored on it. 0 = every image trains.
    pub held_out_every: u32,
}

/// Optimisation resolution of the embedded profile (as GS-LIVO on an Orin NX).
pub const EMBEDDED_RESOLUTION: [u32; 2] = [256, 216];

/// Adam iterations per frame of the embedded profile.
pub const EMBEDDED_ITERATIONS: u32 = 3;

/// Octree cell size of the embedded profile, in full-resolution camera pixels (see
/// [`GaussianConfig::embedded`]).
pub const EMBEDDED_LEAF_PIXELS: f64 = 9.0;

impl Default for GaussianConfig {
    fn default() -> Self {
        Self::desktop()
    }
}

impl GaussianConfig {
    /// Desktop profile: 100k-Gaussian window.
    pub fn desktop() -> Self {
        Self {
            // Cells of 0.4, 0.2, 0.1 and 0.05 m, chosen per point by `leaf_pixels`: indoor
            // surfaces get the finest, a street's far facades the coarser ones.
            root_size: 0.4,
            levels: 4,
            leaf_capacity: 1,
            leaf_pixels: 4.0,
            init_opacity: 0.9,
            init_scale: 0.6,
            disc_thickness: 0.1,
            sh_degree: 1,
            insert_max_range: 100.0,
            normal_radius: 2.0,
            normal_max_radius: 1.0,
            pending_capacity: 200_000,
            window_capacity: 100_000,
            window_range: 60.0,
            window_margin: 0.15,
            iterations: 10,
            time_budget_ms: 0.0,
            max_iterations: 40,
            keyframes: 8,
            keyframe_distance: 0.3,
            keyframe_angle_deg: 10.0,
            anchors: 16,
            ssim_weight: 0.2,
            lr_mean: 5e-4,
            lr_scale: 1e-2,
            lr_rotation: 1e-3,
            lr_opacity: 0.1,
            lr_sh_dc: 0.06,
            lr_sh_rest: 3e-3,
            prune_opacity: 0.005,
            prune_scale: 8.0,
            background: true,
            background_bins: 128,
            background_shell: true,
            refit_exposure: true,
            fill: true,
            fill_step: 4,
            fill_min_error: 0.04,
            fill_radius: 0.1,
            fill_max_extrapolation: 2.0,
            fill_max_points: 5000,
            refine_min_error: 0.05,
            split_footprint: 0.0,
            split_levels: 2,
            split_max: 256,
            split_min_error: 0.0,
            downsample: 1,
            resolution: None,
            held_out_every: 8,
        }
    }

    /// Embedded profile (Orin NX class): 20k-Gaussian window, optimisation at 256x216, and
    /// three Adam iterations per frame (current, keyframe, current) so that the mapper keeps up
    /// with a 10 Hz LiDAR on a small CPU or GPU: mapping cost is about linear in iterations,
    /// and on the simulated room 10 iterations buy 1.5 dB of training-view PSNR for 3x the time.
    /// Cells of [`EMBEDDED_LEAF_PIXELS`] camera pixels: about 4 pixels of the 256x216
    /// optimisation for a 640x480 camera. Finer cells than the optimisation resolves only crowd
    /// the 20k window: on the 10 s room, 4 camera pixels made 94k Gaussians, 27.6 dB and 22.5
    /// CPU s; 9 made 34k Gaussians, 27.8 dB and 18.8 CPU s.
    pub fn embedded() -> Self {
        Self {
            window_capacity: 20_000,
            resolution: Some(EMBEDDED_RESOLUTION),
            iterations: EMBEDDED_ITERATIONS,
            leaf_pixels: EMBEDDED_LEAF_PIXELS,
            ..Self::desktop()
        }
    }

    /// How many times fewer pixels per axis (the smaller ratio) the optimisation renders have
    /// than a `width` x `height` camera: `downsample`, or the ratio to `resolution`.
    pub fn optimisation_reduction(&self, width: u32, height: u32) -> f64 {
        match self.resolution {
            Some([w, h]) => (f64::from(width) / f64::from(w.max(1)))
                .min(f64::from(height) / f64::from(h.max(1))),
            None => f64::from(self.downsample.max(1)),
        }
    }

    /// Whether camera image `index` (0-based, in arrival order) is held out from training
    /// (see `held_out_every`).
    pub fn is_held_out(&self, index: u64) -> bool {
        let n = u64::from(self.held_out_every);
        n > 0 && index % n == n - 1
    }

    /// Edge of an octree leaf in metres.
    pub fn leaf_size(&self) -> f64 {
        self.root_size / f64::from(1u32 << self.levels.saturating_sub(1).min(20))
    }

    /// Checks ranges; the error names the key under `gaussian.`.
    pub fn validate(&self) -> Result<(), GaussianError> {
        let bad = |key: &str, message: String| {
            Err(GaussianError::Config {
                key: format!("gaussian.{key}"),
                message,
            })
        };
        if !(self.root_size.is_finite() && self.root_size > 0.0) {
            return bad(
                "root_size",
                format!("must be positive, got {}", self.root_size),
            );
        }
        if !(1..=8).contains(&self.levels) {
            return bad("levels", format!("must be 1..=8, got {}", self.levels));
        }
        if self.held_out_every == 1 {
            return bad(
                "held_out_every",
                "must be 0 (off) or at least 2 (1 would hold out every image)".into(),
            );
        }
        if self.leaf_capacity == 0 {
            return bad("leaf_capacity", "must be at least 1".into());
        }
        if !(self.init_opacity > 0.0 && self.init_opacity < 1.0) {
            return bad(
                "init_opacity",
                format!("must be in (0, 1), got {}", self.init_opacity),
            );
        }
        if self.sh_degree > 3 {
            return bad(
                "sh_degree",
                format!("must be 0..=3, got {}", self.sh_degree),
            );
        }
        for (k, v) in [
            ("init_scale", self.init_scale),
            ("disc_thickness", self.disc_thickness),
            ("prune_scale", self.prune_scale),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, format!("must be positive, got {v}"));
            }
        }
        for (k, v) in [
            ("split_footprint", self.split_footprint),
            ("split_min_error", f64::from(self.split_min_error)),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(k, format!("must be >= 0, got {v}"));
            }
        }
        if !(self.refine_min_error.is_finite() && self.refine_min_error >= 0.0) {
            return bad(
                "refine_min_error",
                format!("must be >= 0, got {}", self.refine_min_error),
            );
        }
        if !(self.leaf_pixels.is_finite() && self.leaf_pixels >= 0.0) {
            return bad(
                "leaf_pixels",
                format!("must be >= 0, got {}", self.leaf_pixels),
            );
        }
        for (k, v) in [
            ("window_range", self.window_range),
            ("insert_max_range", self.insert_max_range),
            ("normal_radius", self.normal_radius),
            ("normal_max_radius", self.normal_max_radius),
            ("fill_radius", self.fill_radius),
            ("fill_max_extrapolation", self.fill_max_extrapolation),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, format!("must be positive, got {v}"));
            }
        }
        if self.window_capacity == 0 {
            return bad("window_capacity", "must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.ssim_weight) {
            return bad(
                "ssim_weight",
                format!("must be in [0, 1], got {}", self.ssim_weight),
            );
        }
        if self.fill_step == 0 {
            return bad("fill_step", "must be at least 1".into());
        }
        if self.downsample == 0 {
            return bad("downsample", "must be at least 1".into());
        }
        if let Some([w, h]) = self.resolution {
            if w == 0 || h == 0 {
                return bad("resolution", format!("must be positive, got [{w}, {h}]"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_size_halves_per_level() {
        let mut c = GaussianConfig {
            root_size: 0.8,
            levels: 1,
            ..Default::default()
        };
        assert_eq!(c.leaf_size(), 0.8);
        c.levels = 3;
        assert_eq!(c.leaf_size(), 0.2);
    }

    #[test]
    fn profiles_differ_in_capacity_and_validate() {
        assert_eq!(GaussianConfig::desktop().window_capacity, 100_000);
        assert_eq!(GaussianConfig::embedded().window_capacity, 20_000);
        GaussianConfig::desktop().validate().unwrap();
        GaussianConfig::embedded().validate().unwrap();
        let bad = GaussianConfig {
            sh_degree: 4,
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sh_degree"));
        let zero = GaussianConfig {
            resolution: Some([0, 216]),
            ..Default::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("gaussian.resolution"));
        let parsed: GaussianConfig = serde_yaml::from_str("resolution: [256, 216]").unwrap();
        assert_eq!(parsed.resolution, Some([256, 216]));
    }
}
