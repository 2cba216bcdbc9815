//! Evaluation: trajectory error (ATE/RPE with Umeyama alignment), image metrics (PSNR/SSIM),
//! TUM trajectory files, per-frame records of a run and PNG plots.

pub mod compare;
pub mod image;
pub mod plot;
pub mod plot_series;
pub mod records;
pub mod trajectory;
pub mod tum;

pub use trajectory::{evaluate, Align, EvalOptions, EvalReport, RpeDelta, Stats};

use crate::sensors::PoseStamped;

/// A run's trajectory against its ground truth, as the run summary and the report show it:
/// SE(3) alignment, stamps matched within 20 ms, RPE over 1 m; a run too short for one metre
/// of travel gets its RPE over consecutive poses instead of no accuracy at all.
pub fn evaluate_run(
    ground_truth: &[PoseStamped],
    estimate: &[PoseStamped],
) -> Result<EvalReport, EvalError> {
    let opt = EvalOptions {
        max_diff: 0.02,
        ..Default::default()
    };
    match evaluate(ground_truth, estimate, &opt) {
        Err(EvalError::Rpe(why)) => {
            tracing::info!("{why}: RPE over 1 frame instead");
            let opt = EvalOptions {
                rpe_delta: RpeDelta::Frames(1),
                ..opt
            };
            evaluate(ground_truth, estimate, &opt)
        }
        r => r,
    }
}

/// Errors of the evaluation code.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
    #[error("no matching stamps between the trajectories within {max_diff} s")]
    NoMatches { max_diff: f64 },
    #[error("alignment impossible: {0}")]
    Degenerate(String),
    #[error("RPE: {0}")]
    Rpe(String),
    #[error("images differ in size or channels: {0}")]
    ImageMismatch(String),
    #[error("plot: {0}")]
    Plot(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Isometry3;

    /// `n` poses 0.1 s apart on an arc of radius 1 m, `step` metres apart, the odd ones moved
    /// sideways by `wobble`.
    fn track(n: usize, step: f64, wobble: f64) -> Vec<PoseStamped> {
        (0..n)
            .map(|i| {
                let a = i as f64 * step;
                let r = 1.0 + wobble * (i % 2) as f64;
                PoseStamped {
                    stamp: 1_000_000_000 + i as u64 * 100_000_000,
                    pose: Isometry3::translation(r * a.cos(), r * a.sin(), 0.0),
                }
            })
            .collect()
    }

    #[test]
    fn short_runs_get_rpe_over_frames() {
        // 0.45 m of travel: no pose pairs 1 m apart.
        let gt = track(10, 0.05, 0.0);
        let est = track(10, 0.05, 0.01);
        assert!(matches!(
            evaluate(&gt, &est, &EvalOptions::default()),
            Err(EvalError::Rpe(_))
        ));
        let r = evaluate_run(&gt, &est).unwrap();
        assert_eq!(r.options.rpe_delta, RpeDelta::Frames(1));
        assert_eq!(r.matched, 10);
        assert!(r.ate.rmse > 0.001 && r.ate.rmse < 0.01, "{:?}", r.ate);
        // Long enough: the 1 m delta stays.
        let long = track(40, 0.05, 0.0);
        assert_eq!(
            evaluate_run(&long, &track(40, 0.05, 0.01))
                .unwrap()
                .options
                .rpe_delta,
            RpeDelta::Meters(1.0)
        );
    }
}
