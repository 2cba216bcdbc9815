//! Iterated error-state Kalman filter on SO(3) x R^n: IMU propagation, deskew, LiDAR update.

use serde::{Deserialize, Serialize};

/// `lidar.*`: scan preprocessing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LidarConfig {}

/// `lio.*`: filter settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LioConfig {}
