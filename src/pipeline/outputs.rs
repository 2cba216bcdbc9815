//! The files of a run in DIR: `trajectory.tum` (appended and flushed per pose), `results.mcap`
//! (standard ROS 2 messages), `renders/` (renders next to camera images and their comparison,
//! PNG, spread over the run), `summary.json` (rewritten every few seconds), `config.yaml` (the
//! configuration used), and at the end `map.ply`, `trajectory.png`, `frames.csv` and
//! `renders.csv` (per-frame and per-render records for the report), `ground_truth.tum`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::frame_log::{FrameLog, RenderPicker};
use super::port::{map_centres_msg, odometry_msg, static_transforms, OutputFrames, PathBuffer};
use super::stages::{Finished, Output, PipelineHandle};
use super::summary::{process_cpu_seconds, Accuracy, RenderQuality, RunSummary};
use super::{PipelineError, PipelineOptions};
use crate::bag::msgs::{cloud_xyzi_msg, image_msg, transform_msg};
use crate::bag::BagWriter;
use crate::config::Config;
use crate::eval::records::{write_renders, RenderRecord};
use crate::eval::{self, EvalOptions};
use crate::sensors::{Image, PoseStamped};

/// Output topics in `results.mcap`.
pub mod topics {
    pub const ODOMETRY: &str = "/gs_livo/odometry";
    pub const PATH: &str = "/gs_livo/path";
    pub const REGISTERED: &str = "/gs_livo/registered_scan";
    pub const RENDERED: &str = "/gs_livo/rendered";
    pub const CAMERA: &str = "/gs_livo/camera";
    pub const CENTRES: &str = "/gs_livo/map_centres";
    /// `odom -> base_link` per pose, and the sensors' static transforms once.
    pub const TF: &str = "/tf";
    pub const TF_STATIC: &str = "/tf_static";
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputsConfig {
    /// Write every n-th registered scan into results.mcap (0 = none).
    pub registered_every: usize,
    /// Write the path every n-th pose (and at the end).
    pub path_every: usize,
    /// Most render/camera PNG pairs written into renders/, spread evenly over the run.
    pub max_render_pngs: usize,
    /// Most Gaussian centres per PointCloud2.
    pub max_centres: usize,
    /// Seconds between summary.json rewrites while running.
    pub summary_period: f64,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        Self {
            registered_every: 1,
            path_every: 10,
            max_render_pngs: 6,
            max_centres: 200_000,
            summary_period: 2.0,
        }
    }
}

/// Writes the outputs of one run into a folder.
pub struct OutputWriter {
    dir: PathBuf,
    cfg: OutputsConfig,
    frames: OutputFrames,
    tum: BufWriter<File>,
    bag: Option<BagWriter>,
    bag_dir: PathBuf,
    path: PathBuffer,
    poses: Vec<PoseStamped>,
    /// `[camera stamp s, PSNR dB]` per render.
    psnr: Vec<[f64; 2]>,
    /// True exposure gains `[stamp_s, gain]` (the simulator's `exposure.txt`), when known.
    exposure_truth: Vec<[f64; 2]>,
    ssim: Vec<f64>,
    /// Per-frame and per-render records (frames.csv, renders.csv), and which renders are PNGs.
    frame_log: FrameLog,
    render_log: Vec<RenderRecord>,
    picker: RenderPicker,
    /// Static transforms, written once with the first pose.
    tf_static: Option<crate::bag::msgs::TfMessage>,
    registered: u64,
    last_summary: Instant,
    started: Instant,
    /// When the first estimate arrived and when the pipeline had estimated and mapped every
    /// frame (see [`RunSummary::streaming_real_time_factor`]).
    first_estimate: Option<Instant>,
    drained: Option<Instant>,
    /// Process CPU seconds at the start (see [`process_cpu_seconds`]).
    cpu_started: Option<f64>,
    written: Vec<String>,
    bag_name: String,
    options: PipelineOptions,
    stats: PipelineHandle,
    errors: Vec<String>,
}

/// Render quality over a run from `[stamp_s, PSNR]` per render (in render order) and the SSIMs;
/// `None` without renders. Thirds split the rendered time span, so the last third's mean shows
/// a map that degrades with time (revisits) however the overall mean looks.
pub fn render_quality(psnr: &[[f64; 2]], ssim: &[f64]) -> Option<RenderQuality> {
    let first = psnr.first()?[0];
    let last = psnr.iter().fold(first, |m, p| m.max(p[0]));
    let third = (last - first) / 3.0;
    let mean = |f: &dyn Fn(f64) -> bool| {
        let v: Vec<f64> = psnr.iter().filter(|p| f(p[0])).map(|p| p[1]).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    Some(RenderQuality {
        renders: psnr.len(),
        psnr_mean_db: mean(&|_| true),
        psnr_min_db: psnr.iter().map(|p| p[1]).fold(f64::INFINITY, f64::min),
        psnr_max_db: psnr.iter().map(|p| p[1]).fold(f64::NEG_INFINITY, f64::max),
        ssim_mean: (!ssim.is_empty()).then(|| ssim.iter().sum::<f64>() / ssim.len() as f64),
        psnr_first_third_db: mean(&|t| t <= first + third),
        psnr_last_third_db: mean(&|t| t >= last - third),
        psnr_series: psnr.iter().map(|p| [p[0] - first, p[1]]).collect(),
    })
}

fn png(img: &Image, path: &Path) -> Result<(), PipelineError> {
    image::save_buffer(
        path,
        &img.rgb,
        img.width,
        img.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| PipelineError::Output(format!("{}: {e}", path.display())))
}

impl OutputWriter {
    /// Creates DIR (and renders/), the trajectory file and the results bag.
    pub fn create(
        dir: &Path,
        config: &Config,
        cfg: OutputsConfig,
        bag_name: &str,
        options: &PipelineOptions,
        stats: PipelineHandle,
    ) -> Result<Self, PipelineError> {
        std::fs::create_dir_all(dir.join("renders")).map_err(|e| PipelineError::io(dir, e))?;
        // The configuration as used, so `gs_livo report` can show what differs from defaults.
        let cfg_path = dir.join("config.yaml");
        std::fs::write(&cfg_path, config.to_yaml()).map_err(|e| PipelineError::io(&cfg_path, e))?;
        let tum_path = dir.join("trajectory.tum");
        let tum = File::create(&tum_path).map_err(|e| PipelineError::io(&tum_path, e))?;
        let bag_dir = dir.join(".results_bag");
        let bag = BagWriter::create_with(&bag_dir, crate::bag::WriterOptions::streaming())?;
        let frames = OutputFrames::from_config(config);
        Ok(Self {
            dir: dir.to_path_buf(),
            picker: RenderPicker::new(cfg.max_render_pngs),
            cfg,
            tf_static: Some(static_transforms(
                config,
                &frames,
                &nalgebra::Isometry3::identity(),
                true,
                true,
            )),
            frames,
            tum: BufWriter::new(tum),
            bag: Some(bag),
            bag_dir,
            path: PathBuffer::new(100_000),
            poses: Vec::new(),
            psnr: Vec::new(),
            exposure_truth: Vec::new(),
            ssim: Vec::new(),
            frame_log: FrameLog::default(),
            render_log: Vec::new(),
            registered: 0,
            last_summary: Instant::now(),
            started: Instant::now(),
            first_estimate: None,
            drained: None,
            cpu_started: process_cpu_seconds(),
            written: vec![
                "trajectory.tum".into(),
                "summary.json".into(),
                "config.yaml".into(),
            ],
            bag_name: bag_name.into(),
            options: options.clone(),
            stats,
            errors: Vec::new(),
        })
    }

    pub fn poses(&self) -> &[PoseStamped] {
        &self.poses
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Handles one output; errors are kept (reported in the summary) so a full disk does not
    /// stop the odometry.
    pub fn handle(&mut self, o: &Output) {
        if self.first_estimate.is_none() && matches!(o, Output::Pose(_)) {
            self.first_estimate = Some(Instant::now());
        }
        if let Err(e) = self.try_handle(o) {
            if self.errors.len() < 20 {
                tracing::error!("writing outputs: {e}");
                self.errors.push(e.to_string());
            }
        }
        if self.last_summary.elapsed().as_secs_f64() >= self.cfg.summary_period {
            self.last_summary = Instant::now();
            let _ = self
                .summary("running")
                .write(&self.dir.join("summary.json"));
        }
    }

    fn bag_err(e: crate::bag::BagError) -> PipelineError {
        PipelineError::Bag(e)
    }

    fn try_handle(&mut self, o: &Output) -> Result<(), PipelineError> {
        match o {
            Output::Pose(f) => {
                let p = PoseStamped {
                    stamp: f.estimate.stamp,
                    pose: f.estimate.pose,
                };
                self.tum
                    .write_all(eval::tum::format_tum(std::slice::from_ref(&p)).as_bytes())
                    .and_then(|_| self.tum.flush())
                    .map_err(|e| PipelineError::io(&self.dir.join("trajectory.tum"), e))?;
                self.path.push(p.stamp, p.pose);
                self.poses.push(p);
                {
                    let live = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                    self.frame_log.pose(f.frame, f.estimate.stamp, &live);
                }
                if let Some(bag) = self.bag.as_mut() {
                    let stamp = f.estimate.stamp;
                    if let Some(tf) = self.tf_static.take() {
                        bag.write(topics::TF_STATIC, stamp, &tf)
                            .map_err(Self::bag_err)?;
                    }
                    let tf = crate::bag::msgs::TfMessage {
                        transforms: vec![transform_msg(
                            stamp,
                            &self.frames.odom,
                            &self.frames.base_link,
                            &f.estimate.pose,
                        )],
                    };
                    bag.write(topics::TF, stamp, &tf).map_err(Self::bag_err)?;
                    bag.write(
                        topics::ODOMETRY,
                        stamp,
                        &odometry_msg(&f.estimate, &self.frames),
                    )
                    .map_err(Self::bag_err)?;
                    if self.poses.len().is_multiple_of(self.cfg.path_every.max(1)) {
                        bag.write(topics::PATH, stamp, &self.path.msg(&self.frames))
                            .map_err(Self::bag_err)?;
                    }
                }
            }
            Output::Registered(c) => {
                self.registered += 1;
                let every = self.cfg.registered_every as u64;
                if every > 0 && (self.registered - 1).is_multiple_of(every) {
                    if let Some(bag) = self.bag.as_mut() {
                        bag.write(
                            topics::REGISTERED,
                            c.stamp,
                            &cloud_xyzi_msg(c, &self.frames.map),
                        )
                        .map_err(Self::bag_err)?;
                    }
                }
            }
            Output::Render(r) => {
                let (psnr, ssim) = r.quality();
                // The window's training figure: held-out views only in renders.csv.
                if let Some(p) = psnr.filter(|p| p.is_finite() && !r.held_out) {
                    self.psnr
                        .push([crate::sensors::stamp_to_secs(r.camera.stamp), p]);
                }
                if let Some(v) = ssim.filter(|v| v.is_finite() && !r.held_out) {
                    self.ssim.push(v);
                }
                // Shown next to the render, in the same (map) units.
                let camera = r.normalised_camera();
                if let Some(bag) = self.bag.as_mut() {
                    let stamp = r.camera.stamp;
                    let mut render = r.render.clone();
                    render.stamp = stamp;
                    bag.write(
                        topics::RENDERED,
                        stamp,
                        &image_msg(&render, &self.frames.camera),
                    )
                    .map_err(Self::bag_err)?;
                    bag.write(
                        topics::CAMERA,
                        stamp,
                        &image_msg(&camera, &self.frames.camera),
                    )
                    .map_err(Self::bag_err)?;
                }
                self.render_pngs(r, &camera, psnr, ssim)?;
            }
            // IMU-rate estimates are for a live node's controllers, not for a run's files.
            Output::ImuPose(_) => {}
            Output::Centres(m) => {
                if let Some(bag) = self.bag.as_mut() {
                    bag.write(
                        topics::CENTRES,
                        m.stamp,
                        &map_centres_msg(m, &self.frames.map, self.cfg.max_centres),
                    )
                    .map_err(Self::bag_err)?;
                }
            }
        }
        Ok(())
    }

    /// Records a render and keeps it as PNGs (render, camera, comparison) when the picker
    /// says so, deleting the ones it evicts.
    fn render_pngs(
        &mut self,
        r: &super::RenderPair,
        camera: &Image,
        psnr: Option<f64>,
        ssim: Option<f64>,
    ) -> Result<(), PipelineError> {
        let held_out = r.held_out;
        self.render_log.push(RenderRecord {
            frame: r.frame,
            time_s: self.frame_log.time_of(r.camera.stamp),
            psnr_db: psnr.filter(|p| p.is_finite()),
            ssim: ssim.filter(|v| v.is_finite()),
            held_out,
            image: None,
        });
        let pick = self.picker.offer(held_out);
        for (n, files) in pick.evict {
            for f in &files {
                let _ = std::fs::remove_file(self.dir.join(f));
            }
            self.written.retain(|w| !files.contains(w));
            if let Some(rec) = self.render_log.get_mut(n as usize) {
                rec.image = None;
            }
        }
        let Some(n) = pick.keep else {
            return Ok(());
        };
        let name = |kind: &str| format!("renders/frame{:05}_{kind}.png", r.frame);
        let mut files = Vec::new();
        for (img, kind) in [(&r.render, "render"), (camera, "camera")] {
            png(img, &self.dir.join(name(kind)))?;
            files.push(name(kind));
        }
        let compare = name("compare");
        eval::compare::write_comparison(camera, &r.render, &self.dir.join(&compare))
            .map_err(|e| PipelineError::Output(e.to_string()))?;
        files.push(compare.clone());
        if let Some(rec) = self.render_log.last_mut() {
            rec.image = Some(compare);
        }
        self.written.extend(files.iter().cloned());
        self.picker.kept(n, files);
        Ok(())
    }

    /// Writes frames.csv, renders.csv and the ground truth used (for `gs_livo report`).
    fn write_records(&mut self, ground_truth: &[PoseStamped]) -> Result<(), PipelineError> {
        let out = |e: eval::EvalError| PipelineError::Output(e.to_string());
        self.frame_log
            .table()
            .write(&self.dir.join("frames.csv"))
            .map_err(out)?;
        self.written.push("frames.csv".into());
        if !self.render_log.is_empty() {
            write_renders(&self.render_log, &self.dir.join("renders.csv")).map_err(out)?;
            self.written.push("renders.csv".into());
        }
        if !ground_truth.is_empty() {
            let p = self.dir.join("ground_truth.tum");
            std::fs::write(&p, eval::tum::format_tum(ground_truth))
                .map_err(|e| PipelineError::io(&p, e))?;
            self.written.push("ground_truth.tum".into());
        }
        Ok(())
    }

    /// The summary as of now.
    /// Notes that the pipeline has processed every frame (before the final writes).
    pub fn mark_drained(&mut self) {
        self.drained = Some(Instant::now());
    }

    /// The true exposure gains of the recording (`[stamp_s, gain]`), for the summary's
    /// `exposure_accuracy`.
    pub fn set_exposure_truth(&mut self, truth: Vec<[f64; 2]>) {
        self.exposure_truth = truth;
    }

    pub fn summary(&self, status: &str) -> RunSummary {
        let live = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut s = RunSummary::from_live(
            &live,
            status,
            &self.bag_name,
            &self.options,
            self.started.elapsed().as_secs_f64(),
        );
        s.outputs = self.written.clone();
        if let (Some(a), Some(b)) = (self.first_estimate, self.drained) {
            let wall = b.saturating_duration_since(a).as_secs_f64();
            if wall > 0.0 && s.sensor_seconds > 0.0 {
                s.streaming_real_time_factor = Some(s.sensor_seconds / wall);
            }
        }
        if let (Some(a), Some(b)) = (self.cpu_started, process_cpu_seconds()) {
            s.cpu_seconds = Some(b - a);
        }
        s.render_quality = render_quality(&self.psnr, &self.ssim);
        if !self.exposure_truth.is_empty() {
            // The first second's gains are the initial value, before any map exists.
            s.exposure_accuracy = crate::estimator::visual::exposure::exposure_error(
                &s.visual.run.exposure,
                &self.exposure_truth,
                1e-3,
                1.0,
            );
        }
        if !self.errors.is_empty() {
            s.error = Some(self.errors.join("; "));
        }
        s
    }

    /// Closes the results bag, writes the map, the plot and the final summary.
    pub fn finish(
        mut self,
        finished: Option<&mut Finished>,
        ground_truth: &[PoseStamped],
        gt_source: &str,
        status: &str,
        error: Option<String>,
    ) -> Result<RunSummary, PipelineError> {
        let _ = self.tum.flush();
        if let Some(bag) = self.bag.take() {
            bag.finish()?;
            let src = std::fs::read_dir(&self.bag_dir)
                .map_err(|e| PipelineError::io(&self.bag_dir, e))?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "mcap"))
                .ok_or_else(|| PipelineError::Output("results bag has no .mcap file".into()))?;
            let dst = self.dir.join("results.mcap");
            std::fs::rename(&src, &dst).map_err(|e| PipelineError::io(&dst, e))?;
            let _ = std::fs::remove_dir_all(&self.bag_dir);
            self.written.push("results.mcap".into());
        }
        let mut renderer = None;
        let mut exported = None;
        if let Some(f) = finished {
            renderer = f.renderer.clone();
            if let Some(map) = f.map.as_mut() {
                let p = self.dir.join("map.ply");
                map.save_ply(&p)?;
                self.written.push("map.ply".into());
                match map.score_exported(&p) {
                    Ok(q) => exported = Some(q),
                    Err(e) => {
                        tracing::warn!("scoring the exported map: {e}");
                        self.errors.push(format!("scoring the exported map: {e}"));
                    }
                }
            }
        }
        if let Err(e) = self.write_records(ground_truth) {
            tracing::warn!("per-frame records: {e}");
            self.errors.push(e.to_string());
        }
        let mut accuracy = None;
        if ground_truth.len() >= 2 && self.poses.len() >= 3 {
            match eval::evaluate_run(ground_truth, &self.poses) {
                Ok(r) => {
                    let plot = self.dir.join("trajectory.png");
                    match eval::plot::plot_report(&r, &plot) {
                        Ok(_) => self.written.push("trajectory.png".into()),
                        Err(e) => tracing::warn!("trajectory plot: {e}"),
                    }
                    accuracy = Some(Accuracy {
                        source: gt_source.into(),
                        matched: r.matched,
                        ate_rmse_m: r.ate.rmse,
                        ate_mean_m: r.ate.mean,
                        ate_max_m: r.ate.max,
                        ate_rotation_rmse_deg: r.ate_rotation_deg.rmse,
                        rpe_translation_rmse_m: r.rpe_translation.rmse,
                    });
                }
                Err(e) => tracing::warn!("no ATE: {e}"),
            }
        }
        if accuracy.is_none() && self.poses.len() >= 2 {
            self.plot_without_gt()?;
        }
        let mut s = self.summary(status);
        s.renderer = renderer;
        s.accuracy = accuracy;
        s.exported_map = exported;
        if let Some(e) = error {
            s.error = Some(match s.error.take() {
                Some(prev) => format!("{e}; {prev}"),
                None => e,
            });
        }
        s.write(&self.dir.join("summary.json"))?;
        Ok(s)
    }

    /// Top view of the estimate alone.
    fn plot_without_gt(&mut self) -> Result<(), PipelineError> {
        let xyz: Vec<[f64; 3]> = self
            .poses
            .iter()
            .map(|p| p.pose.translation.vector.into())
            .collect();
        let t0 = self.poses[0].stamp;
        let report = eval::EvalReport {
            options: EvalOptions::default(),
            matched: xyz.len(),
            reference_poses: 0,
            estimate_poses: xyz.len(),
            alignment: eval::trajectory::Alignment::identity(),
            ate: eval::Stats::of(&[]),
            ate_rotation_deg: eval::Stats::of(&[]),
            rpe_translation: eval::Stats::of(&[]),
            rpe_rotation_deg: eval::Stats::of(&[]),
            errors: self
                .poses
                .iter()
                .map(|p| (crate::sensors::stamp_diff_secs(p.stamp, t0), 0.0))
                .collect(),
            reference_xyz: Vec::new(),
            estimate_xyz: xyz,
        };
        let plot = self.dir.join("trajectory.png");
        eval::plot::plot_report(&report, &plot)
            .map_err(|e| PipelineError::Output(e.to_string()))?;
        self.written.push("trajectory.png".into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thirds of the rendered time span, the minimum and the series relative to the first
    /// render; a map that degrades shows in the last third only.
    #[test]
    fn render_quality_reports_psnr_over_time() {
        assert!(render_quality(&[], &[]).is_none());
        // 100 s + 0..30 s, one render a second: 25 dB, then 15 dB over the last 10 s.
        let psnr: Vec<[f64; 2]> = (0..=30)
            .map(|i| [100.0 + i as f64, if i >= 20 { 15.0 } else { 25.0 }])
            .collect();
        let q = render_quality(&psnr, &[0.5, 0.7]).unwrap();
        assert_eq!(q.renders, 31);
        assert_eq!(q.psnr_first_third_db, 25.0);
        assert_eq!(q.psnr_last_third_db, 15.0);
        assert_eq!((q.psnr_min_db, q.psnr_max_db), (15.0, 25.0));
        assert!((q.psnr_mean_db - (20.0 * 25.0 + 11.0 * 15.0) / 31.0).abs() < 1e-12);
        assert!((q.ssim_mean.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(q.psnr_series[0], [0.0, 25.0]);
        assert_eq!(q.psnr_series[30], [30.0, 15.0]);
        // One render: every figure is that render's.
        let q = render_quality(&[[5.0, 20.0]], &[]).unwrap();
        assert_eq!((q.psnr_first_third_db, q.psnr_last_third_db), (20.0, 20.0));
    }
}
