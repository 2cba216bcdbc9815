//! A loaded map that seeds a run (`gs_livo run --map DIR`): what the estimator and the mapper
//! start from, and whether they may add to it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::session::SessionMap;

/// What a run does with a loaded map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MapMode {
    /// Add to the map: new LiDAR planes and Gaussians, the mapper keeps optimising.
    #[default]
    Extend,
    /// Keep the map frozen: no inserts, no optimisation; the mapper only renders for the
    /// visual update.
    #[serde(alias = "localize")]
    Localise,
}

/// A loaded map and how to use it.
#[derive(Clone)]
pub struct PriorMap {
    pub map: Arc<SessionMap>,
    pub mode: MapMode,
    /// Register the first scans globally against the map (no initial pose known); off: the
    /// run starts at the map's origin.
    pub relocalise: bool,
}

impl PartialEq for PriorMap {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.map, &o.map) && self.mode == o.mode && self.relocalise == o.relocalise
    }
}

impl std::fmt::Debug for PriorMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriorMap")
            .field("source", &self.map.source)
            .field("gaussians", &self.map.gaussian_count())
            .field("lidar_roots", &self.map.lidar_roots.len())
            .field("mode", &self.mode)
            .field("relocalise", &self.relocalise)
            .finish()
    }
}

impl PriorMap {
    pub fn frozen(&self) -> bool {
        self.mode == MapMode::Localise
    }

    /// Reads the map folder `dir` for `mode`: localise keeps the map frozen, so its Gaussians
    /// stay on disk and are paged around the robot; extend changes them, so they load whole.
    pub fn read(
        dir: &std::path::Path,
        mode: MapMode,
    ) -> Result<SessionMap, crate::session::MapFileError> {
        match mode {
            MapMode::Localise => SessionMap::open_paged(dir),
            MapMode::Extend => SessionMap::load(dir),
        }
    }
}
