//! TUM trajectory files: `stamp tx ty tz qx qy qz qw` per line, `#` comments.

use std::fmt::Write as _;
use std::path::Path;

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};

use super::EvalError;
use crate::sensors::{PoseStamped, Stamp};

/// Parses decimal seconds into nanoseconds exactly (no f64 rounding for 10-digit epochs).
fn parse_stamp(s: &str) -> Option<Stamp> {
    if s.contains(['e', 'E']) {
        let v: f64 = s.parse().ok()?;
        return (v.is_finite() && v >= 0.0).then(|| crate::sensors::stamp_from_secs(v));
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut ns = 0u64;
    for (i, c) in frac.chars().take(9).enumerate() {
        ns += (c as u64 - '0' as u64) * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Parses TUM text; `origin` names the source in errors.
pub fn parse_tum(text: &str, origin: &Path) -> Result<Vec<PoseStamped>, EvalError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| EvalError::Parse {
            path: origin.to_path_buf(),
            line: i + 1,
            message,
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() != 8 {
            return Err(err(format!("expected 8 numbers, got {}", parts.len())));
        }
        let stamp =
            parse_stamp(parts[0]).ok_or_else(|| err(format!("bad stamp `{}`", parts[0])))?;
        let mut v = [0.0f64; 7];
        for (k, p) in parts[1..].iter().enumerate() {
            v[k] = p
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| err(format!("bad number `{p}`")))?;
        }
        let q = Quaternion::new(v[6], v[3], v[4], v[5]);
        if q.norm() < 1e-9 {
            return Err(err("zero quaternion".into()));
        }
        out.push(PoseStamped {
            stamp,
            pose: Isometry3::from_parts(
                Translation3::new(v[0], v[1], v[2]),
                UnitQuaternion::from_quaternion(q),
            ),
        });
    }
    Ok(out)
}

/// Reads a TUM file.
pub fn read_tum(path: &Path) -> Result<Vec<PoseStamped>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tum(&text, path)
}

/// Formats poses as TUM text (nanosecond stamps, 9 decimals).
pub fn format_tum(poses: &[PoseStamped]) -> String {
    let mut s = String::with_capacity(poses.len() * 96);
    for p in poses {
        let t = p.pose.translation.vector;
        let q = p.pose.rotation.quaternion();
        let _ = writeln!(
            s,
            "{}.{:09} {:.9} {:.9} {:.9} {:.9} {:.9} {:.9} {:.9}",
            p.stamp / 1_000_000_000,
            p.stamp % 1_000_000_000,
            t.x,
            t.y,
            t.z,
            q.i,
            q.j,
            q.k,
            q.w
        );
    }
    s
}

/// Writes a TUM file.
pub fn write_tum(path: &Path, poses: &[PoseStamped]) -> Result<(), EvalError> {
    std::fs::write(path, format_tum(poses)).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_in_stamps() {
        let p = PoseStamped {
            stamp: 1_700_000_000_123_456_789,
            pose: Isometry3::from_parts(
                Translation3::new(1.0, -2.5, 0.25),
                UnitQuaternion::from_euler_angles(0.1, 0.2, 0.3),
            ),
        };
        let back = parse_tum(&format_tum(std::slice::from_ref(&p)), Path::new("x")).unwrap();
        assert_eq!(back[0].stamp, p.stamp);
        assert!((back[0].pose.translation.vector - p.pose.translation.vector).norm() < 1e-9);
        assert!(back[0].pose.rotation.angle_to(&p.pose.rotation) < 1e-8);
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        let e = parse_tum("# c\n1.0 0 0 0 0 0 0 1\n2.0 0 0\n", Path::new("t.tum"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.tum:3"), "{e}");
        assert!(parse_tum("1.0 0 0 0 0 0 0 0\n", Path::new("t")).is_err());
        assert!(parse_tum("x 0 0 0 0 0 0 1\n", Path::new("t")).is_err());
        assert!(parse_tum("1.0 nan 0 0 0 0 0 1\n", Path::new("t")).is_err());
        assert_eq!(
            parse_tum("1.5e0 0 0 0 0 0 0 1\n", Path::new("t")).unwrap()[0].stamp,
            1_500_000_000
        );
    }
}
