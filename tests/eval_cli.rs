//! `gs_livo eval` end to end: reads TUM files, prints JSON, draws the PNG plot; bad input is a
//! clear error, not a panic.

use std::process::Command;

use gs_livo::eval::tum::write_tum;
use gs_livo::sensors::PoseStamped;
use gs_livo::sim::Trajectory;
use nalgebra::Vector3;

#[test]
fn eval_cli_reports_json_and_plot() {
    let tr = Trajectory::for_scene("room", 45.0, 0.0);
    let gt: Vec<PoseStamped> = (0..300)
        .map(|i| PoseStamped {
            stamp: 1_000_000_000 + i * 50_000_000,
            pose: tr.pose(i as f64 * 0.05),
        })
        .collect();
    let est: Vec<PoseStamped> = gt
        .iter()
        .map(|p| {
            let mut q = p.clone();
            q.pose.translation.vector += Vector3::new(0.0, 0.0, 0.02);
            q
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (g, e, png) = (
        dir.path().join("gt.tum"),
        dir.path().join("est.tum"),
        dir.path().join("plot.png"),
    );
    write_tum(&g, &gt).unwrap();
    write_tum(&e, &est).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .args([
            "eval", "--align", "none", "--json", "--delta", "10f", "--gt",
        ])
        .arg(&g)
        .arg("--est")
        .arg(&e)
        .arg("--plot")
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["matched"], 300);
    assert!((j["ate"]["rmse"].as_f64().unwrap() - 0.02).abs() < 1e-9);
    let img = image::open(&png).unwrap();
    assert!(img.width() > 500 && img.height() > 300);

    std::fs::write(&e, "1.0 0 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .args(["eval", "--gt"])
        .arg(&g)
        .arg("--est")
        .arg(&e)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("est.tum:1") && !err.contains("panicked"),
        "{err}"
    );
}

/// `gs_livo eval ... | head` must not panic when the reader closes the pipe first: a printing
/// command ends quietly (by SIGPIPE's default action on Unix), as the shell's tools do.
#[cfg(unix)]
#[test]
fn eval_ends_quietly_when_its_reader_is_gone() {
    use std::os::unix::process::ExitStatusExt;
    let tr = Trajectory::for_scene("room", 45.0, 0.0);
    let gt: Vec<PoseStamped> = (0..300)
        .map(|i| PoseStamped {
            stamp: 1_000_000_000 + i * 50_000_000,
            pose: tr.pose(i as f64 * 0.05),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gt.tum");
    write_tum(&g, &gt).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .args(["eval", "--delta", "10f", "--gt"])
        .arg(&g)
        .arg("--est")
        .arg(&g)
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "{:?}: {stderr}", out.status);
}
