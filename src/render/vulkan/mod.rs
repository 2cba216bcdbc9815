//! Vulkan compute backend (vulkano 0.35, SPIR-V compiled by build.rs).

mod context;
mod renderer;

pub use context::{best_device_kind, enumerate_devices, DeviceKind};
pub use renderer::VulkanRenderer;

use super::{RenderConfig, RenderError, Renderer};

/// Creates the Vulkan renderer.
pub fn create(cfg: &RenderConfig) -> Result<Box<dyn Renderer>, RenderError> {
    Ok(Box::new(VulkanRenderer::new(cfg)?))
}
