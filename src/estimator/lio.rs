//! LiDAR-inertial odometry driver: one measurement package in, one pose out.

use nalgebra::{Isometry3, Matrix3, SymmetricEigen, Vector3};

use super::deskew::deskew;
use super::ieskf::{Ieskf, ProcessNoise, UpdateReport, UpdateSettings};
use super::init::ImuInitializer;
use super::point_to_plane::{BodyPoint, PointToPlane};
use super::state::{ErrMat, State, BA, BG, GRAV, POS, ROT, TAU, VEL};
use super::{LidarConfig, LioConfig};
use crate::lidar_map::{voxel_downsample_keeping, MapPoint, PointNoise, VoxelMap, VoxelMapConfig};
use crate::sensors::rig::Imu;
use crate::sensors::{stamp_diff_secs, ImuSample, PointCloud, Stamp};
use crate::sync::MeasurementPackage;

/// Counters of everything skipped or suspicious (all reported in summaries).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LioCounters {
    pub scans: usize,
    pub scans_before_init: usize,
    pub scans_without_time: usize,
    pub empty_scans: usize,
    pub non_finite_points: usize,
    pub imu_not_after_filter: usize,
    pub imu_non_finite: usize,
    pub imu_gaps_skipped: usize,
    pub time_jumps: usize,
    pub update_failures: usize,
    pub degenerate_scans: usize,
    pub not_converged: usize,
    /// Scans downsampled finer than `lidar.downsample` to keep `lidar.min_points`.
    pub finer_downsampled_scans: usize,
    /// With a loaded map and no initial pose: the global relocalisation's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relocalisation: Option<super::reloc::RelocStatus>,
}

/// Conditioning of the translational information of a LiDAR update.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Degeneracy {
    /// Eigenvalues of the translational block of H^T R^-1 H (ascending, 1/m^2).
    pub eigenvalues: [f64; 3],
    /// Direction of the weakest eigenvalue (world frame).
    pub weakest: [f64; 3],
    pub degenerate: bool,
}

/// What one scan produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanResult {
    /// Scan end (the pose's time).
    pub stamp: Stamp,
    /// `T_world_body` at `stamp`.
    pub pose: Isometry3<f64>,
    pub state: State,
    pub points_in: usize,
    pub points_used: usize,
    pub residuals: usize,
    pub iterations: usize,
    pub converged: bool,
    /// `None` when no update ran (first scan, or no association).
    pub degeneracy: Option<Degeneracy>,
}

/// The sections the LIO reads: its own, the LiDAR's, the voxel map's, and from the rig the IMU
/// and the LiDAR's extrinsic (`config::Config::lio_setup` collects them).
#[derive(Debug, Clone)]
pub struct LioSetup {
    pub lidar: LidarConfig,
    pub lio: LioConfig,
    pub lidar_map: VoxelMapConfig,
    pub imu: Imu,
    pub imu_t_lidar: Isometry3<f64>,
}

/// The LIO: initialiser, filter and map.
#[derive(Clone)]
pub struct Lio {
    lidar: LidarConfig,
    lio: LioConfig,
    accel_scale: f64,
    noise: ProcessNoise,
    imu_t_lidar: Isometry3<f64>,
    init: ImuInitializer,
    filter: Option<Ieskf>,
    map: VoxelMap,
    counters: LioCounters,
    scans_since_prune: usize,
    /// A loaded map: frozen or extended, and the relocalisation still to do.
    prior: Option<super::reloc::PriorMapState>,
}

impl Lio {
    pub fn new(cfg: &LioSetup) -> Self {
        Self {
            lidar: cfg.lidar.clone(),
            lio: cfg.lio.clone(),
            accel_scale: cfg.imu.accel_scale,
            noise: ProcessNoise::from_config(&cfg.imu, cfg.lio.tau_walk),
            imu_t_lidar: cfg.imu_t_lidar,
            init: ImuInitializer::new(
                cfg.lio.init_duration,
                cfg.lio.init_max_gyro_std,
                cfg.imu.gravity,
            ),
            filter: None,
            map: VoxelMap::new(cfg.lidar_map.clone()),
            counters: LioCounters::default(),
            scans_since_prune: 0,
            prior: None,
        }
    }

    /// Starts from a loaded map instead of an empty one: `frozen` (localise only) inserts no
    /// scans; a loaded map is never pruned (it would lose what the robot comes back to). With
    /// `reloc`, scans are registered globally against the map until one is accepted; until then
    /// [`Self::process`] returns `None` (no pose in the map frame). Without it the filter's
    /// start pose is taken as a pose in the map.
    pub fn use_prior_map(
        &mut self,
        map: VoxelMap,
        frozen: bool,
        reloc: Option<super::reloc::RelocConfig>,
    ) {
        self.map = map;
        if reloc.is_some() {
            self.counters.relocalisation = Some(super::reloc::RelocStatus {
                pending: true,
                ..Default::default()
            });
        }
        self.prior = Some(super::reloc::PriorMapState {
            frozen,
            reloc,
            hint: None,
        });
    }

    /// A pose hint in the loaded map (`/initialpose`): as AMCL, it (re)starts the
    /// relocalisation, searched around the hint; until a scan is accepted no pose is given.
    /// Refused without a loaded map (the run's own map has no frame a user could point into).
    pub fn hint(&mut self, hint: super::reloc::RelocHint) -> Result<(), String> {
        let Some(p) = self.prior.as_mut() else {
            return Err("no map is loaded: the map being built has no frame to point into".into());
        };
        if !hint.is_finite() {
            return Err(format!("the hint is not finite: {hint:?}"));
        }
        p.reloc.get_or_insert_with(Default::default);
        p.hint = Some(hint);
        let status = self
            .counters
            .relocalisation
            .get_or_insert_with(Default::default);
        status.hints += 1;
        status.pending = true;
        Ok(())
    }

    /// The voxel map, given up at the end of a run (to save it).
    pub fn into_map(self) -> VoxelMap {
        self.map
    }

    pub fn counters(&self) -> &LioCounters {
        &self.counters
    }

    pub fn filter(&self) -> Option<&Ieskf> {
        self.filter.as_ref()
    }

    /// Mutable access for sequential updates after the LiDAR one (e.g. photometric).
    pub fn filter_mut(&mut self) -> Option<&mut Ieskf> {
        self.filter.as_mut()
    }

    pub fn map(&self) -> &VoxelMap {
        &self.map
    }

    fn scaled(&self, s: &ImuSample) -> ImuSample {
        ImuSample {
            stamp: s.stamp,
            gyro: s.gyro,
            accel: s.accel * self.accel_scale,
        }
    }

    fn initial_covariance(&self) -> ErrMat {
        let c = &self.lio;
        let mut p = ErrMat::zeros();
        let mut set = |i: usize, s: f64| {
            for k in 0..3 {
                p[(i + k, i + k)] = s * s;
            }
        };
        set(ROT, c.init_rot_std);
        set(POS, 1e-3);
        set(VEL, c.init_vel_std);
        set(BG, c.init_bg_std);
        set(BA, c.init_ba_std);
        set(GRAV, c.init_grav_std);
        // Yaw is unobservable and arbitrary (world frame choice): keep it tight.
        p[(ROT + 2, ROT + 2)] = 1e-6;
        p[(TAU, TAU)] = 1e-4;
        p
    }

    /// Feeds IMU samples to the initialiser or the filter.
    fn feed_imu(&mut self, imu: &[ImuSample]) {
        for raw in imu {
            let s = self.scaled(raw);
            if !(s.gyro.iter().chain(s.accel.iter()).all(|v| v.is_finite())) {
                self.counters.imu_non_finite += 1;
                continue;
            }
            match self.filter.as_mut() {
                None => {
                    if let Some(est) = self.init.push(&s) {
                        let (roll, pitch, _) = est.state.rot.euler_angles();
                        tracing::info!(
                            samples = est.samples,
                            gyro_std = est.gyro_std,
                            accel_std = est.accel_std,
                            "IMU initialised: gravity up (body) = [{:.4}, {:.4}, {:.4}], roll {:.2} deg, pitch {:.2} deg, gyro bias = [{:.5}, {:.5}, {:.5}] rad/s, |accel| = {:.4} m/s^2 (gravity {:.4}), static = {}",
                            (est.state.rot.inverse() * Vector3::z()).x,
                            (est.state.rot.inverse() * Vector3::z()).y,
                            (est.state.rot.inverse() * Vector3::z()).z,
                            roll.to_degrees(),
                            pitch.to_degrees(),
                            est.state.bg.x,
                            est.state.bg.y,
                            est.state.bg.z,
                            est.accel_norm,
                            -est.state.grav.z,
                            est.is_static
                        );
                        let g = -est.state.grav.z;
                        if (est.accel_norm - g).abs() > 0.05 * g {
                            tracing::warn!(
                                "mean accelerometer magnitude {:.3} differs from gravity {:.3} by more than 5%: check imu.accel_scale / imu.gravity",
                                est.accel_norm,
                                g
                            );
                        }
                        if !est.is_static {
                            tracing::warn!(
                                "IMU was moving during initialisation (gyro std {:.4} rad/s): gyro bias set to zero",
                                est.gyro_std
                            );
                        }
                        let mut f =
                            Ieskf::new(est.state, self.initial_covariance(), est.stamp, self.noise);
                        f.propagate_imu(&s);
                        f.take_segments();
                        self.filter = Some(f);
                    }
                }
                Some(f) => {
                    if s.stamp <= f.stamp() {
                        self.counters.imu_not_after_filter += 1;
                        continue;
                    }
                    let dt = stamp_diff_secs(s.stamp, f.stamp());
                    if dt > self.lio.max_imu_gap {
                        self.counters.imu_gaps_skipped += 1;
                        tracing::warn!(
                            "IMU gap of {dt:.3} s not integrated; velocity uncertainty inflated"
                        );
                        f.jump_to(s.stamp, 1.0);
                        f.propagate_imu(&s);
                    } else {
                        f.propagate_imu(&s);
                    }
                }
            }
        }
    }

    /// Processes one package: IMU up to the scan end, then the scan. Returns the scan result
    /// once initialised.
    pub fn process(&mut self, pkg: &MeasurementPackage) -> Option<ScanResult> {
        if pkg.time_jump {
            self.counters.time_jumps += 1;
            if let (Some(f), Some(first)) = (self.filter.as_mut(), pkg.imu.first()) {
                tracing::warn!("time jump: filter moved to the new clock without integrating");
                f.jump_to(first.stamp, 1.0);
            }
        }
        self.feed_imu(&pkg.imu);
        self.process_scan(&pkg.scan)
    }

    /// One scan: admit, select points, deskew to the scan end, update the filter against the
    /// map, insert the scan with the updated pose.
    fn process_scan(&mut self, scan: &PointCloud) -> Option<ScanResult> {
        if !self.admit(scan) {
            return None;
        }
        let (_, hi) = scan.time_span();
        let end = (scan.stamp as i128 + (hi as f64 * 1e9).round() as i128).max(0) as Stamp;
        let kept = self.select_points(scan);
        let body_points = self.deskew_to(scan, &kept, end)?;
        if body_points.is_empty() {
            self.counters.empty_scans += 1;
            tracing::warn!("scan at {} has no usable points: skipped", scan.stamp);
            let st = *self.filter.as_ref()?.state();
            return Some(self.result(end, st, scan.len(), 0, None));
        }
        if !self.relocalised(&body_points) {
            return None;
        }
        let outcome = self.update(&body_points, end);
        let state = *self.filter.as_ref()?.state();
        if !self.prior.as_ref().is_some_and(|p| p.frozen) {
            self.insert(&state, &body_points);
        }
        let mut res = self.result(end, state, scan.len(), body_points.len(), None);
        if let Some((rep, deg)) = outcome {
            res.residuals = rep.count;
            res.iterations = rep.iterations;
            res.converged = rep.converged;
            res.degeneracy = Some(deg);
        }
        Some(res)
    }

    /// Counts the scan; `false` before the filter is initialised. Warns once about scans
    /// without per-point times.
    fn admit(&mut self, scan: &PointCloud) -> bool {
        self.counters.scans += 1;
        if self.filter.is_none() {
            self.counters.scans_before_init += 1;
            return false;
        }
        if scan.time.is_none() {
            if self.counters.scans_without_time == 0 {
                tracing::warn!(
                    "scans have no per-point time field: treated as instantaneous (no deskew)"
                );
            }
            self.counters.scans_without_time += 1;
        }
        true
    }

    /// Indices of the points used: finite, in range, every `point_stride`-th, then voxel
    /// downsampled (finer where too few would remain: `lidar.min_points`).
    fn select_points(&mut self, scan: &PointCloud) -> Vec<u32> {
        let (min_r2, max_r2) = (
            self.lidar.min_range * self.lidar.min_range,
            self.lidar.max_range * self.lidar.max_range,
        );
        let stride = self.lidar.point_stride.max(1);
        let mut idx = Vec::with_capacity(scan.len() / stride + 1);
        let mut non_finite = 0;
        for i in (0..scan.len()).step_by(stride) {
            let (x, y, z) = (scan.x[i], scan.y[i], scan.z[i]);
            let t_ok = scan.time.as_ref().is_none_or(|t| t[i].is_finite());
            if !(x.is_finite() && y.is_finite() && z.is_finite() && t_ok) {
                non_finite += 1;
                continue;
            }
            let r2 = (x * x + y * y + z * z) as f64;
            if r2 >= min_r2 && r2 <= max_r2 {
                idx.push(i as u32);
            }
        }
        if non_finite > 0 {
            self.counters.non_finite_points += non_finite;
            tracing::debug!("{non_finite} non-finite points skipped");
        }
        let (kept, finer) = voxel_downsample_keeping(
            &scan.x,
            &scan.y,
            &scan.z,
            &idx,
            self.lidar.downsample,
            self.lidar.min_points,
        );
        self.counters.finer_downsampled_scans += usize::from(finer);
        kept
    }

    /// Propagates the filter to the scan `end` and moves the `kept` points into the body frame
    /// at `end` (deskewed along the IMU segments), each with its range-bearing noise.
    fn deskew_to(&mut self, scan: &PointCloud, kept: &[u32], end: Stamp) -> Option<Vec<BodyPoint>> {
        let filter = self.filter.as_mut()?;
        filter.propagate_to(end);
        let segments = filter.take_segments();
        let end_pose = filter.state().pose();
        let pts: Vec<Vector3<f64>> = kept.iter().map(|&i| scan.point(i as usize)).collect();
        let times: Vec<Stamp> = kept
            .iter()
            .map(|&i| scan.point_stamp(i as usize).min(end))
            .collect();
        let body = deskew(&pts, &times, &segments, &end_pose, &self.imu_t_lidar);
        let r_il = self.imu_t_lidar.rotation;
        Some(
            pts.iter()
                .zip(&body)
                .map(|(pl, pb)| {
                    let r = pl.norm().max(1e-6);
                    BodyPoint {
                        p: *pb,
                        noise: PointNoise::range_bearing(
                            r_il * (pl / r),
                            r,
                            self.lidar.range_noise,
                            self.lidar.bearing_noise,
                        ),
                    }
                })
                .collect(),
        )
    }

    /// The iterated point-to-plane update (none on the first scan: the map is empty) and its
    /// degeneracy; `None` when it did not run or failed (counted).
    fn update(
        &mut self,
        body_points: &[BodyPoint],
        end: Stamp,
    ) -> Option<(UpdateReport, Degeneracy)> {
        let filter = self.filter.as_mut()?;
        if self.map.root_count() == 0 {
            return None;
        }
        let settings = UpdateSettings {
            max_iterations: self.lio.max_iterations,
            eps_rot: self.lio.eps_rot,
            eps_pos: self.lio.eps_pos,
            rel_sigma: self.lio.converge_rel_sigma,
        };
        let mut meas = PointToPlane {
            map: &self.map,
            points: body_points,
            gate_sigma: self.lio.gate_sigma,
            min_residuals: self.lio.min_residuals,
            tilt_deflation: self.lio.plane_tilt_deflation,
        };
        let rep = match filter.update(&mut meas, &settings) {
            Ok(rep) => rep,
            Err(e) => {
                self.counters.update_failures += 1;
                tracing::warn!("LiDAR update skipped at {end}: {e}");
                return None;
            }
        };
        let deg = degeneracy(&rep.information, self.lio.degenerate_ratio);
        if deg.degenerate {
            self.counters.degenerate_scans += 1;
            tracing::warn!(
                "degenerate LiDAR update at {end}: translational information eigenvalues {:.3e} {:.3e} {:.3e}, weakest direction [{:.2}, {:.2}, {:.2}]",
                deg.eigenvalues[0], deg.eigenvalues[1], deg.eigenvalues[2],
                deg.weakest[0], deg.weakest[1], deg.weakest[2]
            );
        }
        if !rep.converged {
            self.counters.not_converged += 1;
        }
        Some((rep, deg))
    }

    /// Inserts the scan into the map at the updated pose; prunes far roots every 10 scans.
    fn insert(&mut self, state: &State, body_points: &[BodyPoint]) {
        let r = state.rot;
        let map_points: Vec<MapPoint> = body_points
            .iter()
            .map(|bp| MapPoint {
                p: r * bp.p + state.pos,
                noise: PointNoise {
                    dir: r * bp.noise.dir,
                    ..bp.noise
                },
            })
            .collect();
        self.map.insert(&map_points);
        self.scans_since_prune += 1;
        if self.scans_since_prune >= 10 && self.prior.is_none() {
            self.scans_since_prune = 0;
            let dropped = self.map.prune(&state.pos);
            if dropped > 0 {
                tracing::debug!("map pruned: {dropped} root voxels beyond the radius");
            }
        }
    }

    fn result(
        &self,
        stamp: Stamp,
        state: State,
        points_in: usize,
        points_used: usize,
        degeneracy: Option<Degeneracy>,
    ) -> ScanResult {
        ScanResult {
            stamp,
            pose: state.pose(),
            state,
            points_in,
            points_used,
            residuals: 0,
            iterations: 0,
            converged: true,
            degeneracy,
        }
    }
}

/// Eigen-analysis of the translational block of the information matrix.
pub fn degeneracy(info: &ErrMat, ratio: f64) -> Degeneracy {
    let block: Matrix3<f64> = info.fixed_view::<3, 3>(POS, POS).into();
    let eig = SymmetricEigen::new(block);
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    let ev = [
        eig.eigenvalues[order[0]],
        eig.eigenvalues[order[1]],
        eig.eigenvalues[order[2]],
    ];
    let w = eig.eigenvectors.column(order[0]);
    Degeneracy {
        eigenvalues: ev,
        weakest: [w[0], w[1], w[2]],
        degenerate: ev[2] <= 0.0 || ev[0].is_nan() || ev[0] <= ratio * ev[2],
    }
}

impl Lio {
    /// With a relocalisation pending: registers the scan globally against the loaded map and,
    /// when the result is accepted, moves the filter into the map frame (true); a refused scan
    /// is counted and logged with its reason (false: no pose for it). True when none pends.
    fn relocalised(&mut self, body_points: &[BodyPoint]) -> bool {
        let Some((cfg, hint)) = self
            .prior
            .as_ref()
            .and_then(|p| Some((p.reloc.clone()?, p.hint)))
        else {
            return true;
        };
        let Some(f) = self.filter.as_mut() else {
            return false;
        };
        let st = *f.state();
        let pts: Vec<Vector3<f64>> = body_points.iter().map(|b| b.p).collect();
        let t0 = std::time::Instant::now();
        let r = match &hint {
            Some(h) => super::reloc::relocalise_near(&self.map, &pts, &st.rot, h, &cfg),
            None => super::reloc::relocalise(&self.map, &pts, &st.rot, &cfg),
        };
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let status = self
            .counters
            .relocalisation
            .get_or_insert_with(Default::default);
        status.inlier_ratio = r.inlier_ratio;
        status.second_ratio = r.second_ratio;
        if let Some(reason) = &r.refused {
            status.refused_scans += 1;
            status.last_refusal = Some(reason.clone());
            tracing::warn!(
                "relocalisation refused ({} hypotheses, {ms:.0} ms): {reason}; no pose in the map frame yet",
                r.hypotheses
            );
            return false;
        }
        let (_, _, yaw) = r.pose.rotation.euler_angles();
        let t = r.pose.translation.vector;
        status.accepted_at_scan = Some(self.counters.scans);
        status.pending = false;
        status.pose = Some([t.x, t.y, t.z, yaw.to_degrees()]);
        tracing::info!(
            "relocalised in the loaded map at [{:.3}, {:.3}, {:.3}] m, yaw {:.2} deg: {:.0} % inliers, next best elsewhere {:.0} % of that ({} hypotheses, {ms:.0} ms)",
            t.x, t.y, t.z, yaw.to_degrees(), 100.0 * r.inlier_ratio, 100.0 * r.second_ratio, r.hypotheses
        );
        // The filter's frame (gravity-aligned, arbitrary yaw and origin) to the map's.
        let map_t_local = r.pose.rotation * st.rot.inverse();
        let mut s = st;
        s.rot = r.pose.rotation;
        s.pos = t;
        s.vel = map_t_local * st.vel;
        s.grav = map_t_local * st.grav;
        let mut cov = *f.covariance();
        for i in 0..3 {
            cov[(POS + i, POS + i)] = cov[(POS + i, POS + i)].max(0.05 * 0.05);
        }
        cov[(ROT + 2, ROT + 2)] = cov[(ROT + 2, ROT + 2)].max(0.02 * 0.02);
        f.set_state(s, cov);
        if let Some(p) = self.prior.as_mut() {
            p.reloc = None;
            p.hint = None;
        }
        true
    }
}
