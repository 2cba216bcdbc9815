//! Subcommands of the binary; each file parses its arguments and calls the library.

pub mod allocator;
pub mod bench;
pub mod bench_live;
pub mod bench_map;
pub mod bench_pipeline;
pub mod broken_pipe;
pub mod demo;
pub mod eval;
pub mod export;
pub mod info;
#[cfg(any(feature = "ros2", feature = "dds"))]
pub mod node;
pub mod progress;
pub mod replay;
pub mod report;
pub mod run;
pub mod sim;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
