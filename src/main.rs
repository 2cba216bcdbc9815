//! The `gs_livo` command line: one subcommand per job, each in `cli/`.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gs_livo",
    version,
    about = "LiDAR-inertial-visual odometry with a Gaussian-splat map"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise a rosbag2 recording: topics, types, counts, rates, gaps, decoded contents.
    Info(cli::info::Args),
    /// Simulate a LiDAR-camera-IMU sequence with ground truth into a rosbag2 folder.
    Sim(cli::sim::Args),
    /// Compare an estimated trajectory with ground truth (ATE, RPE).
    Eval(cli::eval::Args),
    /// Run odometry and mapping on a recording.
    Run(cli::run::Args),
    /// Run the node on a bag played in wall-clock time, recording what it publishes.
    Replay(cli::replay::Args),
    /// Simulate the room sequence, run LIVO on it and print ATE, PSNR and speed.
    Demo(cli::demo::Args),
    /// Run as a ROS 2 node (`--ros-args --params-file config/<rig>.yaml`).
    #[cfg(any(feature = "ros2", feature = "dds"))]
    Node(cli::node::Args),
    /// Write RUN/report.html (summary, plots, renders, drops, config) for a run folder.
    Report(cli::report::Args),
    /// Export a run's Gaussian map (3DGS PLY) and renders along its trajectory (PNG).
    Export(cli::export::Args),
    /// Benchmarks of the hot paths (e.g. `bench render`).
    Bench(cli::bench::Args),
}

fn main() -> anyhow::Result<()> {
    cli::allocator::keep_freed_memory();
    cli::init_logging();
    let command = Cli::parse().command;
    if !is_long_running(&command) {
        cli::broken_pipe::end_quietly_on_closed_pipe();
    }
    match command {
        Command::Info(a) => cli::info::run(a),
        Command::Sim(a) => cli::sim::run(a),
        Command::Eval(a) => cli::eval::run(a),
        Command::Run(a) => cli::run::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::Demo(a) => cli::demo::run(a),
        #[cfg(any(feature = "ros2", feature = "dds"))]
        Command::Node(a) => cli::node::run(a),
        Command::Report(a) => cli::report::run(a),
        Command::Export(a) => cli::export::run(a),
        Command::Bench(a) => cli::bench::run(a),
    }
}

/// The node and the replay run for a long time and talk over sockets: a closed peer is an error
/// they report, not a reason to end the process.
fn is_long_running(command: &Command) -> bool {
    match command {
        Command::Replay(_) => true,
        #[cfg(any(feature = "ros2", feature = "dds"))]
        Command::Node(_) => true,
        _ => false,
    }
}
