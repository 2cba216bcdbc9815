//! Synthetic LiDAR-camera-IMU sequences with exact ground truth, written as rosbag2.
//!
//! Honest on purpose: scans are motion-distorted (each point cast from the pose at its own time),
//! the IMU has white noise and random-walk biases, images have per-frame exposure gains.
//! Everything is deterministic for a seed (ChaCha RNG streams per sensor and per scan).

mod bagout;
pub mod camera;
pub mod detail;
pub mod imu;
pub mod lidar;
pub mod map_geometry;
pub mod output;
pub mod scene;
pub mod sequence;
pub mod texture;
pub mod trajectory;

pub use camera::{project, render_camera, unproject, CameraRays};
pub use imu::{ideal_imu, ImuBias, ImuNoise};
pub use lidar::{LidarKind, LidarModel, LidarPoint};
pub use output::write_sequence;
pub use scene::{Hit, Ray, Scene};
pub use sequence::{simulate, LidarScan, SimSequence};
pub use trajectory::{Kinematics, Trajectory};

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

use crate::config::{Config, Transform};

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown scene `{0}` (room|corridor|street|corridor_open|tunnel|open)")]
    UnknownScene(String),
    #[error("invalid simulation setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("writing {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("encoding output: {0}")]
    Encode(String),
}

/// How the per-frame exposure gain varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposureMode {
    /// Slowly varying (sum of two sinusoids).
    Smooth,
    /// Independent uniform draw per frame.
    Random,
}

/// What to simulate. `SimConfig::new(scene)` gives the defaults of `gs_livo sim`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub scene: String,
    pub duration: f64,
    pub seed: u64,
    /// Multiplies every noise (IMU densities and biases, range noise); 0 = perfect sensors.
    pub noise: f64,
    pub lidar: LidarKind,
    /// Gain in [1-F, 1+F] per frame; 0 = constant gain 1.
    pub exposure_jitter: f64,
    pub exposure_mode: ExposureMode,
    /// JPEG CompressedImage instead of rgb8 Image.
    pub compressed: bool,
    pub imu_rate: f64,
    pub lidar_rate: f64,
    pub camera_rate: f64,
    /// Peak yaw rate of the trajectory in deg/s.
    pub yaw_rate_deg: f64,
    /// Sharp-edged surface detail (grout, decals, glyphs) over the smooth noise textures.
    pub detail: bool,
    /// Fly [`Trajectory::looping`] (revisits for long runs) instead of the scene's default.
    pub looping: bool,
    /// Range noise standard deviation at noise = 1 (metres).
    pub range_noise: f64,
    /// Camera supersampling per axis.
    pub supersample: u32,
    /// Start of the sequence (ns since the epoch).
    pub t0_ns: u64,
    /// Rig: topics, extrinsics, camera intrinsics, IMU noise densities and gravity.
    pub rig: Config,
}

impl SimConfig {
    /// Defaults for a scene (see [`Scene::NAMES`]).
    pub fn new(scene: &str) -> Self {
        let yaw_rate_deg = match scene {
            "corridor" | "corridor_open" | "open" => 20.0,
            "street" | "tunnel" => 15.0,
            _ => 45.0,
        };
        Self {
            scene: scene.to_string(),
            duration: 20.0,
            seed: 0,
            noise: 1.0,
            lidar: LidarKind::Spinning,
            exposure_jitter: 0.0,
            exposure_mode: ExposureMode::Smooth,
            compressed: false,
            imu_rate: 200.0,
            lidar_rate: 10.0,
            camera_rate: 10.0,
            yaw_rate_deg,
            detail: false,
            looping: false,
            range_noise: 0.01,
            supersample: 2,
            t0_ns: 1_700_000_000_000_000_000,
            rig: default_rig(),
        }
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |key, message: String| Err(SimError::Invalid { key, message });
        if Scene::by_name(&self.scene).is_none() {
            return Err(SimError::UnknownScene(self.scene.clone()));
        }
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 3600.0) {
            return bad(
                "duration",
                format!("must be in (0, 3600] s, got {}", self.duration),
            );
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return bad("noise", format!("must be >= 0, got {}", self.noise));
        }
        if !(0.0..1.0).contains(&self.exposure_jitter) {
            return bad(
                "exposure_jitter",
                format!("must be in [0, 1), got {}", self.exposure_jitter),
            );
        }
        for (k, v) in [
            ("imu_rate", self.imu_rate),
            ("lidar_rate", self.lidar_rate),
            ("camera_rate", self.camera_rate),
        ] {
            if !(v.is_finite() && (0.5..=2000.0).contains(&v)) {
                return bad(k, format!("must be in [0.5, 2000] Hz, got {v}"));
            }
        }
        if !(self.yaw_rate_deg.is_finite() && (0.0..=360.0).contains(&self.yaw_rate_deg)) {
            return bad(
                "yaw_rate_deg",
                format!("must be in [0, 360], got {}", self.yaw_rate_deg),
            );
        }
        self.rig.validate().map_err(|(k, m)| SimError::Invalid {
            key: "rig",
            message: format!("{k}: {m}"),
        })
    }

    /// The trajectory this configuration flies.
    pub fn trajectory(&self) -> Trajectory {
        let phase = (self.seed % 1000) as f64 * 0.001 * std::f64::consts::TAU;
        if self.looping {
            Trajectory::looping(&self.scene, self.yaw_rate_deg, phase)
        } else {
            Trajectory::for_scene(&self.scene, self.yaw_rate_deg, phase)
        }
    }
}

/// The synthetic rig (also shipped as config/synthetic.yaml): LiDAR 10 cm above and 5 cm ahead
/// of the IMU, slightly rotated; a forward-looking camera in the optical convention.
pub fn default_rig() -> Config {
    let mut c = Config::default();
    c.topics.lidar = "/points".into();
    c.topics.imu = "/imu".into();
    c.topics.image = "/image".into();
    c.topics.ground_truth = "/ground_truth/odom".into();
    let lidar_rot = UnitQuaternion::from_euler_angles(0.0, 0.0, 0.02);
    c.extrinsics.imu_T_lidar = Transform(Isometry3::from_parts(
        Translation3::new(0.05, 0.0, 0.1),
        lidar_rot,
    ));
    // Optical frame: z forward (body x), x right (body -y), y down (body -z).
    let r = nalgebra::Rotation3::from_basis_unchecked(&[
        Vector3::new(0.0, -1.0, 0.0),
        Vector3::new(0.0, 0.0, -1.0),
        Vector3::new(1.0, 0.0, 0.0),
    ]);
    let cam_rot = UnitQuaternion::from_rotation_matrix(&r)
        * UnitQuaternion::from_euler_angles(0.05, 0.0, 0.0);
    c.extrinsics.imu_T_camera = Transform(Isometry3::from_parts(
        Translation3::new(0.1, -0.04, 0.03),
        cam_rot,
    ));
    c.camera = crate::sensors::Camera {
        width: 640,
        height: 480,
        fx: 400.0,
        fy: 400.0,
        cx: 319.5,
        cy: 239.5,
        distortion: [0.0; 5],
    };
    c
}
