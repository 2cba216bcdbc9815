//! Maps that outlive a run: everything a later run needs to relocalise in a map and to extend
//! it, saved as a versioned folder and loaded back whole or not at all.
//!
//! A map folder (`RUN/map/`) holds `manifest.json` (format name and version, and per section
//! file its size and CRC-32) and the section files, each with its own header (magic, version,
//! kind, length, CRC-32): `rig.bin` (camera, extrinsics, the map structure's settings, the
//! recording it came from), `lidar_map.bin` (the voxel plane map: every root's octree with its
//! running sums, points and planes), and with a Gaussian map `gaussians.bin` (every Gaussian in
//! its octree cell, in position tiles of about 16 m, each with its own checksum, behind an
//! index, so a frozen map can be paged: see `tiles` and `gaussian::paging`) and
//! `keyframes.bin` (keyframes and photometric anchors, which hold the map's brightness unit,
//! i.e. the exposure reference, with targets at the optimisation resolution in 8 bits, and the
//! fitted background). Saving the same map twice gives the same bytes.

mod codec;
mod files;
mod quant;
mod sections;
mod tiles;

use nalgebra::Isometry3;

use crate::config::Config;
use crate::gaussian::{GaussianMapper, MapperState};
use crate::lidar_map::{NodeRecord, VoxelMap, VoxelMapConfig};
use crate::sensors::Camera;

pub use files::{FORMAT, OLDEST, VERSION};
pub use tiles::{TileIndex, TILE_EDGE};

/// Errors of saving and loading map folders. A load that fails returns no map at all.
#[derive(Debug, thiserror::Error)]
pub enum MapFileError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a gs_livo map: {reason}")]
    NotAMap {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(
        "{path}: map format version {found}, this build reads version {supported} (a map of \
         another gs_livo version: build it again from its recording)"
    )]
    Version {
        path: std::path::PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: truncated: {found} bytes where {expected} were written")]
    Truncated {
        path: std::path::PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: checksum mismatch (CRC-32 {found:08x}, written {expected:08x}): the file is corrupted")]
    Checksum {
        path: std::path::PathBuf,
        expected: u32,
        found: u32,
    },
    #[error("{path}: tile {tile:?}: {reason}")]
    Tile {
        path: std::path::PathBuf,
        tile: [i64; 3],
        reason: String,
    },
    #[error("{path}: corrupted: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("map of another rig: `{key}` is {map} in the map but {config} in the config")]
    Rig {
        key: String,
        map: String,
        config: String,
    },
    #[error(
        "map built with other map settings: `{key}` is {map} in the map but {config} in the config"
    )]
    Settings {
        key: String,
        map: String,
        config: String,
    },
    #[error("map {what}: {reason}")]
    Restore { what: &'static str, reason: String },
}

/// The rig a map was made with: a map is only valid for the same camera and extrinsics.
#[derive(Debug, Clone, PartialEq)]
pub struct Rig {
    pub camera: Camera,
    pub imu_t_lidar: Isometry3<f64>,
    pub imu_t_camera: Isometry3<f64>,
}

/// The Gaussian map's structure settings and the mapper's state.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianSection {
    pub root_size: f64,
    pub levels: u32,
    pub sh_degree: u32,
    pub state: MapperState,
}

impl GaussianSection {
    /// The mapper's structure settings and state (windowed values written back).
    pub fn capture(m: &mut GaussianMapper) -> Self {
        Self {
            root_size: m.config().root_size,
            levels: m.config().levels,
            sh_degree: m.config().sh_degree,
            state: m.state(),
        }
    }
}

/// A whole saved map, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMap {
    /// The recording(s) the map was built from (informational).
    pub source: String,
    pub rig: Rig,
    pub lidar_cfg: VoxelMapConfig,
    pub lidar_roots: Vec<([i32; 3], Vec<NodeRecord>)>,
    /// `None` for a LiDAR-only map.
    pub gaussian: Option<GaussianSection>,
    /// Opened for paging ([`Self::open_paged`]): the Gaussians stay in this file, and
    /// `gaussian`'s state holds none.
    pub paged: Option<PagedGaussians>,
}

/// The Gaussians of a map opened for paging: the tiled file and its checked index.
#[derive(Debug, Clone, PartialEq)]
pub struct PagedGaussians {
    pub path: std::path::PathBuf,
    pub index: TileIndex,
    /// The whole file's CRC-32 (from the manifest).
    pub crc32: u32,
}

impl PagedGaussians {
    /// The file's bytes, checked against its CRC.
    fn read_checked(&self) -> Result<Vec<u8>, MapFileError> {
        let bytes = std::fs::read(&self.path).map_err(|source| MapFileError::Io {
            path: self.path.clone(),
            source,
        })?;
        let found = crc32fast::hash(&bytes);
        if found != self.crc32 {
            return Err(MapFileError::Checksum {
                path: self.path.clone(),
                expected: self.crc32,
                found,
            });
        }
        Ok(bytes)
    }

    /// Every Gaussian, read tile by tile.
    fn read_all(&self) -> Result<Vec<crate::gaussian::GaussianRecord>, MapFileError> {
        let mut out = Vec::with_capacity(self.index.count() as usize);
        let mut r = tiles::TileReader::open(&self.path, self.index.clone())?;
        for t in &self.index.tiles {
            out.extend(r.read_entry(t)?);
        }
        Ok(out)
    }

    /// A pager over this file for a window of `cfg`'s range.
    pub fn pager(
        &self,
        cfg: &crate::gaussian::GaussianConfig,
    ) -> Result<crate::gaussian::paging::Pager, MapFileError> {
        let reader = tiles::TileReader::open(&self.path, self.index.clone())?;
        let (load, drop) = crate::gaussian::paging::Pager::radii(
            cfg.window_range,
            cfg.root_size,
            self.index.tile_roots,
        );
        Ok(crate::gaussian::paging::Pager::new(
            Box::new(reader),
            load,
            drop,
        ))
    }
}

impl SessionMap {
    /// The map of a run: its config's rig, the LIO's voxel map and the mapper's state (windowed
    /// values written back).
    pub fn capture(
        cfg: &Config,
        source: &str,
        lidar: &VoxelMap,
        mapper: Option<&mut GaussianMapper>,
    ) -> Self {
        Self::from_sections(cfg, source, lidar, mapper.map(GaussianSection::capture))
    }

    /// The map of `cfg`'s rig from a voxel map and a Gaussian section captured apart (a
    /// running node takes each from the thread that owns it).
    pub fn from_sections(
        cfg: &Config,
        source: &str,
        lidar: &VoxelMap,
        gaussian: Option<GaussianSection>,
    ) -> Self {
        Self {
            source: source.to_string(),
            rig: Rig {
                camera: cfg.camera.clone(),
                imu_t_lidar: cfg.extrinsics.imu_T_lidar.0,
                imu_t_camera: cfg.extrinsics.imu_T_camera.0,
            },
            lidar_cfg: lidar.config().clone(),
            lidar_roots: lidar.to_parts(),
            gaussian,
            paged: None,
        }
    }

    /// Saves into folder `dir` (created; written beside it first and renamed, so a crash never
    /// leaves a half-written map under that name).
    pub fn save(&self, dir: &std::path::Path) -> Result<(), MapFileError> {
        files::save(self, dir, VERSION, TILE_EDGE)
    }

    /// [`Self::save`] with Gaussian tiles of about `tile_edge` m.
    pub fn save_tiled(&self, dir: &std::path::Path, tile_edge: f64) -> Result<(), MapFileError> {
        files::save(self, dir, VERSION, tile_edge)
    }

    /// Saves in format `version` (2: what older builds wrote), for tests of reading it.
    #[cfg(test)]
    pub(crate) fn save_version(
        &self,
        dir: &std::path::Path,
        version: u32,
    ) -> Result<(), MapFileError> {
        files::save(self, dir, version, TILE_EDGE)
    }

    /// Loads folder `dir`: every file's size and checksum is verified before anything is
    /// decoded, and the decoded map must be consistent, or nothing is returned. Reads format
    /// versions [`OLDEST`] to [`VERSION`].
    pub fn load(dir: &std::path::Path) -> Result<Self, MapFileError> {
        files::load(dir, false)
    }

    /// Opens folder `dir` with its Gaussians left on disk, for a frozen map paged around the
    /// robot ([`Self::mapper`] attaches the pager). Everything is checked as by
    /// [`Self::load`], the Gaussians tile by tile without holding them. A map of version 2
    /// (untiled) loads whole.
    pub fn open_paged(dir: &std::path::Path) -> Result<Self, MapFileError> {
        files::load(dir, true)
    }

    /// Refuses a map of another rig (camera, extrinsics) or built with other structure
    /// settings than `cfg` (the octrees' sizes and depths, the SH degree).
    pub fn check_config(&self, cfg: &Config) -> Result<(), MapFileError> {
        let rig = |key: &str, map: String, config: String| {
            Err(MapFileError::Rig {
                key: key.into(),
                map,
                config,
            })
        };
        let (a, b) = (&self.rig.camera, &cfg.camera);
        if (a.width, a.height) != (b.width, b.height) {
            return rig(
                "camera.width/height",
                format!("{}x{}", a.width, a.height),
                format!("{}x{}", b.width, b.height),
            );
        }
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1.0);
        for (key, x, y) in [
            ("camera.fx", a.fx, b.fx),
            ("camera.fy", a.fy, b.fy),
            ("camera.cx", a.cx, b.cx),
            ("camera.cy", a.cy, b.cy),
        ] {
            if !close(x, y) {
                return rig(key, x.to_string(), y.to_string());
            }
        }
        if a.distortion
            .iter()
            .zip(&b.distortion)
            .any(|(x, y)| !close(*x, *y))
        {
            return rig(
                "camera.distortion",
                format!("{:?}", a.distortion),
                format!("{:?}", b.distortion),
            );
        }
        for (key, m, c) in [
            (
                "extrinsics.imu_T_lidar",
                &self.rig.imu_t_lidar,
                &cfg.extrinsics.imu_T_lidar.0,
            ),
            (
                "extrinsics.imu_T_camera",
                &self.rig.imu_t_camera,
                &cfg.extrinsics.imu_T_camera.0,
            ),
        ] {
            let dt = (m.translation.vector - c.translation.vector).norm();
            if dt > 1e-6 || m.rotation.angle_to(&c.rotation) > 1e-6 {
                return rig(key, format!("{m}"), format!("{c}"));
            }
        }
        let setting = |key: &str, map: String, config: String| {
            Err(MapFileError::Settings {
                key: key.into(),
                map,
                config,
            })
        };
        let l = &cfg.lidar_map;
        if !close(self.lidar_cfg.root_size, l.root_size) {
            let (m, c) = (self.lidar_cfg.root_size, l.root_size);
            return setting("lidar_map.root_size", m.to_string(), c.to_string());
        }
        if self.lidar_cfg.max_depth != l.max_depth {
            let (m, c) = (self.lidar_cfg.max_depth, l.max_depth);
            return setting("lidar_map.max_depth", m.to_string(), c.to_string());
        }
        if let Some(g) = &self.gaussian {
            let c = &cfg.gaussian;
            if !close(g.root_size, c.root_size) {
                return setting(
                    "gaussian.root_size",
                    g.root_size.to_string(),
                    c.root_size.to_string(),
                );
            }
            if g.levels != c.levels {
                return setting(
                    "gaussian.levels",
                    g.levels.to_string(),
                    c.levels.to_string(),
                );
            }
            if g.sh_degree != c.sh_degree {
                return setting(
                    "gaussian.sh_degree",
                    g.sh_degree.to_string(),
                    c.sh_degree.to_string(),
                );
            }
        }
        Ok(())
    }

    /// The voxel plane map, for the LIO (with `cfg`'s thresholds; structure checked by
    /// [`Self::check_config`]).
    pub fn voxel_map(&self, cfg: &VoxelMapConfig) -> Result<VoxelMap, MapFileError> {
        VoxelMap::from_parts(cfg.clone(), self.lidar_roots.clone()).map_err(|reason| {
            MapFileError::Restore {
                what: "LiDAR map",
                reason,
            }
        })
    }

    /// The Gaussian mapper continuing this map (`None` for a LiDAR-only map); a map opened
    /// for paging gives a mapper that pages it (which must stay frozen: localise mode).
    pub fn mapper(&self, cfg: &Config) -> Result<Option<GaussianMapper>, MapFileError> {
        let Some(g) = &self.gaussian else {
            return Ok(None);
        };
        let mut m = GaussianMapper::restore(
            cfg.gaussian.clone(),
            cfg.camera.clone(),
            cfg.extrinsics.imu_T_camera.0,
            g.state.clone(),
        )
        .map_err(|e| MapFileError::Restore {
            what: "Gaussian map",
            reason: e.to_string(),
        })?;
        if let Some(p) = &self.paged {
            m.attach_pager(p.pager(&cfg.gaussian)?);
        }
        Ok(Some(m))
    }

    /// Live Gaussians stored.
    pub fn gaussian_count(&self) -> usize {
        self.gaussian
            .as_ref()
            .map_or(0, |g| g.state.gaussians.len())
            + self.paged.as_ref().map_or(0, |p| p.index.count() as usize)
    }
}

/// The map frame of a run that started at body pose `world_t_body` (in a ground truth's
/// world frame): the IMU initialiser levels the body with the shortest rotation that takes its
/// measured up to +z (`estimator::init`), so `world_t_map` is the start pose with that rotation
/// undone: the start position and a pure yaw.
pub fn level_frame(world_t_body: &Isometry3<f64>) -> Isometry3<f64> {
    let z = nalgebra::Vector3::z();
    let up_body = world_t_body.rotation.inverse() * z;
    let level = nalgebra::UnitQuaternion::rotation_between(&up_body, &z)
        .unwrap_or_else(nalgebra::UnitQuaternion::identity);
    Isometry3::from_parts(
        world_t_body.translation,
        world_t_body.rotation * level.inverse(),
    )
}

#[cfg(test)]
mod tests;
