//! Helpers shared by the integration tests (bags, Vulkan).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared data folder (see `gs_livo::testdata::dir`).
pub fn data_dir() -> PathBuf {
    gs_livo::testdata::dir()
}

/// True when python3 with `rosbags` is usable. Under CI=true a missing package fails the test;
/// locally the test is skipped with a message.
pub fn python_rosbags_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import rosbags, mcap"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: python3 with rosbags and mcap is required in CI (pip install -r tests/python/requirements.txt)");
        }
        eprintln!("{test}: SKIPPED, python3 -c 'import rosbags' failed (pip install rosbags mcap)");
    }
    ok
}

/// Runs a script in tests/python and returns its stdout.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 output")
}

/// JSON lines to values.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// A float from the Python dumps: a repr() string (exact) or a JSON number.
pub fn f(v: &serde_json::Value) -> f64 {
    match v.as_str() {
        Some(s) => s.parse().unwrap_or_else(|_| panic!("not a float: {s}")),
        None => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// `builtin_interfaces/Time` JSON to nanoseconds.
pub fn stamp(v: &serde_json::Value) -> u64 {
    u(&v["sec"]) * 1_000_000_000 + u(&v["nanosec"])
}

pub fn b64(v: &serde_json::Value) -> Vec<u8> {
    decode_b64(v["b64"].as_str().expect("b64 field"))
}

/// Minimal base64 decoder (standard alphabet with padding) for the Python dumps.
pub fn decode_b64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk.iter().take_while(|&&c| c != b'=').count();
        let mut acc = 0u32;
        for (i, &c) in chunk[..n].iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        for i in 0..n.saturating_sub(1) {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// A Vulkan renderer for `cfg`, or `None` (saying why) when the machine has no Vulkan device. A
/// device that exists but fails is a test failure: Vulkan tests never skip silently.
pub fn vulkan_or_skip(
    cfg: &gs_livo::render::RenderConfig,
) -> Option<gs_livo::render::vulkan::VulkanRenderer> {
    match gs_livo::render::vulkan::VulkanRenderer::new(cfg) {
        Ok(r) => Some(r),
        Err(e) => {
            let devices = gs_livo::render::vulkan::enumerate_devices();
            assert!(
                devices.is_empty(),
                "Vulkan devices {devices:?} exist but the backend failed: {e}"
            );
            eprintln!("SKIP Vulkan: no Vulkan device ({e})");
            None
        }
    }
}
