//! `gs_livo bench live`: the node through the replay transport at a given rate on the demo
//! sequence, per profile: odometry latency (median / p95 / max), IMU odometry rate, frames
//! mapped and skipped, and every drop. What a robot would see on this machine.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use gs_livo::pipeline::PipelineOptions;
use gs_livo::ros::core::NodeSetup;
use gs_livo::ros::replay::{replay_bag, ReplayOptions};

/// Arguments of `gs_livo bench live`.
#[derive(clap::Args)]
pub struct LiveArgs {
    /// Sequence length in seconds.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Profiles (embedded, desktop).
    #[arg(long, value_delimiter = ',', default_value = "embedded,desktop")]
    pub profiles: Vec<String>,
    /// Bag seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Scene of the simulated sequence.
    #[arg(long, default_value = "room")]
    pub scene: String,
    /// Parameter overrides `key=value`, applied after the profile's; repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Work folder (default: a folder in the temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(a: LiveArgs) -> anyhow::Result<()> {
    let root = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("gs_livo_bench_live_{}", std::process::id()))
    });
    std::fs::create_dir_all(&root)?;
    let (bag, _) = super::demo::simulate(&root, &a.scene, a.duration, &[])?;
    let seq_cfg = root.join("sequence/config.yaml");
    println!(
        "{:<9} {:>5} {:>6} {:>22} {:>9} {:>14} {:>10} {:>8}",
        "profile",
        "rate",
        "odom",
        "latency med/p95/max ms",
        "IMU odo",
        "mapped/skipped",
        "drops",
        "ATE [m]"
    );
    for profile in &a.profiles {
        let mut sets = super::bench_pipeline::profile_overrides(profile)?;
        sets.extend(a.set.iter().cloned());
        let (config, mut params) = gs_livo::ros::params::load_node_file(&seq_cfg, &sets)?;
        let out = root.join(format!("live_{profile}"));
        std::fs::create_dir_all(&out)?;
        params.save_dir = out.display().to_string();
        let setup = NodeSetup {
            config,
            params,
            pipeline: PipelineOptions::default(),
        };
        let options = ReplayOptions {
            rate: a.rate,
            record_dir: Some(out.clone()),
            ..Default::default()
        };
        let stop = super::progress::stop_flag();
        let r = replay_bag(&bag, setup, options, Arc::clone(&stop))
            .with_context(|| format!("profile {profile}"))?;
        let s = &r.node.summary;
        let l = &s.odometry.latency_ms;
        let drops: u64 = [&s.imu, &s.lidar, &s.camera]
            .iter()
            .map(|d| d.dropped_backlog + d.dropped_pipeline_full + d.dropped_at_shutdown)
            .sum();
        let gt = gs_livo::eval::tum::read_tum(&root.join("sequence/ground_truth.tum"))?;
        let est = gs_livo::eval::tum::read_tum(&out.join("trajectory.tum"))?;
        let ate = gs_livo::eval::evaluate(&gt, &est, &Default::default())
            .map_or("-".into(), |e| format!("{:.4}", e.ate.rmse));
        println!(
            "{profile:<9} {:>5.2} {:>6} {:>22} {:>9} {:>14} {:>10} {:>8}",
            a.rate,
            s.odometry.published,
            format!("{:.1} / {:.1} / {:.1}", l.median_ms, l.p95_ms, l.max_ms),
            s.odometry
                .imu_rate_hz
                .map_or("-".into(), |h| format!("{h:.0} Hz")),
            format!("{}/{}", s.mapped_frames, s.mapper_frames_skipped),
            drops,
            ate
        );
    }
    println!("outputs in {}", root.display());
    Ok(())
}
