//! `gs_livo export` on a saved run: the map PLY comes out byte-identical, and the PNG renders
//! along the trajectory show the scene at the right poses (they match the simulator's images
//! there), background included. Bad input is a clear error.

use std::path::Path;
use std::process::Command;

use gs_livo::eval::image::psnr_rgb8;
use gs_livo::eval::tum::write_tum;
use gs_livo::gaussian::{background_path, GaussianConfig};
use gs_livo::pipeline::map_harness::map_with_ground_truth;
use gs_livo::render::{create_renderer, BackendChoice, RenderConfig};
use gs_livo::sensors::{stamp_from_secs, Image, PoseStamped};
use gs_livo::sim::{simulate, SimConfig};

fn small_camera(cfg: &mut SimConfig, w: u32, h: u32, f: f64) {
    cfg.rig.camera.width = w;
    cfg.rig.camera.height = h;
    cfg.rig.camera.fx = f;
    cfg.rig.camera.fy = f;
    cfg.rig.camera.cx = (w as f64 - 1.0) / 2.0;
    cfg.rig.camera.cy = (h as f64 - 1.0) / 2.0;
}

fn read_png(path: &Path) -> Image {
    let img = image::open(path).unwrap().to_rgb8();
    let mut out = Image::new(0, img.width(), img.height());
    out.rgb = img.into_raw();
    out
}

fn export(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .arg("export")
        .args(args)
        .env("GS_LIVO_RENDER_BACKEND", "cpu")
        .output()
        .unwrap()
}

#[test]
fn export_writes_the_map_and_renders_that_match_the_scene() {
    // A saved run: the map of a short street drive (sky, so a background too), the body
    // trajectory as TUM and the parameter file.
    let mut sc = SimConfig::new("street");
    sc.duration = 2.0;
    sc.noise = 0.0;
    small_camera(&mut sc, 64, 48, 40.0);
    let seq = simulate(&sc).unwrap();
    let cfg = GaussianConfig {
        sh_degree: 0,
        insert_max_range: 100.0,
        window_range: 60.0,
        ..GaussianConfig::desktop()
    };
    let mut r = create_renderer(&RenderConfig {
        backend: BackendChoice::Cpu,
        ..Default::default()
    })
    .unwrap();
    let mut mapped = map_with_ground_truth(&seq, cfg.clone(), r.as_mut(), None).unwrap();
    let run = tempfile::tempdir().unwrap();
    let map_ply = run.path().join("map.ply");
    mapped.mapper.save_ply(&map_ply).unwrap();
    assert!(
        background_path(&map_ply).exists(),
        "the street map has a fitted background"
    );
    let times: Vec<f64> = (0..20).map(|i| 0.05 + i as f64 * 0.1).collect();
    let poses: Vec<PoseStamped> = times
        .iter()
        .map(|&t| PoseStamped {
            stamp: sc.t0_ns + stamp_from_secs(t),
            pose: seq.trajectory.pose(t),
        })
        .collect();
    write_tum(&run.path().join("trajectory.tum"), &poses).unwrap();
    let mut params = gs_livo::sim::output::sequence_config(&seq);
    params.gaussian = cfg;
    let config = run.path().join("config.yaml");
    std::fs::write(&config, params.to_yaml()).unwrap();

    let out = export(&[
        run.path().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "--every".as_ref(),
        "3".as_ref(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("with background"), "{stdout}");
    let dir = run.path().join("export");
    // The PLY round-trips byte for byte, the background comes along.
    assert_eq!(
        std::fs::read(dir.join("map.ply")).unwrap(),
        std::fs::read(&map_ply).unwrap()
    );
    assert!(dir.join("map.background.png").exists());
    // One render per third pose, named by pose index, each close to the simulator's image at
    // that pose (a wrong extrinsic, quaternion order or missing background fails this).
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("render_"))
        .collect();
    names.sort();
    let want: Vec<String> = (0..20)
        .step_by(3)
        .map(|i| format!("render_{i:05}.png"))
        .collect();
    assert_eq!(names, want);
    let sim_cam = gs_livo::sim::CameraRays::new(&seq.config.rig.camera, 2);
    let imu_t_cam = seq.config.rig.extrinsics.imu_T_camera.0;
    let mut worst = f64::INFINITY;
    for (i, name) in (0..20).step_by(3).zip(&names) {
        let got = read_png(&dir.join(name));
        assert_eq!((got.width, got.height), (64, 48));
        let truth = sim_cam.render(&seq.scene, &(poses[i].pose * imu_t_cam), 1.0);
        let p = psnr_rgb8(&got, &truth).unwrap();
        worst = worst.min(p);
        // The view turned by 10 degrees is a worse match: the renders follow the poses.
        let turned = poses[i].pose
            * nalgebra::UnitQuaternion::from_axis_angle(&nalgebra::Vector3::z_axis(), 0.17)
            * imu_t_cam;
        let off = sim_cam.render(&seq.scene, &turned, 1.0);
        assert!(psnr_rgb8(&got, &off).unwrap() + 3.0 < p, "{name}");
    }
    assert!(worst > 25.0, "worst render PSNR {worst:.2} dB");
}

#[test]
fn export_of_a_bad_run_is_a_clear_error() {
    let run = tempfile::tempdir().unwrap();
    let config = run.path().join("config.yaml");
    std::fs::write(
        &config,
        gs_livo::sim::default_rig().to_yaml(), // any valid parameter file
    )
    .unwrap();
    // No map at all.
    let out = export(&[
        run.path().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("map.ply"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A map but a malformed trajectory: the error names the file and line; nothing written.
    let g = gs_livo::gaussian::Gaussian {
        mean: [1.0, 2.0, 3.0],
        ..Default::default()
    };
    let f = std::fs::File::create(run.path().join("map.ply")).unwrap();
    gs_livo::gaussian::write_ply(f, [g].iter(), 0).unwrap();
    std::fs::write(run.path().join("trajectory.tum"), "0 1 2 3 0 0 0\n").unwrap();
    let out = export(&[
        run.path().as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trajectory.tum:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!run.path().join("export").exists());
}
