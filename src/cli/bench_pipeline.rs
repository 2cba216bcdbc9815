//! `gs_livo bench pipeline`: end-to-end real-time factor and per-stage timing on the demo
//! sequence, per profile (embedded, desktop) and render backend.

use std::path::PathBuf;

use anyhow::Context;
use gs_livo::pipeline::{self, OutputsConfig, PipelineOptions};

/// Arguments of `gs_livo bench pipeline`.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Seconds of the simulated sequence.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Simulated scene (room | corridor | street | corridor_open | tunnel | open).
    #[arg(long, default_value = "room")]
    pub scene: String,
    /// Sharp-edged surface detail in the simulated scene (see `gs_livo sim --detail`).
    #[arg(long)]
    pub detail: bool,
    /// Loop through the same places (see `gs_livo sim --loop`): long runs with revisits.
    #[arg(long = "loop")]
    pub looping: bool,
    /// Per-frame exposure gain of the simulated camera in [1-F, 1+F] (smoothly varying).
    #[arg(long, default_value_t = 0.0)]
    pub exposure_jitter: f64,
    /// Profiles to run (embedded, desktop; realtime and gpu: the same under the mapper's time
    /// budget instead of a fixed iteration count).
    #[arg(long, value_delimiter = ',', default_value = "embedded,desktop")]
    pub profiles: Vec<String>,
    /// Render backends to run (vulkan, fast, cpu = the slow f64 reference); unavailable ones
    /// are reported and skipped.
    #[arg(long, value_delimiter = ',', default_value = "vulkan,fast")]
    pub backends: Vec<String>,
    /// Stop each run after this many frames (CPU backends are slow at 100k Gaussians).
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Render the map at every n-th camera image for PSNR/SSIM (0 = never: renders at full
    /// camera resolution cost the mapper time a deployment would not spend).
    #[arg(long, default_value_t = 0)]
    pub render_every: usize,
    /// Work folder (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Config overrides applied to every run.
    #[arg(long = "set")]
    pub set: Vec<String>,
}

/// Mapper budget per frame of the `realtime` profile: of a 10 Hz camera's 100 ms, what the
/// LiDAR insertion, windowing and colouring (about 20-30 ms a frame on a 2-core CPU) leave.
const REALTIME_BUDGET_MS: f64 = 60.0;

/// The config overrides of a profile: the Gaussian window, the optimisation resolution and
/// iterations (embedded: [`gs_livo::gaussian::GaussianConfig::embedded`], 256x216 as GS-LIVO on
/// an Orin NX; desktop: the full camera resolution).
pub fn profile_overrides(name: &str) -> anyhow::Result<Vec<String>> {
    Ok(match name {
        "embedded" => {
            let e = gs_livo::gaussian::GaussianConfig::embedded();
            let [w, h] = e
                .resolution
                .unwrap_or(gs_livo::gaussian::EMBEDDED_RESOLUTION);
            vec![
                format!("gaussian.window_capacity={}", e.window_capacity),
                format!("gaussian.resolution=[{w}, {h}]"),
                format!("gaussian.iterations={}", e.iterations),
                format!("gaussian.leaf_pixels={}", e.leaf_pixels),
            ]
        }
        "realtime" => {
            // The embedded profile under the mapper's time budget instead of 3 iterations.
            let mut sets = profile_overrides("embedded")?;
            sets.push(format!("gaussian.time_budget_ms={REALTIME_BUDGET_MS}"));
            sets
        }
        "gpu" => {
            // The desktop window at full resolution under the budget: on a GPU an iteration
            // costs a few milliseconds, so the budget buys GS-LIVO's tens of iterations a frame.
            let mut sets = profile_overrides("desktop")?;
            sets.push(format!("gaussian.time_budget_ms={REALTIME_BUDGET_MS}"));
            sets
        }
        "desktop" => {
            let d = gs_livo::gaussian::GaussianConfig::desktop();
            vec![
                format!("gaussian.window_capacity={}", d.window_capacity),
                "gaussian.downsample=1".into(),
                "gaussian.resolution=null".into(),
                format!("gaussian.iterations={}", d.iterations),
                format!("gaussian.leaf_pixels={}", d.leaf_pixels),
            ]
        }
        other => anyhow::bail!("unknown profile `{other}` (embedded|realtime|desktop|gpu)"),
    })
}

pub fn run(a: PipelineArgs) -> anyhow::Result<()> {
    let root = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("gs_livo_bench_{}", std::process::id()))
    });
    std::fs::create_dir_all(&root)?;
    let mut sim = gs_livo::sim::SimConfig::new(&a.scene);
    sim.duration = a.duration;
    sim.looping = a.looping;
    sim.exposure_jitter = a.exposure_jitter;
    sim.detail = a.detail;
    let (bag, _) = super::demo::simulate_config(&root, &sim, &[])?;
    let seq_cfg = root.join("sequence/config.yaml");
    println!(
        "{:<9} {:<7} {:>6} {:>7} {:>8}  {:<}",
        "profile", "backend", "frames", "RTF", "ATE [m]", "stage median / p95 / max [ms]"
    );
    for profile in &a.profiles {
        for backend in &a.backends {
            let mut sets = profile_overrides(profile)?;
            sets.push(format!("render.backend={backend}"));
            sets.extend(a.set.iter().cloned());
            let config = gs_livo::config::Config::load(&seq_cfg, &sets)?;
            if backend == "vulkan" {
                if let Err(e) = gs_livo::render::create_renderer(&config.render) {
                    println!("{profile:<9} {backend:<7} unavailable: {e}");
                    continue;
                }
            }
            let out = root.join(format!("run_{profile}_{backend}"));
            let opts = PipelineOptions {
                max_frames: a.max_frames,
                render_every: a.render_every,
                ..Default::default()
            };
            let s = pipeline::run_offline(
                &bag,
                &config,
                &out,
                &opts,
                OutputsConfig {
                    registered_every: 0,
                    ..Default::default()
                },
                None,
                super::progress::stop_flag(),
                |_| {},
            )
            .with_context(|| format!("{profile}/{backend}"))?;
            let ate = s
                .accuracy
                .as_ref()
                .map_or("-".into(), |x| format!("{:.4}", x.ate_rmse_m));
            // CPU seconds per sensor second: the load-independent cost; over the core count it
            // bounds the real-time factor of an idle machine from above.
            let cpu = match s.cpu_seconds {
                Some(c) if s.sensor_seconds > 0.0 => {
                    format!("CPU {:.2} s per sensor s, ", c / s.sensor_seconds)
                }
                _ => String::new(),
            };
            // Without the start-up and the final writes: what a live sensor stream sees.
            let streaming = s
                .streaming_real_time_factor
                .map_or(String::new(), |r| format!("streaming {r:.2}x, "));
            println!(
                "{profile:<9} {backend:<7} {:>6} {:>6.2}x {:>8}  ({streaming}{cpu}{} Gaussians, window {}, {})",
                s.frames,
                s.real_time_factor,
                ate,
                s.gaussians,
                s.window_gaussians,
                s.renderer.as_deref().unwrap_or("-")
            );
            if let Some(q) = &s.render_quality {
                println!(
                    "{:<18} window at training views: PSNR {:.2} dB (min {:.2}, max {:.2}; first third {:.2}, last third {:.2}), SSIM {}, {} renders",
                    "",
                    q.psnr_mean_db,
                    q.psnr_min_db,
                    q.psnr_max_db,
                    q.psnr_first_third_db,
                    q.psnr_last_third_db,
                    q.ssim_mean.map_or("-".into(), |v| format!("{v:.4}")),
                    q.renders
                );
            }
            if let Some(q) = &s.exported_map {
                println!("{:<18} exported map.ply, held out: {}", "", q.describe());
            }
            match off_surface(&a.scene, &out) {
                Ok(Some(m)) => println!("{:<18} exported map.ply geometry: {}", "", m.describe()),
                Ok(None) => {}
                Err(e) => println!("{:<18} exported map.ply geometry: not measured ({e:#})", ""),
            }
            if let Some(e) = &s.exposure_accuracy {
                println!(
                    "{:<18} exposure vs truth: RMS {:.2} % (max {:.2} %, scale {:.3}, {} images)",
                    "",
                    100.0 * e.rms,
                    100.0 * e.max,
                    e.scale,
                    e.matched
                );
            }
            let frame_total: f64 = s
                .stages
                .iter()
                .filter(|(k, _)| !k.ends_with("_total"))
                .map(|(_, v)| v.total_ms)
                .sum();
            for (k, v) in &s.stages {
                println!(
                    "{:<18} {:<24} {:>8.2} / {:>8.2} / {:>8.2}   n={:<5} {:>5.1}% of stage time",
                    "",
                    k,
                    v.median_ms,
                    v.p95_ms,
                    v.max_ms,
                    v.count,
                    if k.ends_with("_total") || frame_total <= 0.0 {
                        0.0
                    } else {
                        100.0 * v.total_ms / frame_total
                    }
                );
            }
        }
    }
    println!("outputs under {}", root.display());
    Ok(())
}

/// The exported map's distance from the simulated scene's true surfaces, read back from the
/// file a user gets (`None` where the run wrote no map). The map lies in the run's world frame,
/// moved into the simulator's by the trajectory's alignment with ground truth (SE(3)).
fn off_surface(
    scene: &str,
    out: &std::path::Path,
) -> anyhow::Result<Option<gs_livo::sim::map_geometry::OffSurface>> {
    let ply = out.join("map.ply");
    if !ply.exists() {
        return Ok(None);
    }
    let truth = gs_livo::sim::scene::Scene::by_name(scene)
        .with_context(|| format!("no scene `{scene}`"))?;
    let read = |name: &str| gs_livo::eval::tum::read_tum(&out.join(name));
    let report = gs_livo::eval::evaluate(
        &read("ground_truth.tum")?,
        &read("trajectory.tum")?,
        &gs_livo::eval::EvalOptions::default(),
    )?;
    let file = std::fs::File::open(&ply).with_context(|| ply.display().to_string())?;
    // The background shell (written after the map) is no surface: left out.
    let (mut gaussians, _, shell) =
        gs_livo::gaussian::read_ply_parts(std::io::BufReader::new(file))
            .with_context(|| format!("reading {}", ply.display()))?;
    gaussians.truncate(gaussians.len() - shell);
    for g in &mut gaussians {
        let p = nalgebra::Vector3::from(g.mean.map(f64::from));
        let at = report
            .alignment
            .apply(&nalgebra::Isometry3::translation(p.x, p.y, p.z));
        g.mean = at.translation.vector.map(|v| v as f32).into();
    }
    Ok(gs_livo::sim::map_geometry::OffSurface::measure(
        &truth, &gaussians,
    ))
}
