//! `gs_livo demo`: simulate the default room sequence, run LIVO on it, print the results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use gs_livo::config::Config;
use gs_livo::pipeline::{self, Mode, OutputsConfig, PipelineOptions, RunSummary};
use gs_livo::sim::{self, SimConfig};

use super::progress::{stop_flag, Bar};

/// Arguments of `gs_livo demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Folder for the simulated sequence (sequence/) and the run's outputs (run/); default: a
    /// new temporary folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// room | corridor | street | corridor_open | tunnel | open
    #[arg(long, default_value = "room")]
    pub scene: String,
    /// Sharp-edged surface detail in the simulated scene (see `gs_livo sim --detail`).
    #[arg(long)]
    pub detail: bool,
    /// Seconds to simulate (including the 1.5 s static start). Short by default so the demo
    /// finishes in minutes on a CPU-only machine; the simulator's default is 20 s.
    #[arg(long, default_value_t = 8.0)]
    pub duration: f64,
    #[arg(long, value_enum, default_value = "livo")]
    pub mode: Mode,
    /// Config overrides `key=value` (e.g. render.backend=cpu).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

/// Mapping settings of the demo: optimise at a quarter of the camera resolution, 3 iterations.
const QUICK_PROFILE: [&str; 2] = ["gaussian.downsample=4", "gaussian.iterations=3"];

/// Simulates `scene` into `dir` (sequence/ with bag/, config.yaml, ground_truth.tum); returns
/// the bag folder and the config.
pub fn simulate(
    dir: &Path,
    scene: &str,
    duration: f64,
    overrides: &[String],
) -> anyhow::Result<(PathBuf, Config)> {
    let mut cfg = SimConfig::new(scene);
    cfg.duration = duration;
    simulate_config(dir, &cfg, overrides)
}

/// [`simulate`] with every simulator setting given.
pub fn simulate_config(
    dir: &Path,
    cfg: &SimConfig,
    overrides: &[String],
) -> anyhow::Result<(PathBuf, Config)> {
    let (scene, duration) = (&cfg.scene, cfg.duration);
    let seq_dir = dir.join("sequence");
    let t = Instant::now();
    let seq = sim::simulate(cfg).context("simulating")?;
    sim::write_sequence(&seq_dir, &seq)
        .with_context(|| format!("writing {}", seq_dir.display()))?;
    tracing::info!(
        "simulated {scene} ({duration} s) in {:.1} s into {}",
        t.elapsed().as_secs_f64(),
        seq_dir.display()
    );
    let config = Config::load(&seq_dir.join("config.yaml"), overrides)?;
    Ok((seq_dir.join("bag"), config))
}

/// Runs the pipeline with a progress bar and Ctrl-C handling.
pub fn run_with_progress(
    bag: &Path,
    config: &Config,
    out: &Path,
    opts: &PipelineOptions,
    gt: Option<pipeline::ExternalGroundTruth>,
) -> anyhow::Result<RunSummary> {
    let total = gs_livo::pipeline::BagInput::open(bag, config)?.scan_count();
    let bar = Bar::new(total);
    let r = pipeline::run_offline(
        bag,
        config,
        out,
        opts,
        OutputsConfig::default(),
        gt,
        stop_flag(),
        |p| bar.update(p),
    );
    bar.finish();
    Ok(r?)
}

/// Prints the short result table (with the report's path when it was written).
pub fn print_table(s: &RunSummary, out: &Path, report: Option<&Path>) {
    let ate = s
        .accuracy
        .as_ref()
        .map_or("n/a (no ground truth)".into(), |a| {
            format!("{:.4} m RMSE ({} poses)", a.ate_rmse_m, a.matched)
        });
    let psnr = s
        .render_quality
        .as_ref()
        .map_or("n/a (no renders)".into(), |q| {
            let ssim = q
                .ssim_mean
                .map_or(String::new(), |v| format!(", SSIM {v:.3}"));
            format!(
                "{:.2} dB mean over {} renders{ssim} (the window at training views)",
                q.psnr_mean_db, q.renders
            )
        });
    let visual = if s.visual.enabled {
        let v = &s.visual.run;
        // The most frequent skip reason says why (e.g. `lidar_constrained`: the pose is left to
        // the LiDAR and only the exposure is estimated).
        let top = v
            .skipped
            .iter()
            .max_by_key(|(_, n)| **n)
            .map_or(String::new(), |(k, n)| format!(", most often {k}: {n}"));
        format!(
            "{} pose updates / {} images ({} exposure-only; {} skipped{top})",
            v.applied,
            v.images,
            v.exposure_only,
            v.skipped_total()
        )
    } else if s.options.mode == gs_livo::pipeline::Mode::Oracle {
        "off (oracle mode: the map uses ground-truth poses)".into()
    } else if s.visual.available {
        "off (lio mode)".into()
    } else {
        "not in this build (LIO + mapping)".into()
    };
    println!("{:<16} {}", "status", s.status);
    println!("{:<16} {ate}", "ATE");
    println!("{:<16} {psnr}", "PSNR");
    if let Some(q) = &s.exported_map {
        println!("{:<16} {}", "exported map", q.describe());
    }
    println!("{:<16} {}", "frames", s.frames);
    println!("{:<16} {}", "gaussians", s.gaussians);
    println!("{:<16} {visual}", "visual update");
    println!(
        "{:<16} {:.2}x ({:.1} s of data in {:.1} s)",
        "real-time factor", s.real_time_factor, s.sensor_seconds, s.wall_seconds
    );
    println!(
        "{:<16} {}",
        "renderer",
        s.renderer.as_deref().unwrap_or("-")
    );
    println!("{:<16} {}", "outputs", out.display());
    for f in &s.outputs {
        if !f.starts_with("renders/") {
            println!("{:<16}   {}", "", f);
        }
    }
    println!("{:<16}   renders/ (render, camera and comparison PNGs)", "");
    if let Some(r) = report {
        println!("{:<16} {}", "report", r.display());
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (root, _tmp) = match &a.out {
        Some(d) => (d.clone(), None),
        None => {
            let t = std::env::temp_dir().join(format!("gs_livo_demo_{}", std::process::id()));
            (t.clone(), Some(t))
        }
    };
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    // A quick mapping profile, so the demo stays short where the rasteriser runs on a CPU
    // (lavapipe); `--set` given by the user comes after and wins.
    let overrides: Vec<String> = QUICK_PROFILE
        .iter()
        .map(|s| s.to_string())
        .chain(a.set.iter().cloned())
        .collect();
    let mut cfg = SimConfig::new(&a.scene);
    cfg.duration = a.duration;
    cfg.detail = a.detail;
    let (bag, config) = simulate_config(&root, &cfg, &overrides)?;
    let out = root.join("run");
    let opts = PipelineOptions {
        mode: a.mode,
        ..Default::default()
    };
    let s = run_with_progress(&bag, &config, &out, &opts, None)?;
    let report = super::report::write_or_warn(&out);
    print_table(&s, &out, report.as_deref());
    Ok(())
}
