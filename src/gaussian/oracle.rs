//! Oracle-pose mapping on a simulated sequence: the map is built with ground-truth poses, so
//! its quality (training- and novel-view PSNR/SSIM) is measured apart from the estimator.

use nalgebra::Point3;

use super::camera::CameraModel;
use super::config::GaussianConfig;
use super::mapper::GaussianMapper;
use super::optimise::FrameStats;
use super::GaussianError;
use crate::eval::image::{psnr_rgb8, ssim_rgb8};
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
}

impl Default for OracleOptions {
    fn default() -> Self {
        Self {
            max_frames: None,
            final_passes: 0,
            eval_every: 1,
        }
    }
}

/// Image quality of an oracle-pose run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OracleReport {
    pub frames: usize,
    pub gaussians: usize,
    pub train_psnr: f64,
    pub train_ssim: f64,
    pub novel_psnr: f64,
    pub novel_ssim: f64,
    pub novel_views: usize,
    pub last_frame: FrameStats,
    pub window_peak: usize,
    pub map_bytes: usize,
    pub window_bytes: usize,
}

/// Builds the map of `seq` with ground-truth poses and measures it. Novel views are rendered
/// by the simulator halfway between consecutive training frames.
pub fn run_oracle(
    seq: &SimSequence,
    cfg: GaussianConfig,
    renderer: &mut dyn Renderer,
    opts: &OracleOptions,
) -> Result<OracleReport, GaussianError> {
    let rig = &seq.config.rig;
    let camera = CameraModel::from_config(&rig.camera);
    let imu_t_cam = rig.extrinsics.imu_T_camera.0;
    let imu_t_lidar = rig.extrinsics.imu_T_lidar.0;
    let mut mapper = GaussianMapper::new(cfg, camera, imu_t_cam)?;
    let traj = &seq.trajectory;
    let n_frames = opts.max_frames.unwrap_or(usize::MAX).min(seq.images.len());
    let t_end = seq.time_of(seq.images[n_frames.saturating_sub(1)].stamp);
    let mut report = OracleReport::default();
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
            let pts: Vec<[f64; 3]> = scan
                .points
                .iter()
                .map(|p| {
                    let w = traj.pose(t0 + f64::from(p.t))
                        * imu_t_lidar
                        * Point3::new(f64::from(p.p[0]), f64::from(p.p[1]), f64::from(p.p[2]));
                    [w.x, w.y, w.z]
                })
                .collect();
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
        report.window_peak = report.window_peak.max(s.len);
        report.last_frame = mapper.optimise_frame(renderer, img, &pose, gain)?;
        report.frames += 1;
    }
    for _ in 0..opts.final_passes {
        for (fi, img) in seq.images.iter().take(n_frames).enumerate() {
            let pose = traj.pose(seq.time_of(img.stamp));
            let gain = seq.exposure.get(fi).copied().unwrap_or(1.0) as f32;
            mapper.update_window(&pose, None);
            mapper.optimise_frame(renderer, img, &pose, gain)?;
        }
    }
    // Training views.
    let every = opts.eval_every.max(1);
    let (mut p_sum, mut s_sum, mut n) = (0.0, 0.0, 0usize);
    for (fi, img) in seq.images.iter().take(n_frames).enumerate().step_by(every) {
        let pose = traj.pose(seq.time_of(img.stamp));
        let gain = seq.exposure.get(fi).copied().unwrap_or(1.0);
        mapper.update_window(&pose, None);
        let r = mapper.render(renderer, &pose)?;
        let truth = crate::sim::render_camera(&seq.scene, &(pose * imu_t_cam), &rig.camera, 1.0);
        let _ = gain;
        p_sum += psnr_rgb8(&r, &truth).map_err(|e| GaussianError::Input(e.to_string()))?;
        s_sum += ssim_rgb8(&r, &truth).map_err(|e| GaussianError::Input(e.to_string()))?;
        n += 1;
    }
    report.train_psnr = p_sum / n.max(1) as f64;
    report.train_ssim = s_sum / n.max(1) as f64;
    // Novel views halfway between training frames.
    let (mut p_sum, mut s_sum, mut n) = (0.0, 0.0, 0usize);
    let dt = 1.0 / seq.config.camera_rate;
    for img in seq
        .images
        .iter()
        .take(n_frames.saturating_sub(1))
        .step_by(every)
    {
        let t = seq.time_of(img.stamp) + 0.5 * dt;
        if t > t_end {
            break;
        }
        let pose = traj.pose(t);
        mapper.update_window(&pose, None);
        let r = mapper.render(renderer, &pose)?;
        let mut truth =
            crate::sim::render_camera(&seq.scene, &(pose * imu_t_cam), &rig.camera, 1.0);
        truth.stamp = seq.config.t0_ns + stamp_from_secs(t);
        p_sum += psnr_rgb8(&r, &truth).map_err(|e| GaussianError::Input(e.to_string()))?;
        s_sum += ssim_rgb8(&r, &truth).map_err(|e| GaussianError::Input(e.to_string()))?;
        n += 1;
    }
    report.novel_views = n;
    report.novel_psnr = p_sum / n.max(1) as f64;
    report.novel_ssim = s_sum / n.max(1) as f64;
    report.gaussians = mapper.map().len();
    report.map_bytes = mapper.map().memory_bytes();
    report.window_bytes = mapper.window().memory_bytes();
    Ok(report)
}
