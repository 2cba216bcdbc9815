//! `gs_livo run`: odometry and mapping on a recording, with every output written to a folder.

use std::path::PathBuf;

use anyhow::Context;
use gs_livo::config::Config;
use gs_livo::pipeline::{ExternalGroundTruth, Mode, PipelineOptions};

/// Arguments of `gs_livo run`.
#[derive(clap::Args)]
pub struct Args {
    /// rosbag2 folder, or a bare .mcap / .db3 file.
    pub bag: PathBuf,
    /// ROS 2 parameter file of the rig (config/*.yaml).
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder: trajectory.tum, map.ply, results.mcap, summary.json, trajectory.png,
    /// frames.csv, renders.csv, renders/, plots/ and report.html.
    #[arg(long)]
    pub out: PathBuf,
    /// Parameter overrides `key=value` (dotted keys, YAML values); repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// lio: LiDAR-inertial, camera ignored (no Gaussian map); livo: with the Gaussian map and
    /// the photometric update; oracle: LiDAR-inertial odometry, with the Gaussian map built on
    /// ground-truth poses (the bag's ground-truth topic or --gt) to judge the map alone.
    #[arg(long, value_enum, default_value = "livo")]
    pub mode: Mode,
    /// Stop after this many frames (scans).
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Ground-truth trajectory (TUM) for ATE; default: the config's ground-truth topic.
    #[arg(long)]
    pub gt: Option<PathBuf>,
    /// Skip the Gaussian map (odometry only: no map.ply, renders or PSNR).
    #[arg(long)]
    pub no_map: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let config = Config::load(&a.config, &a.set)?;
    let gt = match &a.gt {
        Some(p) => Some(ExternalGroundTruth {
            poses: gs_livo::eval::tum::read_tum(p)
                .with_context(|| format!("reading --gt {}", p.display()))?,
            source: p.display().to_string(),
        }),
        None => None,
    };
    let opts = PipelineOptions {
        mode: a.mode,
        max_frames: a.max_frames,
        // LIO ignores the camera (issue 4): no images, so no coloured Gaussian map either.
        mapping: !a.no_map && a.mode != Mode::Lio,
        ..Default::default()
    };
    let s = super::demo::run_with_progress(&a.bag, &config, &a.out, &opts, gt)?;
    let report = super::report::write_or_warn(&a.out);
    super::demo::print_table(&s, &a.out, report.as_deref());
    Ok(())
}
