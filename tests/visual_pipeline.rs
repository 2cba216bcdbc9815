//! The visual update inside the pipeline (`gs_livo run --mode livo`) on a short simulated
//! corridor, which is LiDAR-degenerate along its axis: LIVO must not be worse than LIO-only on the
//! same bag, and summary.json must account for every image.
//!
//! Light on purpose (CI): a 320x240 camera, the map's colours from the images without per-frame
//! optimisation, the CPU rasteriser. The full-size runs are in `visual_sim.rs` (#[ignore]).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gs_livo::config::Config;
use gs_livo::estimator::visual::exposure::{exposure_error, read_exposure};
use gs_livo::pipeline::{run_offline, Mode, OutputsConfig, PipelineOptions, RunSummary};
use gs_livo::sim::{self, SimConfig};

fn corridor(root: &Path, seconds: f64) -> (PathBuf, Config) {
    scene(root, "corridor", seconds, 0.0)
}

fn scene(root: &Path, name: &str, seconds: f64, jitter: f64) -> (PathBuf, Config) {
    let mut c = SimConfig::new(name);
    c.duration = seconds;
    c.exposure_jitter = jitter;
    c.supersample = 1;
    let cam = &mut c.rig.camera;
    cam.width = 320;
    cam.height = 240;
    cam.fx = 200.0;
    cam.fy = 200.0;
    cam.cx = 159.5;
    cam.cy = 119.5;
    let seq = sim::simulate(&c).expect("simulate");
    sim::write_sequence(&root.join("seq"), &seq).expect("write sequence");
    let config = Config::load(
        &root.join("seq/config.yaml"),
        &[
            "render.backend=cpu".into(),
            "gaussian.iterations=0".into(),
            "gaussian.downsample=2".into(),
            "visual.pyramid_level=1".into(),
        ],
    )
    .expect("config");
    (root.join("seq/bag"), config)
}

fn run(bag: &Path, config: &Config, out: &Path, mode: Mode) -> RunSummary {
    let opts = PipelineOptions {
        mode,
        mapping: true,
        render_every: 0,
        centres_every: 0,
        ..Default::default()
    };
    run_offline(
        bag,
        config,
        out,
        &opts,
        OutputsConfig::default(),
        None,
        Arc::new(AtomicBool::new(false)),
        |_| {},
    )
    .expect("run")
}

#[test]
fn livo_not_worse_than_lio_in_a_degenerate_corridor() {
    let root = std::env::temp_dir().join(format!("gs_livo_visual_pipe_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (bag, config) = corridor(&root, 8.0);
    let lio = run(&bag, &config, &root.join("lio"), Mode::Lio);
    let livo = run(&bag, &config, &root.join("livo"), Mode::Livo);
    let ate = |s: &RunSummary| s.accuracy.as_ref().expect("ground truth").ate_rmse_m;
    let v = &livo.visual;
    eprintln!(
        "corridor 8 s: LIO ATE {:.4} m, LIVO ATE {:.4} m; visual {} applied of {} images, skipped {:?}",
        ate(&lio),
        ate(&livo),
        v.run.applied,
        v.run.images,
        v.run.skipped
    );
    // The sequence is degenerate for the LiDAR.
    assert!(lio.lio.degenerate_scans * 2 > lio.frames as usize);
    // The switch: LIO mode runs no visual update, LIVO mode does.
    assert!(!lio.visual.enabled && lio.visual.run.images == 0);
    assert!(v.enabled);
    // Every image after initialisation is accounted for: applied or skipped with a reason.
    assert_eq!(v.run.images, v.run.applied + v.run.skipped_total());
    assert!(v.run.images as f64 >= 0.9 * livo.frames as f64);
    assert!(v.run.applied * 3 >= v.run.images, "{:?}", v.run);
    assert_eq!(v.run.exposure.len() as u64, v.run.images);
    // LIO drifts along the axis; LIVO is not worse and stays under 10 cm. (The 2x margin this
    // test once asked held only while the LiDAR update counted its planes' tilt errors as
    // information along the axis, which dragged LIO to 27 cm; with that removed LIO drifts
    // 9.1 cm and LIVO stays at 8.8 cm (8.6 cm before): the camera adds little here, issue 28.)
    assert!(ate(&lio) > 0.02, "LIO did not drift: {}", ate(&lio));
    assert!(
        ate(&livo) <= ate(&lio) && ate(&livo) < 0.10,
        "LIVO {} vs LIO {}",
        ate(&livo),
        ate(&lio)
    );
    // Without exposure changes the estimated gain stays put once the map exists (the first
    // images, before any update, keep the initial gain 1). Not at 1: this untrained map
    // renders a few per cent darker than the images where its discs leave gaps, and tau
    // absorbs that as a constant.
    let t0 = v.run.exposure.first().map_or(0.0, |e| e[0]);
    let mut gains: Vec<f64> = v
        .run
        .exposure
        .iter()
        .filter(|e| e[0] >= t0 + 2.0)
        .map(|e| e[1])
        .collect();
    assert!(gains.len() >= 40, "{} gains after 2 s", gains.len());
    gains.sort_by(f64::total_cmp);
    let median = gains[gains.len() / 2];
    for g in &gains {
        assert!(
            (g / median - 1.0).abs() < 0.06,
            "gain {g} vs median {median}"
        );
    }
    std::fs::remove_dir_all(&root).ok();
}

/// The room is well constrained for the LiDAR: by default (`visual.pose_update =
/// lidar_degenerate`) the camera then corrects the exposure only, so LIVO is not worse than LIO,
/// while the estimated gain follows the simulator's exposure jitter (up to the map's brightness
/// unit).
#[test]
fn room_with_exposure_jitter_livo_not_worse_and_gain_tracked() {
    let root = std::env::temp_dir().join(format!("gs_livo_visual_room_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (bag, config) = scene(&root, "room", 4.0, 0.3);
    let lio = run(&bag, &config, &root.join("lio"), Mode::Lio);
    let livo = run(&bag, &config, &root.join("livo"), Mode::Livo);
    let ate = |s: &RunSummary| s.accuracy.as_ref().expect("ground truth").ate_rmse_m;
    let v = &livo.visual.run;
    let truth = read_exposure(&root.join("seq/exposure.txt")).expect("exposure.txt");
    let e = exposure_error(&v.exposure, &truth, 1e-3, 1.0).expect("matched");
    eprintln!(
        "room 4 s, jitter 0.3: LIO ATE {:.5} m, LIVO ATE {:.5} m; exposure RMS {:.4} (max {:.4}, {} images); visual {} applied of {}, skipped {:?}, exposure only {}",
        ate(&lio),
        ate(&livo),
        e.rms,
        e.max,
        e.matched,
        v.applied,
        v.images,
        v.skipped,
        v.exposure_only
    );
    assert_eq!(lio.lio.degenerate_scans, 0);
    assert!(ate(&livo) <= (1.05 * ate(&lio)).max(ate(&lio) + 5e-4));
    assert!(v.skipped.get("lidar_constrained").copied().unwrap_or(0) * 2 > v.images);
    assert!(v.exposure_only * 2 > v.images, "{v:?}");
    // The true gain swings by tens of per cent; the estimate follows it.
    let (lo, hi) = truth
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), t| (l.min(t[1]), h.max(t[1])));
    assert!(
        hi / lo > 1.15,
        "jitter too small to show anything: {lo}..{hi}"
    );
    assert!(e.matched >= 20 && e.rms < 0.03, "{e:?}");
    std::fs::remove_dir_all(&root).ok();
}
