//! Per-pixel pose derivatives of a render, for the photometric pose update: the trait the
//! estimator calls, with the CPU forward-mode implementation (`cpu::pose_jacobian`) behind it.

use nalgebra::Isometry3;

use super::cpu::pose_jacobian::PoseJacobianFrame;
pub use super::cpu::pose_jacobian::{PixelJacobian, Surface, Tangent, TileMask};
use super::{Camera, GaussianSet};

/// Rows of a render's Jacobian with respect to the camera pose (the
/// [`super::perturb_pose`] convention) at chosen pixels.
pub trait PoseJacobian {
    /// Colour, alpha and their pose derivatives at pixel `(px, py)` (`None` outside the image).
    fn pixel(&self, px: u32, py: u32) -> Option<PixelJacobian>;

    /// Colour and alpha at pixel `(px, py)`, equal to [`Self::pixel`]'s, without the
    /// derivatives (cheaper where only the cost is needed).
    fn value(&self, px: u32, py: u32) -> Option<([f64; 3], f64)> {
        self.pixel(px, py).map(|p| (p.colour, p.alpha))
    }

    /// Colour, alpha and the blend's depth at pixel `(px, py)` (`None` outside the image).
    fn surface(&self, px: u32, py: u32) -> Option<Surface>;
}

impl PoseJacobian for PoseJacobianFrame<'_> {
    fn pixel(&self, px: u32, py: u32) -> Option<PixelJacobian> {
        PoseJacobianFrame::pixel(self, px, py)
    }

    fn value(&self, px: u32, py: u32) -> Option<([f64; 3], f64)> {
        PoseJacobianFrame::value(self, px, py)
    }

    fn surface(&self, px: u32, py: u32) -> Option<Surface> {
        PoseJacobianFrame::surface(self, px, py)
    }
}

/// Linearises the render of `g` at world-to-camera pose `t_cw`: the same colours and alphas
/// as the reference forward, with pose derivatives per pixel.
pub fn pose_jacobian<'g>(
    g: &'g GaussianSet<f64>,
    cam: &Camera,
    t_cw: &Isometry3<f64>,
) -> impl PoseJacobian + 'g {
    PoseJacobianFrame::new(g, cam, t_cw)
}

/// [`pose_jacobian`] for the pixels of the tiles in `mask` only (others read `None`): the same
/// values there, from the Gaussians that can reach those tiles (among `subset`, when given:
/// see [`PoseJacobianFrame::masked`]).
pub fn pose_jacobian_masked<'g>(
    g: &'g GaussianSet<f64>,
    cam: &Camera,
    t_cw: &Isometry3<f64>,
    mask: &TileMask,
    subset: Option<&[u32]>,
) -> impl PoseJacobian + 'g {
    PoseJacobianFrame::masked(g, cam, t_cw, mask, subset)
}
