//! Vulkan compute backend (vulkano 0.35, SPIR-V compiled by build.rs).
//!
//! By job: `context` (device), `kernels` (pipelines), `buffers` (allocation, upload,
//! read-back), `submit` (command buffers, the dispatch helper), `profiler`; one recording
//! module per stage: `project`, `sort`, `raster` (the whole forward), `backward`, `loss`,
//! `adam`; `renderer` ties them into the [`Renderer`] calls.

mod adam;
mod backward;
mod buffers;
mod context;
mod kernels;
mod loss;
mod profiler;
mod project;
mod raster;
mod renderer;
mod sort;
mod submit;

pub use context::{best_device_kind, enumerate_devices, DeviceKind};
pub use renderer::VulkanRenderer;

use super::{RenderConfig, RenderError, Renderer};

/// Creates the Vulkan renderer.
pub fn create(cfg: &RenderConfig) -> Result<Box<dyn Renderer>, RenderError> {
    Ok(Box::new(VulkanRenderer::new(cfg)?))
}
