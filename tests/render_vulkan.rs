//! Vulkan backend against the CPU reference: forward images and gradients on random scenes, with
//! float atomics and with the CAS fallback. Skips (saying why) only when no Vulkan device exists;
//! if a device exists but the backend fails, the tests fail.

use gs_livo::render::cpu::CpuRenderer;
use gs_livo::render::vulkan::{enumerate_devices, VulkanRenderer};
use gs_livo::render::{
    random_gaussians, test_camera, test_pose, Gaussians, RenderConfig, Renderer, GROUPS,
};
use rand::{Rng, SeedableRng};

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

fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    d / n.max(1e-20)
}

fn compare(gpu: &mut dyn Renderer, g: &Gaussians, seed: u64) {
    let cam = test_camera(70, 45);
    let pose = test_pose();
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    cpu.set_gaussians(g, None).unwrap();
    gpu.set_gaussians(g, None).unwrap();
    let a = cpu.forward(&cam, &pose).unwrap();
    let b = gpu.forward(&cam, &pose).unwrap();
    let mean_alpha = a.alpha.iter().sum::<f32>() / a.alpha.len() as f32;
    assert!(mean_alpha > 0.3, "scene too empty ({mean_alpha})");
    for (name, x, y) in [
        ("colour", &b.colour, &a.colour),
        ("depth", &b.depth, &a.depth),
        ("alpha", &b.alpha, &a.alpha),
    ] {
        let e = rel(x, y);
        assert!(e < 1e-4, "{name}: rel err {e}");
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let np = cam.pixels();
    let dc: Vec<f32> = (0..3 * np).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let dd: Vec<f32> = (0..np).map(|_| rng.gen_range(-0.2..0.2)).collect();
    let da: Vec<f32> = (0..np).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let ga = cpu.backward(&dc, Some(&dd), Some(&da)).unwrap();
    let gb = gpu.backward(&dc, Some(&dd), Some(&da)).unwrap();
    for grp in GROUPS {
        if ga.params.group(grp).is_empty() {
            continue;
        }
        let e = rel(gb.params.group(grp), ga.params.group(grp));
        assert!(e < 1e-3, "{grp:?}: rel err {e}");
    }
    let pa: Vec<f32> = ga.pose.iter().map(|&x| x as f32).collect();
    let pb: Vec<f32> = gb.pose.iter().map(|&x| x as f32).collect();
    let e = rel(&pb, &pa);
    assert!(e < 1e-3, "pose: rel err {e}: {pb:?} vs {pa:?}");
    // The loss kernels.
    let target: Vec<f32> = (0..3 * np).map(|_| rng.gen_range(0.0..1.0)).collect();
    let cfg = gs_livo::render::LossConfig { ssim_weight: 0.2 };
    let (la, gla) = cpu.loss(&target, &cfg).unwrap();
    let (lb, glb) = gpu.loss(&target, &cfg).unwrap();
    assert!((la - lb).abs() < 1e-4 * la.abs(), "loss {lb} vs {la}");
    let e = rel(&glb, &gla);
    assert!(e < 1e-3, "loss gradient: rel err {e}");
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
