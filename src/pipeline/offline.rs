//! One offline run from a bag into an output folder: the driver `gs_livo run`, `gs_livo demo`
//! and `gs_livo bench pipeline` share.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::stages::{run_pipeline, LiveStats, Output, Source};
use super::{
    BagInput, Mode, OraclePoses, OutputWriter, OutputsConfig, PipelineError, PipelineOptions,
    RunSummary,
};
use crate::config::Config;
use crate::sensors::PoseStamped;

/// Progress as the outputs see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub frames: u64,
    /// Scans in the bag (an upper bound of frames).
    pub total: u64,
    pub sensor_seconds: f64,
    pub wall_seconds: f64,
}

/// Ground truth given on the command line (overrides the bag's topic).
pub struct ExternalGroundTruth {
    pub poses: Vec<PoseStamped>,
    pub source: String,
}

/// Runs the pipeline on `bag` and writes every output into `out`. `stop` ends the run early
/// (Ctrl-C) with all outputs flushed; the summary's status then says `interrupted`.
#[allow(clippy::too_many_arguments)] // one call per front end; each argument is distinct
pub fn run_offline(
    bag: &Path,
    config: &Config,
    out: &Path,
    opts: &PipelineOptions,
    outputs: OutputsConfig,
    gt: Option<ExternalGroundTruth>,
    stop: Arc<AtomicBool>,
    mut progress: impl FnMut(&Progress),
) -> Result<RunSummary, PipelineError> {
    let input = BagInput::open(bag, config)?;
    let oracle_opts;
    let opts = if opts.mode == Mode::Oracle && opts.oracle.is_none() {
        oracle_opts = PipelineOptions {
            oracle: Some(oracle_poses(&input, gt.as_ref())?),
            ..opts.clone()
        };
        &oracle_opts
    } else {
        opts
    };
    let total = input.scan_count();
    let stats = Arc::new(Mutex::new(LiveStats::default()));
    let mut writer = OutputWriter::create(
        out,
        config,
        outputs,
        &bag.display().to_string(),
        opts,
        stats.clone(),
    )?;
    if let Some(truth) = exposure_truth_beside(bag) {
        writer.set_exposure_truth(truth);
    }
    let started = Instant::now();
    let mut frames = 0u64;
    let mut sensor = 0.0;
    let mut first = None;
    let result = run_pipeline(
        config,
        opts,
        Source::Bag(Box::new(input)),
        stop.clone(),
        stats,
        |o| {
            if let Output::Pose(f) = &o {
                frames += 1;
                let f0 = *first.get_or_insert(f.estimate.stamp);
                sensor = crate::sensors::stamp_diff_secs(f.estimate.stamp, f0);
                progress(&Progress {
                    frames,
                    total,
                    sensor_seconds: sensor,
                    wall_seconds: started.elapsed().as_secs_f64(),
                });
            }
            writer.handle(&o);
        },
    );
    writer.mark_drained();
    let interrupted = stop.load(std::sync::atomic::Ordering::SeqCst);
    let (mut finished, error) = match result {
        Ok(f) => (Some(f), None),
        Err(e) => {
            tracing::error!("pipeline failed: {e}");
            (None, Some(e.to_string()))
        }
    };
    let (gt, source) = match gt {
        Some(g) => (g.poses, g.source),
        None => (
            finished
                .as_ref()
                .map(|f| f.ground_truth.clone())
                .unwrap_or_default(),
            config.topics.ground_truth.clone(),
        ),
    };
    let status = if error.is_some() {
        "failed"
    } else if interrupted {
        "interrupted"
    } else {
        "finished"
    };
    let failed = error.clone();
    let summary = writer.finish(finished.as_mut(), &gt, &source, status, error)?;
    if opts.save_map && failed.is_none() {
        if let Some(f) = finished.as_mut() {
            save_session_map(f, config, opts, bag, &out.join("map"))?;
        }
    }
    match failed {
        Some(e) => Err(PipelineError::Output(format!(
            "{e} (partial outputs and summary in {})",
            out.display()
        ))),
        None => Ok(summary),
    }
}

/// Saves the run's map (voxel plane map, and the Gaussian map with its optimiser state when
/// mapping was on) as a map folder at `dir`. A localise run saves the loaded map unchanged.
fn save_session_map(
    f: &mut super::Finished,
    config: &Config,
    opts: &PipelineOptions,
    bag: &Path,
    dir: &Path,
) -> Result<(), PipelineError> {
    let Some(lidar) = f.lidar_map.as_ref() else {
        return Ok(());
    };
    let source = match &opts.prior {
        Some(p) => format!("{}; {}", p.map.source, bag.display()),
        None => bag.display().to_string(),
    };
    let map = match &opts.prior {
        // A frozen, paged map is unchanged: its Gaussian part is saved from the file it was
        // opened from, tile for tile, without reading it into memory as a whole.
        Some(p) if p.frozen() && p.map.paged.is_some() => {
            let mut m = crate::session::SessionMap::from_sections(
                config,
                &source,
                lidar,
                p.map.gaussian.clone(),
            );
            m.paged = p.map.paged.clone();
            m
        }
        _ => crate::session::SessionMap::capture(
            config,
            &source,
            lidar,
            f.map.as_mut().map(|m| m.mapper_mut()),
        ),
    };
    map.save(dir)?;
    tracing::info!(
        "map saved to {}: {} LiDAR root voxels, {} Gaussians",
        dir.display(),
        map.lidar_roots.len(),
        map.gaussian_count()
    );
    Ok(())
}

/// The true exposure gains of a simulated recording: `exposure.txt` in the folder holding the
/// bag (where `gs_livo sim` writes it), when there is one and it reads; a file that does not
/// read is logged, not fatal (the run's other results stand).
fn exposure_truth_beside(bag: &Path) -> Option<Vec<[f64; 2]>> {
    let path = bag.parent()?.join("exposure.txt");
    if !path.is_file() {
        return None;
    }
    match crate::estimator::visual::exposure::read_exposure(&path) {
        Ok(t) => {
            tracing::info!("exposure truth: {} gains from {}", t.len(), path.display());
            Some(t)
        }
        Err(e) => {
            tracing::warn!("exposure truth not used: {e}");
            None
        }
    }
}

/// The ground truth oracle mode maps with: `--gt` when given, else the bag's topic.
fn oracle_poses(
    input: &BagInput,
    gt: Option<&ExternalGroundTruth>,
) -> Result<OraclePoses, PipelineError> {
    let (poses, source) = match gt {
        Some(g) => (g.poses.clone(), g.source.clone()),
        None => {
            let (poses, bad) = input.ground_truth_poses()?;
            if bad > 0 {
                tracing::warn!("oracle mode: {bad} unreadable ground-truth messages skipped");
            }
            (poses, "the bag's ground-truth topic".to_string())
        }
    };
    let n = poses.len();
    let oracle = OraclePoses::new(poses).ok_or_else(|| {
        PipelineError::Output(format!(
            "--mode oracle needs a ground-truth trajectory: {source} has {n} poses (give the \
             config's topics.ground_truth or --gt FILE.tum)"
        ))
    })?;
    tracing::info!(
        "oracle mode: mapping with {} ground-truth poses from {source}",
        oracle.len()
    );
    Ok(oracle)
}
