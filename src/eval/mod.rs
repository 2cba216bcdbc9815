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
