//! Measurement packages: groups IMU samples, a LiDAR scan (and images) by time.
//!
//! A package holds one scan and every IMU sample up to the scan end, released once the IMU has
//! passed the scan end. Duplicated, out-of-order and non-finite inputs are dropped and counted;
//! gaps and time jumps are counted and flagged, so the estimator can react; nothing panics.

use std::collections::VecDeque;

use crate::sensors::{stamp_diff_secs, Image, ImuSample, PointCloud, Stamp};

/// Thresholds of the synchroniser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncSettings {
    /// IMU intervals longer than this (s) are counted as gaps.
    pub imu_gap: f64,
    /// Stamp changes larger than this (s, either direction) are time jumps.
    pub time_jump: f64,
    /// Most scans waiting for IMU; older ones are dropped beyond this.
    pub max_pending_scans: usize,
    /// Seconds added to LiDAR and camera stamps.
    pub lidar_offset: f64,
    pub camera_offset: f64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            imu_gap: 0.05,
            time_jump: 1.0,
            max_pending_scans: 50,
            lidar_offset: 0.0,
            camera_offset: 0.0,
        }
    }
}

/// Everything the estimator needs for one scan.
#[derive(Debug, Clone, Default)]
pub struct MeasurementPackage {
    /// IMU samples after the previous package's scan end, up to and including this scan end.
    pub imu: Vec<ImuSample>,
    pub scan: PointCloud,
    pub scan_end: Stamp,
    /// Images stamped up to the scan end (camera offset applied).
    pub images: Vec<Image>,
    /// The clock jumped since the previous package (the IMU samples start on the new clock).
    pub time_jump: bool,
}

/// What was dropped or flagged.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SyncCounters {
    pub imu: usize,
    pub scans: usize,
    pub images: usize,
    pub imu_duplicates: usize,
    pub imu_out_of_order: usize,
    pub imu_non_finite: usize,
    pub imu_gaps: usize,
    pub time_jumps: usize,
    pub empty_scans: usize,
    pub non_finite_points: usize,
    pub scans_out_of_order: usize,
    pub scans_dropped_pending: usize,
    pub images_out_of_order: usize,
    pub scans_unmatched_at_end: usize,
}

#[derive(Debug, Default)]
pub struct Synchronizer {
    settings: SyncSettings,
    imu: VecDeque<ImuSample>,
    scans: VecDeque<(Stamp, PointCloud)>,
    images: VecDeque<Image>,
    last_imu: Option<Stamp>,
    last_scan_end: Option<Stamp>,
    last_image: Option<Stamp>,
    jump_pending: bool,
    counters: SyncCounters,
}

fn offset(stamp: Stamp, secs: f64) -> Stamp {
    (stamp as i128 + (secs * 1e9).round() as i128).max(0) as Stamp
}

impl Synchronizer {
    pub fn new(settings: SyncSettings) -> Self {
        Self {
            settings,
            ..Default::default()
        }
    }

    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    pub fn push_imu(&mut self, s: ImuSample) {
        self.counters.imu += 1;
        if !s.gyro.iter().chain(s.accel.iter()).all(|v| v.is_finite()) {
            self.counters.imu_non_finite += 1;
            tracing::warn!("non-finite IMU sample at {} dropped", s.stamp);
            return;
        }
        if let Some(last) = self.last_imu {
            let dt = stamp_diff_secs(s.stamp, last);
            if dt == 0.0 {
                self.counters.imu_duplicates += 1;
                tracing::debug!("duplicate IMU stamp {} dropped", s.stamp);
                return;
            }
            if dt < -self.settings.time_jump || dt > self.settings.time_jump {
                self.counters.time_jumps += 1;
                tracing::warn!("IMU time jump of {dt:.3} s at {}: clock restarted", s.stamp);
                // Start over on the new clock: pending data from the old clock is released as is.
                self.jump_pending = true;
                self.last_scan_end = None;
                self.last_image = None;
                // Scans from the old clock can no longer be matched.
                self.counters.scans_unmatched_at_end += self.scans.len();
                self.scans.clear();
                self.imu.clear();
                self.images.clear();
            } else if dt < 0.0 {
                self.counters.imu_out_of_order += 1;
                tracing::debug!("out-of-order IMU stamp {} dropped", s.stamp);
                return;
            } else if dt > self.settings.imu_gap {
                self.counters.imu_gaps += 1;
                tracing::warn!("IMU gap of {dt:.3} s before {}", s.stamp);
            }
        }
        self.last_imu = Some(s.stamp);
        self.imu.push_back(s);
    }

    pub fn push_scan(&mut self, mut scan: PointCloud) {
        self.counters.scans += 1;
        self.counters.non_finite_points += scan.skipped_non_finite;
        if scan.is_empty() {
            self.counters.empty_scans += 1;
            tracing::warn!("empty scan at {} skipped", scan.stamp);
            return;
        }
        scan.stamp = offset(scan.stamp, self.settings.lidar_offset);
        let (_, hi) = scan.time_span();
        let end = if hi.is_finite() {
            offset(scan.stamp, hi as f64)
        } else {
            scan.stamp
        };
        let newest = self.scans.back().map(|s| s.0).or(self.last_scan_end);
        if let Some(prev) = newest {
            let dt = stamp_diff_secs(end, prev);
            if dt <= 0.0 && dt > -self.settings.time_jump {
                self.counters.scans_out_of_order += 1;
                tracing::warn!("scan ending at {end} is not after the previous one: skipped");
                return;
            }
        }
        self.scans.push_back((end, scan));
        while self.scans.len() > self.settings.max_pending_scans {
            self.scans.pop_front();
            self.counters.scans_dropped_pending += 1;
            tracing::warn!("no IMU for pending scans: oldest dropped");
        }
    }

    pub fn push_image(&mut self, mut img: Image) {
        self.counters.images += 1;
        img.stamp = offset(img.stamp, self.settings.camera_offset);
        if let Some(last) = self.last_image {
            if img.stamp <= last {
                self.counters.images_out_of_order += 1;
                return;
            }
        }
        self.last_image = Some(img.stamp);
        self.images.push_back(img);
    }

    /// The next complete package, if the IMU has passed the oldest scan's end.
    pub fn pop(&mut self) -> Option<MeasurementPackage> {
        let last_imu = self.last_imu?;
        let &(end, _) = self.scans.front()?;
        if last_imu < end {
            return None;
        }
        let (end, scan) = self.scans.pop_front()?;
        let mut imu = Vec::new();
        while let Some(s) = self.imu.front() {
            if s.stamp > end {
                break;
            }
            imu.extend(self.imu.pop_front());
        }
        let mut images = Vec::new();
        while let Some(i) = self.images.front() {
            if i.stamp > end {
                break;
            }
            images.extend(self.images.pop_front());
        }
        self.last_scan_end = Some(end);
        Some(MeasurementPackage {
            imu,
            scan,
            scan_end: end,
            images,
            time_jump: std::mem::take(&mut self.jump_pending),
        })
    }

    /// Call at end of input: counts scans that never got IMU coverage.
    pub fn finish(&mut self) {
        let n = self.scans.len();
        if n > 0 {
            tracing::warn!("{n} scans at the end have no IMU up to their end: dropped");
        }
        self.counters.scans_unmatched_at_end += n;
        self.scans.clear();
    }
}
