//! `gs_livo sim`: simulate a LiDAR-camera-IMU sequence with ground truth.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use gs_livo::sim::{self, ExposureMode, LidarKind, SimConfig};

/// Arguments of `gs_livo sim`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder: bag/ (rosbag2 MCAP), ground_truth.tum, exposure.txt, config.yaml.
    #[arg(long)]
    pub out: PathBuf,
    /// room | corridor | street | corridor_open (300 m, open ends) | tunnel | open (field)
    #[arg(long, default_value = "room")]
    pub scene: String,
    /// Sharp-edged surface detail (tile grout, decals, 1 cm text-like glyphs) over the noise.
    #[arg(long)]
    pub detail: bool,
    /// Seconds (including the 1.5 s static start).
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Noise factor: 0 = perfect sensors, 1 = the rig's densities.
    #[arg(long, default_value_t = 1.0)]
    pub noise: f64,
    /// spinning | livox
    #[arg(long, default_value = "spinning")]
    pub lidar: LidarKind,
    /// Per-frame exposure gain in [1-F, 1+F].
    #[arg(long, default_value_t = 0.0)]
    pub exposure_jitter: f64,
    /// Draw the exposure gain independently per frame instead of smoothly varying it.
    #[arg(long)]
    pub exposure_random: bool,
    /// Write jpeg sensor_msgs/CompressedImage on <image topic>/compressed.
    #[arg(long)]
    pub compressed: bool,
    /// Camera rate in Hz (10-30 typical).
    #[arg(long, default_value_t = 10.0)]
    pub camera_rate: f64,
    /// Peak yaw rate in deg/s (default depends on the scene).
    #[arg(long)]
    pub yaw_rate: Option<f64>,
    /// Loop through the same places (street, corridor: out and back along the axis; the room's
    /// default figure of eight is already periodic), for long runs with revisits.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Rig file to take topics, extrinsics, camera and IMU noise from (default: built-in rig).
    #[arg(long)]
    pub rig: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let mut cfg = SimConfig::new(&a.scene);
    cfg.duration = a.duration;
    cfg.seed = a.seed;
    cfg.noise = a.noise;
    cfg.lidar = a.lidar;
    cfg.exposure_jitter = a.exposure_jitter;
    if a.exposure_random {
        cfg.exposure_mode = ExposureMode::Random;
    }
    cfg.compressed = a.compressed;
    cfg.camera_rate = a.camera_rate;
    cfg.looping = a.looping;
    cfg.detail = a.detail;
    if let Some(y) = a.yaw_rate {
        cfg.yaw_rate_deg = y;
    }
    if let Some(rig) = &a.rig {
        cfg.rig = gs_livo::config::Config::load(rig, &[])?;
    }
    let t = Instant::now();
    let seq = sim::simulate(&cfg).context("simulating")?;
    let t_sim = t.elapsed().as_secs_f64();
    sim::write_sequence(&a.out, &seq).with_context(|| format!("writing {}", a.out.display()))?;
    let total = t.elapsed().as_secs_f64();
    let bag_bytes = dir_size(&a.out.join("bag"));
    let pts: usize = seq.scans.iter().map(|s| s.points.len()).sum();
    println!(
        "sim {}: {:.1} s, {} IMU, {} scans ({:.0} pts/scan), {} images -> {}",
        cfg.scene,
        cfg.duration,
        seq.imu.len(),
        seq.scans.len(),
        pts as f64 / seq.scans.len().max(1) as f64,
        seq.images.len(),
        a.out.display()
    );
    println!(
        "time: simulate {:.1} s, total {:.1} s; bag {:.1} MB",
        t_sim,
        total,
        bag_bytes as f64 / 1e6
    );
    Ok(())
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}
