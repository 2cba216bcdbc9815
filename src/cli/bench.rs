//! `gs_livo bench`: timing tables of the hot paths (`bench render`; more targets can be added as
//! subcommands, e.g. `bench pipeline`).

use gs_livo::render::{self, BackendChoice, RenderConfig, Renderer};

/// Arguments of `gs_livo bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// Rasteriser: forward and forward+backward milliseconds (median) per backend.
    Render(RenderArgs),
    /// Whole pipeline on the demo sequence: real-time factor and per-stage timing per profile
    /// (embedded, desktop) and render backend.
    Pipeline(super::bench_pipeline::PipelineArgs),
    /// Map quality with ground-truth poses on simulated scenes: training- and novel-view
    /// PSNR/SSIM, Gaussians, memory and time per scene.
    Map(super::bench_map::MapArgs),
    /// The node through the replay transport at real time: odometry latency, IMU odometry
    /// rate, frames mapped and skipped, drops, per profile.
    Live(super::bench_live::LiveArgs),
}

#[derive(clap::Args)]
pub struct RenderArgs {
    /// Timed repetitions per configuration (median reported).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Backends to time: all, vulkan, fast or cpu.
    #[arg(long, default_value = "all")]
    pub backend: String,
    /// Gaussian counts.
    #[arg(long, value_delimiter = ',', default_values_t = [20_000usize, 100_000])]
    pub gaussians: Vec<usize>,
    /// Resolutions WxH.
    #[arg(long, value_delimiter = ',', default_values_t = ["256x216".to_string(), "640x480".to_string()])]
    pub sizes: Vec<String>,
    /// Summary of the repetitions: median (for reports) or min (to compare variants on a
    /// loaded machine).
    #[arg(long, default_value = "median")]
    pub stat: String,
    /// SH degree of the timed scenes (0..=3; the map uses 1).
    #[arg(long, default_value_t = 3)]
    pub sh_degree: u32,
    /// Repetitions for the (slow) CPU reference backend.
    #[arg(long, default_value_t = 3)]
    pub cpu_runs: usize,
    /// Instead of timing: compare the Vulkan and the fast backends (`--backend all`, the
    /// default, needs a Vulkan device; or `vulkan` or `fast` alone) with the CPU reference
    /// (forward images, every gradient group, pose gradient, loss) on small random scenes (on
    /// Vulkan with float atomics and the CAS fallback) and on `--verify-scenes`; prints relative
    /// errors with PASS/FAIL against the test tolerances and exits non-zero on any FAIL.
    #[arg(long)]
    pub verify: bool,
    /// Realistic scenes for `--verify`, as GAUSSIANS@WxH (benchmark scenes, SH degree 3).
    #[arg(long, value_delimiter = ',', default_values_t = ["20000@256x216".to_string()])]
    pub verify_scenes: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Render(a) => run_render(a),
        What::Pipeline(a) => super::bench_pipeline::run(a),
        What::Map(a) => super::bench_map::run(a),
        What::Live(a) => super::bench_live::run(a),
    }
}

pub(crate) fn parse_size(s: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| anyhow::anyhow!("size '{s}' is not WxH"))?;
    Ok((w.trim().parse()?, h.trim().parse()?))
}

fn run_render(a: RenderArgs) -> anyhow::Result<()> {
    if a.verify {
        return run_verify(&a);
    }
    let sizes: Vec<(u32, u32)> = a
        .sizes
        .iter()
        .map(|s| parse_size(s))
        .collect::<anyhow::Result<_>>()?;
    let stat = match a.stat.as_str() {
        "median" => render::bench::Stat::Median,
        "min" => render::bench::Stat::Min,
        s => anyhow::bail!("--stat {s}: expected median or min"),
    };
    let mut backends = Vec::new();
    if a.backend == "all" || a.backend == "vulkan" {
        let cfg = RenderConfig {
            backend: BackendChoice::Vulkan,
            ..RenderConfig::default()
        };
        match render::create_renderer(&cfg) {
            Ok(r) => backends.push((r, a.runs)),
            Err(e) if a.backend == "all" => eprintln!("Vulkan skipped: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    if a.backend == "all" || a.backend == "fast" {
        let cfg = RenderConfig {
            backend: BackendChoice::Fast,
            ..RenderConfig::default()
        };
        backends.push((render::create_renderer(&cfg)?, a.runs));
    }
    if a.backend == "all" || a.backend == "cpu" {
        let cfg = RenderConfig {
            backend: BackendChoice::Cpu,
            ..RenderConfig::default()
        };
        backends.push((render::create_renderer(&cfg)?, a.cpu_runs));
    }
    if a.sh_degree > 3 {
        anyhow::bail!("--sh-degree {}: expected 0..=3", a.sh_degree);
    }
    println!("SH degree {}", a.sh_degree);
    println!(
        "| backend | device | Gaussians | resolution | forward ms | forward+backward ms | step ms | forward CPU ms | fwd+bwd CPU ms |"
    );
    println!("|---|---|---:|---|---:|---:|---:|---:|---:|");
    for (r, runs) in backends.iter_mut() {
        for &n in &a.gaussians {
            for &(w, h) in &sizes {
                let t = render::bench::time_render_degree(
                    r.as_mut(),
                    n,
                    a.sh_degree,
                    w,
                    h,
                    *runs,
                    stat,
                )?;
                println!(
                    "| {:?} | {} | {} | {}x{} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} |",
                    r.backend(),
                    r.device_name(),
                    n,
                    w,
                    h,
                    t.forward_ms,
                    t.forward_backward_ms,
                    t.step_ms,
                    t.forward_cpu_ms,
                    t.forward_backward_cpu_ms
                );
                for (k, ms) in &t.kernels {
                    println!("|   | kernel {k} | | | {ms:.3} | | |");
                }
            }
        }
    }
    Ok(())
}

/// One `--verify` scene.
struct VerifyScene {
    label: String,
    gaussians: render::Gaussians,
    width: u32,
    height: u32,
    float_atomics: bool,
    seed: u64,
}

fn verify_scenes(a: &RenderArgs) -> anyhow::Result<Vec<VerifyScene>> {
    // The scenes of tests/render_vulkan.rs plus a denser mid-size one.
    let mut v = vec![
        VerifyScene {
            label: "150 SH3 70x45 float-atomics".into(),
            gaussians: render::random_gaussians(150, 3, 0.12, 11),
            width: 70,
            height: 45,
            float_atomics: true,
            seed: 5,
        },
        VerifyScene {
            label: "150 SH1 70x45 CAS".into(),
            gaussians: render::random_gaussians(150, 1, 0.12, 12),
            width: 70,
            height: 45,
            float_atomics: false,
            seed: 6,
        },
        VerifyScene {
            label: "2000 SH0 160x120".into(),
            gaussians: render::random_gaussians(2000, 0, 0.06, 13),
            width: 160,
            height: 120,
            float_atomics: true,
            seed: 7,
        },
    ];
    for (i, s) in a.verify_scenes.iter().enumerate() {
        let (n, size) = s
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("verify scene '{s}' is not GAUSSIANS@WxH"))?;
        let n: usize = n.trim().parse()?;
        let (w, h) = parse_size(size)?;
        v.push(VerifyScene {
            label: format!("{n} SH3 {w}x{h}"),
            gaussians: render::bench::scene(n),
            width: w,
            height: h,
            float_atomics: true,
            seed: 100 + i as u64,
        });
    }
    Ok(v)
}

/// `bench render --verify`: the Vulkan and/or fast backends (per `--backend`) against the CPU
/// f64 reference, one column per backend and scene.
fn run_verify(a: &RenderArgs) -> anyhow::Result<()> {
    use render::verify::{compare_backends, SceneReport};
    let (vulkan, fast) = match a.backend.as_str() {
        "all" => (true, true),
        "vulkan" => (true, false),
        "fast" => (false, true),
        b => anyhow::bail!(
            "--verify --backend {b}: expected all, vulkan or fast (cpu is the reference)"
        ),
    };
    let scenes = verify_scenes(a)?;
    let mut cpu = render::cpu::CpuRenderer::new(&RenderConfig::default());
    let mut fast_r = render::fast::FastRenderer::new(&RenderConfig::default());
    let mut columns: Vec<(String, SceneReport)> = Vec::new();
    let cam_pose = |s: &VerifyScene| (render::test_camera(s.width, s.height), render::test_pose());
    if vulkan {
        for s in &scenes {
            let cfg = RenderConfig {
                backend: BackendChoice::Vulkan,
                float_atomics: s.float_atomics,
                ..RenderConfig::default()
            }
            .with_env()?;
            let mut gpu = render::vulkan::VulkanRenderer::new(&cfg).map_err(|e| {
                anyhow::anyhow!("--verify needs a Vulkan device (or --backend fast): {e}")
            })?;
            let (cam, pose) = cam_pose(s);
            let t0 = std::time::Instant::now();
            let rep = compare_backends(&mut gpu, &mut cpu, &s.gaussians, &cam, &pose, s.seed)?;
            println!(
                "scene {}: device {}, mean alpha {:.3}, {:.1} s",
                s.label,
                gpu.device_name(),
                rep.mean_alpha,
                t0.elapsed().as_secs_f64()
            );
            columns.push((format!("vulkan {}", s.label), rep));
        }
    }
    if fast {
        for s in &scenes {
            if !s.float_atomics {
                // The CAS variant only differs on Vulkan.
                continue;
            }
            let (cam, pose) = cam_pose(s);
            let t0 = std::time::Instant::now();
            let rep = compare_backends(&mut fast_r, &mut cpu, &s.gaussians, &cam, &pose, s.seed)?;
            println!(
                "scene {}: device {}, mean alpha {:.3}, {:.1} s",
                s.label,
                fast_r.device_name(),
                rep.mean_alpha,
                t0.elapsed().as_secs_f64()
            );
            columns.push((format!("fast {}", s.label), rep));
        }
    }
    println!();
    println!("Relative error |test - cpu|_2 / |cpu|_2 per backend and scene (worst element in brackets: max |diff| / max |cpu|)");
    println!();
    print!("| quantity | tolerance |");
    for (label, _) in &columns {
        print!(" {label} |");
    }
    println!(" result |");
    print!("|---|---:|");
    for _ in &columns {
        print!("---:|");
    }
    println!("---|");
    // Rows in the order of the first column with the most checks (SH degree 0 has no ShRest).
    let names: Vec<String> = columns
        .iter()
        .max_by_key(|(_, r)| r.checks.len())
        .map(|(_, r)| r.checks.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let mut all_pass = true;
    for name in &names {
        let mut row_pass = true;
        let mut tol = 0.0;
        print!("| {name} |");
        let mut cells = String::new();
        for (_, r) in &columns {
            match r.checks.iter().find(|c| &c.name == name) {
                Some(c) => {
                    tol = c.tol;
                    row_pass &= c.pass();
                    cells += &format!(" {:.2e} ({:.1e}) |", c.rel_err, c.max_err);
                }
                None => cells += " - |",
            }
        }
        all_pass &= row_pass;
        println!(
            " {tol:.0e} |{cells} {} |",
            if row_pass { "PASS" } else { "FAIL" }
        );
    }
    println!();
    if all_pass {
        println!("verify: PASS ({} columns)", columns.len());
        Ok(())
    } else {
        println!("verify: FAIL");
        anyhow::bail!("a rasteriser and the CPU reference disagree beyond the test tolerances")
    }
}
