//! The run progress bar (frames, frames/s, real-time factor, ETA) and Ctrl-C handling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use gs_livo::pipeline::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar over the bag's scans; hidden when stderr is not a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(total: u64) -> Self {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames {per_sec} {msg} ETA {eta}",
            )
            .expect("valid template"),
        );
        Self(pb)
    }

    pub fn update(&self, p: &Progress) {
        if p.frames > self.0.length().unwrap_or(0) {
            self.0.set_length(p.frames);
        }
        self.0.set_position(p.frames);
        let rtf = if p.wall_seconds > 0.0 {
            p.sensor_seconds / p.wall_seconds
        } else {
            0.0
        };
        self.0.set_message(format!("RTF {rtf:.2}x"));
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// The process-wide stop flag, set by Ctrl-C (the first press stops cleanly with outputs
/// flushed; a second press exits at once).
pub fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let res = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                eprintln!("second Ctrl-C: exiting without flushing");
                std::process::exit(130);
            }
            eprintln!("Ctrl-C: stopping, flushing outputs (press again to abort)");
        });
        if let Err(e) = res {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
        flag
    })
    .clone()
}
