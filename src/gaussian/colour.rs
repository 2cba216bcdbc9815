//! Colouring map points from a camera image: projection with the rig's extrinsics and
//! intrinsics, bilinear sampling, exposure normalisation.

use nalgebra::{Isometry3, Vector3};

use super::camera::sample_bilinear;
use crate::sensors::Camera;
use crate::sensors::Image;

/// An image with the camera pose at its (offset-corrected) stamp.
#[derive(Debug, Clone)]
pub struct PosedImage {
    pub image: Image,
    pub camera_t_world: Isometry3<f64>,
    /// Exposure gain of this image relative to the map's units (colour / gain is stored).
    pub exposure: f32,
}

impl PosedImage {
    /// Exposure-normalised colour of world point `p`, when the image sees it.
    pub fn colour_of(&self, camera: &Camera, p: &[f64; 3]) -> Option<[f32; 3]> {
        let uv = camera.project_world(&self.camera_t_world, &Vector3::new(p[0], p[1], p[2]))?;
        let c = sample_bilinear(&self.image, uv[0], uv[1])?;
        let g = if self.exposure.is_finite() && self.exposure > 1e-3 {
            self.exposure
        } else {
            1.0
        };
        Some([c[0] / g, c[1] / g, c[2] / g])
    }
}
