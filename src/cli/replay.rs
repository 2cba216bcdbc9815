//! `gs_livo replay`: the node, live, on a bag played in wall-clock time; everything it
//! publishes is recorded into `DIR/published.mcap` and its outputs are saved into DIR.

use anyhow::Context;
use gs_livo::pipeline::{Mode, PipelineOptions};
use gs_livo::ros::core::NodeSetup;
use gs_livo::ros::replay::{replay_bag, ReplayOptions};
use std::path::PathBuf;

/// Arguments of `gs_livo replay`.
#[derive(clap::Args)]
pub struct Args {
    /// rosbag2 folder, or a bare .mcap / .db3 file.
    pub bag: PathBuf,
    /// ROS 2 parameter file of the rig (config/*.yaml); `node.*` keys apply as in the node.
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder: published.mcap, trajectory.tum, map.ply, lidar_map.ply, summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Bag seconds per wall second (0: as fast as the bag reads).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Parameter overrides `key=value` (dotted keys, YAML values, `node.*` too); repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// lio: no Gaussian map; livo: with the map and the photometric update.
    #[arg(long, value_enum, default_value = "livo")]
    pub mode: Mode,
    /// Ask for a save this many bag seconds after the start (into --out); repeatable.
    #[arg(long = "save-at")]
    pub save_at: Vec<f64>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !(a.rate.is_finite() && a.rate >= 0.0) {
        anyhow::bail!("--rate must be a non-negative number, got {}", a.rate);
    }
    let (config, mut params) = gs_livo::ros::params::load_node_file(&a.config, &a.set)?;
    params.save_dir = a.out.display().to_string();
    params.save_on_shutdown = true;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let setup = NodeSetup {
        config,
        params,
        pipeline: PipelineOptions {
            mode: a.mode,
            mapping: a.mode != Mode::Lio,
            ..Default::default()
        },
    };
    // SIGINT and SIGTERM (what `ros2 launch` sends): finish the backlog, save, exit.
    let stop = super::progress::stop_flag();
    let options = ReplayOptions {
        rate: a.rate,
        record_dir: Some(a.out.clone()),
        save_at: a.save_at,
        ..Default::default()
    };
    let r = replay_bag(&a.bag, setup, options, stop)?;
    let s = &r.node.summary;
    let l = &s.odometry.latency_ms;
    println!(
        "{}: {} messages played, {} odometry ({} at IMU rate, {}), latency median {:.1} / p95 {:.1} / max {:.1} ms",
        s.status,
        r.delivered,
        s.odometry.published,
        s.odometry.imu_rate_published,
        s.odometry
            .imu_rate_hz
            .map_or("-".into(), |h| format!("{h:.1} Hz")),
        l.median_ms,
        l.p95_ms,
        l.max_ms
    );
    println!(
        "mapped {} frames, skipped {}; dropped imu {} lidar {} camera {}",
        s.mapped_frames,
        s.mapper_frames_skipped,
        dropped(&s.imu),
        dropped(&s.lidar),
        dropped(&s.camera)
    );
    if let Some(p) = &r.published {
        println!("published messages: {}", p.display());
    }
    match &r.node.final_save {
        Some(Ok(m)) => println!("{m}"),
        Some(Err(e)) => anyhow::bail!("final save: {e}"),
        None => {}
    }
    Ok(())
}

fn dropped(d: &gs_livo::ros::summary::SensorDrops) -> u64 {
    d.decode_errors + d.dropped_backlog + d.dropped_pipeline_full + d.dropped_at_shutdown
}
