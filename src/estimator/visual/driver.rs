//! Per-scan driver of the photometric update: runs it for every image of a measurement package
//! against the map snapshot the caller supplies, reports the exposure gain the mapper must
//! divide each image by, and keeps the run statistics for the summary.

use std::collections::BTreeMap;

use nalgebra::Isometry3;

use super::{PhotometricUpdate, PoseUpdate, VisualConfig, VisualUpdateOutcome};
use crate::estimator::ieskf::Ieskf;
use crate::estimator::state::{ErrMat, POS, VEL};
use crate::gaussian::Gaussian;
use crate::render::{GaussianSet, Renderer};
use crate::sensors::{stamp_to_secs, Image, ImuSample};

/// The map the update renders: the mapper's window after frame `frame`.
#[derive(Debug, Clone, Copy)]
pub struct MapView<'a> {
    /// Identifies the snapshot (the converted copy is reused while it stays the same).
    pub frame: u64,
    pub gaussians: &'a [Gaussian],
    pub sh_degree: u32,
    /// The colour the mapper composites renders over (see [`PhotometricUpdate::set_background`]).
    pub background: [f32; 3],
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageResult {
    /// `None` when the update did not run at all (no map yet); skipped updates are in it.
    pub outcome: Option<VisualUpdateOutcome>,
    /// Exposure gain of the image relative to the map (`1 / tau` after the update): the mapper
    /// divides the image by it, so map colours stay exposure-normalised.
    pub exposure: f64,
}

/// Run statistics of the visual update (serialised into `summary.json`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct VisualRunStats {
    /// Images that reached the estimator after initialisation.
    pub images: u64,
    pub applied: u64,
    /// Skipped pose updates that still updated the exposure from the covered pixels.
    pub exposure_only: u64,
    /// Reason -> count (`no_map` when the mapper had no window yet, then the update's
    /// [`super::SkipReason`] names).
    pub skipped: BTreeMap<String, u64>,
    /// Medians over applied updates.
    pub pixels_median: f64,
    pub rms_before_median: f64,
    pub rms_after_median: f64,
    /// Median pose correction of applied updates (m, deg).
    pub correction_translation_median_m: f64,
    pub correction_rotation_median_deg: f64,
    /// Estimated exposure gain per image: `[stamp_s, gain]` (compare with the simulator's
    /// `exposure.txt` up to one scale: the map's brightness unit is set by the first images).
    pub exposure: Vec<[f64; 2]>,
    #[serde(skip)]
    samples: Samples,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Samples {
    pixels: Vec<f64>,
    rms_before: Vec<f64>,
    rms_after: Vec<f64>,
    translation: Vec<f64>,
    rotation: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

impl VisualRunStats {
    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    fn record(&mut self, o: &VisualUpdateOutcome) {
        match o.skipped {
            None => {
                self.applied += 1;
                let s = &mut self.samples;
                s.pixels.push(o.pixels as f64);
                s.rms_before.push(o.rms_before);
                s.rms_after.push(o.rms_after);
                s.translation.push(o.translation);
                s.rotation.push(o.rotation.to_degrees());
                self.pixels_median = median(&s.pixels);
                self.rms_before_median = median(&s.rms_before);
                self.rms_after_median = median(&s.rms_after);
                self.correction_translation_median_m = median(&s.translation);
                self.correction_rotation_median_deg = median(&s.rotation);
            }
            Some(r) => {
                if o.exposure_updated {
                    self.exposure_only += 1;
                }
                let name = serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{r:?}"));
                self.skip(&name);
            }
        }
    }

    /// Skipped updates in total.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// The visual update as the pipeline runs it, one per camera.
pub struct VisualDriver {
    update: PhotometricUpdate,
    accel_scale: f64,
    /// The converted window of the last snapshot used.
    cache: Option<(u64, GaussianSet<f64>)>,
    /// Render backend for the iterations (`visual.use_renderer`), holding the cached window.
    renderer: Option<Box<dyn Renderer>>,
    stats: VisualRunStats,
    last_filter_stamp: Option<crate::sensors::Stamp>,
}

impl VisualDriver {
    /// `accel_scale` as the LIO applies it to the raw accelerometer (the update integrates the
    /// IMU between the image and the filter time).
    pub fn new(
        cfg: &VisualConfig,
        camera: &crate::sensors::Camera,
        imu_t_camera: Isometry3<f64>,
        accel_scale: f64,
    ) -> Self {
        Self {
            update: PhotometricUpdate::new(cfg, camera, imu_t_camera),
            accel_scale,
            cache: None,
            renderer: None,
            stats: VisualRunStats::default(),
            last_filter_stamp: None,
        }
    }

    /// Runs the iterations' renders and gradients on `renderer` (see
    /// [`PhotometricUpdate::update_on`]).
    pub fn with_renderer(mut self, renderer: Box<dyn Renderer>) -> Self {
        self.renderer = Some(renderer);
        self
    }

    pub fn stats(&self) -> &VisualRunStats {
        &self.stats
    }

    pub fn update(&self) -> &PhotometricUpdate {
        &self.update
    }

    /// Sequential updates of `filter` (already at the scan end, after the LiDAR update) with
    /// each image of the package in time order (stamps already offset-corrected). `map` is the
    /// window to render, `None` when the mapper has none yet (counted as `no_map`).
    /// `degenerate`: the LiDAR update's weakest direction (world frame) when it was degenerate.
    pub fn process(
        &mut self,
        filter: &mut Ieskf,
        images: &[Image],
        imu: &[ImuSample],
        map: Option<MapView<'_>>,
        degenerate: Option<[f64; 3]>,
    ) -> Vec<ImageResult> {
        let scaled: Vec<ImuSample>;
        let imu = if (self.accel_scale - 1.0).abs() > 0.0 {
            scaled = imu
                .iter()
                .map(|s| ImuSample {
                    accel: s.accel * self.accel_scale,
                    ..*s
                })
                .collect();
            &scaled[..]
        } else {
            imu
        };
        if let Some(m) = map {
            self.update.set_background(m.background);
            if self.cache.as_ref().is_none_or(|(f, _)| *f != m.frame) {
                let buf = self.cache.take().map(|(_, s)| s.data).unwrap_or_default();
                let set = crate::gaussian::to_render_into(m.gaussians, m.sh_degree.min(3), buf)
                    .expect("SH degree clamped to 3");
                self.cache = Some((m.frame, set));
                if let Some(r) = self.renderer.as_mut() {
                    let up = crate::gaussian::to_render(m.gaussians, m.sh_degree)
                        .map_err(|e| e.to_string())
                        .and_then(|g| r.set_gaussians(&g, None).map_err(|e| e.to_string()));
                    if let Err(e) = up {
                        tracing::warn!("visual update: render backend unusable, CPU from now: {e}");
                        self.renderer = None;
                    }
                }
            }
        }
        // The interval the directional noise covers: since the previous package.
        let now = filter.stamp();
        let scan_dt = self
            .last_filter_stamp
            .replace(now)
            .map(|t| crate::sensors::stamp_diff_secs(now, t).clamp(0.0, 1.0));
        let mut out = Vec::with_capacity(images.len());
        for img in images {
            self.stats.images += 1;
            let outcome = match (&map, &self.cache) {
                (Some(_), Some((_, g))) => {
                    let saved = *filter.covariance();
                    if let (Some(w), Some(dt)) = (degenerate, scan_dt) {
                        let q = self.update.config().degenerate_accel_noise;
                        let cov = add_directional_accel_noise(
                            &saved,
                            &nalgebra::Vector3::from(w),
                            q * q,
                            dt,
                        );
                        let st = *filter.state();
                        filter.set_state(st, cov);
                    }
                    let pose = match self.update.config().pose_update {
                        PoseUpdate::Always => true,
                        PoseUpdate::LidarDegenerate => degenerate.is_some(),
                    };
                    self.update.set_pose_allowed(pose);
                    let r: Option<&mut dyn Renderer> = match self.renderer.as_mut() {
                        Some(b) => Some(b.as_mut()),
                        None => None,
                    };
                    let o = self.update.update_on(filter, img, imu, g, r);
                    if !o.applied() && !o.exposure_updated {
                        let st = *filter.state();
                        filter.set_state(st, saved);
                    }
                    self.stats.record(&o);
                    Some(o)
                }
                _ => {
                    self.stats.skip("no_map");
                    None
                }
            };
            let tau = filter.state().tau;
            // tau stays near 1 in practice; a non-physical value must not poison the map.
            let gain = if tau.is_finite() && tau > 1e-2 {
                1.0 / tau
            } else {
                1.0
            };
            self.stats.exposure.push([stamp_to_secs(img.stamp), gain]);
            out.push(ImageResult {
                outcome,
                exposure: gain,
            });
        }
        out
    }
}

/// `p` plus the covariance that white acceleration noise of density `q` (m^2/s^3) along unit
/// direction `w` adds to position and velocity over `dt` seconds:
/// `q [dt^3/3, dt^2/2; dt^2/2, dt] (x) w w^T` (positive semidefinite, so the result stays
/// positive definite). The cross term lets a position correction also correct the velocity.
pub fn add_directional_accel_noise(
    p: &ErrMat,
    w: &nalgebra::Vector3<f64>,
    q: f64,
    dt: f64,
) -> ErrMat {
    let n = w.norm();
    if !(n > 1e-9 && n.is_finite() && q > 0.0 && dt > 0.0) {
        return *p;
    }
    let ww = (w / n) * (w / n).transpose();
    let mut out = *p;
    let blocks = [
        (POS, POS, dt * dt * dt / 3.0),
        (POS, VEL, dt * dt / 2.0),
        (VEL, POS, dt * dt / 2.0),
        (VEL, VEL, dt),
    ];
    for (r, c, k) in blocks {
        let mut v = out.fixed_view_mut::<3, 3>(r, c);
        v += ww * (q * k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::ieskf::{Linearization, ProcessNoise, UpdateSettings};
    use crate::estimator::state::{ErrVec, State};
    use nalgebra::Vector3;

    /// The added block is `q [dt^3/3, dt^2/2; dt^2/2, dt]` along `w` only, and it is what
    /// integrating white acceleration noise gives: the covariance of (position, velocity) after
    /// many small steps of `x += v h, v += a h` with `Var(a) = q / h`.
    #[test]
    fn directional_noise_is_integrated_white_acceleration() {
        let p = ErrMat::identity() * 1e-4;
        let w = Vector3::new(3.0, -1.0, 0.5);
        let (q, dt) = (0.04, 0.1);
        let out = add_directional_accel_noise(&p, &w, q, dt);
        let u = w.normalize();
        // Reference: discrete integration of the noise along u.
        let n = 2000;
        let h = dt / n as f64;
        let mut c = nalgebra::Matrix2::<f64>::zeros();
        let f = nalgebra::Matrix2::new(1.0, h, 0.0, 1.0);
        let g = nalgebra::Vector2::new(0.5 * h * h, h);
        for _ in 0..n {
            c = f * c * f.transpose() + g * g.transpose() * (q / h);
        }
        let d = out - p;
        let pp: nalgebra::Matrix3<f64> = d.fixed_view::<3, 3>(POS, POS).into();
        let pv: nalgebra::Matrix3<f64> = d.fixed_view::<3, 3>(POS, VEL).into();
        let vv: nalgebra::Matrix3<f64> = d.fixed_view::<3, 3>(VEL, VEL).into();
        assert!((u.dot(&(pp * u)) - c[(0, 0)]).abs() < 1e-3 * c[(0, 0)]);
        assert!((u.dot(&(pv * u)) - c[(0, 1)]).abs() < 1e-3 * c[(0, 1)]);
        assert!((u.dot(&(vv * u)) - c[(1, 1)]).abs() < 1e-9);
        // Nothing across the direction, nothing outside the two blocks.
        let across = u.cross(&Vector3::z()).normalize();
        assert!((pp * across).norm() < 1e-15 && (vv * across).norm() < 1e-15);
        let mut rest = d;
        for (r, c) in [(POS, POS), (POS, VEL), (VEL, POS), (VEL, VEL)] {
            rest.fixed_view_mut::<3, 3>(r, c).fill(0.0);
        }
        assert_eq!(rest, ErrMat::zeros());
        assert!(nalgebra::Cholesky::new(out).is_some());
        // Off: no direction, no noise or no time.
        assert_eq!(add_directional_accel_noise(&p, &Vector3::zeros(), q, dt), p);
        assert_eq!(add_directional_accel_noise(&p, &w, 0.0, dt), p);
    }

    /// With the cross term, a position fix along the direction also corrects the velocity.
    #[test]
    fn a_position_fix_then_corrects_the_velocity() {
        let p = ErrMat::identity() * 1e-8;
        let w = Vector3::x();
        let cov = add_directional_accel_noise(&p, &w, 0.04, 0.1);
        let noise = ProcessNoise::from_config(&crate::sensors::rig::Imu::default(), 0.0);
        let mut f = Ieskf::new(State::default(), cov, 0, noise);
        let mut m = |x: &State, _: usize| {
            let mut l = Linearization::default();
            let mut h = ErrVec::zeros();
            h[POS] = 1.0;
            l.add_row(&h, x.pos.x - 0.01, 1e-8);
            Some(l)
        };
        f.update(&mut m, &UpdateSettings::default()).unwrap();
        let s = f.state();
        assert!((s.pos.x - 0.01).abs() < 1e-4);
        // Gain ratio (dt^2/2) / (dt^3/3) = 1.5 / dt.
        assert!((s.vel.x - 0.01 * 15.0).abs() < 2e-3, "{}", s.vel.x);
        assert!(s.vel.y.abs() < 1e-9 && s.pos.y.abs() < 1e-9);
    }
}
