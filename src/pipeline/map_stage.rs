//! The mapper stage: the Gaussian map fed with registered scans and posed images, its window
//! kept on the view, optimised per frame, and rendered for the outputs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use nalgebra::Isometry3;

use super::held_out::{score_exported_map, ExportedMapQuality, HeldOutFrames};
use super::port::MapCentres;
use super::PipelineError;
use crate::config::Config;
use crate::gaussian::{Gaussian, GaussianMapper};
use crate::render::{create_renderer, Camera, Renderer};
use crate::sensors::{Image, Stamp};

/// An image with the estimated body pose at its stamp.
#[derive(Debug, Clone)]
pub struct PosedFrameImage {
    pub image: Image,
    /// `T_world_body` at the image stamp.
    pub world_t_imu: Isometry3<f64>,
    /// Exposure gain relative to the map (1 when the filter does not estimate it).
    pub exposure: f32,
}

/// What the estimator hands the mapper per scan.
#[derive(Debug, Clone)]
pub struct MapFrame {
    pub index: u64,
    pub stamp: Stamp,
    pub world_t_imu: Isometry3<f64>,
    /// Registered scan (world frame).
    pub points: Vec<[f64; 3]>,
    /// LiDAR origin in the world.
    pub sensor: [f64; 3],
    pub images: Vec<PosedFrameImage>,
}

/// The window's Gaussians after a mapped frame, for the visual update.
#[derive(Debug, Clone)]
pub struct MapSnapshot {
    /// Index of the frame after which this was taken.
    pub frame: u64,
    pub gaussians: Arc<Vec<Gaussian>>,
    pub sh_degree: u32,
    /// Background colour the mapper composites renders over.
    pub background: [f32; 3],
}

/// A render next to the camera image it should look like.
#[derive(Debug, Clone)]
pub struct RenderPair {
    pub frame: u64,
    /// In the map's brightness units.
    pub render: Image,
    /// The camera image as recorded.
    pub camera: Image,
    /// Exposure gain of `camera` relative to the map (1 without an exposure estimate).
    pub exposure: f32,
    /// The camera image was held out: the map never trained on it.
    pub held_out: bool,
}

impl RenderPair {
    /// The camera image divided by its gain: what the render should look like, to view.
    pub fn normalised_camera(&self) -> Image {
        normalise_exposure(&self.camera, self.exposure)
    }

    /// PSNR (dB) and SSIM of the render times the gain against the recorded image, in camera
    /// units ([`crate::eval::image::psnr_rgb8_exposed`]: map units are arbitrary up to the
    /// exposure's global scale). Computed by whoever consumes the pair (the outputs thread),
    /// not by the mapper: a full-resolution SSIM costs as much as an optimisation iteration.
    pub fn quality(&self) -> (Option<f64>, Option<f64>) {
        use crate::eval::image::{psnr_rgb8_exposed, ssim_rgb8_exposed};
        (
            psnr_rgb8_exposed(&self.render, &self.camera, self.exposure).ok(),
            ssim_rgb8_exposed(&self.render, &self.camera, self.exposure).ok(),
        )
    }
}

/// Timings (ms) and counts of one mapped frame.
#[derive(Debug, Clone, Default)]
pub struct MapFrameReport {
    pub insert_ms: f64,
    pub colour_ms: f64,
    pub window_ms: f64,
    pub optimise_ms: f64,
    pub render_ms: f64,
    pub created: usize,
    pub window_len: usize,
    pub map_len: usize,
    pub renders: Vec<RenderPair>,
}

/// The mapper and its renderer.
pub struct MapStage {
    mapper: GaussianMapper,
    renderer: Box<dyn Renderer>,
    camera_images: u64,
    render_every: usize,
    /// Buffers of earlier snapshots, reused once the estimator has dropped them: a 20k window
    /// is 4.7 MB, and a fresh block that large per frame (the allocator maps and unmaps it)
    /// cost the mapper its page faults on top of the copy; reused, the snapshot took half the
    /// CPU samples.
    snapshot_buffers: Vec<Arc<Vec<Gaussian>>>,
    /// Held-out camera images with their poses, to score the exported map on.
    held_out: HeldOutFrames,
    /// Training images beside the held-out ones (the image before each), scored the same way:
    /// the exported map at views it trained on, so export and generalisation gaps separate.
    trained: HeldOutFrames,
    /// The renderer's settings, for scoring the exported map with a renderer of its own.
    render_cfg: crate::render::RenderConfig,
    /// What the last `save_ply` wrote.
    export: Option<crate::gaussian::ExportStats>,
    /// Localising in a loaded map: nothing is inserted, coloured or optimised.
    frozen: bool,
}

/// Snapshot buffers kept for reuse (the estimator holds at most `map_lag` + 1 at a time
/// offline; live, one).
const SNAPSHOT_BUFFERS: usize = 4;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Renders `gs` at body pose `world_t_imu` through `imu_t_camera` (RGB8, map units).
pub fn render_gaussians(
    r: &mut dyn Renderer,
    gs: &[Gaussian],
    sh_degree: u32,
    camera: &crate::sensors::Camera,
    far: f64,
    camera_t_world: &Isometry3<f64>,
    stamp: Stamp,
) -> Result<Image, PipelineError> {
    let mut img = Image::new(stamp, camera.width, camera.height);
    if gs.is_empty() {
        return Ok(img);
    }
    r.set_gaussians(&crate::gaussian::to_render(gs, sh_degree)?, None)?;
    let cam = Camera {
        width: camera.width,
        height: camera.height,
        fx: camera.fx,
        fy: camera.fy,
        cx: camera.cx,
        cy: camera.cy,
        // The mapper projects nothing closer than 5 cm either.
        near: 0.05,
        far,
    };
    let out = r.forward(&cam, camera_t_world)?;
    for (d, s) in img.rgb.iter_mut().zip(&out.colour) {
        *d = (s.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    Ok(img)
}

/// The camera image divided by its exposure gain (what the map should render).
fn normalise_exposure(img: &Image, gain: f32) -> Image {
    if (gain - 1.0).abs() < 1e-6 || !(gain.is_finite() && gain > 1e-3) {
        return img.clone();
    }
    let mut out = img.clone();
    for v in out.rgb.iter_mut() {
        *v = (*v as f32 / gain).round().clamp(0.0, 255.0) as u8;
    }
    out
}

impl MapStage {
    pub fn new(cfg: &Config, render_every: usize) -> Result<Self, PipelineError> {
        let mapper = GaussianMapper::new(
            cfg.gaussian.clone(),
            cfg.camera.clone(),
            cfg.extrinsics.imu_T_camera.0,
        )?;
        let renderer = create_renderer(&cfg.render)?;
        tracing::info!("mapper renders on {}", renderer.device_name());
        Ok(Self {
            mapper,
            renderer,
            camera_images: 0,
            render_every,
            snapshot_buffers: Vec::new(),
            held_out: HeldOutFrames::default(),
            trained: HeldOutFrames::default(),
            render_cfg: cfg.render.clone(),
            export: None,
            frozen: false,
        })
    }

    /// The mapper stage continuing a loaded map (`prior`), frozen in localise mode; a new one
    /// without a prior or when the map has no Gaussian part.
    pub fn with_prior(
        cfg: &Config,
        render_every: usize,
        prior: Option<&super::PriorMap>,
    ) -> Result<Self, PipelineError> {
        let mut stage = Self::new(cfg, render_every)?;
        if let Some(p) = prior {
            if let Some(m) = p.map.mapper(cfg)? {
                tracing::info!(
                    "mapper continues the loaded map: {} Gaussians, {:?} mode",
                    m.map().len(),
                    p.mode
                );
                stage.mapper = m;
            }
            stage.frozen = p.frozen();
        }
        Ok(stage)
    }

    /// The mapper, mutable (to capture its state for a map file).
    pub fn mapper_mut(&mut self) -> &mut GaussianMapper {
        &mut self.mapper
    }

    pub fn mapper(&self) -> &GaussianMapper {
        &self.mapper
    }

    pub fn renderer_name(&self) -> String {
        self.renderer.device_name()
    }

    /// How much smaller than the camera's the images the map is optimised on are (the map has
    /// no reliable detail below it).
    pub fn optimisation_reduction(&self) -> f64 {
        let c = self.mapper.camera();
        self.mapper
            .config()
            .optimisation_reduction(c.width, c.height)
    }

    /// One frame: insert the scan, colour from the images, move the window, optimise on the
    /// images, and render every `render_every`-th camera image. Held-out images
    /// (`gaussian.held_out_every`) neither colour nor train the map: they are kept for scoring.
    pub fn process(&mut self, f: &mut MapFrame) -> Result<MapFrameReport, PipelineError> {
        let mut rep = MapFrameReport::default();
        let first = self.camera_images;
        self.camera_images += f.images.len() as u64;
        let held: Vec<bool> = (first..self.camera_images)
            .map(|i| self.mapper.config().is_held_out(i))
            .collect();
        let t = Instant::now();
        if !self.frozen {
            let stats = self.mapper.insert_scan(&f.points, None, f.sensor, f.stamp);
            rep.created = stats.created;
            tracing::debug!(
                frame = f.index,
                created = stats.created,
                refined = stats.refined,
                refine_skipped = stats.refine_skipped,
                occupied = stats.occupied,
                "scan inserted"
            );
        }
        rep.insert_ms = ms(t);
        let t = Instant::now();
        for (k, (im, &h)) in f.images.iter().zip(&held).enumerate() {
            if self.frozen {
                continue;
            }
            if h {
                self.held_out.offer(im);
            } else {
                if self.mapper.config().is_held_out(first + k as u64 + 1) {
                    self.trained.offer(im);
                }
                self.mapper
                    .add_image(&im.image, &im.world_t_imu, im.exposure);
            }
        }
        rep.colour_ms = ms(t);
        let t = Instant::now();
        let view = f.images.last().map_or(f.world_t_imu, |i| i.world_t_imu);
        let ws = self.mapper.update_window(&view, None);
        tracing::debug!(
            frame = f.index,
            added = ws.added,
            removed = ws.removed,
            refused = ws.refused,
            current_need = ws.current_need,
            views = ws.complete.len(),
            complete = ws.complete.iter().filter(|c| **c).count(),
            current_complete = ws.complete.first().copied().unwrap_or(true),
            len = ws.len,
            map = self.mapper.map().len(),
            "window maintained"
        );
        rep.window_ms = ms(t);
        if let Some(e) = self.mapper.page_error() {
            // The map on disk changed or broke after it was opened: rendering on with a tile
            // missing would localise against half a map.
            return Err(PipelineError::Output(format!("loaded map: {e}")));
        }
        let t = Instant::now();
        if !self.frozen {
            self.optimise(f, &held)?;
        }
        rep.optimise_ms = ms(t);
        let t = Instant::now();
        for (k, (im, &h)) in f.images.iter().zip(&held).enumerate() {
            let due = self.render_every > 0
                && (first + k as u64).is_multiple_of(self.render_every as u64);
            if !due {
                continue;
            }
            let render = self.render_at(&im.world_t_imu, im.image.stamp)?;
            rep.renders.push(RenderPair {
                frame: f.index,
                render,
                camera: im.image.clone(),
                exposure: im.exposure,
                held_out: h,
            });
        }
        rep.render_ms = ms(t);
        rep.window_len = self.mapper.window().len();
        rep.map_len = self.mapper.map().len();
        Ok(rep)
    }

    /// Per-frame optimisation of the window on the frame's training images (latest last).
    fn optimise(&mut self, f: &MapFrame, held: &[bool]) -> Result<(), PipelineError> {
        for (im, _) in f.images.iter().zip(held).filter(|(_, &h)| !h) {
            let st = self.mapper.optimise_frame(
                self.renderer.as_mut(),
                &im.image,
                &im.world_t_imu,
                im.exposure,
            )?;
            tracing::debug!(
                frame = f.index,
                exposure = im.exposure,
                window = st.window_len,
                loss_before = st.loss_before,
                loss_after = st.loss_after,
                pruned = st.pruned,
                filled = st.filled,
                exposure_refit = ?st.exposure_refit,
                anchor_scale = ?st.anchor_scale,
                rescaled = ?st.rescaled,
                "window optimised"
            );
        }
        Ok(())
    }

    /// Renders the window at a body pose (RGB8, map units).
    pub fn render_at(
        &mut self,
        world_t_imu: &Isometry3<f64>,
        stamp: Stamp,
    ) -> Result<Image, PipelineError> {
        let mut img = self.mapper.render(self.renderer.as_mut(), world_t_imu)?;
        img.stamp = stamp;
        Ok(img)
    }

    /// The window for the visual update. Gaussians no image has coloured yet (grey placeholders)
    /// are made transparent in this copy: the update must not compare the camera with them.
    pub fn snapshot(&mut self, frame: u64) -> MapSnapshot {
        let w = self.mapper.window();
        let map = self.mapper.map();
        // A buffer no snapshot in flight shares any more, else a new one.
        let free = self
            .snapshot_buffers
            .iter_mut()
            .position(|b| Arc::get_mut(b).is_some());
        let mut buffer = match free {
            Some(i) => self.snapshot_buffers.remove(i),
            None => Arc::new(Vec::new()),
        };
        let gaussians = Arc::get_mut(&mut buffer).expect("unshared buffer");
        gaussians.clear();
        gaussians.extend_from_slice(w.gaussians());
        for (g, &id) in gaussians.iter_mut().zip(w.ids()) {
            if !map.is_coloured(id) {
                g.opacity_logit = -30.0;
            }
        }
        if self.snapshot_buffers.len() >= SNAPSHOT_BUFFERS {
            self.snapshot_buffers.remove(0);
        }
        self.snapshot_buffers.push(buffer.clone());
        MapSnapshot {
            frame,
            gaussians: buffer,
            sh_degree: self.mapper.config().sh_degree,
            background: self
                .mapper
                .background()
                .map_or([0.0; 3], |b| b.mean_colour()),
        }
    }

    /// Centres and base colours of every Gaussian in the map (window values current).
    pub fn centres(&mut self, stamp: Stamp) -> MapCentres {
        self.mapper.sync_map();
        let mut m = MapCentres {
            stamp,
            ..Default::default()
        };
        for (_, g) in self.mapper.map().iter() {
            m.positions.push(g.mean);
            m.colours.push(
                g.base_colour()
                    .map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8),
            );
        }
        m
    }

    /// Saves the map (placeholders left out, see [`crate::gaussian::GaussianMap::save_ply`]).
    pub fn save_ply(&mut self, path: &Path) -> Result<crate::gaussian::ExportStats, PipelineError> {
        let stats = self.mapper.save_ply(path)?;
        self.export = Some(stats);
        Ok(stats)
    }

    /// Held-out camera images kept so far.
    pub fn held_out(&self) -> &HeldOutFrames {
        &self.held_out
    }

    /// Scores the map saved at `ply` (read back from the file) at the held-out frames; see
    /// [`score_exported_map`].
    pub fn score_exported(&self, ply: &Path) -> Result<ExportedMapQuality, PipelineError> {
        score_exported_map(
            ply,
            self.export.unwrap_or_default(),
            &self.held_out,
            &self.trained,
            &self.render_cfg,
            self.mapper.camera(),
            &self.mapper.imu_t_camera(),
            self.mapper.config().window_range * 2.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::BackendChoice;

    /// Small camera, the f64 reference renderer, two Adam iterations at quarter resolution.
    fn config() -> Config {
        let mut cfg = Config::default();
        cfg.render.backend = BackendChoice::Cpu;
        cfg.camera.width = 96;
        cfg.camera.height = 72;
        cfg.camera.fx = 80.0;
        cfg.camera.fy = 80.0;
        cfg.camera.cx = 48.0;
        cfg.camera.cy = 36.0;
        cfg.gaussian.iterations = 2;
        cfg.gaussian.downsample = 4;
        cfg
    }

    /// A textured wall `z` m in front of the camera at the origin (optical axis +z), seen by
    /// one image: the frame's scan and the image.
    fn frame(index: u64, z: f64, with_image: bool) -> MapFrame {
        let mut points = Vec::new();
        for i in 0..40 {
            for j in 0..30 {
                points.push([-1.0 + i as f64 * 0.05, -0.75 + j as f64 * 0.05, z]);
            }
        }
        let stamp = 1_000_000_000 + index * 100_000_000;
        let mut image = Image::new(stamp, 96, 72);
        for (k, px) in image.rgb.chunks_exact_mut(3).enumerate() {
            let (x, y) = (k % 96, k / 96);
            px.copy_from_slice(&[(x * 5 % 256) as u8, (y * 7 % 256) as u8, 128]);
        }
        let images = if with_image {
            vec![PosedFrameImage {
                image,
                world_t_imu: Isometry3::identity(),
                exposure: 1.1,
            }]
        } else {
            Vec::new()
        };
        MapFrame {
            index,
            stamp,
            world_t_imu: Isometry3::identity(),
            points,
            sensor: [0.0; 3],
            images,
        }
    }

    /// A snapshot's buffer is reused once every holder dropped it, never while one holds it,
    /// and always equals the window (uncoloured Gaussians transparent).
    #[test]
    fn snapshots_reuse_released_buffers_and_never_alias_held_ones() {
        let cfg = config();
        let mut stage = MapStage::new(&cfg, 0).unwrap();
        let same_as_window = |stage: &MapStage, s: &MapSnapshot| {
            let w = stage.mapper().window();
            assert_eq!(s.gaussians.len(), w.len());
            for ((a, b), &id) in s.gaussians.iter().zip(w.gaussians()).zip(w.ids()) {
                let mut want = *b;
                if !stage.mapper().map().is_coloured(id) {
                    want.opacity_logit = -30.0;
                }
                assert_eq!(*a, want);
            }
        };
        stage.process(&mut frame(0, 2.0, false)).unwrap();
        let a = stage.snapshot(0);
        assert!(!a.gaussians.is_empty());
        same_as_window(&stage, &a);
        let held: Vec<Gaussian> = a.gaussians.to_vec();
        stage.process(&mut frame(1, 1.0, true)).unwrap();
        let b = stage.snapshot(1);
        same_as_window(&stage, &b);
        assert!(!Arc::ptr_eq(&a.gaussians, &b.gaussians));
        assert_eq!(*a.gaussians, held, "a held snapshot must not change");
        let released = Arc::as_ptr(&a.gaussians);
        drop(a);
        let c = stage.snapshot(2);
        assert_eq!(
            Arc::as_ptr(&c.gaussians),
            released,
            "released buffer reused"
        );
        assert!(!Arc::ptr_eq(&b.gaussians, &c.gaussians));
        same_as_window(&stage, &c);
    }

    /// A wall 2 m ahead of a camera at `x` m along the wall: the frame's scan and, when
    /// `white`, a saturated image (else a texture).
    fn frame_at(index: u64, x: f64, white: bool) -> MapFrame {
        let mut f = frame(index, 2.0, true);
        let pose = Isometry3::translation(x, 0.0, 0.0);
        for p in &mut f.points {
            p[0] += x;
        }
        f.sensor = [x, 0.0, 0.0];
        f.world_t_imu = pose;
        let im = &mut f.images[0];
        im.world_t_imu = pose;
        im.exposure = 1.0;
        if white {
            im.image.rgb.fill(255);
        }
        f
    }

    /// With `held_out_every: 2` every second camera image is held out: it is kept for scoring
    /// but colours nothing, is no optimisation target and no keyframe or anchor, so a white
    /// held-out image leaves no trace in the map's colours.
    #[test]
    fn held_out_images_never_train() {
        let mut cfg = config();
        cfg.gaussian.held_out_every = 2;
        cfg.gaussian.keyframe_distance = 0.1;
        let mut stage = MapStage::new(&cfg, 1).unwrap();
        let n = 6;
        let mut held_poses = Vec::new();
        for i in 0..n {
            let x = 0.3 * i as f64;
            let held = i % 2 == 1;
            let mut f = frame_at(i, x, held);
            if held {
                held_poses.push(stage.mapper().camera_t_world(&f.world_t_imu));
            }
            let rep = stage.process(&mut f).unwrap();
            assert_eq!(rep.renders.len(), 1);
            assert_eq!(rep.renders[0].held_out, held);
        }
        let m = stage.mapper();
        assert_eq!(m.counters().images, n / 2, "held-out images colour nothing");
        assert_eq!(
            m.optim.frames,
            n / 2,
            "held-out images are no optimisation target"
        );
        assert_eq!(stage.held_out().offered(), n / 2);
        assert_eq!(stage.held_out().frames().len(), (n / 2) as usize);
        let near = |a: &Isometry3<f64>, b: &Isometry3<f64>| {
            (a.translation.vector - b.translation.vector).norm() < 1e-9
        };
        let keyframes: Vec<_> = m.optim.keyframes.poses().copied().collect();
        assert!(keyframes.len() >= 2, "training frames became keyframes");
        for h in &held_poses {
            assert!(!keyframes.iter().any(|k| near(k, h)), "held-out keyframe");
        }
        // No Gaussian took the white image's colour.
        let whitest = m
            .map()
            .iter()
            .map(|(_, g)| g.base_colour().iter().sum::<f32>() / 3.0)
            .fold(0.0f32, f32::max);
        assert!(
            whitest < 0.9,
            "a Gaussian took a held-out colour: {whitest}"
        );
    }

    /// `map.ply` read back from the file alone renders (same backend) as the program renders
    /// its map, within one grey level; the one deliberate difference: placeholders (never
    /// coloured, never optimised) are not in the file, and the program draws them.
    #[test]
    fn exported_ply_renders_like_the_map() {
        let mut cfg = config();
        cfg.gaussian.background = false;
        cfg.gaussian.held_out_every = 0;
        let mut stage = MapStage::new(&cfg, 0).unwrap();
        stage.process(&mut frame(0, 2.0, true)).unwrap();
        stage.process(&mut frame(1, 2.0, true)).unwrap();
        // A wall behind the camera: the LiDAR sees it, no image does.
        let rep = stage.process(&mut frame(2, -1.5, false)).unwrap();
        assert!(rep.created > 0);
        let dir = tempfile::tempdir().unwrap();
        let ply = dir.path().join("map.ply");
        let stats = stage.save_ply(&ply).unwrap();
        assert_eq!(stats.placeholders_left_out, rep.created);
        assert_eq!(stats.written + rep.created, stage.mapper().map().len());
        let far = cfg.gaussian.window_range * 2.0;
        let front = Isometry3::identity();
        let back = Isometry3::rotation(nalgebra::Vector3::y() * std::f64::consts::PI);
        let t_cw = |p: &Isometry3<f64>| stage.mapper().camera_t_world(p);
        let poses = [t_cw(&front), t_cw(&back)];
        let (file, gs) =
            crate::pipeline::held_out::render_ply(&ply, &cfg.render, &cfg.camera, far, &poses)
                .unwrap();
        assert_eq!(gs.len(), stats.written);
        // The in-memory map (id order, placeholders left out) with the same backend.
        let map: Vec<Gaussian> = {
            let m = stage.mapper().map();
            m.iter()
                .filter(|(id, g)| !m.is_placeholder(*id, g))
                .map(|(_, g)| g)
                .collect()
        };
        let mut r = create_renderer(&cfg.render).unwrap();
        let sh = cfg.gaussian.sh_degree;
        let mem = render_gaussians(r.as_mut(), &map, sh, &cfg.camera, far, &poses[0], 0).unwrap();
        let mean =
            |i: &Image| i.rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / i.rgb.len() as f64;
        let diff = |a: &Image, b: &Image| {
            let d: Vec<u8> = a
                .rgb
                .iter()
                .zip(&b.rgb)
                .map(|(x, y)| x.abs_diff(*y))
                .collect();
            let m = d.iter().map(|&v| f64::from(v)).sum::<f64>() / d.len() as f64;
            (d.into_iter().max().unwrap(), m)
        };
        assert!(mean(&mem) > 20.0, "the wall is in view");
        let (worst, _) = diff(&mem, &file[0]);
        assert!(
            worst <= 1,
            "file render differs from the map's by {worst} grey levels"
        );
        // The program's own (window) render: same Gaussians in window order, so equal-depth
        // ties may composite in another order; on average within a tenth of a grey level.
        let own = stage.render_at(&front, 0).unwrap();
        let (_, avg) = diff(&own, &file[0]);
        assert!(
            avg < 0.1,
            "file render differs from the program's by {avg} on average"
        );
        // Behind: the whole map draws its grey placeholders, the file nothing.
        let all: Vec<Gaussian> = stage.mapper().map().iter().map(|(_, g)| g).collect();
        let with = render_gaussians(r.as_mut(), &all, sh, &cfg.camera, far, &poses[1], 0).unwrap();
        assert!(mean(&with) > 20.0, "placeholders drawn: {}", mean(&with));
        assert_eq!(mean(&file[1]), 0.0);
    }
}
