//! Long runs with revisits: 60 s of the simulated room's looping trajectory (3.5 times around),
//! the whole pipeline (LIVO), embedded and default (desktop) mapping profiles, constant and
//! jittered exposure. The map must not degrade on revisits and the exposure estimate must not
//! drift: the last third's render PSNR within 1 dB of the first third's, no render of the
//! mapped room (from [`JUDGED_FROM_S`] on) below the first third's mean less 3 dB, the exposure
//! within 3 % RMS of the truth (5 % with jitter 0.3), and the trajectory as good as in short
//! runs.
//!
//! Minutes each on a 2-core CPU (the default profile tens of minutes), so `#[ignore]`d:
//! `cargo test --release --test long_runs -- --ignored`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gs_livo::config::Config;
use gs_livo::gaussian::GaussianConfig;
use gs_livo::pipeline::{run_offline, Mode, OutputsConfig, PipelineOptions, RunSummary};
use gs_livo::sim::{self, SimConfig};

/// Seconds after the first render from which every render is held to the floor. The render at
/// 0 s shows the map after one scan and one frame's iterations: the room is not mapped yet, so
/// it says nothing about revisits. By 1 s (10 frames, the first keyframes taken) the view in
/// front of the camera is mapped. The floor is set by the first third's renders from the same
/// time on, so leaving out the unmapped start raises the bar rather than lowering it.
const JUDGED_FROM_S: f64 = 1.0;

fn run(name: &str, embedded: bool, jitter: f64) -> RunSummary {
    let root = std::env::temp_dir().join(format!("gs_livo_long_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut sc = SimConfig::new("room");
    sc.duration = 60.0;
    sc.looping = true;
    sc.exposure_jitter = jitter;
    let seq = sim::simulate(&sc).expect("simulate");
    sim::write_sequence(&root.join("seq"), &seq).expect("write sequence");
    drop(seq);
    let mut sets = vec!["render.backend=fast".to_string()];
    if embedded {
        let e = GaussianConfig::embedded();
        let [w, h] = e.resolution.expect("embedded resolution");
        sets.extend([
            format!("gaussian.window_capacity={}", e.window_capacity),
            format!("gaussian.resolution=[{w}, {h}]"),
            format!("gaussian.iterations={}", e.iterations),
            format!("gaussian.leaf_pixels={}", e.leaf_pixels),
        ]);
    }
    let config = Config::load(&root.join("seq/config.yaml"), &sets).expect("config");
    let opts = PipelineOptions {
        mode: Mode::Livo,
        render_every: 10,
        centres_every: 0,
        ..Default::default()
    };
    let s = run_offline(
        &root.join("seq/bag"),
        &config,
        &root.join("out"),
        &opts,
        OutputsConfig {
            registered_every: 0,
            ..Default::default()
        },
        None,
        Arc::new(AtomicBool::new(false)),
        |_| {},
    )
    .expect("run");
    check(name, &s, &root, jitter);
    std::fs::remove_dir_all(&root).ok();
    s
}

fn check(name: &str, s: &RunSummary, root: &Path, jitter: f64) {
    let q = s.render_quality.as_ref().expect("renders");
    let e = s
        .exposure_accuracy
        .as_ref()
        .expect("exposure truth beside the bag");
    let ate = s.accuracy.as_ref().expect("ground truth").ate_rmse_m;
    eprintln!(
        "{name}: PSNR first third {:.2} dB, last third {:.2} dB, min {:.2} dB ({} renders); \
         exposure RMS {:.2} % (max {:.2} %); ATE {:.4} m; {} Gaussians ({})",
        q.psnr_first_third_db,
        q.psnr_last_third_db,
        q.psnr_min_db,
        q.renders,
        100.0 * e.rms,
        100.0 * e.max,
        ate,
        s.gaussians,
        root.display()
    );
    assert!(q.renders >= 50, "{} renders", q.renders);
    assert!(
        q.psnr_last_third_db >= q.psnr_first_third_db - 1.0,
        "the map degraded: {:.2} -> {:.2} dB",
        q.psnr_first_third_db,
        q.psnr_last_third_db
    );
    let judged: Vec<[f64; 2]> = q
        .psnr_series
        .iter()
        .copied()
        .filter(|[t, _]| *t >= JUDGED_FROM_S)
        .collect();
    let third = q.psnr_series.iter().map(|p| p[0]).fold(0.0, f64::max) / 3.0;
    let early: Vec<f64> = judged
        .iter()
        .filter(|p| p[0] <= third)
        .map(|p| p[1])
        .collect();
    assert!(
        !early.is_empty(),
        "no render in the first third after {JUDGED_FROM_S} s"
    );
    let floor = early.iter().sum::<f64>() / early.len() as f64 - 3.0;
    for [t, p] in &judged {
        assert!(*p >= floor, "render at {t:.1} s: {p:.2} dB < {floor:.2} dB");
    }
    let limit = if jitter > 0.0 { 0.05 } else { 0.03 };
    assert!(e.matched >= 500 && e.rms < limit, "{e:?}");
    // LIO alone holds about 1.5 mm on this room; the camera only corrects the exposure here.
    assert!(ate < 0.004, "ATE {ate}");
}

#[test]
#[ignore = "minutes: a 60 s simulated room through the whole pipeline"]
fn room_60s_embedded_constant_exposure() {
    run("embedded_constant", true, 0.0);
}

#[test]
#[ignore = "minutes: a 60 s simulated room through the whole pipeline"]
fn room_60s_embedded_jittered_exposure() {
    run("embedded_jitter", true, 0.3);
}

#[test]
#[ignore = "tens of minutes on a CPU: the desktop window at full camera resolution"]
fn room_60s_default_constant_exposure() {
    run("default_constant", false, 0.0);
}

#[test]
#[ignore = "tens of minutes on a CPU: the desktop window at full camera resolution"]
fn room_60s_default_jittered_exposure() {
    run("default_jitter", false, 0.3);
}
