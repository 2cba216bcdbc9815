//! Voxel plane map for the LiDAR point-to-plane residuals: hashed root voxels, each an octree of plane-fitting leaves.

use serde::{Deserialize, Serialize};

/// Parameters of this module (its section of the parameter file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoxelMapConfig {}
