//! `gs_livo bench`: timing tables of the hot paths (`bench render`; more targets can be added as
//! subcommands, e.g. `bench pipeline`).

use gs_livo::render::{self, BackendChoice, RenderConfig};

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
}

#[derive(clap::Args)]
pub struct RenderArgs {
    /// Timed repetitions per configuration (median reported).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Backends to time: all, vulkan or cpu.
    #[arg(long, default_value = "all")]
    pub backend: String,
    /// Gaussian counts.
    #[arg(long, value_delimiter = ',', default_values_t = [20_000usize, 100_000])]
    pub gaussians: Vec<usize>,
    /// Resolutions WxH.
    #[arg(long, value_delimiter = ',', default_values_t = ["256x216".to_string(), "640x480".to_string()])]
    pub sizes: Vec<String>,
    /// Repetitions for the (slow) CPU reference backend.
    #[arg(long, default_value_t = 3)]
    pub cpu_runs: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Render(a) => run_render(a),
        What::Pipeline(a) => super::bench_pipeline::run(a),
    }
}

fn run_render(a: RenderArgs) -> anyhow::Result<()> {
    let sizes: Vec<(u32, u32)> = a
        .sizes
        .iter()
        .map(|s| {
            let (w, h) = s
                .split_once('x')
                .ok_or_else(|| anyhow::anyhow!("size '{s}' is not WxH"))?;
            Ok((w.parse()?, h.parse()?))
        })
        .collect::<anyhow::Result<_>>()?;
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
    if a.backend == "all" || a.backend == "cpu" {
        let cfg = RenderConfig {
            backend: BackendChoice::Cpu,
            ..RenderConfig::default()
        };
        backends.push((render::create_renderer(&cfg)?, a.cpu_runs));
    }
    println!(
        "| backend | device | Gaussians | resolution | forward ms | forward+backward ms | step ms |"
    );
    println!("|---|---|---:|---|---:|---:|---:|");
    for (r, runs) in backends.iter_mut() {
        for &n in &a.gaussians {
            for &(w, h) in &sizes {
                let t = render::bench::time_render(r.as_mut(), n, w, h, *runs)?;
                println!(
                    "| {:?} | {} | {} | {}x{} | {:.2} | {:.2} | {:.2} |",
                    r.backend(),
                    r.device_name(),
                    n,
                    w,
                    h,
                    t.forward_ms,
                    t.forward_backward_ms,
                    t.step_ms
                );
                for (k, ms) in &t.kernels {
                    println!("|   | kernel {k} | | | {ms:.3} | | |");
                }
            }
        }
    }
    Ok(())
}
