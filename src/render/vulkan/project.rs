//! Recording of the projection stage and the values every forward kernel reads (push
//! constants, pose rows).

use nalgebra::Isometry3;

use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{sh_coeffs, Camera, RenderError};

impl VulkanRenderer {
    /// Push constants for a camera (the pose goes to the frame buffer: [`pose_rows`]).
    pub(super) fn base_pc(&self, cam: &Camera) -> [u32; 32] {
        let (tx, ty) = cam.tiles();
        let mut f = [0f32; 20];
        f[12..16].copy_from_slice(&[cam.fx as f32, cam.fy as f32, cam.cx as f32, cam.cy as f32]);
        f[16] = cam.near as f32;
        f[17] = cam.far as f32;
        f[19] = 1.0 / (3.0 * cam.pixels() as f32);
        let mut pc = [0u32; 32];
        for (i, v) in f.iter().enumerate() {
            pc[i] = v.to_bits();
        }
        pc[20..24].copy_from_slice(&[cam.width, cam.height, tx, ty]);
        pc[24..28].copy_from_slice(&self.size_words());
        pc
    }

    /// Gaussian count, capacity, SH coefficients and key capacity (push-constant words 24..28).
    pub(super) fn size_words(&self) -> [u32; 4] {
        [
            self.n as u32,
            self.g.cap as u32,
            sh_coeffs(self.sh_degree) as u32,
            self.k.cap as u32,
        ]
    }

    /// Projects every Gaussian; (depth, index) pairs go to key set 0 for the depth sort.
    pub(super) fn record_project(
        &self,
        b: &mut Builder,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        let (g, k) = (&self.g, &self.k);
        self.dispatch(
            b,
            &self.pl.project,
            &[
                &g.params_t,
                &g.proj,
                &g.touched,
                &k.keys[0][0],
                &k.keys[0][1],
                &self.frame,
            ],
            pc,
            [(self.n as u32).div_ceil(256), 1, 1],
        )
    }
}

/// World-to-camera rotation rows with the translation as 4th element (the frame buffer's r0..r2).
pub(super) fn pose_rows(t_cw: &Isometry3<f64>) -> [f32; 12] {
    let r = t_cw.rotation.to_rotation_matrix();
    let t = t_cw.translation.vector;
    let mut f = [0f32; 12];
    for row in 0..3 {
        for col in 0..3 {
            f[4 * row + col] = r[(row, col)] as f32;
        }
        f[4 * row + 3] = t[row] as f32;
    }
    f
}
