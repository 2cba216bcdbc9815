//! The per-frame entry point the pipeline calls: insert registered scans, attach images (colour
//! and keyframes), keep the window on the view, save and load the map.

use std::collections::VecDeque;
use std::path::Path;

use nalgebra::{Isometry3, Point3};
use tracing::{debug, warn};

use super::background::Background;
use super::colour::PosedImage;
use super::config::GaussianConfig;
use super::map::{GaussianMap, InsertStats};
use super::paging::{PageStats, Pager};
use super::ply::{read_ply_parts, write_ply_with_shell};
use super::window::{MaintainStats, View, Window};
use super::GaussianError;
use crate::sensors::Camera;
use crate::sensors::{stamp_diff_secs, Image, Stamp};

/// Counters over the whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapperCounters {
    pub scans: u64,
    pub images: u64,
    /// Images whose size differs from the configured camera (skipped).
    pub images_wrong_size: u64,
    pub created: u64,
    pub coloured_later: u64,
    /// Gaussians created by extending measured surfaces into uncovered pixels.
    pub filled: u64,
    /// Uncoloured Gaussians dropped from the pending list (stay grey until optimised).
    pub pending_overflow: u64,
    pub pruned: u64,
    /// Gaussians replaced by smaller children (see `split`).
    pub split: u64,
}

/// Hashed-octree map + sliding window + colouring for one camera rig.
pub struct GaussianMapper {
    cfg: GaussianConfig,
    camera: Camera,
    imu_t_camera: Isometry3<f64>,
    map: GaussianMap,
    window: Window,
    pending: VecDeque<u32>,
    last_image: Option<(Stamp, PosedImage)>,
    last_views: VecDeque<Isometry3<f64>>,
    counters: MapperCounters,
    pub(crate) optim: super::optimise::OptimState,
    /// A frozen map paged from its file (localise mode); `None`: the whole map is resident.
    pager: Option<Pager>,
    /// The first paging failure (the file changed or broke after it was opened).
    page_error: Option<String>,
}

/// Seconds within which the latest image may colour a new scan's points directly.
const COLOUR_MAX_DT: f64 = 0.25;

impl GaussianMapper {
    pub fn new(
        cfg: GaussianConfig,
        camera: Camera,
        imu_t_camera: Isometry3<f64>,
    ) -> Result<Self, GaussianError> {
        let map = GaussianMap::new(cfg.clone())?;
        Ok(Self::with_map(map, camera, imu_t_camera))
    }

    /// Continues from an existing map (e.g. loaded from PLY).
    pub fn with_map(map: GaussianMap, camera: Camera, imu_t_camera: Isometry3<f64>) -> Self {
        let cfg = map.config().clone();
        Self {
            window: Window::new(cfg.window_capacity),
            cfg,
            camera,
            imu_t_camera,
            map,
            pending: VecDeque::new(),
            last_image: None,
            last_views: VecDeque::new(),
            counters: MapperCounters::default(),
            optim: Default::default(),
            pager: None,
            page_error: None,
        }
    }

    pub fn config(&self) -> &GaussianConfig {
        &self.cfg
    }

    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    pub fn map(&self) -> &GaussianMap {
        &self.map
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    pub fn window_mut(&mut self) -> &mut Window {
        &mut self.window
    }

    /// Window and map together (for the optimiser, which prunes through both).
    pub fn parts_mut(&mut self) -> (&mut Window, &mut GaussianMap) {
        (&mut self.window, &mut self.map)
    }

    pub fn counters(&self) -> &MapperCounters {
        &self.counters
    }

    pub(crate) fn counters_mut(&mut self) -> &mut MapperCounters {
        &mut self.counters
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Where the camera sits on the body.
    pub fn imu_t_camera(&self) -> Isometry3<f64> {
        self.imu_t_camera
    }

    /// `camera_t_world` for a body pose `world_t_imu`.
    pub fn camera_t_world(&self, world_t_imu: &Isometry3<f64>) -> Isometry3<f64> {
        (world_t_imu * self.imu_t_camera).inverse()
    }

    /// Inserts a deskewed, registered scan: `points` in the world frame, optional per-point
    /// normals, `sensor` the LiDAR origin in the world (for range and normal orientation).
    pub fn insert_scan(
        &mut self,
        points: &[[f64; 3]],
        normals: Option<&[[f64; 3]]>,
        sensor: [f64; 3],
        stamp: Stamp,
    ) -> InsertStats {
        let img = self
            .last_image
            .as_ref()
            .filter(|(s, _)| stamp_diff_secs(stamp, *s).abs() <= COLOUR_MAX_DT)
            .map(|(_, p)| p);
        let cell_angle = self.cell_angle();
        let camera = &self.camera;
        let mut colour = |_: usize, p: &[f64; 3]| img.and_then(|i| i.colour_of(camera, p));
        // Refine a covered surface only where the last optimised view shows error there (see
        // `refine`); before the first view, or without the gate, as the range allows.
        let min_error = self.cfg.refine_min_error;
        let errors = self.optim.last_error.as_ref().filter(|_| min_error > 0.0);
        let mut refine = |p: &[f64; 3]| errors.is_none_or(|e| e.needs_detail(p, min_error));
        let stats = self.map.insert_scan_gated(
            points,
            normals,
            sensor,
            cell_angle,
            &mut colour,
            &mut refine,
        );
        self.counters.scans += 1;
        self.counters.created += stats.created as u64;
        self.pending.extend(stats.uncoloured.iter().copied());
        while self.pending.len() > self.cfg.pending_capacity {
            self.pending.pop_front();
            self.counters.pending_overflow += 1;
        }
        debug!(
            created = stats.created,
            occupied = stats.occupied,
            uncoloured = stats.uncoloured.len(),
            "gaussian scan insertion"
        );
        stats
    }

    /// Cell size per metre of range for new Gaussians: `leaf_pixels` pixels of the camera at
    /// full resolution, so the map's cells do not depend on the optimisation's downsampling.
    /// (Counted at a quarter-resolution optimisation, cells 4x wider blurred the textured room
    /// so much that the exposure refit's residual-driven pull dominated: 3.7 % instead of 2.5 %
    /// RMS exposure error over 20 s, 26.3 instead of 28.4 dB training-view PSNR.)
    pub fn cell_angle(&self) -> f64 {
        let c = &self.camera;
        self.cfg.leaf_pixels / c.fx.max(c.fy).max(1e-9)
    }

    /// Inserts points that extend measured surfaces into what the camera sees uncovered
    /// (see `fill`), from a camera at `eye`. Returns how many Gaussians were created.
    pub(crate) fn insert_fill(&mut self, pts: &[super::fill::FillPoint], eye: [f64; 3]) -> usize {
        if pts.is_empty() {
            return 0;
        }
        let points: Vec<[f64; 3]> = pts.iter().map(|f| f.p).collect();
        let normals: Vec<[f64; 3]> = pts.iter().map(|f| f.n).collect();
        let cell_angle = self.cell_angle();
        let stats = self
            .map
            .insert_scan(&points, Some(&normals), eye, cell_angle, &mut |i, _| {
                Some(pts[i].colour)
            });
        self.counters.filled += stats.created as u64;
        stats.created
    }

    /// Attaches an image taken at body pose `world_t_imu` (at the image's offset-corrected
    /// time) with exposure gain `exposure` (1.0 when unknown): colours pending Gaussians it sees
    /// and becomes the colour source for the next scans. Returns how many were coloured.
    pub fn add_image(
        &mut self,
        image: &Image,
        world_t_imu: &Isometry3<f64>,
        exposure: f32,
    ) -> usize {
        self.counters.images += 1;
        if image.width != self.camera.width || image.height != self.camera.height {
            if self.counters.images_wrong_size == 0 {
                warn!(
                    got = ?(image.width, image.height),
                    want = ?(self.camera.width, self.camera.height),
                    "image size differs from camera config; skipped"
                );
            }
            self.counters.images_wrong_size += 1;
            return 0;
        }
        let posed = PosedImage {
            image: image.clone(),
            camera_t_world: self.camera_t_world(world_t_imu),
            exposure,
        };
        let mut coloured = 0;
        let mut still = VecDeque::with_capacity(self.pending.len());
        for id in self.pending.drain(..) {
            let Some(g) = self.map.get(id) else {
                continue;
            };
            let p = [
                f64::from(g.mean[0]),
                f64::from(g.mean[1]),
                f64::from(g.mean[2]),
            ];
            match posed.colour_of(&self.camera, &p) {
                Some(c) => {
                    let slot = self.map.meta[id as usize].slot;
                    match slot {
                        // Windowed copies are authoritative; the map gets it on write-back.
                        s if s != super::map::NO_SLOT => {
                            self.window.gaussians_mut()[s as usize].set_base_colour(c);
                            self.window.mark_dirty(s as usize);
                        }
                        _ => {
                            self.map.update(id, |g| g.set_base_colour(c));
                        }
                    }
                    self.map.set_coloured(id);
                    coloured += 1;
                }
                None => still.push_back(id),
            }
        }
        self.pending = still;
        self.counters.coloured_later += coloured as u64;
        self.last_image = Some((image.stamp, posed));
        coloured
    }

    /// Moves the window onto the view at `world_t_imu` (and the next expected view,
    /// extrapolated from the last two, or `next` when the caller knows it, and the keyframes'
    /// views within range).
    pub fn update_window(
        &mut self,
        world_t_imu: &Isometry3<f64>,
        next: Option<&Isometry3<f64>>,
    ) -> MaintainStats {
        let world_t_cam = world_t_imu * self.imu_t_camera;
        let mut views = vec![View {
            camera_t_world: world_t_cam.inverse(),
        }];
        let predicted = match next {
            Some(n) => Some(n * self.imu_t_camera),
            None => self.last_views.back().map(|prev| {
                // Constant-velocity: apply the last relative motion once more.
                let delta = prev.inverse() * world_t_cam;
                world_t_cam * delta
            }),
        };
        if let Some(p) = predicted {
            let moved = (p.translation.vector - world_t_cam.translation.vector).norm() > 1e-3
                || p.rotation.angle_to(&world_t_cam.rotation) > 1e-3;
            if moved {
                views.push(View {
                    camera_t_world: p.inverse(),
                });
            }
        }
        // The anchor in reach, which the optimisation renders to hold the brightness unit,
        // before the keyframes: views after the current ones are windowed whole or not at all,
        // in this order (see `Window::maintain`).
        let cam_t_world = world_t_cam.inverse();
        let anchors = &self.optim.anchors;
        let anchor = anchors
            .in_reach(
                &cam_t_world,
                self.cfg.keyframe_distance,
                self.cfg.keyframe_angle_deg,
            )
            .filter(|_| self.cfg.anchors > 0);
        let fixed = views.len();
        if let Some(a) = anchor.and_then(|i| anchors.get(i)) {
            views.push(View {
                camera_t_world: a.camera_t_world,
            });
        }
        let anchor_view = (views.len() > fixed).then_some(fixed);
        // Keyframe views, nearest to the current view first: their optimisation needs what
        // they see in the window, and the nearest share most of it.
        let keyframes = self.optim.keyframes.nearest_first(
            &cam_t_world,
            self.cfg.keyframe_distance,
            self.cfg.keyframe_angle_deg,
        );
        let first_keyframe = views.len();
        views.extend(keyframes.iter().map(|&(_, t)| View { camera_t_world: t }));
        self.last_views.push_back(world_t_cam);
        if self.last_views.len() > 2 {
            self.last_views.pop_front();
        }
        let eye = Self::eye(&cam_t_world);
        if let Some(p) = self.pager.as_mut() {
            if let Err(e) = p.load_near(&mut self.map, eye) {
                warn!("{e}");
                self.page_error.get_or_insert(e.to_string());
            }
        }
        let s = self.window.maintain(
            &mut self.map,
            &self.camera,
            &views,
            self.cfg.window_range,
            self.cfg.window_margin,
        );
        if let Some(p) = self.pager.as_mut() {
            p.drop_far(&mut self.map, eye);
        }
        // Only fully windowed views train (see `MaintainStats::complete`).
        let done = |v: usize| s.complete.get(v).copied().unwrap_or(false);
        self.optim.anchor_windowed = anchor.filter(|_| anchor_view.is_some_and(done));
        let windowed: Vec<usize> = keyframes
            .iter()
            .enumerate()
            .filter(|(k, _)| done(first_keyframe + k))
            .map(|(_, &(i, _))| i)
            .collect();
        self.optim.keyframes.set_windowed(&windowed);
        debug!(?s, "window maintenance");
        s
    }

    /// Writes the windowed values back so the map is current (before saving or exporting);
    /// a paged map reads every tile first, so a save or an export holds the whole map.
    pub fn sync_map(&mut self) {
        if let Some(p) = self.pager.as_mut() {
            if let Err(e) = p.load_all(&mut self.map) {
                warn!("{e}");
                self.page_error.get_or_insert(e.to_string());
            }
        }
        self.window.write_back_all(&mut self.map);
    }

    /// Pages the map from `pager` from now on: the map must be frozen (nothing inserted,
    /// optimised or pruned), since dropped tiles are not written back.
    pub fn attach_pager(&mut self, pager: Pager) {
        self.pager = Some(pager);
    }

    /// Paging counters, when the map is paged.
    pub fn page_stats(&self) -> Option<&PageStats> {
        self.pager.as_ref().map(|p| p.stats())
    }

    /// The first paging failure: the map in memory lacks a tile from then on.
    pub fn page_error(&self) -> Option<&str> {
        self.page_error.as_deref()
    }

    /// Saves the map (window included, placeholders left out) as a 3DGS PLY, the fitted
    /// background after it as a shell of opaque Gaussians a viewer draws (see `shell`), and the
    /// background beside it as an equirectangular PNG ([`background_path`]) so renders of the
    /// loaded map keep it.
    pub fn save_ply(&mut self, path: &Path) -> Result<ExportStats, GaussianError> {
        self.sync_map();
        let fitted = self.background().filter(|b| b.is_fitted());
        let shell = match (fitted, self.map.bounds()) {
            (Some(bg), Some((lo, hi))) if self.cfg.background_shell => {
                let centre = [0, 1, 2].map(|i| 0.5 * (lo[i] + hi[i]));
                let half = 0.5 * ((0..3).map(|i| (hi[i] - lo[i]).powi(2)).sum::<f64>()).sqrt();
                super::shell::background_shell(
                    &bg.quantised(),
                    centre,
                    shell_radius(half, self.cfg.window_range),
                    self.cfg.disc_thickness,
                )
            }
            _ => Vec::new(),
        };
        let stats = self.map.save_ply_with_shell(path, &shell)?;
        if let Some(bg) = fitted {
            bg.save_png(&background_path(path))?;
        }
        Ok(stats)
    }

    /// The fitted background, when enabled and fitted at least once.
    pub fn background(&self) -> Option<&Background> {
        self.optim
            .background
            .as_ref()
            .filter(|_| self.cfg.background)
    }

    /// Replaces the background (e.g. one loaded with a saved map).
    pub fn set_background(&mut self, bg: Background) {
        self.optim.background = Some(bg);
    }

    /// Camera centre of a `camera_t_world` pose.
    pub fn eye(camera_t_world: &Isometry3<f64>) -> [f64; 3] {
        let c = camera_t_world.inverse() * Point3::origin();
        [c.x, c.y, c.z]
    }
}

/// Radius of the background shell around a map whose bounding box is `half_diagonal` from its
/// centre: beyond every surface (so it only shows where the map is transparent, however large
/// the map) and far enough that moving about the map barely shifts it (at least
/// `0.75 window_range`, the distance the program's background stands for).
fn shell_radius(half_diagonal: f64, window_range: f64) -> f64 {
    (1.2 * half_diagonal).max(0.75 * window_range)
}

/// Where [`GaussianMapper::save_ply`] puts the background of map `ply`: `NAME.background.png`
/// beside `NAME.ply`.
pub fn background_path(ply: &Path) -> std::path::PathBuf {
    let stem = ply
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "map".into());
    ply.with_file_name(format!("{stem}.background.png"))
}

/// What [`GaussianMap::save_ply`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub written: usize,
    /// Placeholders left out (see [`GaussianMap::is_placeholder`]).
    pub placeholders_left_out: usize,
    /// Of `written`, the background shell's Gaussians (written last).
    pub background_shell: usize,
}

impl GaussianMap {
    /// A Gaussian no image has coloured and no optimisation has touched: it still has the
    /// opacity it was created with (Adam moves the opacity of anything that covers a pixel it
    /// trains on). It holds no colour information, only the grey of `f_dc` = 0.
    pub fn is_placeholder(&self, id: u32, g: &super::Gaussian) -> bool {
        !self.is_coloured(id)
            && g.opacity_logit == super::opacity_to_logit(self.config().init_opacity)
    }

    /// Saves live Gaussians in id order as a 3DGS PLY with the configured SH degree, leaving
    /// out placeholders: a viewer would draw them as opaque grey discs, and the program's own
    /// renders for the visual update hide them too.
    pub fn save_ply(&self, path: &Path) -> Result<ExportStats, GaussianError> {
        self.save_ply_with_shell(path, &[])
    }

    /// [`Self::save_ply`] with `shell` (the background's Gaussians) written after the map.
    pub fn save_ply_with_shell(
        &self,
        path: &Path,
        shell: &[super::Gaussian],
    ) -> Result<ExportStats, GaussianError> {
        let file = std::fs::File::create(path).map_err(super::PlyError::from)?;
        let mut stats = ExportStats::default();
        let mut live: Vec<super::Gaussian> = self
            .iter()
            .filter(|(id, g)| {
                let p = self.is_placeholder(*id, g);
                stats.placeholders_left_out += usize::from(p);
                !p
            })
            .map(|(_, g)| g)
            .collect();
        live.extend_from_slice(shell);
        stats.written = live.len();
        stats.background_shell = shell.len();
        write_ply_with_shell(file, live.iter(), self.config().sh_degree, shell.len())?;
        Ok(stats)
    }

    /// Bounding box `(min, max)` of the means of the Gaussians a save writes (placeholders
    /// left out, so a map loaded from the file has the same box); `None` when there are none.
    pub fn bounds(&self) -> Option<([f64; 3], [f64; 3])> {
        let mut it = self
            .iter()
            .filter(|(id, g)| !self.is_placeholder(*id, g))
            .map(|(_, g)| g.mean.map(f64::from));
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), m| {
            (
                [0, 1, 2].map(|i| lo[i].min(m[i])),
                [0, 1, 2].map(|i| hi[i].max(m[i])),
            )
        }))
    }

    /// Loads a 3DGS PLY into a new map with `cfg` (its SH degree is raised to the file's when
    /// the file has more). Gaussians keep their file order as ids; a background shell the file
    /// names (see `shell`) is left out: it is the background, not the map.
    pub fn load_ply(path: &Path, mut cfg: GaussianConfig) -> Result<Self, GaussianError> {
        let file = std::fs::File::open(path).map_err(super::PlyError::from)?;
        let (mut gs, degree, shell) = read_ply_parts(file)?;
        gs.truncate(gs.len() - shell);
        cfg.sh_degree = cfg.sh_degree.max(degree);
        let mut map = GaussianMap::new(cfg)?;
        for (i, g) in gs.into_iter().enumerate() {
            map.insert_unchecked(g, true).map_err(|e| {
                GaussianError::Input(format!("{}: vertex {i}: {e}", path.display()))
            })?;
        }
        Ok(map)
    }
}
