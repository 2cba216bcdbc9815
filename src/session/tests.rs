use super::*;
use crate::gaussian::{Background, Keyframe};
use crate::lidar_map::{MapPoint, PointNoise};
use crate::sensors::Image;
use nalgebra::Vector3;
use rand::{Rng, SeedableRng};

/// A small camera so keyframe targets stay small (24 x 18 at the default downsampling of 4).
fn config() -> Config {
    let mut cfg = Config::default();
    cfg.camera.width = 96;
    cfg.camera.height = 72;
    cfg.camera.fx = 80.0;
    cfg.camera.fy = 80.0;
    cfg.camera.cx = 48.0;
    cfg.camera.cy = 36.0;
    cfg.gaussian.downsample = 4;
    cfg.gaussian.resolution = None;
    cfg
}

/// Two walls and a floor in the voxel map; a textured wall in the Gaussian map seen by one
/// image, two keyframes, an anchor and a fitted background in the mapper's state.
fn sample(cfg: &Config) -> SessionMap {
    let mut voxels = VoxelMap::new(cfg.lidar_map.clone());
    let mut pts = Vec::new();
    for i in 0..60 {
        for j in 0..40 {
            let (a, b) = (0.01 + i as f64 * 0.05, 0.01 + j as f64 * 0.05);
            for p in [
                Vector3::new(a, b, 0.0),
                Vector3::new(a, 3.0, b),
                Vector3::new(3.0, a, b),
            ] {
                pts.push(MapPoint {
                    p,
                    noise: PointNoise::range_bearing(p.normalize(), p.norm(), 0.02, 0.002),
                });
            }
        }
    }
    voxels.insert(&pts);
    let mut mapper = GaussianMapper::new(
        cfg.gaussian.clone(),
        cfg.camera.clone(),
        cfg.extrinsics.imu_T_camera.0,
    )
    .unwrap();
    let mut image = Image::new(1, 96, 72);
    for (k, px) in image.rgb.chunks_exact_mut(3).enumerate() {
        px.copy_from_slice(&[(k * 5 % 256) as u8, (k * 7 % 256) as u8, 128]);
    }
    mapper.add_image(&image, &Isometry3::identity(), 1.0);
    let wall: Vec<[f64; 3]> = (0..30)
        .flat_map(|i| (0..20).map(move |j| [-0.8 + i as f64 * 0.05, -0.5 + j as f64 * 0.05, 2.0]))
        .collect();
    mapper.insert_scan(&wall, None, [0.0; 3], 2);
    let mut state = mapper.state();
    let frame = |x: f64, seed: f32| Keyframe {
        camera_t_world: Isometry3::translation(-x, 0.0, 0.0),
        target: (0..24 * 18 * 3)
            .map(|i| (i as f32 * seed).sin().abs())
            .collect(),
    };
    state.keyframes = vec![frame(0.0, 0.1), frame(0.5, 0.2)];
    state.last_keyframe = Some(state.keyframes[1].camera_t_world);
    state.keyframe_cursor = 1;
    state.anchors = vec![frame(0.0, 0.3)];
    let mut grid = Background::new(16).to_grid();
    grid.den[3] = 2.5;
    grid.num[3] = [0.1, 0.2, 0.3];
    grid.baked[3] = [0.4, 0.5, 0.6];
    state.background = Some(grid);
    state.frames = 7;
    let mut mapper = GaussianMapper::restore(
        cfg.gaussian.clone(),
        cfg.camera.clone(),
        cfg.extrinsics.imu_T_camera.0,
        state,
    )
    .unwrap();
    SessionMap::capture(cfg, "bag/test", &voxels, Some(&mut mapper))
}

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Save, load, rebuild the live maps from the loaded data, capture and save again: the same
/// bytes, file by file.
#[test]
fn save_load_save_gives_identical_bytes() {
    let cfg = config();
    let map = sample(&cfg);
    assert!(map.gaussian_count() > 40, "{}", map.gaussian_count());
    assert!(map.lidar_roots.len() >= 9);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    map.save(&a).unwrap();
    let loaded = SessionMap::load(&a).unwrap();
    // Everything loads as saved, keyframe targets as their 8-bit values.
    let mut expected = map.clone();
    let g = expected.gaussian.as_mut().unwrap();
    assert!(!g.state.keyframes.is_empty());
    for k in g
        .state
        .keyframes
        .iter_mut()
        .chain(g.state.anchors.iter_mut())
    {
        let (e, q) = super::quant::encode(&k.target);
        k.target = super::quant::decode(e, &q);
    }
    assert!(loaded == expected, "loaded map differs from the saved one");
    loaded.check_config(&cfg).unwrap();
    let voxels = loaded.voxel_map(&cfg.lidar_map).unwrap();
    let mut mapper = loaded.mapper(&cfg).unwrap().unwrap();
    mapper.map().check_invariants().unwrap();
    // The rebuilt voxel map answers plane queries as the original did.
    let pl = voxels.find_plane(&Vector3::new(1.0, 1.0, 0.0)).unwrap();
    assert!(pl.normal.z.abs() > 0.999);
    let again = SessionMap::capture(&cfg, &loaded.source, &voxels, Some(&mut mapper));
    let b = dir.path().join("b");
    again.save(&b).unwrap();
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), 5);
    for ((na, a), (nb, b)) in fa.iter().zip(&fb) {
        assert_eq!(na, nb);
        assert!(a == b, "{na} differs after save -> load -> save");
    }
    // Saving over an existing map replaces it whole.
    map.save(&b).unwrap();
    assert!(files(&b) == fa);
}

/// Every single-bit flip anywhere in any file and every truncation gives an error, never a
/// panic or a map.
#[test]
fn corrupted_or_truncated_files_are_refused() {
    let cfg = config();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    sample(&cfg).save(&good).unwrap();
    let bad = dir.path().join("bad");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    let originals = files(&good);
    let mut tried = 0;
    for (name, bytes) in &originals {
        // Every byte of small files, 300 random positions of large ones.
        let positions: Vec<usize> = if bytes.len() <= 2000 {
            (0..bytes.len()).collect()
        } else {
            (0..300).map(|_| rng.gen_range(0..bytes.len())).collect()
        };
        for &pos in &positions {
            let _ = std::fs::remove_dir_all(&bad);
            std::fs::create_dir_all(&bad).unwrap();
            for (n, b) in &originals {
                std::fs::write(bad.join(n), b).unwrap();
            }
            let mut b = bytes.clone();
            b[pos] ^= 1 << rng.gen_range(0..8);
            std::fs::write(bad.join(name), &b).unwrap();
            let r = SessionMap::load(&bad);
            assert!(r.is_err(), "{name}: flip at {pos} loaded");
            // Truncation at the same point.
            std::fs::write(bad.join(name), &bytes[..pos]).unwrap();
            assert!(
                SessionMap::load(&bad).is_err(),
                "{name}: cut at {pos} loaded"
            );
            tried += 1;
        }
    }
    assert!(tried > 1000, "{tried}");
    // A missing section file.
    std::fs::remove_dir_all(&bad).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    for (n, b) in originals.iter().filter(|(n, _)| n != "keyframes.bin") {
        std::fs::write(bad.join(n), b).unwrap();
    }
    assert!(matches!(
        SessionMap::load(&bad),
        Err(MapFileError::Io { .. })
    ));
}

/// The error says what is wrong: truncation, checksum, version, another rig.
#[test]
fn errors_name_the_problem() {
    let cfg = config();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    sample(&cfg).save(&m).unwrap();
    let g = m.join("gaussians.bin");
    let bytes = std::fs::read(&g).unwrap();
    std::fs::write(&g, &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(
        SessionMap::load(&m),
        Err(MapFileError::Truncated { .. })
    ));
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 4;
    std::fs::write(&g, &flipped).unwrap();
    let e = SessionMap::load(&m).unwrap_err();
    assert!(matches!(e, MapFileError::Checksum { .. }), "{e}");
    std::fs::write(&g, &bytes).unwrap();
    let manifest = m.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // A map of version 1 (f32 keyframe targets) is refused by name, with what to do.
    let current = format!("\"version\": {}", crate::session::VERSION);
    assert!(text.contains(&current), "{text}");
    std::fs::write(&manifest, text.replace(&current, "\"version\": 1")).unwrap();
    let e = SessionMap::load(&m).unwrap_err();
    assert!(
        matches!(
            e,
            MapFileError::Version {
                found: 1,
                supported: crate::session::VERSION,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("build it again"), "{e}");
    std::fs::write(&manifest, &text).unwrap();
    let map = SessionMap::load(&m).unwrap();
    let mut other = cfg.clone();
    other.camera.fx = 81.0;
    let e = map.check_config(&other).unwrap_err();
    assert!(e.to_string().contains("camera.fx"), "{e}");
    let mut other = cfg.clone();
    other.extrinsics.imu_T_lidar.0.translation.vector.x += 0.01;
    assert!(matches!(
        map.check_config(&other),
        Err(MapFileError::Rig { .. })
    ));
    let mut other = cfg.clone();
    other.gaussian.levels += 1;
    let e = map.check_config(&other).unwrap_err();
    assert!(e.to_string().contains("gaussian.levels"), "{e}");
    // Keyframes of another optimisation resolution cannot continue.
    let mut other = cfg.clone();
    other.gaussian.downsample = 2;
    assert!(matches!(
        map.mapper(&other),
        Err(MapFileError::Restore { .. })
    ));
}
