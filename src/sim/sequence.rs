//! Runs all sensor models over one trajectory into an in-memory sequence.

use nalgebra::Vector3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::camera::CameraRays;
use super::imu::{simulate_imu, ImuBias, ImuModel, ImuNoise};
use super::lidar::{simulate_scan, LidarModel, LidarPoint};
use super::scene::Scene;
use super::trajectory::Trajectory;
use super::{ExposureMode, SimConfig, SimError};
use crate::sensors::{stamp_from_secs, Image, ImuSample, PointCloud, PoseStamped, Stamp};

/// One LiDAR scan: header stamp at the scan start, points in the LiDAR frame.
#[derive(Debug, Clone, PartialEq)]
pub struct LidarScan {
    pub stamp: Stamp,
    pub points: Vec<LidarPoint>,
}

impl LidarScan {
    /// The scan as the internal cloud type (per-point time relative to the stamp).
    pub fn to_cloud(&self, frame_id: &str) -> PointCloud {
        let mut c = PointCloud::with_capacity(self.stamp, frame_id, self.points.len(), true);
        for p in &self.points {
            c.push(p.p, p.intensity, p.t);
        }
        c
    }
}

/// A simulated sequence with its ground truth.
#[derive(Debug, Clone)]
pub struct SimSequence {
    pub config: SimConfig,
    pub scene: Scene,
    pub trajectory: Trajectory,
    pub imu: Vec<ImuSample>,
    /// True biases at each IMU sample.
    pub imu_bias: Vec<ImuBias>,
    pub scans: Vec<LidarScan>,
    pub images: Vec<Image>,
    /// True exposure gain of each image.
    pub exposure: Vec<f64>,
    /// Body (IMU) pose in the world at each IMU stamp.
    pub ground_truth: Vec<PoseStamped>,
}

impl SimSequence {
    /// Seconds since the sequence start of an absolute stamp.
    pub fn time_of(&self, stamp: Stamp) -> f64 {
        crate::sensors::stamp_diff_secs(stamp, self.config.t0_ns)
    }
}

/// An independent, reproducible RNG stream for (seed, purpose, index).
fn rng_for(seed: u64, stream: u64, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream * 1_000_003 + index);
    r
}

/// Exposure gains of frames at times `times`.
fn exposure_gains(cfg: &SimConfig, times: &[f64]) -> Vec<f64> {
    let f = cfg.exposure_jitter;
    if f == 0.0 {
        return vec![1.0; times.len()];
    }
    match cfg.exposure_mode {
        ExposureMode::Smooth => {
            let ph = (cfg.seed % 97) as f64 * 0.1;
            times
                .iter()
                .map(|&t| 1.0 + f * (0.6 * (0.9 * t + ph).sin() + 0.4 * (2.3 * t + 2.0 * ph).sin()))
                .collect()
        }
        ExposureMode::Random => {
            let mut rng = rng_for(cfg.seed, 4, 0);
            times
                .iter()
                .map(|_| rng.gen_range(1.0 - f..=1.0 + f))
                .collect()
        }
    }
}

/// Splits `n` jobs over the machine's threads, keeping output order.
pub(crate) fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, n.max(1));
    let per = n.div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| s.spawn(move || (k * per..((k + 1) * per).min(n)).map(f).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("simulation worker panicked"))
            .collect()
    })
}

/// Simulates the whole sequence in memory.
pub fn simulate(cfg: &SimConfig) -> Result<SimSequence, SimError> {
    cfg.validate()?;
    let scene =
        Scene::by_name(&cfg.scene).ok_or_else(|| SimError::UnknownScene(cfg.scene.clone()))?;
    let scene = if cfg.detail {
        scene.with_detail()
    } else {
        scene
    };
    let traj = cfg.trajectory();
    let k = cfg.noise;
    let rig = &cfg.rig;

    // IMU: noise densities from the rig scaled by K; non-zero initial biases when K > 0.
    let mut bias_rng = rng_for(cfg.seed, 1, 0);
    let mut unit = || {
        let v: Vector3<f64> = Vector3::new(
            bias_rng.gen_range(-1.0..1.0),
            bias_rng.gen_range(-1.0..1.0),
            bias_rng.gen_range(-1.0..1.0),
        );
        v / v.norm().max(1e-6)
    };
    let bias0 = ImuBias {
        gyro: unit() * 0.004 * k,
        accel: unit() * 0.05 * k,
    };
    let imu_model = ImuModel {
        rate: cfg.imu_rate,
        gravity: rig.imu.gravity,
        noise: ImuNoise {
            gyro_noise: rig.imu.gyro_noise * k,
            accel_noise: rig.imu.accel_noise * k,
            gyro_bias_walk: rig.imu.gyro_bias_walk * k,
            accel_bias_walk: rig.imu.accel_bias_walk * k,
        },
        bias0,
    };
    let mut imu_rng = rng_for(cfg.seed, 2, 0);
    let (imu, imu_bias) = simulate_imu(&traj, cfg.duration, &imu_model, cfg.t0_ns, &mut imu_rng);
    let ground_truth = imu
        .iter()
        .map(|s| PoseStamped {
            stamp: s.stamp,
            pose: traj.pose(crate::sensors::stamp_diff_secs(s.stamp, cfg.t0_ns)),
        })
        .collect();

    // LiDAR: scans [k/rate, (k+1)/rate) that end within the duration.
    let model = LidarModel::new(cfg.lidar, cfg.range_noise * k);
    let period = 1.0 / cfg.lidar_rate;
    let n_scans = ((cfg.duration + 1e-9) / period).floor() as usize;
    let body_t_lidar = rig.extrinsics.imu_T_lidar.0;
    let scans = parallel_map(n_scans, |i| {
        let t_start = i as f64 * period;
        let mut rng = rng_for(cfg.seed, 3, i as u64);
        LidarScan {
            stamp: cfg.t0_ns + stamp_from_secs(t_start),
            points: simulate_scan(
                &scene,
                &traj,
                &body_t_lidar,
                &model,
                t_start,
                period,
                &mut rng,
            ),
        }
    });

    // Camera: global shutter frames at k/rate, offset by a third of a LiDAR period so they do
    // not coincide with scan boundaries.
    let cam_dt = 1.0 / cfg.camera_rate;
    let cam_offset = period / 3.0;
    let n_frames = ((cfg.duration - cam_offset + 1e-9) / cam_dt)
        .floor()
        .max(-1.0) as i64
        + 1;
    let times: Vec<f64> = (0..n_frames.max(0))
        .map(|i| cam_offset + i as f64 * cam_dt)
        .collect();
    let exposure = exposure_gains(cfg, &times);
    let cam = CameraRays::new(&rig.camera, cfg.supersample);
    let body_t_cam = rig.extrinsics.imu_T_camera.0;
    let images = times
        .iter()
        .zip(&exposure)
        .map(|(&t, &g)| {
            let mut img = cam.render(&scene, &(traj.pose(t) * body_t_cam), g);
            img.stamp = cfg.t0_ns + stamp_from_secs(t);
            img.frame_id = rig.frames.camera.clone();
            img
        })
        .collect();

    Ok(SimSequence {
        config: cfg.clone(),
        scene,
        trajectory: traj,
        imu,
        imu_bias,
        scans,
        images,
        exposure,
        ground_truth,
    })
}
