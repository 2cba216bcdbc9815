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
    let mut mapper = restored(cfg, state);
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
    // Version 3 groups the Gaussians by tile (keys ascending), each tile in the saved order.
    let t = super::tiles::tile_roots_for(g.root_size, TILE_EDGE);
    g.state
        .gaussians
        .sort_by_key(|r| r.root_key().map(|v| v.div_euclid(t)));
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
            assert!(
                SessionMap::open_paged(&bad).is_err(),
                "{name}: flip at {pos} opened"
            );
            // Truncation at the same point.
            std::fs::write(bad.join(name), &bytes[..pos]).unwrap();
            assert!(
                SessionMap::load(&bad).is_err(),
                "{name}: cut at {pos} loaded"
            );
            assert!(
                SessionMap::open_paged(&bad).is_err(),
                "{name}: cut at {pos} opened"
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
    assert!(matches!(e, MapFileError::Tile { .. }), "{e}");
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    let k = m.join("keyframes.bin");
    let kb = std::fs::read(&k).unwrap();
    let mut flipped = kb.clone();
    flipped[kb.len() / 2] ^= 4;
    std::fs::write(&k, &flipped).unwrap();
    let e = SessionMap::load(&m).unwrap_err();
    assert!(matches!(e, MapFileError::Checksum { .. }), "{e}");
    std::fs::write(&k, &kb).unwrap();
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

/// A map written as version 2 (Gaussians in one block, what the previous build wrote) loads
/// to the same map, and saved again becomes version 3 that loads to the same map too.
#[test]
fn version_2_maps_still_load() {
    let cfg = config();
    let map = sample(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let (v2, v3) = (dir.path().join("v2"), dir.path().join("v3"));
    map.save_version(&v2, 2).unwrap();
    let text = std::fs::read_to_string(v2.join("manifest.json")).unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    let a = SessionMap::load(&v2).unwrap();
    map.save(&v3).unwrap();
    let b = SessionMap::load(&v3).unwrap();
    // Same Gaussians (v3 groups them by tile), keyframes, LiDAR map.
    assert_eq!(sorted_gaussians(&a), sorted_gaussians(&b));
    assert_eq!(a.lidar_roots, b.lidar_roots);
    let (ga, gb) = (a.gaussian.as_ref().unwrap(), b.gaussian.as_ref().unwrap());
    assert!(ga.state.keyframes == gb.state.keyframes && ga.state.anchors == gb.state.anchors);
    // Version 2 opened for paging loads whole.
    let p = SessionMap::open_paged(&v2).unwrap();
    assert!(p.paged.is_none() && p == a);
    // Saved again from version 2: version 3, the same bytes as saving the original.
    let v2v3 = dir.path().join("v2v3");
    a.save(&v2v3).unwrap();
    assert!(files(&v2v3) == files(&v3));
}

/// A floor of 40 x 6 m with Gaussians every 0.1 m, as a map of `cfg`'s rig (root 0.4 m).
fn long_floor(cfg: &Config) -> SessionMap {
    let mut mapper = GaussianMapper::new(
        cfg.gaussian.clone(),
        cfg.camera.clone(),
        cfg.extrinsics.imu_T_camera.0,
    )
    .unwrap();
    let mut map = crate::gaussian::GaussianMap::new(cfg.gaussian.clone()).unwrap();
    for i in 0..400 {
        for j in 0..60 {
            let g = crate::gaussian::Gaussian {
                mean: [i as f32 * 0.1 + 0.05, j as f32 * 0.1 - 2.95, 0.0],
                log_scale: [-3.5, -3.5, -6.0],
                opacity_logit: 2.0,
                ..Default::default()
            };
            map.insert_unchecked(g, true).unwrap();
        }
    }
    let mut state = mapper.state();
    state.gaussians = map.to_records();
    let mut mapper = restored(cfg, state);
    let voxels = VoxelMap::new(cfg.lidar_map.clone());
    SessionMap::capture(cfg, "floor", &voxels, Some(&mut mapper))
}

/// Body pose at (x, 0, 1.5) whose camera looks down at the floor.
fn above(x: f64) -> Isometry3<f64> {
    // Camera optical z along world -z: rotate 180 deg about x; the body is the camera here.
    Isometry3::from_parts(
        nalgebra::Translation3::new(x, 0.0, 1.5),
        nalgebra::UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::PI),
    )
}

/// A map opened for paging keeps only the tiles near the camera resident, and the window it
/// builds holds exactly the Gaussians (bit for bit) that the whole map's window holds; moving
/// 20 m along, the first tiles drop and the resident map stays the window's size, not the
/// map's.
#[test]
fn a_paged_map_windows_the_same_gaussians_with_only_near_tiles_resident() {
    let mut cfg = config();
    cfg.extrinsics.imu_T_camera.0 = Isometry3::identity();
    cfg.gaussian.window_range = 3.0;
    let map = long_floor(&cfg);
    assert_eq!(map.gaussian_count(), 24_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("m");
    // Tiles of 2 m (5 root voxels of 0.4 m).
    map.save_tiled(&d, 2.0).unwrap();
    let whole = SessionMap::load(&d).unwrap();
    let paged = SessionMap::open_paged(&d).unwrap();
    let index = &paged.paged.as_ref().unwrap().index;
    assert_eq!(index.tile_roots, 5);
    assert_eq!(paged.gaussian_count(), 24_000);
    assert!(paged.gaussian.as_ref().unwrap().state.gaussians.is_empty());
    let tiles = index.tiles.len();
    let mut a = whole.mapper(&cfg).unwrap().unwrap();
    let mut b = paged.mapper(&cfg).unwrap().unwrap();
    assert_eq!(b.map().len(), 0);
    let window = |m: &GaussianMapper| {
        let mut v: Vec<String> = m
            .window()
            .gaussians()
            .iter()
            .map(|g| format!("{g:?}"))
            .collect();
        v.sort();
        v
    };
    let mut most = 0;
    for x in [3.0, 4.0, 6.5, 12.0, 23.0, 33.0] {
        let sa = a.update_window(&above(x), None);
        let sb = b.update_window(&above(x), None);
        assert!(sa.len > 100, "{sa:?}");
        assert_eq!((sa.len, sa.refused), (sb.len, sb.refused), "at x = {x}");
        assert!(window(&a) == window(&b), "windows differ at x = {x}");
        b.map().check_invariants().unwrap();
        b.window().check_invariants(b.map()).unwrap();
        let st = b.page_stats().unwrap();
        // Load radius 3.9 m, drop radius 5.9 m, tiles of 2 m: at most 7 tiles along x, and
        // the floor is 4 tiles across.
        assert!(st.resident <= 7 * 4, "{st:?} of {tiles}");
        most = most.max(b.map().len());
    }
    let st = b.page_stats().unwrap().clone();
    assert!(
        st.tiles_dropped > 0 && st.resident < tiles / 2,
        "{st:?} of {tiles}"
    );
    assert!(most < 24_000 / 2, "{most} resident at most");
    // A save of the paged map reads every tile again: the same files as the whole map's.
    let (sa, sb) = (dir.path().join("sa"), dir.path().join("sb"));
    let voxels = VoxelMap::new(cfg.lidar_map.clone());
    SessionMap::capture(&cfg, "floor", &voxels, Some(&mut a))
        .save_tiled(&sa, 2.0)
        .unwrap();
    SessionMap::capture(&cfg, "floor", &voxels, Some(&mut b))
        .save_tiled(&sb, 2.0)
        .unwrap();
    let ga = SessionMap::load(&sa).unwrap();
    let gb = SessionMap::load(&sb).unwrap();
    assert!(sorted_gaussians(&ga) == sorted_gaussians(&gb));
    // And the paged map saved as such copies its file.
    paged.save_tiled(&dir.path().join("copy"), 2.0).unwrap();
    assert!(files(&dir.path().join("copy")) == files(&d));
}

/// A damaged tile is named, whether the map loads whole or opens for paging; a tile damaged
/// after opening fails when it is paged in, with the tile named.
#[test]
fn a_damaged_tile_is_named() {
    let mut cfg = config();
    cfg.gaussian.window_range = 3.0;
    cfg.extrinsics.imu_T_camera.0 = Isometry3::identity();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("m");
    long_floor(&cfg).save_tiled(&d, 2.0).unwrap();
    let index = SessionMap::open_paged(&d).unwrap().paged.unwrap().index;
    let t = &index.tiles[index.tiles.len() / 2];
    let g = d.join("gaussians.bin");
    let good = std::fs::read(&g).unwrap();
    let mut bad = good.clone();
    bad[(t.offset + t.bytes / 2) as usize] ^= 0x10;
    std::fs::write(&g, &bad).unwrap();
    for r in [SessionMap::load(&d), SessionMap::open_paged(&d)] {
        match r {
            Err(MapFileError::Tile {
                tile, ref reason, ..
            }) => {
                assert_eq!(tile, t.key);
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
    // Cut inside the last tile: truncated.
    std::fs::write(&g, &good[..good.len() - 7]).unwrap();
    assert!(matches!(
        SessionMap::open_paged(&d),
        Err(MapFileError::Truncated { .. })
    ));
    // Damaged after opening: paging that tile in fails, naming it, and the mapper says so.
    std::fs::write(&g, &good).unwrap();
    let paged = SessionMap::open_paged(&d).unwrap();
    let mut m = paged.mapper(&cfg).unwrap().unwrap();
    std::fs::write(&g, &bad).unwrap();
    let centre = (t.key[0] as f64 + 0.5) * 2.0;
    m.update_window(&above(centre), None);
    let e = m.page_error().expect("the damaged tile was paged in");
    assert!(
        e.contains(&format!("{:?}", t.key)) && e.contains("checksum"),
        "{e}"
    );
}

/// A map's Gaussian records as sorted text: the same set whatever order the tiles hold them in.
fn sorted_gaussians(m: &SessionMap) -> Vec<String> {
    let mut v: Vec<String> = m
        .gaussian
        .as_ref()
        .unwrap()
        .state
        .gaussians
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    v.sort();
    v
}

/// A mapper restored from `state` under `cfg`'s rig.
fn restored(cfg: &Config, state: MapperState) -> GaussianMapper {
    GaussianMapper::restore(
        cfg.gaussian.clone(),
        cfg.camera.clone(),
        cfg.extrinsics.imu_T_camera.0,
        state,
    )
    .unwrap()
}
