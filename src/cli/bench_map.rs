//! `gs_livo bench map`: map quality with oracle (ground-truth) poses on simulated scenes, so
//! the Gaussian map is judged apart from the estimator: training- and novel-view PSNR/SSIM,
//! size, memory and time per scene.

use std::time::Instant;

use anyhow::Context;
use gs_livo::config::Config;
use gs_livo::gaussian::GaussianConfig;
use gs_livo::pipeline::map_harness::{run_oracle, OracleOptions};
use gs_livo::render::create_renderer;
use gs_livo::sim::{simulate, SimConfig};

/// Arguments of `gs_livo bench map`.
#[derive(clap::Args, Debug, Clone)]
pub struct MapArgs {
    /// Simulated scenes (room, street, corridor).
    #[arg(long, value_delimiter = ',', default_value = "room,street")]
    pub scenes: Vec<String>,
    /// Seconds simulated per scene.
    #[arg(long, default_value_t = 6.0)]
    pub duration: f64,
    /// Camera resolution WxH (the default rig's field of view is kept).
    #[arg(long, default_value = "640x480")]
    pub resolution: String,
    /// Evaluate every n-th training frame and novel view.
    #[arg(long, default_value_t = 2)]
    pub eval_every: usize,
    /// Gaussian-map overrides `key=value` under `gaussian.` (e.g. `iterations=20`), plus
    /// `render.*` keys for the backend; repeatable.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Also print every evaluated view's PSNR and the error by true depth (slower: a ray cast
    /// per pixel and view).
    #[arg(long)]
    pub diagnose: bool,
}

/// The default rig's camera at `w`x`h` with the same horizontal field of view.
fn scale_camera(sc: &mut SimConfig, w: u32, h: u32) {
    let c = &mut sc.rig.camera;
    let f = c.fx * f64::from(w) / f64::from(c.width);
    c.width = w;
    c.height = h;
    c.fx = f;
    c.fy = f;
    c.cx = (f64::from(w) - 1.0) / 2.0;
    c.cy = (f64::from(h) - 1.0) / 2.0;
}

pub fn run(a: MapArgs) -> anyhow::Result<()> {
    let (w, h) = super::bench::parse_size(&a.resolution)?;
    // The parameter file's defaults with the user's overrides: only the map and renderer
    // sections are used, so the rig's sensors stay the simulator's.
    let sets: Vec<String> = a
        .set
        .iter()
        .map(|s| {
            if s.starts_with("gaussian.") || s.starts_with("render.") {
                s.clone()
            } else {
                format!("gaussian.{s}")
            }
        })
        .collect();
    let rig = SimConfig::new("room").rig.to_yaml();
    let base = Config::from_yaml_str(&rig, "the simulator's rig", &sets).context("--set")?;
    println!(
        "| scene | resolution | frames | Gaussians | train PSNR | train SSIM | novel PSNR | novel SSIM | window peak | bytes/Gaussian | map MiB | s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for scene in &a.scenes {
        let mut sc = SimConfig::new(scene);
        sc.duration = a.duration;
        sc.noise = 0.0;
        if scene == "room" {
            sc.lidar = "livox".parse().expect("known LiDAR");
        }
        scale_camera(&mut sc, w, h);
        let seq = simulate(&sc).with_context(|| format!("simulating {scene}"))?;
        let cfg: GaussianConfig = base.gaussian.clone();
        let mut r = create_renderer(&base.render)?;
        let t = Instant::now();
        let rep = run_oracle(
            &seq,
            cfg,
            r.as_mut(),
            &OracleOptions {
                max_frames: None,
                final_passes: 0,
                eval_every: a.eval_every,
                depth_bands: a.diagnose,
            },
        )
        .with_context(|| format!("oracle mapping of {scene}"))?;
        let secs = t.elapsed().as_secs_f64();
        let per = rep.map_bytes as f64 / rep.gaussians.max(1) as f64;
        println!(
            "| {scene} | {w}x{h} | {} | {} | {:.2} | {:.3} | {:.2} | {:.3} | {} | {:.0} | {:.1} | {:.0} |",
            rep.frames,
            rep.gaussians,
            rep.train_psnr,
            rep.train_ssim,
            rep.novel_psnr,
            rep.novel_ssim,
            rep.window_peak,
            per,
            rep.map_bytes as f64 / (1 << 20) as f64,
            secs
        );
        if a.diagnose {
            for v in &rep.views {
                eprintln!(
                    "{scene}: {} t {:.2} s: PSNR {:.2} SSIM {:.3}",
                    if v.novel { "novel" } else { "train" },
                    v.t,
                    v.psnr,
                    v.ssim
                );
            }
            for b in &rep.depth_bands {
                eprintln!(
                    "{scene}: depth {:>4.0}..{:<4.0} m: {:5.1}% of pixels, PSNR {:.2}",
                    b.near,
                    b.far,
                    100.0 * b.fraction,
                    b.psnr
                );
            }
        }
        let brief = gs_livo::pipeline::map_harness::OracleReport {
            views: Vec::new(),
            depth_bands: Vec::new(),
            ..rep
        };
        eprintln!("{scene}: renderer {}, {brief:?}", r.device_name());
    }
    Ok(())
}
