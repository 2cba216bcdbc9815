//! Window maintenance per frame (select, write back, add, compact) at a 100k-Gaussian window,
//! and the background's per-iteration cost.

use criterion::{criterion_group, criterion_main, Criterion};
use gs_livo::gaussian::{Gaussian, GaussianConfig, GaussianMap, View, Window};
use nalgebra::{Isometry3, Matrix3, Translation3, UnitQuaternion};

/// A 400 m street: two facades and the ground, one Gaussian per 10 cm cell (~800k Gaussians).
fn street_map() -> GaussianMap {
    let cfg = GaussianConfig {
        root_size: 0.8,
        levels: 2,
        ..Default::default()
    };
    let mut map = GaussianMap::new(cfg).unwrap();
    for i in 0..4000 {
        let x = i as f32 * 0.1 + 0.05;
        for j in 0..60 {
            let s = j as f32 * 0.1 + 0.05;
            for mean in [[x, -6.0, s], [x, 6.0, s], [x, s - 3.0, 0.0]] {
                map.insert_unchecked(
                    Gaussian {
                        mean,
                        ..Default::default()
                    },
                    true,
                )
                .unwrap();
            }
        }
    }
    map
}

fn view(x: f64) -> View {
    let r = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
    let world_t_cam = Isometry3::from_parts(
        Translation3::new(x, 0.0, 1.5),
        UnitQuaternion::from_matrix(&r),
    );
    View {
        camera_t_world: world_t_cam.inverse(),
    }
}

fn bench(c: &mut Criterion) {
    let mut map = street_map();
    let camera = gs_livo::sensors::Camera {
        width: 640,
        height: 480,
        fx: 400.0,
        fy: 400.0,
        cx: 319.5,
        cy: 239.5,
        distortion: [0.0; 5],
    };
    let mut window = Window::new(100_000);
    let mut x = 10.0;
    // Warm up to a full window.
    let s = window.maintain(&mut map, &camera, &[view(x)], 60.0, 0.1);
    eprintln!(
        "map {} gaussians, window {} (refused {})",
        map.len(),
        s.len,
        s.refused
    );
    c.bench_function("window_maintain_100k_step_0.5m", |b| {
        b.iter(|| {
            x += 0.5;
            if x > 350.0 {
                x = 10.0;
            }
            let s = window.maintain(&mut map, &camera, &[view(x), view(x + 0.5)], 60.0, 0.1);
            let plan = window.take_sync();
            std::hint::black_box((s, plan.dirty.len()));
        })
    });
    // As the mapper calls it: current and predicted view plus 8 keyframe views behind.
    c.bench_function("window_maintain_100k_step_0.5m_8_keyframes", |b| {
        b.iter(|| {
            x += 0.5;
            if x > 350.0 {
                x = 10.0;
            }
            let mut views = vec![view(x), view(x + 0.5)];
            views.extend((1..=8).map(|k| view(x - 0.6 * k as f64)));
            let s = window.maintain(&mut map, &camera, &views, 60.0, 0.1);
            let plan = window.take_sync();
            std::hint::black_box((s, plan.dirty.len()));
        })
    });
    // The background lookup and fit of one optimisation iteration at 640x480.
    let cam = gs_livo::render::Camera::new(640, 480, 400.0, 400.0);
    let mut bg = gs_livo::gaussian::Background::new(128);
    let n = cam.pixels();
    let (target, colour, alpha) = (vec![0.5f32; 3 * n], vec![0.1f32; 3 * n], vec![0.4f32; n]);
    let pose = view(0.0).camera_t_world;
    c.bench_function("background_lookup_and_fit_640x480", |b| {
        b.iter(|| {
            let px = bg.per_pixel(&cam, &pose);
            bg.fit(&cam, &pose, &target, &colour, &alpha, 0.8);
            std::hint::black_box(px);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
