//! LiDAR models: a spinning multi-beam sensor (Ouster-like) and a Livox-like non-repetitive
//! rosette. Every point is cast from the sensor pose at its own firing time, so scans carry the
//! real motion distortion, and its range gets Gaussian noise.

use nalgebra::{Isometry3, Vector3};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::scene::{Ray, Scene};
use super::trajectory::Trajectory;

/// Which sensor to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LidarKind {
    Spinning,
    Livox,
}

impl std::str::FromStr for LidarKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spinning" => Ok(Self::Spinning),
            "livox" => Ok(Self::Livox),
            o => Err(format!("unknown lidar model `{o}` (spinning|livox)")),
        }
    }
}

/// Sensor parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LidarModel {
    pub kind: LidarKind,
    /// Spinning: number of beams and columns per revolution, vertical field of view (deg).
    pub beams: u32,
    pub columns: u32,
    pub vfov_deg: (f64, f64),
    /// Livox: points per second and circular field of view (deg).
    pub livox_rate: f64,
    pub livox_fov_deg: f64,
    pub min_range: f64,
    pub max_range: f64,
    /// Standard deviation of the range noise in metres.
    pub range_noise: f64,
}

impl LidarModel {
    /// OS1-32 in 512x10 mode, or an Avia-like 200k points/s rosette.
    pub fn new(kind: LidarKind, range_noise: f64) -> Self {
        Self {
            kind,
            beams: 32,
            columns: 512,
            vfov_deg: (-22.5, 22.5),
            livox_rate: 200_000.0,
            livox_fov_deg: 70.4,
            min_range: 0.3,
            max_range: if kind == LidarKind::Livox {
                250.0
            } else {
                120.0
            },
            range_noise,
        }
    }
}

/// One return, in the LiDAR frame at its own time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LidarPoint {
    pub p: [f32; 3],
    /// Seconds since the scan start (the header stamp).
    pub t: f32,
    /// 0..255, from the surface albedo and incidence angle.
    pub intensity: f32,
    /// Beam (spinning) or laser line (Livox).
    pub ring: u16,
    /// Measured (noisy) range in metres.
    pub range: f32,
}

/// Casts one scan starting at `t_start` (seconds since sequence start) lasting `period`.
pub fn simulate_scan(
    scene: &Scene,
    traj: &Trajectory,
    body_t_lidar: &Isometry3<f64>,
    model: &LidarModel,
    t_start: f64,
    period: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<LidarPoint> {
    let mut out = Vec::new();
    let mut cast = |t_rel: f64, dir_l: Vector3<f64>, ring: u16, world_t_lidar: &Isometry3<f64>| {
        let ray = Ray {
            origin: world_t_lidar.translation.vector,
            dir: world_t_lidar.rotation * dir_l,
        };
        let Some(hit) = scene.intersect(&ray) else {
            return;
        };
        let noise: f64 = if model.range_noise > 0.0 {
            rng.sample::<f64, _>(StandardNormal) * model.range_noise
        } else {
            0.0
        };
        let r = hit.t + noise;
        if hit.t < model.min_range || hit.t > model.max_range || r <= 0.0 {
            return;
        }
        let a = scene.albedo(&hit, 0.0);
        let lum = 0.3 * a[0] + 0.6 * a[1] + 0.1 * a[2];
        let cos = hit.normal.dot(&-ray.dir).abs() as f32;
        let p = dir_l * r;
        out.push(LidarPoint {
            p: [p.x as f32, p.y as f32, p.z as f32],
            t: t_rel as f32,
            intensity: (255.0 * lum * (0.3 + 0.7 * cos)).clamp(0.0, 255.0),
            ring,
            range: r as f32,
        });
    };
    match model.kind {
        LidarKind::Spinning => {
            let (lo, hi) = (model.vfov_deg.0.to_radians(), model.vfov_deg.1.to_radians());
            let beams = model.beams.max(1);
            for c in 0..model.columns {
                let t_rel = period * c as f64 / model.columns as f64;
                let pose = traj.pose(t_start + t_rel) * body_t_lidar;
                let az = std::f64::consts::TAU * c as f64 / model.columns as f64;
                for b in 0..beams {
                    let el = if beams == 1 {
                        0.0
                    } else {
                        lo + (hi - lo) * b as f64 / (beams - 1) as f64
                    };
                    let d = Vector3::new(el.cos() * az.cos(), el.cos() * az.sin(), el.sin());
                    cast(t_rel, d, b as u16, &pose);
                }
            }
        }
        LidarKind::Livox => {
            let n = (model.livox_rate * period).round() as usize;
            let half = (model.livox_fov_deg * 0.5).to_radians();
            let (f1, f2) = (1103.7, -741.3);
            for i in 0..n {
                let t_rel = period * i as f64 / n as f64;
                let t_abs = t_start + t_rel;
                let line = (i % 6) as u16;
                // Two counter-rotating prisms: the sum of two rotating vectors draws a rosette
                // that never repeats (incommensurate rates), filling the circular FOV.
                let th1 = std::f64::consts::TAU * f1 * t_abs + line as f64 * 0.37;
                let th2 = std::f64::consts::TAU * f2 * t_abs;
                let dx = 0.5 * half * (th1.cos() + th2.cos());
                let dy = 0.5 * half * (th1.sin() + th2.sin());
                let d = Vector3::new(1.0, dx.tan(), dy.tan()).normalize();
                let pose = traj.pose(t_abs) * body_t_lidar;
                cast(t_rel, d, line, &pose);
            }
        }
    }
    out
}
