//! What a photometric update reports: why it skipped, what it changed, and run counters.

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
    pub(super) fn count(&mut self, r: SkipReason) {
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
