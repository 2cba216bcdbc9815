//! The Vulkan kernels in the layout a GPU gets (one pixel per invocation: `[1, 1, 1]` for both
//! raster kernels, and without culling), which lavapipe in CI would otherwise never run, against
//! the CPU reference. A test binary of its own: the layout comes from environment variables read
//! when a renderer is made, and no other test may see them.

use gs_livo::render::cpu::CpuRenderer;
use gs_livo::render::verify::compare_backends;
use gs_livo::render::{random_gaussians, test_camera, test_pose, RenderConfig, GROUPS};

mod common;

fn check(layout: &str, float_atomics: bool, sh_degree: u32, seed: u64) {
    std::env::set_var("GS_LIVO_RASTER_FWD", layout);
    std::env::set_var("GS_LIVO_RASTER_BWD", layout);
    let cfg = RenderConfig {
        float_atomics,
        initial_capacity: 16,
        keys_per_gaussian: 1.0,
        ..RenderConfig::default()
    };
    let Some(mut gpu) = common::vulkan_or_skip(&cfg) else {
        return;
    };
    let g = random_gaussians(300, sh_degree, 0.12, seed);
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    let cam = test_camera(70, 45);
    let rep = compare_backends(&mut gpu, &mut cpu, &g, &cam, &test_pose(), seed).unwrap();
    assert!(rep.mean_alpha > 0.3, "scene too empty ({})", rep.mean_alpha);
    assert!(rep.pass(), "layout {layout}: {:#?}", rep.failures());
    let want = 3 + GROUPS.len() - usize::from(sh_degree == 0) + 3;
    assert_eq!(rep.checks.len(), want, "{:?}", rep.checks);
}

/// One test, so that setting the variables races with nothing.
#[test]
fn gpu_layouts_match_cpu() {
    check("1,1,1", true, 3, 31);
    check("1,1,0", false, 1, 32);
}
