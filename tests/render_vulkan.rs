//! Vulkan backend against the CPU reference: forward images and gradients on random scenes, with
//! float atomics and with the CAS fallback. Skips (saying why) only when no Vulkan device exists;
//! if a device exists but the backend fails, the tests fail.

use gs_livo::render::cpu::CpuRenderer;
use gs_livo::render::verify::compare_backends;
use gs_livo::render::vulkan::VulkanRenderer;
use gs_livo::render::{
    random_gaussians, test_camera, test_pose, AdamConfig, Gaussians, LossConfig, RenderConfig,
    Renderer, GROUPS,
};
use nalgebra::{Isometry3, Vector3};

mod common;

fn vulkan(float_atomics: bool) -> Option<VulkanRenderer> {
    let cfg = RenderConfig {
        float_atomics,
        initial_capacity: 16,
        keys_per_gaussian: 1.0,
        ..RenderConfig::default()
    };
    common::vulkan_or_skip(&cfg)
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

/// Largest |a - b| over the largest |b|.
fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64));
    diff / scale
}

/// The renderer submits kept recordings again; the pose and Adam's step count change between
/// submissions of one recording. Each result must equal that of a fresh renderer (which records
/// anew) given the same state: a recording that kept an old pose or step would differ by far more
/// than the tolerance (which covers the order of the atomic gradient sums).
#[test]
fn reused_recordings_follow_pose_and_adam_step() {
    let Some(mut kept) = vulkan(true) else { return };
    let cam = test_camera(70, 45);
    let g0 = random_gaussians(150, 1, 0.12, 21);
    let pose_a = test_pose();
    let pose_b = Isometry3::new(
        Vector3::new(0.08, -0.05, 0.1),
        Vector3::new(0.02, -0.04, 0.03),
    ) * pose_a;
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    cpu.set_gaussians(&g0, None).unwrap();
    let target = cpu.forward(&cam, &pose_b).unwrap().colour;

    // Forward at one pose, then at another through the same recording.
    kept.set_gaussians(&g0, None).unwrap();
    kept.forward(&cam, &pose_a).unwrap();
    let again = kept.forward(&cam, &pose_b).unwrap();
    let mut fresh = vulkan(true).unwrap();
    fresh.set_gaussians(&g0, None).unwrap();
    let first = fresh.forward(&cam, &pose_b).unwrap();
    assert!(max_rel(&again.colour, &first.colour) < 1e-5);
    assert!(max_rel(&again.depth, &first.depth) < 1e-5);

    // Optimisation steps at alternating poses: after each, the same step on a fresh renderer
    // loaded with the state from before it.
    let loss = LossConfig { ssim_weight: 0.2 };
    let adam = AdamConfig::default();
    for (i, pose) in [pose_a, pose_b, pose_a, pose_b].iter().enumerate() {
        let before = kept.gaussians().unwrap();
        let state = kept.adam_state().unwrap();
        kept.step(&cam, pose, &target, &loss, &adam).unwrap();
        let mut fresh = vulkan(true).unwrap();
        fresh.set_gaussians(&before, Some(&state)).unwrap();
        fresh.step(&cam, pose, &target, &loss, &adam).unwrap();
        let (a, b) = (kept.gaussians().unwrap(), fresh.gaussians().unwrap());
        let moved = max_rel(&a.data, &before.data);
        let err = max_rel(&a.data, &b.data);
        assert!(moved > 1e-4, "step {i}: nothing moved ({moved:e})");
        assert!(err < 1e-5, "step {i}: kept vs fresh recording {err:e}");
        let (sa, sb) = (kept.adam_state().unwrap(), fresh.adam_state().unwrap());
        assert_eq!(sa.step, sb.step);
        assert!(
            max_rel(&sa.v.data, &sb.v.data) < 1e-4,
            "step {i}: second moments"
        );
    }
}
