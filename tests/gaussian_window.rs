//! The window stays bounded however long the run while the global map grows with the explored
//! area; write-back keeps what the window changed.

use gs_livo::gaussian::{GaussianConfig, GaussianMapper};
use nalgebra::{Isometry3, Matrix3, Translation3, UnitQuaternion};

fn camera() -> gs_livo::sensors::Camera {
    gs_livo::sensors::Camera {
        width: 160,
        height: 120,
        fx: 100.0,
        fy: 100.0,
        cx: 79.5,
        cy: 59.5,
        distortion: [0.0; 5],
    }
}

/// Body pose driving along +x at height 1.5 m; the camera (identity extrinsics) looks along +x:
/// optical z = world x, optical x = -world y, optical y = -world z.
fn pose(x: f64) -> Isometry3<f64> {
    let r = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    Isometry3::from_parts(
        Translation3::new(x, 0.0, 1.5),
        UnitQuaternion::from_matrix(&r),
    )
}

/// A street "scan" around `x`: ground and two facades 6 m either side, 5 cm sampling.
fn street_scan(x: f64) -> Vec<[f64; 3]> {
    let mut pts = Vec::new();
    let x0 = (x / 0.05).floor() * 0.05;
    for i in 0..200 {
        let px = x0 - 2.0 + i as f64 * 0.05;
        for j in 0..80 {
            let s = j as f64 * 0.05;
            pts.push([px, -6.0, s]);
            pts.push([px, 6.0, s]);
            pts.push([px, -4.0 + 2.0 * s, 0.0]);
        }
    }
    pts
}

#[test]
fn window_memory_is_constant_while_the_map_grows() {
    let cfg = GaussianConfig {
        root_size: 0.2,
        levels: 2,
        // Every point into the finest leaves, so the map is dense enough to fill the window.
        leaf_pixels: 0.0,
        window_capacity: 5_000,
        window_range: 12.0,
        ..Default::default()
    };
    let mut m = GaussianMapper::new(cfg, camera(), Isometry3::identity()).unwrap();
    let mut window_bytes = Vec::new();
    let mut map_sizes = Vec::new();
    let mut peak_window = 0;
    for frame in 0..120 {
        let x = frame as f64 * 1.0;
        let body = pose(x);
        let sensor = [x, 0.0, 1.5];
        m.insert_scan(&street_scan(x), None, sensor, frame as u64 * 100_000_000);
        let s = m.update_window(&body, None);
        assert!(s.len <= 5_000);
        peak_window = peak_window.max(s.len);
        window_bytes.push(m.window().memory_bytes());
        map_sizes.push(m.map().len());
        m.window().check_invariants(m.map()).unwrap();
    }
    // The window fills up to its capacity and refuses (counts) the farthest voxels.
    assert!(peak_window > 4_000, "window barely used: {peak_window}");
    assert!(m.window().refused_total() > 0);
    // Constant window memory (allocated once at capacity).
    assert!(
        window_bytes.iter().all(|&b| b == window_bytes[0]),
        "{window_bytes:?}"
    );
    // Linear map growth with distance: the second half adds about as much as the first.
    let n = map_sizes.len();
    let first = map_sizes[n / 2] - map_sizes[10];
    let second = map_sizes[n - 1] - map_sizes[n / 2 + 10];
    let ratio = second as f64 / first as f64;
    assert!((0.8..1.25).contains(&ratio), "growth {first} then {second}");
    let per_gaussian = m.map().memory_bytes() as f64 / m.map().len() as f64;
    // Payload plus book-keeping, octree and Vec growth slack: bounded by a small multiple.
    let payload = std::mem::size_of::<gs_livo::gaussian::Gaussian>() as f64;
    assert!(
        per_gaussian < 2.5 * payload,
        "{per_gaussian} bytes per gaussian"
    );
    eprintln!(
        "map {} gaussians, {:.0} B/gaussian, {} B total; window peak {} of 5000, {} B",
        m.map().len(),
        per_gaussian,
        m.map().memory_bytes(),
        peak_window,
        window_bytes[0]
    );
    m.map().check_invariants().unwrap();
}

#[test]
fn write_back_keeps_changes_across_leaving_and_revisiting() {
    let cfg = GaussianConfig {
        root_size: 0.4,
        levels: 2,
        window_capacity: 50_000,
        window_range: 8.0,
        ..Default::default()
    };
    let mut m = GaussianMapper::new(cfg, camera(), Isometry3::identity()).unwrap();
    for frame in 0..40 {
        let x = frame as f64;
        m.insert_scan(&street_scan(x), None, [x, 0.0, 1.5], 0);
    }
    m.update_window(&pose(0.0), None);
    let before: Vec<(u32, f32)> = m
        .window()
        .ids()
        .iter()
        .zip(m.window().gaussians())
        .map(|(&id, g)| (id, g.opacity_logit))
        .collect();
    assert!(!before.is_empty());
    for g in m.window_mut().gaussians_mut() {
        g.opacity_logit += 1.0;
    }
    m.update_window(&pose(30.0), None);
    for (id, o) in &before {
        assert!(!m.window().ids().contains(id));
        assert_eq!(m.map().get(*id).unwrap().opacity_logit, o + 1.0);
    }
    m.update_window(&pose(0.0), None);
    let back: std::collections::HashMap<u32, f32> = m
        .window()
        .ids()
        .iter()
        .zip(m.window().gaussians())
        .map(|(&id, g)| (id, g.opacity_logit))
        .collect();
    for (id, o) in &before {
        assert_eq!(back[id], o + 1.0);
    }
}
