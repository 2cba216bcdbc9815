//! Differentiable Gaussian rasteriser: one API ([`Renderer`]), a Vulkan compute backend and a
//! CPU reference backend.
//!
//! Method (3DGS): project means with the world-to-camera pose, EWA 2D covariance with a 0.3 px
//! dilation, near/frustum culling, 16x16 tiles, per-tile depth order (GPU radix sort of
//! tile|depth keys), front-to-back blending (alpha clamp 0.99, skip below 1/255, stop when the
//! transmittance would drop below 1e-4). Backward: reverse per-pixel traversal, then the chain
//! rule per Gaussian to every parameter and to the camera pose (see [`perturb_pose`]).
//!
//! Typical use (issue 6/7):
//! ```no_run
//! # use gs_livo::render::*;
//! # fn f(cfg: &RenderConfig, g: &Gaussians, cam: &Camera, pose: &nalgebra::Isometry3<f64>,
//! #      target: &[f32]) -> Result<(), RenderError> {
//! let mut r = create_renderer(cfg)?;
//! r.set_gaussians(g, None)?;
//! for _ in 0..10 {
//!     r.step(cam, pose, target, &LossConfig::default(), &AdamConfig::default())?;
//! }
//! let img = r.forward(cam, pose)?;                  // colour / depth / alpha
//! let grads = r.backward(&vec![0.0; img.colour.len()], None, None)?; // .pose for the update
//! let optimised = r.gaussians()?;
//! # let _ = (grads, optimised); Ok(()) }
//! ```

pub mod bench;
pub mod cpu;
pub mod fast;
mod linearise;
mod scene;
pub mod sh;
mod types;
pub mod verify;
pub mod vulkan;

use nalgebra::Isometry3;
use serde::{Deserialize, Serialize};

pub use linearise::{
    pose_jacobian, pose_jacobian_masked, PixelJacobian, PoseJacobian, Surface, Tangent, TileMask,
};
pub use scene::{random_gaussians, test_camera, test_pose};
pub use types::*;

/// Errors of the rasteriser.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("no forward pass to differentiate (call forward first)")]
    NoForward,
    #[error("Vulkan: {0}")]
    Vulkan(String),
    #[error("no usable Vulkan device: {0}")]
    NoDevice(String),
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// Vulkan on a GPU (discrete > integrated > virtual), else the fast CPU backend (also
    /// when the only Vulkan device is a CPU implementation such as lavapipe).
    #[default]
    Auto,
    Vulkan,
    /// The f64 reference (slow; for tests and checks).
    Cpu,
    /// The multi-threaded f32 CPU rasteriser ([`fast`]): for machines without a GPU.
    Fast,
}

/// Parameters of this module (its section of the parameter file). The environment variables
/// `GS_LIVO_RENDER_BACKEND` (auto|vulkan|cpu|fast) and `GS_LIVO_VULKAN_DEVICE` (index or name
/// substring) override `backend` and `device`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderConfig {
    pub backend: BackendChoice,
    /// Vulkan device: empty = best by type; a number = index in enumeration order; otherwise a
    /// case-insensitive substring of the device name.
    pub device: String,
    /// Use float atomics when the device has them (false forces the CAS fallback, for tests).
    pub float_atomics: bool,
    /// Initial capacity of the GPU Gaussian buffers (they grow by 1.5x when exceeded).
    pub initial_capacity: usize,
    /// Initial capacity of the tile/depth key buffers per Gaussian (grows on overflow).
    /// (The tile size is fixed at 16x16 by the shaders' workgroup size.)
    pub keys_per_gaussian: f64,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            device: String::new(),
            float_atomics: true,
            initial_capacity: 1024,
            keys_per_gaussian: 4.0,
        }
    }
}

impl RenderConfig {
    /// The config with the environment overrides applied.
    pub fn with_env(&self) -> Result<Self, RenderError> {
        let mut c = self.clone();
        if let Ok(v) = std::env::var("GS_LIVO_RENDER_BACKEND") {
            c.backend = match v.trim().to_ascii_lowercase().as_str() {
                "auto" | "" => BackendChoice::Auto,
                "vulkan" => BackendChoice::Vulkan,
                "cpu" => BackendChoice::Cpu,
                "fast" => BackendChoice::Fast,
                other => {
                    return Err(RenderError::InvalidInput(format!(
                        "GS_LIVO_RENDER_BACKEND={other}: expected auto, vulkan, cpu or fast"
                    )))
                }
            };
        }
        if let Ok(v) = std::env::var("GS_LIVO_VULKAN_DEVICE") {
            c.device = v;
        }
        Ok(c)
    }
}

/// The backend behind a [`Renderer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Vulkan,
    Fast,
}

/// One rasteriser API over both backends. Gaussians live in the renderer (on the GPU for
/// Vulkan) between calls; `backward`, `loss` and `adam_step` refer to the latest `forward`.
pub trait Renderer: Send {
    fn backend(&self) -> Backend;
    /// Device name (for logs and benchmarks).
    fn device_name(&self) -> String;
    /// Number of Gaussians held.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Per-kernel GPU milliseconds since the last call, in submission order (Vulkan with
    /// `GS_LIVO_RENDER_PROFILE` set; the fast backend gives its phases' wall milliseconds;
    /// empty otherwise).
    fn kernel_profile(&mut self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// Replaces all Gaussians (buffers grow as needed, never shrink). Adam moments are taken from
    /// `state` (same count) or reset to zero.
    fn set_gaussians(
        &mut self,
        g: &Gaussians,
        state: Option<&AdamState>,
    ) -> Result<(), RenderError>;
    /// Overwrites Gaussians `start..start + g.len()` (same SH degree); moments are kept.
    fn update_gaussians(&mut self, start: usize, g: &Gaussians) -> Result<(), RenderError>;
    /// Reads the Gaussians back.
    fn gaussians(&mut self) -> Result<Gaussians, RenderError>;
    /// Reads the Adam moments back (to carry them when the window changes).
    fn adam_state(&mut self) -> Result<AdamState, RenderError>;
    /// Renders with world-to-camera pose `t_cw`.
    fn forward(&mut self, cam: &Camera, t_cw: &Isometry3<f64>)
        -> Result<RenderOutput, RenderError>;
    /// Gradients given d loss / d (colour, depth, alpha) of the latest forward (same layouts as
    /// [`RenderOutput`]; `None` = zero). Also kept inside for [`Renderer::adam_step`].
    fn backward(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<Gradients, RenderError>;
    /// L1 + D-SSIM of the latest forward's colour against `target` (interleaved RGB f32):
    /// the loss and d loss / d colour.
    fn loss(&mut self, target: &[f32], cfg: &LossConfig) -> Result<(f64, Vec<f32>), RenderError>;
    /// One Adam update of the Gaussians with the latest gradients.
    fn adam_step(&mut self, cfg: &AdamConfig) -> Result<(), RenderError>;
    /// The Gaussians, borrowed where the backend keeps them in host memory (no copy); `None`:
    /// read them back with [`Renderer::gaussians`].
    fn gaussians_ref(&self) -> Option<&Gaussians> {
        None
    }
    /// The Adam moments, borrowed where the backend keeps them in host memory (no copy);
    /// `None`: read them back with [`Renderer::adam_state`].
    fn adam_state_ref(&self) -> Option<&AdamState> {
        None
    }
    /// [`Renderer::set_gaussians`] taking ownership (a host backend keeps the buffers instead
    /// of copying them).
    fn set_gaussians_owned(
        &mut self,
        g: Gaussians,
        state: Option<AdamState>,
    ) -> Result<(), RenderError> {
        self.set_gaussians(&g, state.as_ref())
    }
    /// [`Renderer::forward`] for callers that only read the images: a backend that keeps them
    /// in host memory returns `None` and lends them through [`Renderer::forward_view`] (no
    /// copy); others return the copy `forward` makes.
    fn forward_kept(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
    ) -> Result<Option<RenderOutput>, RenderError> {
        self.forward(cam, t_cw).map(Some)
    }
    /// The latest forward's images while they can still be differentiated (until the next
    /// Adam step), where [`Renderer::forward_kept`] kept them.
    fn forward_view(&self) -> Option<RenderView<'_>> {
        None
    }
    /// [`Renderer::loss`] writing d loss / d colour into `d_colour` (its buffer is reused, or
    /// exchanged with the backend's: no allocation per call once sized).
    fn loss_into(
        &mut self,
        target: &[f32],
        cfg: &LossConfig,
        d_colour: &mut Vec<f32>,
    ) -> Result<f64, RenderError> {
        let (l, d) = self.loss(target, cfg)?;
        *d_colour = d;
        Ok(l)
    }
    /// [`Renderer::backward`] for [`Renderer::adam_step`] only: the gradients are kept inside,
    /// not returned (a host backend saves their copy).
    fn backward_kept(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<(), RenderError> {
        self.backward(d_colour, d_depth, d_alpha).map(|_| ())
    }
    /// A whole optimisation step (forward, loss, backward, Adam) without read-backs; on Vulkan one
    /// command buffer. By default the four calls in turn.
    fn step(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
        target: &[f32],
        loss: &LossConfig,
        adam: &AdamConfig,
    ) -> Result<(), RenderError> {
        self.forward(cam, t_cw)?;
        let (_, d) = self.loss(target, loss)?;
        self.backward(&d, None, None)?;
        self.adam_step(adam)
    }
}

/// The images of a forward pass, borrowed (layouts of [`RenderOutput`]).
#[derive(Debug, Clone, Copy)]
pub struct RenderView<'a> {
    pub width: u32,
    pub height: u32,
    pub colour: &'a [f32],
    pub depth: &'a [f32],
    pub alpha: &'a [f32],
}

impl RenderOutput {
    /// The images, borrowed.
    pub fn view(&self) -> RenderView<'_> {
        RenderView {
            width: self.width,
            height: self.height,
            colour: &self.colour,
            depth: &self.depth,
            alpha: &self.alpha,
        }
    }
}

/// Creates the configured backend (after environment overrides).
///
/// `Auto` takes Vulkan on a GPU (or on the device `device` names), and the fast CPU backend
/// when the only Vulkan devices are CPU implementations such as lavapipe (the native f32 code
/// is many times faster there) or when Vulkan is missing or fails (with a warning). `Vulkan`
/// fails instead of falling back.
pub fn create_renderer(cfg: &RenderConfig) -> Result<Box<dyn Renderer>, RenderError> {
    let cfg = cfg.with_env()?;
    match cfg.backend {
        BackendChoice::Cpu => Ok(Box::new(cpu::CpuRenderer::new(&cfg))),
        BackendChoice::Fast => Ok(Box::new(fast::FastRenderer::new(&cfg))),
        BackendChoice::Vulkan => vulkan::create(&cfg),
        BackendChoice::Auto => {
            let gpu = vulkan::best_device_kind();
            if cfg.device.trim().is_empty() && gpu == Some(vulkan::DeviceKind::Cpu) {
                static NOTED: std::sync::Once = std::sync::Once::new();
                NOTED.call_once(|| {
                    tracing::info!(
                        "the only Vulkan devices are CPU implementations; rendering with the fast CPU backend (render.backend=vulkan forces Vulkan)"
                    )
                });
                return Ok(Box::new(fast::FastRenderer::new(&cfg)));
            }
            match vulkan::create(&cfg) {
                Ok(r) => Ok(r),
                Err(e) => {
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    WARNED.call_once(|| {
                        tracing::warn!("Vulkan unavailable ({e}); using the fast CPU rasteriser")
                    });
                    Ok(Box::new(fast::FastRenderer::new(&cfg)))
                }
            }
        }
    }
}

/// Checks the sizes of the loss gradients given to [`Renderer::backward`] for `np` pixels.
pub(crate) fn check_grad_images(
    np: usize,
    d_colour: &[f32],
    d_depth: Option<&[f32]>,
    d_alpha: Option<&[f32]>,
) -> Result<(), RenderError> {
    check_image(d_colour.len(), 3 * np, "d_colour")?;
    if let Some(d) = d_depth {
        check_image(d.len(), np, "d_depth")?;
    }
    if let Some(d) = d_alpha {
        check_image(d.len(), np, "d_alpha")?;
    }
    Ok(())
}

pub(crate) fn check_image(len: usize, want: usize, what: &str) -> Result<(), RenderError> {
    if len == want {
        Ok(())
    } else {
        Err(RenderError::InvalidInput(format!(
            "{what} has {len} values, expected {want}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_env_overrides() {
        let c: RenderConfig =
            serde_yaml::from_str("backend: cpu\ndevice: llvmpipe\nfloat_atomics: false").unwrap();
        assert_eq!(c.backend, BackendChoice::Cpu);
        assert_eq!(c.device, "llvmpipe");
        assert!(!c.float_atomics);
        assert!(serde_yaml::from_str::<RenderConfig>("tile: 8").is_err());
        assert!(serde_yaml::from_str::<RenderConfig>("backend: opengl").is_err());
    }

    #[test]
    fn auto_uses_vulkan_only_on_a_gpu() {
        if std::env::var("GS_LIVO_RENDER_BACKEND").is_ok()
            || std::env::var("GS_LIVO_VULKAN_DEVICE").is_ok()
        {
            return;
        }
        let want = match vulkan::best_device_kind() {
            Some(vulkan::DeviceKind::Gpu) => Backend::Vulkan,
            _ => Backend::Fast,
        };
        let r = create_renderer(&RenderConfig::default()).unwrap();
        assert_eq!(r.backend(), want, "{}", r.device_name());
    }

    /// Two steps through the borrowing calls (`forward_kept`/`forward_view`, `loss_into`,
    /// `backward_kept`, `set_gaussians_owned`, the `_ref` read-backs) give the same bits as
    /// through the copying ones, on `a` and `b` (two renderers of one backend).
    fn kept_calls_match_copying_calls(a: &mut dyn Renderer, b: &mut dyn Renderer) {
        let g = random_gaussians(60, 1, 0.15, 3);
        let (cam, pose) = (test_camera(40, 30), test_pose());
        let target: Vec<f32> = (0..3 * cam.pixels())
            .map(|i| (i % 7) as f32 / 7.0)
            .collect();
        let (loss, adam) = (LossConfig::default(), AdamConfig::default());
        a.set_gaussians(&g, None).unwrap();
        b.set_gaussians_owned(g.clone(), None).unwrap();
        let mut d = vec![1.0f32; 7];
        for _ in 0..2 {
            let out = a.forward(&cam, &pose).unwrap();
            let kept = b.forward_kept(&cam, &pose).unwrap();
            let view = match &kept {
                Some(o) => o.view(),
                None => b.forward_view().expect("kept images"),
            };
            assert_eq!(view.colour, &out.colour[..]);
            assert_eq!(view.depth, &out.depth[..]);
            assert_eq!(view.alpha, &out.alpha[..]);
            let d_alpha: Vec<f32> = out.alpha.iter().map(|a| 0.1 - a).collect();
            let (la, da) = a.loss(&target, &loss).unwrap();
            let lb = b.loss_into(&target, &loss, &mut d).unwrap();
            assert_eq!(la.to_bits(), lb.to_bits());
            assert_eq!(da, d);
            a.backward(&da, None, Some(&d_alpha)).unwrap();
            b.backward_kept(&d, None, Some(&d_alpha)).unwrap();
            a.adam_step(&adam).unwrap();
            b.adam_step(&adam).unwrap();
        }
        let ga = a.gaussians().unwrap();
        let gb = match b.gaussians_ref() {
            Some(g) => g.clone(),
            None => b.gaussians().unwrap(),
        };
        assert_eq!(gb, ga);
        assert_ne!(ga, g, "the steps moved nothing");
        let sb = match b.adam_state_ref() {
            Some(s) => s.clone(),
            None => b.adam_state().unwrap(),
        };
        assert_eq!(sb, a.adam_state().unwrap());
    }

    #[test]
    fn kept_calls_match_copying_calls_fast_and_cpu() {
        let cfg = RenderConfig::default();
        kept_calls_match_copying_calls(
            &mut fast::FastRenderer::new(&cfg),
            &mut fast::FastRenderer::new(&cfg),
        );
        kept_calls_match_copying_calls(
            &mut cpu::CpuRenderer::new(&cfg),
            &mut cpu::CpuRenderer::new(&cfg),
        );
    }

    #[test]
    fn cpu_backend_is_created_on_request() {
        let cfg = RenderConfig {
            backend: BackendChoice::Cpu,
            ..RenderConfig::default()
        };
        // The env override is only read, never required.
        if std::env::var("GS_LIVO_RENDER_BACKEND").is_err() {
            assert_eq!(create_renderer(&cfg).unwrap().backend(), Backend::Cpu);
        }
    }
}
