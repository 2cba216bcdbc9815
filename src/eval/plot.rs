//! A dependency-free PNG plot: top view of reference and aligned estimate (left), translation
//! error over time (right).

use std::path::Path;

use image::{Rgb, RgbImage};

use super::{EvalError, EvalReport};

const W: u32 = 1200;
const H: u32 = 560;
const M: i64 = 40;

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: Rgb<u8>) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let x = (a.0 + (b.0 - a.0) * t).round() as i64;
        let y = (a.1 + (b.1 - a.1) * t).round() as i64;
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, c);
            }
        }
    }
}

fn frame(img: &mut RgbImage, x0: i64, x1: i64) {
    let g = Rgb([120, 120, 120]);
    let (y0, y1) = (M as f64, (H as i64 - M) as f64);
    let (x0, x1) = (x0 as f64, x1 as f64);
    line(img, (x0, y0), (x1, y0), g);
    line(img, (x0, y1), (x1, y1), g);
    line(img, (x0, y0), (x0, y1), g);
    line(img, (x1, y0), (x1, y1), g);
}

/// Draws the report's trajectories and errors into a PNG.
pub fn plot_report(report: &EvalReport, path: &Path) -> Result<(), EvalError> {
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    let half = W as i64 / 2;
    frame(&mut img, M, half - M / 2);
    frame(&mut img, half + M / 2, W as i64 - M);
    // Top view with equal axis scales.
    let all = report.reference_xyz.iter().chain(&report.estimate_xyz);
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in all {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let (pw, ph) = (
        (half - M / 2 - M - 20) as f64,
        (H as i64 - 2 * M - 20) as f64,
    );
    let span = ((hi[0] - lo[0]) / pw).max((hi[1] - lo[1]) / ph).max(1e-9);
    let cx = (lo[0] + hi[0]) / 2.0;
    let cy = (lo[1] + hi[1]) / 2.0;
    let to_px = |p: &[f64; 3]| {
        (
            (M + (half - M / 2 - M) / 2) as f64 + (p[0] - cx) / span,
            (H as f64) / 2.0 - (p[1] - cy) / span,
        )
    };
    for (pts, c) in [
        (&report.reference_xyz, Rgb([30, 160, 60])),
        (&report.estimate_xyz, Rgb([210, 40, 40])),
    ] {
        for w in pts.windows(2) {
            line(&mut img, to_px(&w[0]), to_px(&w[1]), c);
        }
    }
    // Error over time.
    let tmax = report.errors.last().map(|e| e.0).unwrap_or(1.0).max(1e-9);
    let emax = report
        .errors
        .iter()
        .map(|e| e.1)
        .fold(0.0, f64::max)
        .max(1e-12);
    let (ex0, ex1) = ((half + M / 2) as f64, (W as i64 - M) as f64);
    let (ey0, ey1) = ((H as i64 - M) as f64, M as f64 + 10.0);
    let to_e = |t: f64, e: f64| (ex0 + (ex1 - ex0) * t / tmax, ey0 + (ey1 - ey0) * e / emax);
    for w in report.errors.windows(2) {
        line(
            &mut img,
            to_e(w[0].0, w[0].1),
            to_e(w[1].0, w[1].1),
            Rgb([40, 70, 200]),
        );
    }
    img.save(path)
        .map_err(|e| EvalError::Plot(format!("{}: {e}", path.display())))
}
