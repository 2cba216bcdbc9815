//! `gs_livo run`: odometry and mapping on a recording, with every output written to a folder.

use std::path::PathBuf;

use anyhow::Context;
use gs_livo::config::Config;
use gs_livo::pipeline::{ExternalGroundTruth, MapMode, Mode, PipelineOptions, PriorMap};

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
    /// Start from a saved map folder (a run's `map/`): relocalise in it and localise or extend.
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// With --map: extend adds to the map; localise keeps it frozen.
    #[arg(long, value_enum, default_value = "extend")]
    pub map_mode: MapMode,
    /// With --map: the run starts at the map's origin (e.g. the same start as the mapping run)
    /// instead of relocalising globally.
    #[arg(long)]
    pub map_origin: bool,
    /// Do not write the map folder `OUT/map/` at the end.
    #[arg(long)]
    pub no_save_map: bool,
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
    let prior = match &a.map {
        Some(dir) => {
            let map = PriorMap::read(dir, a.map_mode)
                .with_context(|| format!("loading --map {}", dir.display()))?;
            map.check_config(&config).with_context(|| {
                format!(
                    "--map {} with --config {}",
                    dir.display(),
                    a.config.display()
                )
            })?;
            Some(PriorMap {
                map: std::sync::Arc::new(map),
                mode: a.map_mode,
                relocalise: !a.map_origin,
            })
        }
        None => None,
    };
    let opts = PipelineOptions {
        prior,
        save_map: !a.no_save_map,
        mode: a.mode,
        max_frames: a.max_frames,
        // LIO ignores the camera (issue 4): no images, so no coloured Gaussian map either.
        mapping: !a.no_map && a.mode != Mode::Lio,
        ..Default::default()
    };
    let relocalising = opts.prior.as_ref().is_some_and(|p| p.relocalise);
    let s = super::demo::run_with_progress(&a.bag, &config, &a.out, &opts, gt)?;
    let report = super::report::write_or_warn(&a.out);
    super::demo::print_table(&s, &a.out, report.as_deref());
    if let Some(r) = s.lio.relocalisation.as_ref().filter(|_| relocalising) {
        match (r.accepted_at_scan, r.pose) {
            (Some(n), Some([x, y, z, yaw])) => println!(
                "relocalised      at scan {n} ({} refused before): [{x:.3}, {y:.3}, {z:.3}] m, yaw {yaw:.2} deg; {:.0} % inliers, next best elsewhere {:.0} % of that",
                r.refused_scans,
                100.0 * r.inlier_ratio,
                100.0 * r.second_ratio
            ),
            _ => anyhow::bail!(
                "relocalisation in {} refused for all {} scans (no pose in the map frame was published); last reason: {}",
                a.map.as_ref().map_or_else(String::new, |p| p.display().to_string()),
                r.refused_scans,
                r.last_refusal.as_deref().unwrap_or("none")
            ),
        }
    }
    Ok(())
}
