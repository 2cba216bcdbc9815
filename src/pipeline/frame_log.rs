//! What the outputs writer records per frame for the plots (`frames.csv`), and which renders
//! it keeps as PNGs (a fixed number spread evenly over the whole run).

use std::collections::BTreeMap;

use super::stages::LiveStats;
use crate::eval::records::{FrameRecord, FrameTable};
use crate::sensors::{stamp_diff_secs, Stamp};

/// Per-frame stage times and map sizes, from the shared statistics as each pose arrives.
///
/// The threads add their stage times to the running totals before they send a frame's pose,
/// so the totals' growth between two poses is what the pipeline spent in between. When the
/// writer falls behind (its pose k arrives after the estimator finished k + n), the growth is
/// split evenly over the frames it covers. Mapper stages run on their own thread, so a frame's
/// mapper time is the mapping done while that frame was estimated.
#[derive(Debug, Default)]
pub struct FrameLog {
    t0: Option<Stamp>,
    /// Estimated frames covered by the totals taken so far.
    covered: u64,
    last_totals: BTreeMap<String, f64>,
    pending: BTreeMap<u64, BTreeMap<String, f64>>,
    rows: Vec<(FrameRecord, BTreeMap<String, f64>)>,
}

impl FrameLog {
    /// Seconds of `stamp` since the first pose (0 before it).
    pub fn time_of(&self, stamp: Stamp) -> f64 {
        self.t0.map_or(0.0, |t0| stamp_diff_secs(stamp, t0))
    }

    /// Records frame `frame` (at `stamp`) from the statistics as of now.
    pub fn pose(&mut self, frame: u64, stamp: Stamp, live: &LiveStats) {
        let t0 = *self.t0.get_or_insert(stamp);
        let done = live.frames.max(frame + 1);
        if done > self.covered {
            let n = (done - self.covered) as f64;
            for (stage, &total) in live.timings.totals() {
                let before = self.last_totals.get(stage).copied().unwrap_or(0.0);
                let share = (total - before).max(0.0) / n;
                for k in self.covered..done {
                    *self
                        .pending
                        .entry(k)
                        .or_default()
                        .entry(stage.clone())
                        .or_default() += share;
                }
            }
            self.last_totals = live.timings.totals().clone();
            self.covered = done;
        }
        // Frames before this one whose poses never came (dropped live) are left out.
        self.pending = self.pending.split_off(&frame);
        let times = self.pending.remove(&frame).unwrap_or_default();
        let rec = FrameRecord {
            frame,
            time_s: stamp_diff_secs(stamp, t0),
            map_gaussians: live.gaussians,
            window_gaussians: live.window,
            stage_ms: Vec::new(),
        };
        self.rows.push((rec, times));
    }

    /// The table with one column per stage seen in any frame (0 where a frame had none).
    pub fn table(&self) -> FrameTable {
        let mut names: Vec<String> = self
            .rows
            .iter()
            .flat_map(|(_, t)| t.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        let rows = self
            .rows
            .iter()
            .map(|(r, t)| FrameRecord {
                stage_ms: names
                    .iter()
                    .map(|n| t.get(n).copied().unwrap_or(0.0))
                    .collect(),
                ..r.clone()
            })
            .collect();
        FrameTable {
            stages: names,
            rows,
        }
    }
}

/// Keeps at most `max` renders as PNGs, spread evenly over the run without knowing its length:
/// every `stride`-th render is kept, and when the budget is full the stride doubles and every
/// other kept render is evicted. So the kept ones always span the run so far, between `max / 2`
/// and `max` of them.
#[derive(Debug)]
pub struct RenderPicker {
    max: usize,
    stride: u64,
    next: u64,
    /// (render number, files written for it).
    kept: Vec<(u64, Vec<String>)>,
}

/// What to do with the next render.
#[derive(Debug, Default, PartialEq)]
pub struct Pick {
    /// Write it (its number is passed back to [`RenderPicker::kept`]).
    pub keep: Option<u64>,
    /// Render numbers and files of earlier renders to delete.
    pub evict: Vec<(u64, Vec<String>)>,
}

impl RenderPicker {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            stride: 1,
            next: 0,
            kept: Vec::new(),
        }
    }

    /// Decides about the next render; `always` (a held-out view) is kept outside the budget.
    pub fn offer(&mut self, always: bool) -> Pick {
        let n = self.next;
        self.next += 1;
        if always {
            return Pick {
                keep: Some(n),
                evict: Vec::new(),
            };
        }
        if self.max == 0 || !n.is_multiple_of(self.stride) {
            return Pick::default();
        }
        let mut evict = Vec::new();
        while self.kept.len() >= self.max {
            self.stride *= 2;
            let stride = self.stride;
            let (stay, go): (Vec<_>, Vec<_>) = std::mem::take(&mut self.kept)
                .into_iter()
                .partition(|(k, _)| k.is_multiple_of(stride));
            self.kept = stay;
            evict.extend(go);
        }
        Pick {
            keep: n.is_multiple_of(self.stride).then_some(n),
            evict,
        }
    }

    /// Notes that render `n` was written as `files` (evictable later).
    pub fn kept(&mut self, n: u64, files: Vec<String>) {
        self.kept.push((n, files));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picker_spreads_over_the_whole_run() {
        for total in [1u64, 5, 6, 7, 50, 333] {
            let mut p = RenderPicker::new(6);
            let mut kept: Vec<u64> = Vec::new();
            for _ in 0..total {
                let pick = p.offer(false);
                for (n, files) in &pick.evict {
                    assert_eq!(files, &vec![format!("f{n}")]);
                    kept.retain(|k| k != n);
                }
                if let Some(n) = pick.keep {
                    p.kept(n, vec![format!("f{n}")]);
                    kept.push(n);
                }
            }
            assert!(kept.len() <= 6, "{total}: {kept:?}");
            assert!(
                kept.len() >= 6.min(total as usize).div_ceil(2),
                "{total}: {kept:?}"
            );
            assert_eq!(kept[0], 0);
            // Evenly spaced, and the last one within one spacing of the run's end.
            let gaps: Vec<u64> = kept.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.windows(2).all(|g| g[0] == g[1]), "{total}: {kept:?}");
            let step = gaps.first().copied().unwrap_or(1);
            assert!(
                total - 1 - kept.last().unwrap() < step.max(1),
                "{total}: {kept:?}"
            );
        }
        let mut none = RenderPicker::new(0);
        assert_eq!(none.offer(false), Pick::default());
        assert_eq!(none.offer(true).keep, Some(1));
    }

    fn live(frames: u64, totals: &[(&str, f64)], gaussians: usize) -> LiveStats {
        let mut s = LiveStats {
            frames,
            gaussians,
            window: gaussians / 2,
            ..Default::default()
        };
        for (k, v) in totals {
            s.timings.add(k, *v);
        }
        s
    }

    #[test]
    fn frame_log_takes_differences_and_splits_when_behind() {
        let mut log = FrameLog::default();
        let s = 1_000_000_000u64;
        log.pose(0, s, &live(1, &[("lio", 10.0)], 100));
        log.pose(
            1,
            s + 100_000_000,
            &live(2, &[("lio", 30.0), ("map", 8.0)], 150),
        );
        // The writer is behind: when pose 2 arrives the estimator has done frames 2, 3 and 4.
        let behind = live(5, &[("lio", 90.0), ("map", 20.0)], 300);
        log.pose(2, s + 200_000_000, &behind);
        log.pose(3, s + 300_000_000, &behind);
        // Frame 4's pose was dropped; frame 5 arrives in time.
        log.pose(
            5,
            s + 500_000_000,
            &live(6, &[("lio", 100.0), ("map", 20.0)], 320),
        );
        let t = log.table();
        assert_eq!(t.stages, vec!["lio".to_string(), "map".to_string()]);
        let frames: Vec<u64> = t.rows.iter().map(|r| r.frame).collect();
        assert_eq!(frames, vec![0, 1, 2, 3, 5]);
        let lio = t.stage("lio").unwrap();
        assert_eq!(lio, vec![10.0, 20.0, 20.0, 20.0, 10.0]);
        assert_eq!(t.stage("map").unwrap(), vec![0.0, 8.0, 4.0, 4.0, 0.0]);
        assert!((t.rows[4].time_s - 0.5).abs() < 1e-12);
        assert_eq!(
            (t.rows[2].map_gaussians, t.rows[2].window_gaussians),
            (300, 150)
        );
    }
}
