//! `gs_livo run --mode lio` end to end on a simulated bag written to disk.

use std::process::Command;

use gs_livo::eval::{evaluate, tum::read_tum, EvalOptions};
use gs_livo::sim::{simulate, write_sequence, SimConfig};

#[test]
fn run_lio_on_simulated_bag_writes_accurate_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SimConfig::new("room");
    c.duration = 4.0;
    c.camera_rate = 1.0;
    let seq = simulate(&c).unwrap();
    write_sequence(dir.path(), &seq).unwrap();
    let out = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .arg("run")
        .arg(dir.path().join("bag"))
        .arg("--config")
        .arg(dir.path().join("config.yaml"))
        .arg("--out")
        .arg(&out)
        .args(["--mode", "lio", "--set", "lio.max_iterations=4"])
        .status()
        .unwrap();
    assert!(status.success());
    let est = read_tum(&out.join("trajectory.tum")).unwrap();
    let gt = read_tum(&dir.path().join("ground_truth.tum")).unwrap();
    assert!(est.len() >= 30, "{} poses", est.len());
    let rep = evaluate(&gt, &est, &EvalOptions::default()).unwrap();
    eprintln!("run --mode lio room 4 s: ATE rmse {:.4} m", rep.ate.rmse);
    assert!(rep.ate.rmse < 0.02);

    // --max-frames stops early; a bad mode is an error, not a panic.
    let out2 = dir.path().join("out2");
    let st = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .arg("run")
        .arg(dir.path().join("bag"))
        .arg("--config")
        .arg(dir.path().join("config.yaml"))
        .arg("--out")
        .arg(&out2)
        .args(["--max-frames", "5"])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(read_tum(&out2.join("trajectory.tum")).unwrap().len(), 5);
    let st = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .arg("run")
        .arg(dir.path().join("bag"))
        .arg("--config")
        .arg(dir.path().join("config.yaml"))
        .arg("--out")
        .arg(&out2)
        .args(["--mode", "bogus"])
        .status()
        .unwrap();
    assert!(!st.success());
}
