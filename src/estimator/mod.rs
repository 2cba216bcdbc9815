//! Iterated error-state Kalman filter on SO(3) x R^n: IMU propagation, deskew, LiDAR update.
//!
//! [`Ieskf`] owns state and covariance and runs any [`Measurement`] as an iterated update;
//! [`Lio`] drives it per measurement package (initialise, propagate, deskew, point-to-plane
//! update against the voxel plane map, map insertion).

pub mod deskew;
pub mod ieskf;
pub mod init;
pub mod lio;
pub mod point_to_plane;
pub mod reloc;
pub mod so3;
pub mod state;
pub mod visual;

pub use ieskf::{
    FilterError, Ieskf, Linearization, Measurement, ProcessNoise, Segment, UpdateReport,
    UpdateSettings,
};
pub use init::{ImuInitializer, InitEstimate};
pub use lio::{Degeneracy, Lio, LioCounters, LioSetup, ScanResult};
pub use state::{ErrMat, ErrVec, State, DIM};
pub use visual::VisualConfig;

use serde::{Deserialize, Serialize};

/// `lidar.*`: scan preprocessing and the point noise model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LidarConfig {
    /// Points closer than this (m) are dropped (robot body, sensor housing).
    pub min_range: f64,
    /// Points farther than this (m) are dropped.
    pub max_range: f64,
    /// Voxel-grid downsampling of each scan before the update (m); 0 disables it.
    pub downsample: f64,
    /// Fewest points a downsampled scan should keep: below it the voxel shrinks by steps of
    /// 1/sqrt(2), down to a quarter of `downsample`. A narrow-field scanner (a Livox rosette)
    /// in a small room leaves too few 0.3 m voxels to hold the pose (1 cm ATE with perfect
    /// sensors); a spinning LiDAR keeps thousands and is left as it is. 0 disables it.
    pub min_points: usize,
    /// Keep every n-th point before downsampling (1 = all).
    pub point_stride: usize,
    /// Range noise (1 sigma, m) of the point noise model.
    pub range_noise: f64,
    /// Bearing noise (1 sigma, rad) of the point noise model.
    pub bearing_noise: f64,
}

impl Default for LidarConfig {
    fn default() -> Self {
        Self {
            min_range: 0.5,
            max_range: 100.0,
            downsample: 0.3,
            min_points: 1500,
            point_stride: 1,
            range_noise: 0.02,
            bearing_noise: 0.002,
        }
    }
}

/// `lio.*`: filter settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LioConfig {
    /// Length of the IMU window used for initialisation (s).
    pub init_duration: f64,
    /// Gyro standard deviation (rad/s) above which the init window counts as moving.
    pub init_max_gyro_std: f64,
    /// Maximum iterations of the LiDAR update.
    pub max_iterations: usize,
    /// Convergence thresholds of the iterated update (rad, m).
    pub eps_rot: f64,
    pub eps_pos: f64,
    /// The iterated update has also converged when its pose step is under this many posterior
    /// standard deviations (plus the thresholds above; `ieskf::pose_step_converged`): a
    /// degenerate scan's step along the unobserved axis stays above `eps_pos` while far below
    /// what the filter resolves there. 0: the absolute thresholds alone.
    pub converge_rel_sigma: f64,
    /// Residual gate in standard deviations.
    pub gate_sigma: f64,
    /// Minimum number of associated points for an update.
    pub min_residuals: usize,
    /// Take out of each LiDAR update the information that the map planes' tilt uncertainty
    /// explains (`point_to_plane::deflate_tilt_information`): without it a corridor's axis
    /// reads as observed to centimetres per scan and the filter grows overconfident there.
    pub plane_tilt_deflation: bool,
    /// Degeneracy: smallest/largest eigenvalue ratio of the translational information below
    /// which the scan is reported degenerate.
    pub degenerate_ratio: f64,
    /// Random walk of the inverse exposure (1/s/sqrt(Hz)).
    pub tau_walk: f64,
    /// IMU intervals longer than this (s) are not integrated (time jump); shorter gaps are.
    pub max_imu_gap: f64,
    /// Initial standard deviations: velocity (m/s), accel bias (m/s^2), gyro bias (rad/s),
    /// gravity (m/s^2), rotation (rad; roll/pitch from gravity).
    pub init_vel_std: f64,
    pub init_ba_std: f64,
    pub init_bg_std: f64,
    pub init_grav_std: f64,
    pub init_rot_std: f64,
}

impl Default for LioConfig {
    fn default() -> Self {
        Self {
            init_duration: 0.5,
            init_max_gyro_std: 0.05,
            max_iterations: 5,
            eps_rot: 1e-4,
            eps_pos: 1e-4,
            converge_rel_sigma: 0.1,
            gate_sigma: 3.0,
            min_residuals: 20,
            plane_tilt_deflation: true,
            degenerate_ratio: 0.06,
            tau_walk: 0.01,
            max_imu_gap: 0.5,
            init_vel_std: 0.1,
            init_ba_std: 0.05,
            init_bg_std: 0.01,
            init_grav_std: 0.05,
            init_rot_std: 0.02,
        }
    }
}
