//! The fast CPU backend (f32, multi-threaded tiles) against the f64 reference: forward images,
//! every gradient group, the pose gradient and the loss on random scenes; Adam bit for bit;
//! degenerate inputs stay finite (fitting to 35 dB is in tests/render_fit.rs with the other
//! backends).

use gs_livo::render::cpu::CpuRenderer;
use gs_livo::render::fast::FastRenderer;
use gs_livo::render::verify::compare_backends;
use gs_livo::render::{
    create_renderer, random_gaussians, test_camera, test_pose, AdamConfig, AdamState, Backend,
    BackendChoice, Camera, Gaussians, Group, LossConfig, RenderConfig, Renderer, GROUPS,
};
use rand::{Rng, SeedableRng};

fn compare(fast: &mut FastRenderer, g: &Gaussians, cam: &Camera, seed: u64) {
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    let rep = compare_backends(fast, &mut cpu, g, cam, &test_pose(), seed).unwrap();
    for c in &rep.checks {
        eprintln!("{:>14}: {:.2e} (max {:.1e})", c.name, c.rel_err, c.max_err);
    }
    assert!(rep.mean_alpha > 0.3, "scene too empty ({})", rep.mean_alpha);
    assert!(rep.pass(), "fast vs reference: {:#?}", rep.failures());
    let want = 3 + GROUPS.len() - usize::from(g.sh_degree() == 0) + 3;
    assert_eq!(rep.checks.len(), want, "{:?}", rep.checks);
}

#[test]
fn fast_matches_reference_sh3() {
    // 70x45: partial tiles on both axes.
    let mut r = FastRenderer::new(&RenderConfig::default());
    compare(
        &mut r,
        &random_gaussians(150, 3, 0.12, 11),
        &test_camera(70, 45),
        5,
    );
}

#[test]
fn fast_matches_reference_sh1_one_thread_and_three() {
    let g = random_gaussians(150, 1, 0.12, 12);
    compare(
        &mut FastRenderer::with_threads(1),
        &g,
        &test_camera(70, 45),
        6,
    );
    compare(
        &mut FastRenderer::with_threads(3),
        &g,
        &test_camera(70, 45),
        6,
    );
}

#[test]
fn fast_matches_reference_dense_small_splats() {
    // Many small splats: deep tile lists, early termination, pixel boxes inside tiles.
    let mut r = FastRenderer::new(&RenderConfig::default());
    compare(
        &mut r,
        &random_gaussians(2000, 0, 0.05, 13),
        &test_camera(96, 64),
        7,
    );
}

#[test]
fn thread_count_does_not_change_results() {
    let g = random_gaussians(400, 2, 0.08, 3);
    let (cam, pose) = (test_camera(64, 48), test_pose());
    let d: Vec<f32> = (0..3 * cam.pixels())
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let run = |threads| {
        let mut r = FastRenderer::with_threads(threads);
        r.set_gaussians(&g, None).unwrap();
        let out = r.forward(&cam, &pose).unwrap();
        (out, r.backward(&d, None, None).unwrap())
    };
    let (o1, g1) = run(1);
    let (o4, g4) = run(4);
    // Every sum has a fixed order (per tile-list entry, then per fixed chunk of Gaussians).
    assert_eq!(o1, o4);
    assert!(g1.params.data.iter().any(|&x| x != 0.0));
    assert_eq!(bits(&g1.params.data), bits(&g4.params.data));
    assert_eq!(g1.pose.map(f64::to_bits), g4.pose.map(f64::to_bits));
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The colour-only backward (no depth or alpha gradients: what `step` and the loss use runs a
/// leaner loop) against the reference.
#[test]
fn colour_only_gradients_match_reference() {
    let g = random_gaussians(600, 3, 0.08, 17);
    let (cam, pose) = (test_camera(80, 56), test_pose());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let d: Vec<f32> = (0..3 * cam.pixels())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    let mut fast = FastRenderer::new(&RenderConfig::default());
    let mut grads = Vec::new();
    for r in [&mut cpu as &mut dyn Renderer, &mut fast] {
        r.set_gaussians(&g, None).unwrap();
        r.forward(&cam, &pose).unwrap();
        grads.push(r.backward(&d, None, None).unwrap());
    }
    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    for grp in GROUPS {
        let (a, b) = (grads[0].params.group(grp), grads[1].params.group(grp));
        let err = gs_livo::render::verify::rel_l2(&f64s(b), &f64s(a));
        assert!(
            err < gs_livo::render::verify::GRADIENT_TOL,
            "{grp:?}: {err}"
        );
    }
    let err = gs_livo::render::verify::rel_l2(&grads[1].pose, &grads[0].pose);
    assert!(err < gs_livo::render::verify::GRADIENT_TOL, "pose: {err}");
}

/// Offline replay must be reproducible bit for bit on one backend: repeated backward passes
/// with several threads give identical gradients (each tile writes its own slots, which are
/// added in a fixed order).
#[test]
fn repeated_backward_is_bit_identical() {
    let g = random_gaussians(3000, 1, 0.06, 21);
    let (cam, pose) = (test_camera(160, 120), test_pose());
    let d: Vec<f32> = (0..3 * cam.pixels())
        .map(|i| (i as f32 * 0.11).cos())
        .collect();
    let mut r = FastRenderer::with_threads(4);
    r.set_gaussians(&g, None).unwrap();
    let mut first: Option<(Vec<u32>, [u64; 6])> = None;
    for _ in 0..6 {
        r.forward(&cam, &pose).unwrap();
        let gr = r.backward(&d, None, None).unwrap();
        let bits = (
            gr.params
                .data
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            gr.pose.map(f64::to_bits),
        );
        match &first {
            None => first = Some(bits),
            Some(f) => assert!(*f == bits, "gradients differ between identical runs"),
        }
    }
}

#[test]
fn adam_matches_reference_bit_for_bit() {
    let g = random_gaussians(3000, 3, 0.1, 5);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut grads = g.clone();
    for v in grads.data.iter_mut() {
        *v = rng.gen_range(-1.0f32..1.0);
    }
    let cfg = AdamConfig::default();
    let (mut pa, mut pb) = (g.clone(), g.clone());
    let mut sa = AdamState::new(g.len(), g.sh_degree()).unwrap();
    let mut sb = sa.clone();
    for _ in 0..3 {
        gs_livo::render::cpu::adam::adam_update(&mut pa, &grads, &mut sa, &cfg);
        gs_livo::render::fast::adam::adam_update(
            &mut pb,
            &grads,
            &mut sb,
            &cfg,
            &gs_livo::render::fast::pool::Pool::new(3),
        );
    }
    assert_eq!(sa, sb);
    assert_eq!(pa, pb);
    assert_ne!(pa, g);
}

#[test]
fn step_equals_forward_loss_backward_adam() {
    let g = random_gaussians(200, 1, 0.1, 8);
    let (cam, pose) = (test_camera(50, 40), test_pose());
    let target: Vec<f32> = (0..3 * cam.pixels())
        .map(|i| (i as f32 * 0.11).sin().abs())
        .collect();
    let (loss, adam) = (LossConfig::default(), AdamConfig::default());
    // One thread each: tiles are shared out dynamically, so with more threads the f32 gradient
    // sums (and Adam's sign-like first step) may differ in the last bit between runs.
    let mut a = FastRenderer::with_threads(1);
    a.set_gaussians(&g, None).unwrap();
    a.step(&cam, &pose, &target, &loss, &adam).unwrap();
    let mut b = FastRenderer::with_threads(1);
    b.set_gaussians(&g, None).unwrap();
    b.forward(&cam, &pose).unwrap();
    let (_, d) = b.loss(&target, &loss).unwrap();
    b.backward(&d, None, None).unwrap();
    b.adam_step(&adam).unwrap();
    assert!(
        a.gaussians().unwrap() == b.gaussians().unwrap(),
        "step differs"
    );
    assert_ne!(a.gaussians().unwrap(), g);
    // Adam consumed the forward: differentiating again needs a new forward.
    assert!(b.backward(&d, None, None).is_err());
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
    assert!(gr.pose.iter().all(|x| x.is_finite()), "{what}: pose");
    let (l, dl) = r.loss(&vec![0.5; 3 * np], &LossConfig::default()).unwrap();
    assert!(l.is_finite() && all_finite(&dl), "{what}: loss");
}

#[test]
fn degenerate_inputs_give_finite_outputs() {
    let mut r = FastRenderer::new(&RenderConfig::default());
    let empty = Gaussians::zeros(0, 3).unwrap();
    check_finite(&mut r, &empty, "empty");
    let out = r.forward(&test_camera(40, 30), &test_pose()).unwrap();
    assert!(out.alpha.iter().all(|&a| a == 0.0) && out.colour.iter().all(|&c| c == 0.0));

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
    g.get_mut(Group::Opacity, 7)[0] = f32::INFINITY;
    check_finite(&mut r, &g, "degenerate Gaussians");

    // Thousands of Gaussians in one tile: matches the reference there too.
    let mut crowd = random_gaussians(3000, 0, 0.01, 4);
    for i in 0..crowd.len() {
        let z = 2.0 + i as f32 * 1e-3;
        crowd
            .get_mut(Group::Mean, i)
            .copy_from_slice(&[0.05 * z / 4.0, 0.0, z]);
    }
    check_finite(&mut r, &crowd, "crowded tile");
    let mut cpu = CpuRenderer::new(&RenderConfig::default());
    cpu.set_gaussians(&crowd, None).unwrap();
    let (cam, pose) = (test_camera(40, 30), test_pose());
    let a = cpu.forward(&cam, &pose).unwrap();
    let b = r.forward(&cam, &pose).unwrap();
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let err = gs_livo::render::verify::rel_l2(&f(&b.colour), &f(&a.colour));
    assert!(err < 1e-4, "crowded tile colour error {err}");

    // Errors, not panics.
    assert!(r.backward(&[0.0; 3], None, None).is_err());
    assert!(r.loss(&[0.0; 3], &LossConfig::default()).is_err());
    let mut fresh = FastRenderer::new(&RenderConfig::default());
    assert!(fresh.backward(&[], None, None).is_err());
    assert!(fresh.adam_step(&AdamConfig::default()).is_err());
}

#[test]
fn fast_backend_is_selected_by_config() {
    let c: RenderConfig = serde_yaml::from_str("backend: fast").unwrap();
    assert_eq!(c.backend, BackendChoice::Fast);
    if std::env::var("GS_LIVO_RENDER_BACKEND").is_err() {
        assert_eq!(create_renderer(&c).unwrap().backend(), Backend::Fast);
    }
}
