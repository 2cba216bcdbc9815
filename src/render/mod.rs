//! Differentiable Gaussian rasteriser: one API, a Vulkan compute backend and a CPU reference backend.

use serde::{Deserialize, Serialize};

/// Parameters of this module (its section of the parameter file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderConfig {}
