//! Vulkan backend against the CPU reference: forward images and gradients on random scenes, with
//! float atomics and with the CAS fallback. Skips (saying why) only when no Vulkan device exists;
//! if a device exists but the backend fails, the tests fail.

use gs_livo::render::cpu::CpuRenderer;
use gs_livo::render::verify::compare_backends;
use gs_livo::render::vulkan::{enumerate_devices, VulkanRenderer};
use gs_livo::render::{
    random_gaussians, test_camera, test_pose, Gaussians, RenderConfig, Renderer, GROUPS,
};

fn vulkan(float_atomics: bool) -> Option<VulkanRenderer> {
    let cfg = RenderConfig {
        float_atomics,
        initial_capacity: 16,
        keys_per_gaussian: 1.0,
        ..RenderConfig::default()
    };
    match VulkanRenderer::new(&cfg) {
        Ok(r) => Some(r),
        Err(e) => {
            let devices = enumerate_devices();
            assert!(
                devices.is_empty(),
                "Vulkan devices {devices:?} exist but the backend failed: {e}"
            );
            eprintln!("SKIP: no Vulkan device ({e})");
            None
        }
    }
}

fn compare(gpu: &mut dyn Renderer, g: &Gaussians, seed: u64) {
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    let rep = compare_backends(gpu, &mut cpu, g, &test_camera(70, 45), &test_pose(), seed).unwrap();
    assert!(rep.mean_alpha > 0.3, "scene too empty ({})", rep.mean_alpha);
    assert!(rep.pass(), "Vulkan vs CPU: {:#?}", rep.failures());
    // Every group of the parameters, the pose and the loss were compared.
    let want = 3 + GROUPS.len() - usize::from(g.sh_degree() == 0) + 3;
    assert_eq!(rep.checks.len(), want, "{:?}", rep.checks);
}

#[test]
fn vulkan_matches_cpu_float_atomics() {
    let Some(mut r) = vulkan(true) else { return };
    compare(&mut r, &random_gaussians(150, 3, 0.12, 11), 5);
}

#[test]
fn vulkan_matches_cpu_cas_fallback() {
    let Some(mut r) = vulkan(false) else { return };
    compare(&mut r, &random_gaussians(150, 1, 0.12, 12), 6);
}

#[test]
fn vulkan_grows_buffers_and_round_trips() {
    let Some(mut r) = vulkan(true) else { return };
    let small = random_gaussians(10, 2, 0.2, 1);
    r.set_gaussians(&small, None).unwrap();
    assert_eq!(r.gaussians().unwrap(), small);
    // Growth beyond the initial capacity of 16 and a different SH degree.
    let big = random_gaussians(500, 0, 0.2, 2);
    r.set_gaussians(&big, None).unwrap();
    assert_eq!(r.gaussians().unwrap(), big);
    let patch = random_gaussians(5, 0, 0.3, 3);
    r.update_gaussians(100, &patch).unwrap();
    let back = r.gaussians().unwrap();
    assert_eq!(back.slice(100, 5), patch);
    assert_eq!(back.slice(0, 100), big.slice(0, 100));
    // Compare with CPU after the update (key buffers grow from 1 key per Gaussian).
    compare(&mut r, &back, 9);
}
