//! `gs_livo run`: replays a bag through sync and the estimator, writes the trajectory.
//!
//! Single-threaded for now (the pipeline issue adds threads): read -> decode -> sync -> LIO.

use std::path::PathBuf;

use anyhow::Context;

use gs_livo::bag::decode::{decode_sensor_message, SensorMessage};
use gs_livo::bag::BagReader;
use gs_livo::config::Config;
use gs_livo::estimator::Lio;
use gs_livo::sensors::PoseStamped;
use gs_livo::sync::{SyncSettings, Synchronizer};

/// Arguments of `gs_livo run`.
#[derive(clap::Args)]
pub struct Args {
    /// rosbag2 folder or bare .mcap / .db3 file.
    pub bag: PathBuf,
    /// ROS 2 parameter file (the fixed keys; `gs_livo sim` writes one).
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    /// `lio` (LiDAR-inertial; the camera is ignored).
    #[arg(long, default_value = "lio")]
    pub mode: String,
    /// Override a config key: `--set lio.max_iterations=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Stop after this many scans.
    #[arg(long)]
    pub max_frames: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.mode != "lio" {
        anyhow::bail!("--mode {}: only `lio` is available so far", args.mode);
    }
    let cfg = Config::load(&args.config, &args.set)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let reader = BagReader::open(&args.bag)
        .with_context(|| format!("opening bag {}", args.bag.display()))?;
    let topics = [cfg.topics.lidar.as_str(), cfg.topics.imu.as_str()];
    let mut sync = Synchronizer::new(SyncSettings {
        lidar_offset: cfg.time_offset.lidar,
        camera_offset: cfg.time_offset.camera,
        ..Default::default()
    });
    let mut lio = Lio::new(&cfg);
    let mut traj: Vec<PoseStamped> = Vec::new();
    let mut decode_errors = 0usize;
    let mut degenerate = 0usize;
    let max_frames = args.max_frames.unwrap_or(usize::MAX);
    let started = std::time::Instant::now();
    'outer: for msg in reader.messages(&topics)? {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                decode_errors += 1;
                tracing::warn!("bag read error: {e}");
                continue;
            }
        };
        match decode_sensor_message(&msg) {
            Ok(SensorMessage::Imu(s)) if msg.topic == cfg.topics.imu => sync.push_imu(s),
            Ok(SensorMessage::Cloud(c)) if msg.topic == cfg.topics.lidar => sync.push_scan(c),
            Ok(_) => {}
            Err(e) => {
                decode_errors += 1;
                tracing::warn!("{}: cannot decode message: {e}", msg.topic);
            }
        }
        while let Some(pkg) = sync.pop() {
            if let Some(r) = lio.process(&pkg) {
                if r.degeneracy.is_some_and(|d| d.degenerate) {
                    degenerate += 1;
                }
                traj.push(PoseStamped {
                    stamp: r.stamp,
                    pose: r.pose,
                });
                if traj.len() >= max_frames {
                    break 'outer;
                }
            }
        }
    }
    sync.finish();
    let path = args.out.join("trajectory.tum");
    gs_livo::eval::tum::write_tum(&path, &traj)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} poses -> {} ({:.1} s, {:.1} scans/s), degenerate scans: {degenerate}, decode errors: {decode_errors}",
        traj.len(),
        path.display(),
        secs,
        traj.len() as f64 / secs.max(1e-9)
    );
    println!("sync: {:?}", sync.counters());
    println!("lio:  {:?}", lio.counters());
    Ok(())
}
