//! CPU reference backend: the rasteriser's math in f64, straightforward, for tests and as the
//! fallback when no Vulkan device exists.

pub mod adam;
pub mod loss;
pub mod pose_jacobian;
pub mod project;
pub mod raster;

use nalgebra::Isometry3;

use super::{
    check_grad_images, check_image, AdamConfig, AdamState, Backend, Camera, Gaussians, Gradients,
    LossConfig, RenderConfig, RenderError, RenderOutput, Renderer,
};
use project::PoseRt;
use raster::FrameF64;

/// Reference renderer; holds the Gaussians in f32 (like the GPU) and computes in f64.
pub struct CpuRenderer {
    gaussians: Gaussians,
    g64: super::GaussianSet<f64>,
    state: AdamState,
    frame: Option<FrameF64>,
    grads: Option<Gradients>,
}

impl CpuRenderer {
    pub fn new(_cfg: &RenderConfig) -> Self {
        let gaussians = Gaussians::zeros(0, 0).expect("degree 0");
        Self {
            g64: gaussians.map(|x| x as f64),
            state: AdamState::new(0, 0).expect("degree 0"),
            gaussians,
            frame: None,
            grads: None,
        }
    }
}

/// Renders f64 Gaussians (the reference used by finite-difference tests).
pub fn render_f64(g: &super::GaussianSet<f64>, cam: &Camera, t_cw: &Isometry3<f64>) -> FrameF64 {
    raster::forward(g, cam, &PoseRt::from_iso(t_cw))
}

impl Renderer for CpuRenderer {
    fn backend(&self) -> Backend {
        Backend::Cpu
    }

    fn device_name(&self) -> String {
        "CPU reference (f64)".into()
    }

    fn len(&self) -> usize {
        self.gaussians.len()
    }

    fn set_gaussians(
        &mut self,
        g: &Gaussians,
        state: Option<&AdamState>,
    ) -> Result<(), RenderError> {
        self.state = AdamState::for_gaussians(g, state)?;
        self.gaussians = g.clone();
        self.g64 = g.map(|x| x as f64);
        self.frame = None;
        self.grads = None;
        Ok(())
    }

    fn update_gaussians(&mut self, start: usize, g: &Gaussians) -> Result<(), RenderError> {
        self.gaussians.overwrite(start, g)?;
        self.g64 = self.gaussians.map(|x| x as f64);
        Ok(())
    }

    fn gaussians(&mut self) -> Result<Gaussians, RenderError> {
        Ok(self.gaussians.clone())
    }

    fn adam_state(&mut self) -> Result<AdamState, RenderError> {
        Ok(self.state.clone())
    }

    fn forward(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
    ) -> Result<RenderOutput, RenderError> {
        cam.validate()?;
        let f = render_f64(&self.g64, cam, t_cw);
        let out = RenderOutput {
            width: cam.width,
            height: cam.height,
            colour: f.colour.iter().map(|&v| v as f32).collect(),
            depth: f.depth.iter().map(|&v| v as f32).collect(),
            alpha: f.alpha.iter().map(|&v| v as f32).collect(),
        };
        self.frame = Some(f);
        Ok(out)
    }

    fn backward(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<Gradients, RenderError> {
        let frame = self.frame.as_ref().ok_or(RenderError::NoForward)?;
        let np = frame.cam.pixels();
        check_grad_images(np, d_colour, d_depth, d_alpha)?;
        let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let dd = d_depth.map(to64);
        let da = d_alpha.map(to64);
        let (g, pose) = raster::backward(
            &self.g64,
            frame,
            &to64(d_colour),
            dd.as_deref(),
            da.as_deref(),
        );
        let grads = Gradients {
            params: g.map(|x| x as f32),
            pose,
        };
        self.grads = Some(grads.clone());
        Ok(grads)
    }

    fn loss(&mut self, target: &[f32], cfg: &LossConfig) -> Result<(f64, Vec<f32>), RenderError> {
        let frame = self.frame.as_ref().ok_or(RenderError::NoForward)?;
        check_image(target.len(), frame.colour.len(), "target")?;
        let t: Vec<f64> = target.iter().map(|&x| x as f64).collect();
        let (l, g) = loss::l1_dssim(
            &frame.colour,
            &t,
            frame.cam.width as usize,
            frame.cam.height as usize,
            cfg.ssim_weight,
        );
        Ok((l, g.iter().map(|&x| x as f32).collect()))
    }

    fn adam_step(&mut self, cfg: &AdamConfig) -> Result<(), RenderError> {
        let grads = self.grads.take().ok_or(RenderError::NoForward)?;
        adam::adam_update(&mut self.gaussians, &grads.params, &mut self.state, cfg);
        self.g64 = self.gaussians.map(|x| x as f64);
        self.frame = None;
        Ok(())
    }
}
