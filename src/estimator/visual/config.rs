//! `visual.*`: settings of the photometric update.

use serde::{Deserialize, Serialize};

/// When the photometric update may correct the pose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoseUpdate {
    /// After every LiDAR update.
    Always,
    /// Only after a LiDAR update that was degenerate (its weakest translational direction
    /// poorly constrained); otherwise the image updates the exposure alone. The map the camera
    /// is aligned with is trained from the same pose estimates only a few frames earlier, so
    /// where the LiDAR already fixes the pose the photometric residuals mostly measure the
    /// estimate against itself: on the simulated room (1.5 mm LIO ATE over 20 s) every pose
    /// update made LIVO worse (2.3 mm at sigma 0.03, 3.1 mm at 0.08), the difference to LIO
    /// wandering like a random walk, uncorrelated with the velocity (no timing bias).
    LidarDegenerate,
}

/// Parameters of the photometric (visual) IESKF update. Intensities are in [0, 1] units of the
/// grey image (mean of R, G, B / 255) at the optimisation resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisualConfig {
    /// `false` = LIO only (the update is skipped and counted as disabled).
    pub enabled: bool,
    /// When the update corrects the pose (the exposure is updated from every image).
    pub pose_update: PoseUpdate,
    /// Gauss-Newton iterations of the iterated update. Those after the first render only the
    /// selected pixels' tiles, from the Gaussians near them. Bench (corridor window, 300
    /// ranked pixels, 2 cm prior error along the corridor): 1 iteration 25-28 ms thread CPU and
    /// 12 mm error left, 3 iterations 52 ms and 5 mm.
    pub iterations: usize,
    /// Render and back-propagate the iterations after the first on the render backend
    /// (`render.*`) instead of CPU forward mode; the Gauss-Newton matrix stays the CPU one of
    /// the prior. Worth it on a GPU; on lavapipe it competes with the mapper for the CPU.
    pub use_renderer: bool,
    /// The direct form (without `use_renderer`): render the map once, at the prior, without
    /// pose derivatives, back-project the selected pixels with the render's depth, and iterate
    /// on those points projected into the camera image, with the image's gradient. `false`:
    /// every iteration renders the selected pixels' tiles with forward-mode pose derivatives.
    pub direct: bool,
    /// Optimisation resolution: the image is box-downsampled by `2^pyramid_level`. The pipeline
    /// raises it to the mapper's optimisation resolution (`gaussian.downsample`) when that is
    /// coarser: the map is trained there and has no reliable detail below it.
    pub pyramid_level: u32,
    /// Candidate pixels need a grey gradient magnitude (per pixel, central differences) above this.
    pub gradient_threshold: f64,
    /// At most one pixel (the strongest gradient) per `grid_size x grid_size` cell.
    pub grid_size: u32,
    /// Most pixels per update: those whose predicted residual varies most under the prior pose
    /// covariance when `rank_by_information` and the pose may move (after a LiDAR-degenerate
    /// scan: the pixels that see the degenerate direction), else the strongest gradients.
    pub max_pixels: usize,
    /// Rank the pixels by information in the uncertain pose directions (see `max_pixels`);
    /// only the selected pixels' tiles are rendered, so fewer, better pixels cost less. Off by
    /// default: on the test scene 150 ranked pixels carry ~98 % of the information along the
    /// degenerate axis that the best 150 would (gradients: ~71 %), and the bench update costs
    /// 25-52 ms thread CPU instead of 160-170 ms (300 pixels, 1-3 iterations, vs 1500 and 3),
    /// but on the simulated open corridor (13 s) 300 ranked pixels lost the track at 12 s
    /// (ATE 18-21 cm with 1 or 3 iterations; 300 strongest gradients, 1 iteration: 2.8 cm;
    /// 1500 gradients, 3 iterations: 2.2 cm); presumably the near, peripheral pixels it
    /// prefers are where the window's map is least reliable (not verified).
    pub rank_by_information: bool,
    /// Fewest well-covered pixels for an update.
    pub min_pixels: usize,
    /// A pixel counts as covered by the map when the render's accumulated opacity reaches this
    /// (the rest of the pixel is the mapper's background, modelled as the mapper renders it).
    pub min_alpha: f64,
    /// Fewest covered candidates (fraction) for an update (map coverage in view).
    pub min_coverage: f64,
    /// Fewest covered pixels for an exposure-only update when the pose update is skipped.
    pub min_exposure_pixels: usize,
    /// Photometric noise (1 sigma, grey units) of one residual. Above the residual RMS left
    /// after convergence on the simulator (0.02-0.05) because the map's errors are correlated
    /// with the pose's (it is built from the same estimates) and between pixels: at 0.03 the
    /// update pulled the room's 1.5 mm LIO trajectory to 1.9 mm, at 0.08 it keeps 1.5 mm while
    /// still removing 77 % of the corridor's drift (8 s). Over 20 s the room is still worse
    /// with either (2.3 mm at 0.03, 3.1 mm at 0.08 vs 1.5 mm): not a weighting issue, see
    /// [`PoseUpdate::LidarDegenerate`].
    pub sigma: f64,
    /// Huber threshold in sigmas.
    pub huber: f64,
    /// Random walk of the inverse exposure tau (1/sqrt(s)), added between visual updates.
    pub exposure_walk: f64,
    /// Over-exposure gate: largest fraction of pixels at or above `saturated_level`.
    pub max_saturated_fraction: f64,
    pub saturated_level: f64,
    /// Under-exposure gate: largest fraction of pixels at or below `dark_level`.
    pub max_dark_fraction: f64,
    pub dark_level: f64,
    /// Innovation gate: median |residual| / sigma at the prior above this skips the update.
    pub innovation_gate: f64,
    /// Largest accepted pose change of one update (m, rad); larger ones are rejected.
    pub max_translation: f64,
    pub max_rotation: f64,
    /// Images older than the filter time by more than this (s) are skipped.
    pub max_image_age: f64,
    /// Pixels this close to the border (at the optimisation resolution) are not used.
    pub border: u32,
    /// White acceleration noise density (m/s^1.5; 0 = off) added along the LiDAR's weakest
    /// direction over each scan interval before an update that follows a LiDAR-degenerate
    /// scan. The LiDAR's information along that direction comes from plane-normal noise that is
    /// fixed per voxel, so it is not independent from scan to scan and leaves the filter's
    /// position and velocity covariance there overconfident; without this the camera could
    /// correct neither the position nor, through their correlation, the velocity.
    pub degenerate_accel_noise: f64,
    /// Near plane of the render (m).
    pub near: f64,
}

impl Default for VisualConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            pose_update: PoseUpdate::LidarDegenerate,
            iterations: 3,
            use_renderer: false,
            direct: true,
            pyramid_level: 1,
            gradient_threshold: 0.02,
            grid_size: 6,
            max_pixels: 1500,
            rank_by_information: false,
            min_pixels: 60,
            min_alpha: 0.8,
            min_coverage: 0.3,
            min_exposure_pixels: 20,
            sigma: 0.08,
            huber: 1.5,
            exposure_walk: 0.3,
            max_saturated_fraction: 0.3,
            saturated_level: 0.98,
            max_dark_fraction: 0.5,
            dark_level: 0.02,
            innovation_gate: 3.0,
            max_translation: 0.1,
            max_rotation: 0.05,
            max_image_age: 0.2,
            border: 4,
            degenerate_accel_noise: 0.2,
            near: 0.1,
        }
    }
}

impl VisualConfig {
    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((format!("visual.{k}"), m));
        let pos = [
            ("sigma", self.sigma),
            ("huber", self.huber),
            ("max_translation", self.max_translation),
            ("max_rotation", self.max_rotation),
            ("near", self.near),
            ("innovation_gate", self.innovation_gate),
        ];
        for (k, v) in pos {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, format!("must be > 0, got {v}"));
            }
        }
        let frac = [
            ("min_alpha", self.min_alpha),
            ("min_coverage", self.min_coverage),
            ("max_saturated_fraction", self.max_saturated_fraction),
            ("max_dark_fraction", self.max_dark_fraction),
            ("saturated_level", self.saturated_level),
            ("dark_level", self.dark_level),
        ];
        for (k, v) in frac {
            if !(0.0..=1.0).contains(&v) {
                return bad(k, format!("must be in [0, 1], got {v}"));
            }
        }
        let v = self.degenerate_accel_noise;
        if !(v.is_finite() && v >= 0.0) {
            return bad("degenerate_accel_noise", format!("must be >= 0, got {v}"));
        }
        if !(self.exposure_walk.is_finite() && self.exposure_walk >= 0.0) {
            return bad(
                "exposure_walk",
                format!("must be >= 0, got {}", self.exposure_walk),
            );
        }
        if self.grid_size == 0 || self.pyramid_level > 4 || self.iterations == 0 {
            return bad(
                "grid_size/pyramid_level/iterations",
                "grid_size >= 1, pyramid_level <= 4, iterations >= 1".into(),
            );
        }
        Ok(())
    }
}
