//! PSNR and SSIM agree with scikit-image to 1e-4 on rendered images (RGB and grey, data range
//! 255 and 1.0). Fails when scikit-image is missing and CI=true; skips otherwise.

use std::path::Path;
use std::process::Command;

use gs_livo::eval::image::{psnr, ssim, ImageView};
use gs_livo::sim::{render_camera, Scene};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

fn skimage_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import skimage.metrics"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("scikit-image not importable but CI=true (tests/python/requirements.txt)");
        }
        eprintln!("SKIPPED: scikit-image not found (pip install scikit-image)");
    }
    ok
}

fn skimage(a: &[f32], b: &[f32], w: usize, h: usize, c: usize, range: f64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, d: &[f32]| {
        let p = dir.path().join(name);
        let bytes: Vec<u8> = d.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect();
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let (pa, pb) = (write("a.f64", a), write("b.f64", b));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/skimage_compare.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&pa)
        .arg(&pb)
        .args([
            h.to_string(),
            w.to_string(),
            c.to_string(),
            range.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (j["psnr"].as_f64().unwrap(), j["ssim"].as_f64().unwrap())
}

/// Two renders of the room from slightly different poses and exposures (a realistic pair).
fn image_pair() -> (Vec<f32>, Vec<f32>, usize, usize) {
    let cam = gs_livo::config::Camera {
        width: 96,
        height: 72,
        fx: 80.0,
        fy: 80.0,
        cx: 47.5,
        cy: 35.5,
        distortion: [0.0; 5],
    };
    let scene = Scene::room();
    // Optical frame looking along world +x from the room centre.
    let look = UnitQuaternion::from_basis_unchecked(&[
        Vector3::new(0.0, -1.0, 0.0),
        Vector3::new(0.0, 0.0, -1.0),
        Vector3::new(1.0, 0.0, 0.0),
    ]);
    let p1 = Isometry3::from_parts(Translation3::new(0.0, 0.0, 1.3), look);
    let p2 = Isometry3::from_parts(
        Translation3::new(0.02, 0.01, 1.31),
        look * UnitQuaternion::from_euler_angles(0.0, 0.01, 0.0),
    );
    let a = render_camera(&scene, &p1, &cam, 1.0);
    let b = render_camera(&scene, &p2, &cam, 1.1);
    let f = |i: &gs_livo::sensors::Image| i.rgb.iter().map(|&v| v as f32).collect::<Vec<_>>();
    (f(&a), f(&b), 96, 72)
}

fn check(a: &[f32], b: &[f32], w: usize, h: usize, c: usize, range: f64) {
    let va = ImageView {
        data: a,
        width: w,
        height: h,
        channels: c,
    };
    let vb = ImageView {
        data: b,
        width: w,
        height: h,
        channels: c,
    };
    let (p, s) = (psnr(va, vb, range).unwrap(), ssim(va, vb, range).unwrap());
    let (pr, sr) = skimage(a, b, w, h, c, range);
    assert!((p - pr).abs() < 1e-4, "psnr {p} vs skimage {pr}");
    assert!((s - sr).abs() < 1e-4, "ssim {s} vs skimage {sr}");
    assert!(
        s < 0.95 && s > 0.05,
        "pair should be neither identical nor unrelated: {s}"
    );
}

#[test]
fn psnr_ssim_match_scikit_image() {
    if !skimage_available() {
        return;
    }
    let (a, b, w, h) = image_pair();
    check(&a, &b, w, h, 3, 255.0);
    let grey = |d: &[f32]| -> Vec<f32> {
        d.chunks(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect()
    };
    check(&grey(&a), &grey(&b), w, h, 1, 255.0);
    let unit = |d: &[f32]| -> Vec<f32> { d.iter().map(|v| v / 255.0).collect() };
    check(&unit(&a), &unit(&b), w, h, 3, 1.0);
}
