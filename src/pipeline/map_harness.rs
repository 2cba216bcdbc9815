//! Oracle-pose mapping on a simulated sequence: the map is built with ground-truth poses, so
//! its quality (training- and novel-view PSNR/SSIM) is measured apart from the estimator.

use nalgebra::Point3;

use crate::eval::image::{psnr_rgb8, ssim_rgb8};
use crate::gaussian::{FrameStats, GaussianConfig, GaussianError, GaussianMapper};
use crate::render::Renderer;
use crate::sensors::stamp_from_secs;
use crate::sim::SimSequence;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct OracleOptions {
    /// Optimise only on the first N images (all when None).
    pub max_frames: Option<usize>,
    /// Extra optimisation passes over the training frames at the end (0 = online only).
    pub final_passes: usize,
    /// Evaluate every Nth training frame and novel view.
    pub eval_every: usize,
    /// Also break the error down by true depth ([`OracleReport::depth_bands`]): costs a ray
    /// cast per pixel and view.
    pub depth_bands: bool,
}

impl Default for OracleOptions {
    fn default() -> Self {
        Self {
            max_frames: None,
            final_passes: 0,
            eval_every: 1,
            depth_bands: false,
        }
    }
}

/// Score of one evaluated view.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ViewScore {
    /// Seconds since the sequence start.
    pub t: f64,
    /// A novel view (between training frames) rather than a training view.
    pub novel: bool,
    pub psnr: f64,
    pub ssim: f64,
}

/// Error of all evaluated pixels whose true depth falls in `[near, far)` (sky: infinite).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DepthBand {
    pub near: f64,
    pub far: f64,
    /// Fraction of the evaluated pixels in the band.
    pub fraction: f64,
    /// PSNR over the band's pixels (all views pooled).
    pub psnr: f64,
}

/// Upper edges (m) of the depth bands; the last band holds the sky.
const BAND_EDGES: [f64; 6] = [3.0, 6.0, 12.0, 25.0, 50.0, f64::INFINITY];

/// Image quality of an oracle-pose run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OracleReport {
    pub frames: usize,
    pub gaussians: usize,
    /// Mean over the evaluated training frames (all of them, the static start included).
    pub train_psnr: f64,
    pub train_ssim: f64,
    pub train_views: usize,
    /// Mean over novel views: poses halfway between consecutive training frames while the rig
    /// moves (the static start has no "between"), rendered by the simulator.
    pub novel_psnr: f64,
    pub novel_ssim: f64,
    pub novel_views: usize,
    /// Mean distance (m) and angle (deg) from each novel pose to its nearest training pose.
    pub novel_baseline_m: f64,
    pub novel_baseline_deg: f64,
    pub last_frame: FrameStats,
    pub window_peak: usize,
    pub map_bytes: usize,
    pub window_bytes: usize,
    /// Every evaluated view in order (training views first).
    pub views: Vec<ViewScore>,
    /// Error by true depth, when asked for ([`OracleOptions::depth_bands`]).
    pub depth_bands: Vec<DepthBand>,
}

/// Camera poses closer than this (m, and rad) to the previous frame count as not moving.
const MOVING_M: f64 = 0.005;
const MOVING_RAD: f64 = 0.002;

/// Points of a simulated scan in the world, each moved with the true body pose at its own time
/// (an exact deskew).
pub fn scan_in_world(
    seq: &SimSequence,
    scan: &crate::sim::LidarScan,
    imu_t_lidar: &nalgebra::Isometry3<f64>,
) -> Vec<[f64; 3]> {
    let t0 = seq.time_of(scan.stamp);
    scan.points
        .iter()
        .map(|p| {
            let w = seq.trajectory.pose(t0 + f64::from(p.t))
                * imu_t_lidar
                * Point3::new(f64::from(p.p[0]), f64::from(p.p[1]), f64::from(p.p[2]));
            [w.x, w.y, w.z]
        })
        .collect()
}

/// A map built along a simulated sequence with ground-truth poses.
pub struct OracleMapping {
    pub mapper: GaussianMapper,
    /// Images mapped (and optimised on).
    pub frames: usize,
    pub window_peak: usize,
    pub last_frame: FrameStats,
}

/// Maps the first `max_frames` images of `seq` (all when `None`) as the pipeline would, with
/// ground-truth poses: scans deskewed with the true trajectory and inserted before each image,
/// then colouring, window maintenance and one frame of optimisation per image.
pub fn map_with_ground_truth(
    seq: &SimSequence,
    cfg: GaussianConfig,
    renderer: &mut dyn Renderer,
    max_frames: Option<usize>,
) -> Result<OracleMapping, GaussianError> {
    let rig = &seq.config.rig;
    let camera = rig.camera.clone();
    let imu_t_cam = rig.extrinsics.imu_T_camera.0;
    let imu_t_lidar = rig.extrinsics.imu_T_lidar.0;
    let mut out = OracleMapping {
        mapper: GaussianMapper::new(cfg, camera, imu_t_cam)?,
        frames: 0,
        window_peak: 0,
        last_frame: FrameStats::default(),
    };
    let mapper = &mut out.mapper;
    let traj = &seq.trajectory;
    let n_frames = max_frames.unwrap_or(usize::MAX).min(seq.images.len());
    let mut scan_i = 0;
    for (fi, img) in seq.images.iter().take(n_frames).enumerate() {
        let t_img = seq.time_of(img.stamp);
        // Insert every scan that ended before this image, deskewed with ground truth.
        while scan_i < seq.scans.len() {
            let scan = &seq.scans[scan_i];
            let t0 = seq.time_of(scan.stamp);
            let t_scan_end = t0 + 1.0 / seq.config.lidar_rate;
            if t_scan_end > t_img + 1e-9 && fi > 0 {
                break;
            }
            let pts = scan_in_world(seq, scan, &imu_t_lidar);
            let o = (traj.pose(t_scan_end) * imu_t_lidar).translation.vector;
            mapper.insert_scan(&pts, None, [o.x, o.y, o.z], scan.stamp);
            scan_i += 1;
            if t_scan_end > t_img {
                break;
            }
        }
        let pose = traj.pose(t_img);
        let gain = seq.exposure.get(fi).copied().unwrap_or(1.0) as f32;
        mapper.add_image(img, &pose, gain);
        let next = traj.pose(t_img + 1.0 / seq.config.camera_rate);
        let s = mapper.update_window(&pose, Some(&next));
        out.window_peak = out.window_peak.max(s.len);
        out.last_frame = mapper.optimise_frame(renderer, img, &pose, gain)?;
        out.frames += 1;
    }
    Ok(out)
}

/// Builds the map of `seq` with ground-truth poses and measures it.
pub fn run_oracle(
    seq: &SimSequence,
    cfg: GaussianConfig,
    renderer: &mut dyn Renderer,
    opts: &OracleOptions,
) -> Result<OracleReport, GaussianError> {
    let n_frames = opts.max_frames.unwrap_or(usize::MAX).min(seq.images.len());
    if n_frames == 0 {
        return Err(GaussianError::Input("sequence has no images".into()));
    }
    let mapped = map_with_ground_truth(seq, cfg, renderer, Some(n_frames))?;
    let mut mapper = mapped.mapper;
    final_passes(seq, &mut mapper, renderer, n_frames, opts.final_passes)?;
    let times: Vec<f64> = seq.images[..n_frames]
        .iter()
        .map(|i| seq.time_of(i.stamp))
        .collect();
    let mut scorer = Scorer::new(seq, opts);
    let train = scorer.training_views(&mut mapper, renderer, &times)?;
    let (novel, baseline) = scorer.novel_views(&mut mapper, renderer, &times)?;
    let mut report = OracleReport {
        frames: mapped.frames,
        window_peak: mapped.window_peak,
        last_frame: mapped.last_frame,
        ..Default::default()
    };
    report.depth_bands = scorer.depth_bands();
    report.views = scorer.views;
    summarise(&mut report, train, novel, baseline, &mapper);
    Ok(report)
}

/// Extra optimisation passes over the first `n_frames` training frames.
fn final_passes(
    seq: &SimSequence,
    mapper: &mut GaussianMapper,
    renderer: &mut dyn Renderer,
    n_frames: usize,
    passes: usize,
) -> Result<(), GaussianError> {
    for _ in 0..passes {
        for (fi, img) in seq.images.iter().take(n_frames).enumerate() {
            let pose = seq.trajectory.pose(seq.time_of(img.stamp));
            let gain = seq.exposure.get(fi).copied().unwrap_or(1.0) as f32;
            mapper.update_window(&pose, None);
            mapper.optimise_frame(renderer, img, &pose, gain)?;
        }
    }
    Ok(())
}

/// Sums of PSNR, SSIM and the number of views scored.
type ScoreSum = (f64, f64, usize);

/// Scores map renders against the simulator's exact images.
struct Scorer<'a> {
    seq: &'a SimSequence,
    opts: &'a OracleOptions,
    /// The simulator's camera at exposure 1 (the map's units) renders the references.
    sim_cam: crate::sim::CameraRays,
    /// Squared error (in units of 255^2) and channel samples per depth band.
    bands: [(f64, usize); BAND_EDGES.len()],
    views: Vec<ViewScore>,
}

impl<'a> Scorer<'a> {
    fn new(seq: &'a SimSequence, opts: &'a OracleOptions) -> Self {
        let rig = &seq.config.rig;
        Self {
            seq,
            opts,
            sim_cam: crate::sim::CameraRays::new(&rig.camera, seq.config.supersample.max(1)),
            bands: [(0.0, 0); BAND_EDGES.len()],
            views: Vec::new(),
        }
    }

    fn imu_t_cam(&self) -> nalgebra::Isometry3<f64> {
        self.seq.config.rig.extrinsics.imu_T_camera.0
    }

    /// Renders the map at time `t` of the trajectory and scores it into `sum`.
    fn score(
        &mut self,
        mapper: &mut GaussianMapper,
        renderer: &mut dyn Renderer,
        t: f64,
        novel: bool,
        sum: &mut ScoreSum,
    ) -> Result<(), GaussianError> {
        let seq = self.seq;
        let pose = seq.trajectory.pose(t);
        // The next view is this one: a constant-velocity guess from the previously evaluated
        // (unrelated) pose would widen the selection and, with the window full, push out
        // Gaussians this view needs.
        mapper.update_window(&pose, Some(&pose));
        let r = mapper.render(renderer, &pose)?;
        let world_t_cam = pose * self.imu_t_cam();
        let mut truth = self.sim_cam.render(&seq.scene, &world_t_cam, 1.0);
        truth.stamp = seq.config.t0_ns + stamp_from_secs(t);
        let psnr = psnr_rgb8(&r, &truth).map_err(|e| GaussianError::Input(e.to_string()))?;
        let ssim = ssim_rgb8(&r, &truth).map_err(|e| GaussianError::Input(e.to_string()))?;
        sum.0 += psnr;
        sum.1 += ssim;
        sum.2 += 1;
        self.views.push(ViewScore {
            t,
            novel,
            psnr,
            ssim,
        });
        if self.opts.depth_bands {
            accumulate_bands(seq, &world_t_cam, &r, &truth, &mut self.bands);
        }
        Ok(())
    }

    /// Every `eval_every`-th training view.
    fn training_views(
        &mut self,
        mapper: &mut GaussianMapper,
        renderer: &mut dyn Renderer,
        times: &[f64],
    ) -> Result<ScoreSum, GaussianError> {
        let mut train = (0.0, 0.0, 0usize);
        for &t in times.iter().step_by(self.opts.eval_every.max(1)) {
            self.score(mapper, renderer, t, false, &mut train)?;
        }
        Ok(train)
    }

    /// Novel views halfway between consecutive frames that differ in pose; with the summed
    /// distance (m, rad) of each to the nearer training view.
    fn novel_views(
        &mut self,
        mapper: &mut GaussianMapper,
        renderer: &mut dyn Renderer,
        times: &[f64],
    ) -> Result<(ScoreSum, (f64, f64)), GaussianError> {
        let mut novel = (0.0, 0.0, 0usize);
        let (mut base_m, mut base_rad) = (0.0, 0.0);
        let imu_t_cam = self.imu_t_cam();
        let traj = &self.seq.trajectory;
        let cam_at = |t: f64| traj.pose(t) * imu_t_cam;
        for k in (0..times.len().saturating_sub(1)).step_by(self.opts.eval_every.max(1)) {
            let (a, b) = (cam_at(times[k]), cam_at(times[k + 1]));
            let moved = (a.translation.vector - b.translation.vector).norm() > MOVING_M
                || a.rotation.angle_to(&b.rotation) > MOVING_RAD;
            if !moved {
                continue;
            }
            let t = 0.5 * (times[k] + times[k + 1]);
            let c = cam_at(t);
            let (dm, dr) = [a, b]
                .iter()
                .map(|p| {
                    (
                        (p.translation.vector - c.translation.vector).norm(),
                        p.rotation.angle_to(&c.rotation),
                    )
                })
                .fold((f64::INFINITY, f64::INFINITY), |acc, v| {
                    (acc.0.min(v.0), acc.1.min(v.1))
                });
            base_m += dm;
            base_rad += dr;
            self.score(mapper, renderer, t, true, &mut novel)?;
        }
        Ok((novel, (base_m, base_rad)))
    }

    /// PSNR per depth band (empty unless `depth_bands`).
    fn depth_bands(&self) -> Vec<DepthBand> {
        let mut out = Vec::new();
        if !self.opts.depth_bands {
            return out;
        }
        let total: usize = self.bands.iter().map(|b| b.1).sum();
        let mut near = 0.0;
        for (&far, &(se, n)) in BAND_EDGES.iter().zip(&self.bands) {
            out.push(DepthBand {
                near,
                far,
                fraction: n as f64 / total.max(1) as f64,
                psnr: if n == 0 {
                    f64::NAN
                } else {
                    10.0 * (n as f64 / se.max(1e-12)).log10()
                },
            });
            near = far;
        }
        out
    }
}

/// Means of the view scores and the map's size into `report`.
fn summarise(
    report: &mut OracleReport,
    train: ScoreSum,
    novel: ScoreSum,
    (base_m, base_rad): (f64, f64),
    mapper: &GaussianMapper,
) {
    let mean = |s: f64, n: usize| s / n.max(1) as f64;
    report.train_views = train.2;
    report.train_psnr = mean(train.0, train.2);
    report.train_ssim = mean(train.1, train.2);
    report.novel_views = novel.2;
    report.novel_psnr = mean(novel.0, novel.2);
    report.novel_ssim = mean(novel.1, novel.2);
    report.novel_baseline_m = mean(base_m, novel.2);
    report.novel_baseline_deg = mean(base_rad, novel.2).to_degrees();
    report.gaussians = mapper.map().len();
    report.map_bytes = mapper.map().memory_bytes();
    report.window_bytes = mapper.window().memory_bytes();
}

/// Adds the squared errors of `render` against `truth` to the bands of each pixel's true depth
/// (a ray cast into the simulated scene from `world_t_cam`; no hit = sky, the last band).
fn accumulate_bands(
    seq: &SimSequence,
    world_t_cam: &nalgebra::Isometry3<f64>,
    render: &crate::sensors::Image,
    truth: &crate::sensors::Image,
    bands: &mut [(f64, usize)],
) {
    let c = &seq.config.rig.camera;
    let origin = world_t_cam.translation.vector;
    for y in 0..c.height {
        for x in 0..c.width {
            let d = crate::sim::unproject(c, [f64::from(x), f64::from(y)]);
            let ray = crate::sim::Ray {
                origin,
                dir: world_t_cam.rotation * d.normalize(),
            };
            let depth = seq
                .scene
                .intersect(&ray)
                .map_or(f64::INFINITY, |h| h.t * d.normalize().z);
            let b = BAND_EDGES
                .iter()
                .position(|&e| depth < e)
                .unwrap_or(BAND_EDGES.len() - 1);
            let i = 3 * (y * c.width + x) as usize;
            for k in i..i + 3 {
                let e = f64::from(render.rgb[k]) / 255.0 - f64::from(truth.rgb[k]) / 255.0;
                bands[b].0 += e * e;
                bands[b].1 += 1;
            }
        }
    }
}
