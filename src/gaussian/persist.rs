//! The mapper's state as plain data, for map files that let a later run continue: the map's
//! Gaussians in their cells, the keyframes and photometric anchors (the map's brightness
//! reference) with their targets at the optimisation resolution, and the fitted background.
//! The window and the renderer's Adam moments are not kept: the window is rebuilt around the
//! next view, and the moments restart as they do for any Gaussian entering the window.

use nalgebra::Isometry3;

use super::background::{Background, BackgroundGrid};
use super::keyframes::{AnchorSet, KeyframePool};
use super::map::{GaussianMap, GaussianRecord};
use super::mapper::GaussianMapper;
use super::optimise::{optimisation_camera, Keyframe};
use super::{GaussianConfig, GaussianError};
use crate::sensors::Camera;

/// Everything a [`GaussianMapper`] needs to continue, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct MapperState {
    pub gaussians: Vec<GaussianRecord>,
    pub keyframes: Vec<Keyframe>,
    /// `camera_t_world` at which the last keyframe joined.
    pub last_keyframe: Option<Isometry3<f64>>,
    pub keyframe_cursor: usize,
    pub anchors: Vec<Keyframe>,
    pub background: Option<BackgroundGrid>,
    /// Frames optimised so far.
    pub frames: u64,
}

impl GaussianMapper {
    /// The state to save (windowed values written back first).
    pub fn state(&mut self) -> MapperState {
        self.sync_map();
        let (keyframes, last_keyframe, keyframe_cursor) = self.optim.keyframes.parts();
        MapperState {
            gaussians: self.map().to_records(),
            keyframes,
            last_keyframe,
            keyframe_cursor,
            anchors: self.optim.anchors.frames().to_vec(),
            background: self.optim.background.as_ref().map(|b| b.to_grid()),
            frames: self.optim.frames,
        }
    }

    /// A mapper continuing from `state`. Keyframe and anchor targets must have the size of
    /// `cfg`'s optimisation images for `camera` (else they were made for another camera or
    /// downsampling, and an error says so).
    pub fn restore(
        cfg: GaussianConfig,
        camera: Camera,
        imu_t_camera: Isometry3<f64>,
        state: MapperState,
    ) -> Result<Self, GaussianError> {
        let oc = optimisation_camera(&cfg, &camera);
        let want = 3 * oc.width as usize * oc.height as usize;
        for (what, frames) in [("keyframe", &state.keyframes), ("anchor", &state.anchors)] {
            if let Some(k) = frames.iter().find(|k| k.target.len() != want) {
                return Err(GaussianError::Input(format!(
                    "{what} target of {} values, but this config optimises {}x{} images ({want} values): \
                     gaussian.downsample / gaussian.resolution differ from the map's",
                    k.target.len(),
                    oc.width,
                    oc.height
                )));
            }
        }
        let cursor = state.keyframe_cursor;
        if cursor > state.keyframes.len() {
            return Err(GaussianError::Input(format!(
                "keyframe cursor {cursor} beyond {} keyframes",
                state.keyframes.len()
            )));
        }
        let background = state.background.map(Background::from_grid).transpose()?;
        let map = GaussianMap::from_records(cfg, &state.gaussians)?;
        let mut m = GaussianMapper::with_map(map, camera, imu_t_camera);
        m.optim.keyframes = KeyframePool::from_parts(state.keyframes, state.last_keyframe, cursor);
        m.optim.anchors = AnchorSet::from_frames(state.anchors);
        m.optim.background = background;
        m.optim.frames = state.frames;
        Ok(m)
    }
}
