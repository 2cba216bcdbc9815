//! Global hashed-octree Gaussian map, LiDAR initialisation, sliding window, PLY import/export.

use serde::{Deserialize, Serialize};

/// Parameters of this module (its section of the parameter file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianConfig {}
