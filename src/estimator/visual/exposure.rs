//! Exposure accuracy: estimated gains against true ones (the simulator's `exposure.txt`).
//!
//! The absolute exposure is not observable: the map's brightness unit is whatever the first
//! mapped images had. So gains are compared up to one scale, the least-squares one in log space
//! (as ATE aligns trajectories before comparing them).

use std::path::Path;

/// Error of estimated exposure gains.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ExposureError {
    /// Estimates matched to a true gain (after `skip_seconds`).
    pub matched: usize,
    /// The scale applied to the estimates (true / estimated, geometric mean).
    pub scale: f64,
    /// RMS and largest absolute value of `scale * estimated / true - 1`.
    pub rms: f64,
    pub max: f64,
}

/// Compares `[stamp_s, gain]` estimates with true `[stamp_s, gain]` pairs matched by stamp
/// (within `max_dt` seconds), ignoring estimates before `skip_seconds` after the first one.
/// `None` when nothing matches or a gain is not positive.
pub fn exposure_error(
    estimated: &[[f64; 2]],
    truth: &[[f64; 2]],
    max_dt: f64,
    skip_seconds: f64,
) -> Option<ExposureError> {
    let t0 = estimated.first()?[0];
    let mut sorted: Vec<[f64; 2]> = truth.to_vec();
    sorted.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let mut logs = Vec::new();
    for e in estimated.iter().filter(|e| e[0] >= t0 + skip_seconds) {
        let i = sorted.partition_point(|t| t[0] < e[0]);
        let near = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|k| sorted.get(k))
            .min_by(|a, b| (a[0] - e[0]).abs().total_cmp(&(b[0] - e[0]).abs()))?;
        if (near[0] - e[0]).abs() > max_dt {
            continue;
        }
        if !(e[1] > 0.0 && near[1] > 0.0) {
            return None;
        }
        logs.push((e[1] / near[1]).ln());
    }
    if logs.is_empty() {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    let errs: Vec<f64> = logs.iter().map(|l| (l - mean).exp() - 1.0).collect();
    let rms = (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt();
    Some(ExposureError {
        matched: errs.len(),
        scale: (-mean).exp(),
        rms,
        max: errs.iter().fold(0.0f64, |m, e| m.max(e.abs())),
    })
}

/// Reads `stamp_s gain` lines (`#` comments), as `gs_livo sim` writes `exposure.txt`.
pub fn read_exposure(path: &Path) -> std::io::Result<Vec<[f64; 2]>> {
    let text = std::fs::read_to_string(path)?;
    let bad = |n: usize| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}:{n}: expected `stamp_s gain`", path.display()),
        )
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let v: Vec<f64> = l
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad(n + 1))?;
        if v.len() != 2 {
            return Err(bad(n + 1));
        }
        out.push([v[0], v[1]]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_removed_and_errors_are_relative() {
        let truth: Vec<[f64; 2]> = (0..50)
            .map(|i| [i as f64 * 0.1, 1.0 + 0.3 * (i as f64 * 0.2).sin()])
            .collect();
        // Exact up to a factor 0.8: no error, scale 1.25.
        let est: Vec<[f64; 2]> = truth.iter().map(|t| [t[0] + 1e-4, 0.8 * t[1]]).collect();
        let e = exposure_error(&est, &truth, 1e-3, 0.0).unwrap();
        assert_eq!(e.matched, 50);
        assert!((e.scale - 1.25).abs() < 1e-12 && e.rms < 1e-12);
        // Alternating +-2 % around the truth: RMS 2 %.
        let est: Vec<[f64; 2]> = truth
            .iter()
            .enumerate()
            .map(|(i, t)| [t[0], t[1] * if i % 2 == 0 { 1.02 } else { 1.0 / 1.02 }])
            .collect();
        let e = exposure_error(&est, &truth, 1e-3, 0.0).unwrap();
        assert!((e.rms - 0.02).abs() < 1e-3, "{e:?}");
        assert!((e.scale - 1.0).abs() < 1e-9);
        // Skipping the first second; unmatched stamps are ignored.
        let e = exposure_error(&est, &truth, 1e-3, 1.0).unwrap();
        assert_eq!(e.matched, 40);
        let far: Vec<[f64; 2]> = est.iter().map(|e| [e[0] + 0.05, e[1]]).collect();
        assert!(exposure_error(&far, &truth, 1e-3, 0.0).is_none());
    }

    #[test]
    fn reads_the_simulator_format() {
        let dir = std::env::temp_dir().join(format!("gs_livo_exp_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("exposure.txt");
        std::fs::write(&p, "# stamp_s gain\n1.5 1.1\n1.6 0.9\n").unwrap();
        assert_eq!(read_exposure(&p).unwrap(), vec![[1.5, 1.1], [1.6, 0.9]]);
        std::fs::write(&p, "1.5 x\n").unwrap();
        assert!(read_exposure(&p).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
