//! Milliseconds per scan of the LIO (IMU propagation, deskew, iterated update, map insertion)
//! on simulated 16k-point scans, single thread.
//!
//! Prints per-scan median and p95 over a whole simulated room sequence (every scan differs, so
//! the distribution over scans is the honest number), then lets criterion time one steady-state
//! scan repeatedly.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use gs_livo::estimator::Lio;
use gs_livo::sim::{simulate, SimConfig, SimSequence};
use gs_livo::sync::{MeasurementPackage, SyncSettings, Synchronizer};

fn packages(seq: &SimSequence) -> Vec<MeasurementPackage> {
    let mut sync = Synchronizer::new(SyncSettings::default());
    let mut out = Vec::new();
    let mut j = 0;
    for s in &seq.imu {
        while j < seq.scans.len() && seq.scans[j].stamp + 100_000_000 <= s.stamp {
            sync.push_scan(seq.scans[j].to_cloud("lidar"));
            j += 1;
        }
        sync.push_imu(*s);
        while let Some(p) = sync.pop() {
            out.push(p);
        }
    }
    out
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn bench(c: &mut Criterion) {
    let mut sc = SimConfig::new("room");
    sc.duration = 12.0;
    sc.camera_rate = 0.5;
    let seq = simulate(&sc).expect("simulate");
    let pkgs = packages(&seq);
    let cfg = seq.config.rig.clone();
    let points: usize = pkgs.iter().map(|p| p.scan.len()).sum::<usize>() / pkgs.len().max(1);

    let mut lio = Lio::new(&cfg.lio_setup());
    let mut ms = Vec::new();
    for p in &pkgs {
        let t = Instant::now();
        let r = lio.process(p);
        let dt = t.elapsed().as_secs_f64() * 1e3;
        if r.is_some_and(|r| r.degeneracy.is_some()) {
            ms.push(dt);
        }
    }
    ms.sort_by(f64::total_cmp);
    if !ms.is_empty() {
        eprintln!(
            "lio per scan ({} scans, {points} points/scan): median {:.3} ms, p95 {:.3} ms, max {:.3} ms",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            ms.last().unwrap()
        );
    }

    // Steady state: replay one mid-sequence scan on a clone of the warmed-up estimator.
    let mid = pkgs.len() / 2;
    let mut warm = Lio::new(&cfg.lio_setup());
    for p in &pkgs[..mid] {
        warm.process(p);
    }
    c.bench_function("lio_scan_16k_points", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut l| l.process(&pkgs[mid]),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
