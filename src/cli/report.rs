//! `gs_livo report RUN`: (re)writes RUN/report.html and RUN/plots/ from a run folder.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Arguments of `gs_livo report`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder of `gs_livo run` (or the run/ folder of `gs_livo demo`).
    pub run: PathBuf,
}

/// Writes the report of `run`; a failure is a warning for `run` and `demo`, whose results
/// stand without it.
pub fn write_or_warn(run: &Path) -> Option<PathBuf> {
    match gs_livo::report::write_report(run) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("report: {e}");
            None
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let p = gs_livo::report::write_report(&a.run)
        .with_context(|| format!("writing the report of {}", a.run.display()))?;
    println!("{}", p.display());
    Ok(())
}
