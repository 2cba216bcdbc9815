//! Timing of the rasteriser (used by `gs_livo bench render` and `cargo bench`).

use std::time::Instant;

use super::{
    random_gaussians, test_camera, test_pose, AdamConfig, LossConfig, RenderError, Renderer,
};

/// Median milliseconds of one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Benchmark scene: `n` Gaussians (SH degree 3, ~3 cm) 2-6 m in front of the camera.
pub fn scene(n: usize) -> super::Gaussians {
    random_gaussians(n, 3, 0.03, 7)
}

/// Times `runs` repetitions (after one warm-up) of each operation.
pub fn time_render(
    r: &mut dyn Renderer,
    n: usize,
    width: u32,
    height: u32,
    runs: usize,
) -> Result<Timing, RenderError> {
    let cam = test_camera(width, height);
    let pose = test_pose();
    r.set_gaussians(&scene(n), None)?;
    let target = r.forward(&cam, &pose)?.colour;
    let d_colour: Vec<f32> = target.iter().map(|v| 0.01 * (v - 0.5)).collect();
    let runs = runs.max(1);
    let (mut f, mut fb, mut st) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=runs {
        let t0 = Instant::now();
        r.forward(&cam, &pose)?;
        let t1 = Instant::now();
        r.backward(&d_colour, None, None)?;
        let t2 = Instant::now();
        r.step(
            &cam,
            &pose,
            &target,
            &LossConfig::default(),
            &AdamConfig::default(),
        )?;
        let t3 = Instant::now();
        if i > 0 {
            f.push((t1 - t0).as_secs_f64() * 1e3);
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
    })
}
