//! Optimisation (forward + L1/D-SSIM + backward + Adam) recovers a rendered target, and degenerate
//! inputs give finite outputs, on every backend (f64 reference, fast CPU, Vulkan).

use gs_livo::render::cpu::CpuRenderer;
use gs_livo::render::fast::FastRenderer;
use gs_livo::render::{
    random_gaussians, test_camera, test_pose, AdamConfig, Gaussians, Group, LossConfig,
    RenderConfig, Renderer,
};
use rand::{Rng, SeedableRng};

mod common;

fn backends() -> Vec<Box<dyn Renderer>> {
    let mut v: Vec<Box<dyn Renderer>> = vec![
        Box::new(CpuRenderer::new(&RenderConfig::default())),
        Box::new(FastRenderer::new(&RenderConfig::default())),
    ];
    if let Some(r) = common::vulkan_or_skip(&RenderConfig::default()) {
        v.push(Box::new(r));
    }
    v
}

fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (1.0 / mse.max(1e-20)).log10()
}

#[test]
fn fitting_reaches_35_db_on_every_backend() {
    let cam = test_camera(48, 32);
    let pose = test_pose();
    let truth = random_gaussians(40, 1, 0.3, 21);
    let mut init = truth.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for v in init.group_mut(Group::Mean) {
        *v += rng.gen_range(-0.04..0.04);
    }
    for v in init.group_mut(Group::LogScale) {
        *v += rng.gen_range(-0.15..0.15);
    }
    for v in init.group_mut(Group::Opacity) {
        *v += rng.gen_range(-0.4..0.4);
    }
    for v in init.group_mut(Group::ShDc) {
        *v += rng.gen_range(-0.4..0.4);
    }
    let adam = AdamConfig {
        lr: [2e-3, 1e-2, 1e-2, 3e-2, 1e-2, 2e-3],
        ..AdamConfig::default()
    };
    let loss = LossConfig { ssim_weight: 0.2 };
    for mut r in backends() {
        r.set_gaussians(&truth, None).unwrap();
        let target = r.forward(&cam, &pose).unwrap().colour;
        r.set_gaussians(&init, None).unwrap();
        let before = psnr(&r.forward(&cam, &pose).unwrap().colour, &target);
        for _ in 0..300 {
            r.step(&cam, &pose, &target, &loss, &adam).unwrap();
        }
        let after = psnr(&r.forward(&cam, &pose).unwrap().colour, &target);
        eprintln!("{}: PSNR {before:.1} -> {after:.1} dB", r.device_name());
        assert!(before < 30.0, "start too close ({before} dB)");
        assert!(
            after > 35.0,
            "{}: PSNR {after} dB after 300 steps",
            r.device_name()
        );
    }
}

fn all_finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn check_finite(r: &mut dyn Renderer, g: &Gaussians, what: &str) {
    let cam = test_camera(40, 30);
    let pose = test_pose();
    r.set_gaussians(g, None).unwrap();
    let out = r.forward(&cam, &pose).unwrap();
    assert!(
        all_finite(&out.colour) && all_finite(&out.depth) && all_finite(&out.alpha),
        "{what}: forward"
    );
    let np = cam.pixels();
    let gr = r
        .backward(
            &vec![1.0; 3 * np],
            Some(&vec![0.1; np]),
            Some(&vec![1.0; np]),
        )
        .unwrap();
    assert!(all_finite(&gr.params.data), "{what}: gradients");
    assert!(
        gr.pose.iter().all(|x| x.is_finite()),
        "{what}: pose gradient"
    );
}

#[test]
fn degenerate_inputs_give_finite_outputs() {
    for mut r in backends() {
        let r = r.as_mut();
        // Empty scene: black, transparent.
        let empty = Gaussians::zeros(0, 3).unwrap();
        check_finite(r, &empty, "empty");
        let out = r.forward(&test_camera(40, 30), &test_pose()).unwrap();
        assert!(out.alpha.iter().all(|&a| a == 0.0) && out.colour.iter().all(|&c| c == 0.0));

        // Zero scales (log-scale -inf and very small), zero quaternion, NaN mean, behind camera.
        let mut g = random_gaussians(8, 2, 0.2, 3);
        g.get_mut(Group::LogScale, 0)
            .copy_from_slice(&[f32::NEG_INFINITY; 3]);
        g.get_mut(Group::LogScale, 1)
            .copy_from_slice(&[-40.0, -40.0, -40.0]);
        g.get_mut(Group::Rotation, 2).copy_from_slice(&[0.0; 4]);
        g.get_mut(Group::Mean, 3)[0] = f32::NAN;
        g.get_mut(Group::Mean, 4).copy_from_slice(&[0.0, 0.0, -3.0]);
        g.get_mut(Group::Mean, 5)
            .copy_from_slice(&[0.15, -0.1, -0.2]); // at the camera centre
        g.get_mut(Group::LogScale, 6)
            .copy_from_slice(&[8.0, 8.0, 8.0]); // huge
        check_finite(r, &g, "degenerate Gaussians");

        // Thousands of Gaussians in one tile.
        let mut crowd = random_gaussians(3000, 0, 0.01, 4);
        for i in 0..crowd.len() {
            let z = 2.0 + i as f32 * 1e-3;
            crowd
                .get_mut(Group::Mean, i)
                .copy_from_slice(&[0.05 * z / 4.0, 0.0, z]);
        }
        check_finite(r, &crowd, "crowded tile");
    }
}
