//! `cargo bench --bench render`: forward and forward+backward of the rasteriser per backend
//! (20k / 100k Gaussians at 256x216 / 640x480; Vulkan only if a device exists; the f64 CPU
//! reference at the smallest size only).

use criterion::{criterion_group, criterion_main, Criterion};
use gs_livo::render::{
    bench::scene, create_renderer, test_camera, test_pose, BackendChoice, RenderConfig, Renderer,
};

fn bench(c: &mut Criterion) {
    let mut backends: Vec<Box<dyn Renderer>> = Vec::new();
    let vk = RenderConfig {
        backend: BackendChoice::Vulkan,
        ..RenderConfig::default()
    };
    match create_renderer(&vk) {
        Ok(r) => backends.push(r),
        Err(e) => eprintln!("Vulkan skipped: {e}"),
    }
    let fast = RenderConfig {
        backend: BackendChoice::Fast,
        ..RenderConfig::default()
    };
    backends.push(create_renderer(&fast).expect("fast backend"));
    let cpu = RenderConfig {
        backend: BackendChoice::Cpu,
        ..RenderConfig::default()
    };
    backends.push(create_renderer(&cpu).expect("cpu backend"));
    let mut group = c.benchmark_group("render");
    group.sample_size(10);
    for r in backends.iter_mut() {
        let sizes: &[(usize, u32, u32)] = if r.backend() == gs_livo::render::Backend::Cpu {
            &[(20_000, 256, 216)]
        } else {
            &[
                (20_000, 256, 216),
                (20_000, 640, 480),
                (100_000, 256, 216),
                (100_000, 640, 480),
            ]
        };
        for &(n, w, h) in sizes {
            let cam = test_camera(w, h);
            let pose = test_pose();
            r.set_gaussians(&scene(n), None).expect("upload");
            let d = vec![0.01f32; 3 * cam.pixels()];
            let name = format!("{:?}/{n}/{w}x{h}", r.backend());
            group.bench_function(format!("{name}/forward"), |b| {
                b.iter(|| r.forward(&cam, &pose).expect("forward"))
            });
            group.bench_function(format!("{name}/forward_backward"), |b| {
                b.iter(|| {
                    r.forward(&cam, &pose).expect("forward");
                    r.backward(&d, None, None).expect("backward")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
