//! The running system: threads and crossbeam channels between ingest, synchronisation and
//! estimation, Gaussian mapping, and outputs.
//!
//! ```text
//! ingest (bag/ROS) --Measurement--> estimator (sync + LIO [+ visual]) --Frame--> mapper
//!                                        |  ^                                      |
//!                                        |  +-------- MapSnapshot (livo) ----------+
//!                                        +--------------- Output ------------------+--> sink
//! ```
//!
//! Offline replay ([`Flow::Offline`]) uses blocking sends everywhere, so nothing is dropped,
//! and the estimator's visual update at frame `k` uses exactly the map the mapper produced
//! after frame `k - lag`: the result is bit-for-bit reproducible on one render backend however
//! the threads are scheduled. Live mode ([`Flow::Live`]) never blocks the estimator: full
//! queues drop the newest item and count it (see [`DropCounters`]), and the visual update uses
//! the newest map snapshot available.

mod estimator_stage;
pub mod frame_log;
pub mod held_out;
mod imu_odometry;
mod ingest;
pub mod map_harness;
pub mod map_stage;
pub mod offline;
pub mod oracle;
pub mod outputs;
pub mod port;
pub mod prior;
mod register;
mod stages;
pub mod summary;

pub use imu_odometry::ImuOdometry;
pub use ingest::{bag_measurements, BagInput, IngestCounters};
pub use map_stage::{MapFrame, MapSnapshot, MapStage, RenderPair};
pub use offline::{run_offline, ExternalGroundTruth, Progress};
pub use oracle::OraclePoses;
pub use outputs::{OutputWriter, OutputsConfig};
pub use prior::{MapMode, PriorMap};
pub use register::{register_scan, register_scan_with_intensity};
pub use stages::{
    run_pipeline, run_pipeline_with, Control, EstimatorCommand, Finished, FrameEstimate, LiveStats,
    Output, PipelineCommand, PipelineHandle, Source, StageTime, VisualStats, VISUAL_AVAILABLE,
};
pub use summary::{RunSummary, StageStats, Timings};

use serde::{Deserialize, Serialize};

/// Which updates the estimator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// LiDAR-inertial only; the Gaussian map is still built for outputs.
    Lio,
    /// LiDAR-inertial-visual (the visual update runs when the build has one).
    #[default]
    Livo,
    /// LiDAR-inertial odometry, but the Gaussian map is built with ground-truth poses (the
    /// bag's ground-truth topic or `--gt`): map quality measured apart from the estimator.
    Oracle,
}

/// Back-pressure policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Blocking sends: nothing is dropped, results are deterministic.
    Offline,
    /// Bounded queues that drop the NEWEST item when full (counted in [`DropCounters`]); the
    /// estimator never waits for the mapper.
    Live,
}

/// `pipeline.*` knobs (not in the parameter file: set by the CLI or the node).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineOptions {
    pub mode: Mode,
    pub flow: Flow,
    /// Stop after this many estimated frames (scans).
    pub max_frames: Option<usize>,
    /// Offline: the visual update at frame k uses the map after frame k - lag (>= 1).
    pub map_lag: usize,
    /// Capacity of each inter-stage queue.
    pub queue_capacity: usize,
    /// Build the Gaussian map at all (off: pure odometry).
    pub mapping: bool,
    /// Render the map at the camera pose every n-th camera frame (0 = never).
    pub render_every: usize,
    /// Send the Gaussian centres every n-th mapped frame (0 = only at the end).
    pub centres_every: usize,
    /// Send the Gaussian centres every this many sensor seconds instead (0 = by count).
    pub centres_period: f64,
    /// Also emit the state propagated through each IMU sample ([`Output::ImuPose`]).
    pub imu_odometry: bool,
    /// Ground truth the mapper uses instead of the estimate ([`Mode::Oracle`]).
    #[serde(skip)]
    pub oracle: Option<OraclePoses>,
    /// A loaded map the run starts from (`--map`).
    #[serde(skip)]
    pub prior: Option<PriorMap>,
    /// Offline: save the map (`session` folder) into `OUT/map/` at the end.
    pub save_map: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Livo,
            flow: Flow::Offline,
            max_frames: None,
            map_lag: 2,
            queue_capacity: 64,
            mapping: true,
            render_every: 10,
            centres_every: 50,
            centres_period: 0.0,
            imu_odometry: false,
            oracle: None,
            prior: None,
            save_map: false,
        }
    }
}

/// Items dropped by live-mode back-pressure (always zero offline).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DropCounters {
    /// Frames the mapper queue had no room for (the map skips them; odometry is unaffected).
    pub mapper_frames: u64,
    /// Outputs the sink queue had no room for.
    pub outputs: u64,
    /// Frames left unmapped because a stop (Ctrl-C, `max_frames`) came while they queued.
    pub mapper_frames_at_stop: u64,
    /// Oracle mode: frames left unmapped because ground truth does not cover their stamps.
    pub mapper_frames_without_ground_truth: u64,
    /// IMU-rate estimates the sink queue had no room for.
    pub imu_odometry: u64,
}

/// Errors of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Bag(#[from] crate::bag::BagError),
    #[error("gaussian map: {0}")]
    Gaussian(#[from] crate::gaussian::GaussianError),
    #[error("map file: {0}")]
    MapFile(#[from] crate::session::MapFileError),
    #[error("render: {0}")]
    Render(#[from] crate::render::RenderError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Output(String),
    #[error("pipeline thread `{0}` panicked")]
    Panicked(&'static str),
}

impl PipelineError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
