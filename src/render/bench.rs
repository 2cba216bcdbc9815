//! Timing of the rasteriser (used by `gs_livo bench render` and `cargo bench`).

use std::time::Instant;

use super::{
    random_gaussians, test_camera, test_pose, AdamConfig, LossConfig, RenderError, Renderer,
};

/// Milliseconds of one configuration (medians unless [`Stat::Min`] was asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub gaussians: usize,
    pub width: u32,
    pub height: u32,
    /// `forward` including the read-back of colour, depth and alpha.
    pub forward_ms: f64,
    /// `forward` + `backward` including read-backs of the images and gradients.
    pub forward_backward_ms: f64,
    /// `step`: forward, L1+D-SSIM, backward and Adam without read-backs (one command buffer on
    /// Vulkan).
    pub step_ms: f64,
    /// Process CPU milliseconds (all threads, so a CPU Vulkan driver's workers count) of
    /// `forward` and of `forward` + `backward`, means (the clock ticks in 10 ms); NaN where `/proc/self/stat` is missing.
    /// Less sensitive than wall time to other processes on a loaded machine.
    pub forward_cpu_ms: f64,
    pub forward_backward_cpu_ms: f64,
    /// Per-kernel GPU medians `("phase:kernel", ms)` (phases fwd, bwd, step) when the backend
    /// profiles (with `GS_LIVO_RENDER_PROFILE` set: Vulkan kernels, the fast backend's phases
    /// in wall milliseconds); empty otherwise.
    pub kernels: Vec<(String, f64)>,
}

/// Sums a kernel profile by name, prefixed with the phase.
fn by_kernel(phase: &str, prof: Vec<(&'static str, f64)>, into: &mut Vec<(String, Vec<f64>)>) {
    let mut sums: Vec<(String, f64)> = Vec::new();
    for (k, ms) in prof {
        let name = format!("{phase}:{k}");
        match sums.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += ms,
            None => sums.push((name, ms)),
        }
    }
    for (name, ms) in sums {
        match into.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1.push(ms),
            None => into.push((name, vec![ms])),
        }
    }
}

/// CPU time of this process (user + system, all threads) in milliseconds, from
/// `/proc/self/stat` (10 ms ticks on Linux); NaN elsewhere.
pub fn process_cpu_ms() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may contain spaces) start at ") ".
    let Some(rest) = s.rsplit_once(") ").map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based: 11, 12).
    match (
        f.get(11).and_then(|v| v.parse::<f64>().ok()),
        f.get(12).and_then(|v| v.parse::<f64>().ok()),
    ) {
        (Some(u), Some(k)) => (u + k) * 10.0,
        _ => f64::NAN,
    }
}

/// How repeated timings are summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stat {
    /// The median (what benchmark tables report).
    #[default]
    Median,
    /// The minimum: the least disturbed run, for comparing variants on a loaded machine.
    Min,
}

fn summarise(mut v: Vec<f64>, stat: Stat) -> f64 {
    v.sort_by(f64::total_cmp);
    match stat {
        Stat::Median => v[v.len() / 2],
        Stat::Min => v[0],
    }
}

/// Benchmark scene: `n` Gaussians (SH degree 3, ~3 cm) 2-6 m in front of the camera.
pub fn scene(n: usize) -> super::Gaussians {
    scene_with_degree(n, 3)
}

/// [`scene`] with SH degree `sh_degree` (0..=3; the map uses 1).
pub fn scene_with_degree(n: usize, sh_degree: u32) -> super::Gaussians {
    random_gaussians(n, sh_degree, 0.03, 7)
}

/// Times `runs` repetitions (after one warm-up) of each operation.
pub fn time_render(
    r: &mut dyn Renderer,
    n: usize,
    width: u32,
    height: u32,
    runs: usize,
    stat: Stat,
) -> Result<Timing, RenderError> {
    time_render_degree(r, n, 3, width, height, runs, stat)
}

/// [`time_render`] on a scene of SH degree `sh_degree`.
pub fn time_render_degree(
    r: &mut dyn Renderer,
    n: usize,
    sh_degree: u32,
    width: u32,
    height: u32,
    runs: usize,
    stat: Stat,
) -> Result<Timing, RenderError> {
    let median = |v| summarise(v, stat);
    let cam = test_camera(width, height);
    let pose = test_pose();
    r.set_gaussians(&scene_with_degree(n, sh_degree.min(3)), None)?;
    let target = r.forward(&cam, &pose)?.colour;
    let d_colour: Vec<f32> = target.iter().map(|v| 0.01 * (v - 0.5)).collect();
    let runs = runs.max(1);
    let (mut f, mut fb, mut st) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fc, mut fbc) = (Vec::new(), Vec::new());
    let mut kernels = Vec::new();
    for i in 0..=runs {
        r.kernel_profile();
        let c0 = process_cpu_ms();
        let t0 = Instant::now();
        r.forward(&cam, &pose)?;
        let t1 = Instant::now();
        let c1 = process_cpu_ms();
        let pf = r.kernel_profile();
        r.backward(&d_colour, None, None)?;
        let t2 = Instant::now();
        let c2 = process_cpu_ms();
        let pb = r.kernel_profile();
        r.step(
            &cam,
            &pose,
            &target,
            &LossConfig::default(),
            &AdamConfig::default(),
        )?;
        let t3 = Instant::now();
        if i > 0 {
            by_kernel("fwd", pf, &mut kernels);
            by_kernel("bwd", pb, &mut kernels);
            by_kernel("step", r.kernel_profile(), &mut kernels);
            f.push((t1 - t0).as_secs_f64() * 1e3);
            fc.push(c1 - c0);
            fbc.push(c2 - c0);
            fb.push((t2 - t0).as_secs_f64() * 1e3);
            st.push((t3 - t2).as_secs_f64() * 1e3);
        }
    }
    Ok(Timing {
        gaussians: n,
        width,
        height,
        forward_ms: median(f),
        forward_backward_ms: median(fb),
        step_ms: median(st),
        forward_cpu_ms: fc.iter().sum::<f64>() / fc.len() as f64,
        forward_backward_cpu_ms: fbc.iter().sum::<f64>() / fbc.len() as f64,
        kernels: kernels
            .into_iter()
            .map(|(k, v)| (k, summarise(v, stat)))
            .collect(),
    })
}
