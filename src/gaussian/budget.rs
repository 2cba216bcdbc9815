//! The mapper's per-frame time budget: how many Adam iterations a frame gets, from the measured
//! cost of an iteration and of the work after them (read-back, brightness, pruning, fill), so
//! that a frame's optimisation ends within the budget and uses what it has.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where the pace reads the time: the wall clock, or a counter of microseconds that whoever
/// simulates the work advances (tests with a deterministic "slow" renderer).
#[derive(Debug, Clone)]
pub enum Clock {
    Wall(Instant),
    Manual(Arc<AtomicU64>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::Wall(Instant::now())
    }
}

impl Clock {
    fn ms(&self) -> f64 {
        match self {
            Clock::Wall(t0) => t0.elapsed().as_secs_f64() * 1e3,
            Clock::Manual(us) => us.load(Ordering::Relaxed) as f64 * 1e-3,
        }
    }
}

/// How many iterations a frame runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Exactly this many (reproducible: offline runs give the same map on every machine).
    Fixed(u32),
    /// While the frame's predicted end stays within `ms` from its start: at least one and at
    /// most `max`.
    Budget { ms: f64, max: u32 },
}

impl Limit {
    /// `gaussian.time_budget_ms` > 0 selects the budget; otherwise `gaussian.iterations`.
    pub fn from_config(iterations: u32, time_budget_ms: f64, max_iterations: u32) -> Self {
        if time_budget_ms > 0.0 {
            Limit::Budget {
                ms: time_budget_ms,
                max: max_iterations.max(1),
            }
        } else {
            Limit::Fixed(iterations)
        }
    }
}

/// Weight of the newest measurement in the running costs.
const SMOOTHING: f64 = 0.3;

/// Running costs of an iteration and of a frame's tail, and the current frame's start.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    clock: Clock,
    iteration_ms: Option<f64>,
    tail_ms: Option<f64>,
    frame_start: f64,
    iteration_start: f64,
    tail_start: f64,
}

fn smooth(old: Option<f64>, new: f64) -> Option<f64> {
    Some(old.map_or(new, |o| o + SMOOTHING * (new - o)))
}

impl Pace {
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            ..Default::default()
        }
    }

    pub fn start_frame(&mut self) {
        self.frame_start = self.clock.ms();
    }

    /// Milliseconds since [`Pace::start_frame`].
    pub fn elapsed_ms(&self) -> f64 {
        self.clock.ms() - self.frame_start
    }

    /// Cost of one iteration (the running mean; 0 before the first).
    pub fn iteration_ms(&self) -> f64 {
        self.iteration_ms.unwrap_or(0.0)
    }

    /// Cost of the tail (before it was ever measured: an iteration's).
    fn tail_ms(&self) -> f64 {
        self.tail_ms.unwrap_or(self.iteration_ms())
    }

    /// Whether iteration `it` (from 0) runs.
    pub fn more(&self, limit: Limit, it: u32) -> bool {
        match limit {
            Limit::Fixed(n) => it < n,
            Limit::Budget { ms, max } => {
                it == 0
                    || (it < max && self.elapsed_ms() + self.iteration_ms() + self.tail_ms() <= ms)
            }
        }
    }

    /// Whether at most two iterations follow `it` (the last ones on the current frame record
    /// its loss).
    pub fn near_end(&self, limit: Limit, it: u32) -> bool {
        match limit {
            Limit::Fixed(n) => it + 2 >= n,
            Limit::Budget { ms, max } => {
                it + 2 >= max || self.elapsed_ms() + 3.0 * self.iteration_ms() + self.tail_ms() > ms
            }
        }
    }

    pub fn start_iteration(&mut self) {
        self.iteration_start = self.clock.ms();
    }

    pub fn end_iteration(&mut self) {
        let took = self.clock.ms() - self.iteration_start;
        self.iteration_ms = smooth(self.iteration_ms, took);
    }

    pub fn start_tail(&mut self) {
        self.tail_start = self.clock.ms();
    }

    pub fn end_tail(&mut self) {
        let took = self.clock.ms() - self.tail_start;
        self.tail_ms = smooth(self.tail_ms, took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advance(us: &AtomicU64, ms: f64) {
        us.fetch_add((ms * 1e3) as u64, Ordering::Relaxed);
    }

    /// Simulates frames of `cost_ms` per iteration and `tail_ms` after them; returns the
    /// iterations and the time of each frame.
    fn frames(
        pace: &mut Pace,
        us: &AtomicU64,
        limit: Limit,
        cost_ms: f64,
        n: usize,
    ) -> Vec<(u32, f64)> {
        (0..n)
            .map(|_| {
                pace.start_frame();
                advance(us, 3.0); // sync, view, exposure refit
                let mut it = 0;
                while pace.more(limit, it) {
                    pace.start_iteration();
                    advance(us, cost_ms);
                    pace.end_iteration();
                    it += 1;
                }
                pace.start_tail();
                advance(us, 8.0);
                pace.end_tail();
                (it, pace.elapsed_ms())
            })
            .collect()
    }

    #[test]
    fn budget_bounds_the_frame_time_and_follows_changes() {
        let us = Arc::new(AtomicU64::new(0));
        let mut pace = Pace::with_clock(Clock::Manual(us.clone()));
        let limit = Limit::Budget { ms: 100.0, max: 40 };
        let runs = frames(&mut pace, &us, limit, 12.0, 5);
        // After the first frame (tail unknown) every frame fits: 3 + 7 * 12 + 8 = 95 ms.
        for &(it, ms) in &runs[1..] {
            assert_eq!(it, 7, "{runs:?}");
            assert!(ms <= 100.0, "{runs:?}");
        }
        // A larger budget buys more iterations, a smaller one fewer; never fewer than one.
        let more = frames(
            &mut pace,
            &us,
            Limit::Budget { ms: 250.0, max: 40 },
            12.0,
            3,
        );
        assert_eq!(more.last().unwrap().0, 19, "{more:?}");
        let less = frames(&mut pace, &us, Limit::Budget { ms: 10.0, max: 40 }, 12.0, 3);
        assert!(less.iter().all(|&(it, _)| it == 1), "{less:?}");
        // A slower renderer (e.g. a bigger window) is followed within a few frames.
        let slow = frames(&mut pace, &us, limit, 30.0, 6);
        assert!(
            slow[3..].iter().all(|&(it, ms)| it == 2 && ms <= 100.0),
            "{slow:?}"
        );
        // The cap holds however much time is left.
        let capped = frames(&mut pace, &us, Limit::Budget { ms: 1e6, max: 40 }, 12.0, 2);
        assert!(capped.iter().all(|&(it, _)| it == 40), "{capped:?}");
        // Fixed counts ignore the clock.
        let fixed = frames(&mut pace, &us, Limit::Fixed(3), 500.0, 2);
        assert!(fixed.iter().all(|&(it, _)| it == 3), "{fixed:?}");
    }
}
