//! Vulkan compute backend (vulkano 0.35, SPIR-V compiled by build.rs).

use super::{RenderConfig, RenderError, Renderer};

/// Creates the Vulkan renderer.
pub fn create(_cfg: &RenderConfig) -> Result<Box<dyn Renderer>, RenderError> {
    Err(RenderError::NoDevice("not built yet".into()))
}
