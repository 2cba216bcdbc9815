//! Sensor data as the rest of the system sees it: decoded, in SI units, stamped in nanoseconds.
//!
//! Decoders in `bag/` (and the ROS node) produce these; nothing below here knows about CDR.

use nalgebra::{Isometry3, Vector3};

pub mod measurement;
pub mod rig;
pub use measurement::Measurement;
pub use rig::Camera;

/// Nanoseconds since the Unix epoch. All time inside the system uses this.
pub type Stamp = u64;

/// Converts seconds (f64) to a [`Stamp`], saturating at zero.
pub fn stamp_from_secs(secs: f64) -> Stamp {
    if secs <= 0.0 || !secs.is_finite() {
        0
    } else {
        (secs * 1e9).round() as Stamp
    }
}

/// Converts a [`Stamp`] to seconds.
pub fn stamp_to_secs(stamp: Stamp) -> f64 {
    stamp as f64 * 1e-9
}

/// Signed difference `a - b` in seconds.
pub fn stamp_diff_secs(a: Stamp, b: Stamp) -> f64 {
    (a as i128 - b as i128) as f64 * 1e-9
}

/// One IMU measurement in the IMU frame: angular velocity (rad/s) and specific force (m/s^2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImuSample {
    pub stamp: Stamp,
    pub gyro: Vector3<f64>,
    pub accel: Vector3<f64>,
}

/// A LiDAR scan as a structure of arrays, in the LiDAR frame.
///
/// `stamp` is the header stamp; `time`, when the cloud carries a per-point time field, holds each
/// point's time in seconds relative to `stamp` (may be negative for drivers that stamp scan end).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointCloud {
    pub stamp: Stamp,
    pub frame_id: String,
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub z: Vec<f32>,
    /// Intensity or reflectivity; zeros when the cloud has none.
    pub intensity: Vec<f32>,
    /// Per-point time in seconds relative to `stamp`; `None` when the cloud has no time field.
    pub time: Option<Vec<f32>>,
    /// Points the decoder dropped because a coordinate was NaN or infinite.
    pub skipped_non_finite: usize,
}

impl PointCloud {
    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    pub fn with_capacity(stamp: Stamp, frame_id: &str, n: usize, has_time: bool) -> Self {
        Self {
            stamp,
            frame_id: frame_id.to_string(),
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            intensity: Vec::with_capacity(n),
            time: has_time.then(|| Vec::with_capacity(n)),
            skipped_non_finite: 0,
        }
    }

    /// Appends a point; `time` is ignored when the cloud has no time field.
    pub fn push(&mut self, p: [f32; 3], intensity: f32, time: f32) {
        self.x.push(p[0]);
        self.y.push(p[1]);
        self.z.push(p[2]);
        self.intensity.push(intensity);
        if let Some(t) = self.time.as_mut() {
            t.push(time);
        }
    }

    pub fn point(&self, i: usize) -> Vector3<f64> {
        Vector3::new(self.x[i] as f64, self.y[i] as f64, self.z[i] as f64)
    }

    /// The absolute time of point `i` (the header stamp when there is no time field).
    pub fn point_stamp(&self, i: usize) -> Stamp {
        match &self.time {
            Some(t) => (self.stamp as i128 + (t[i] as f64 * 1e9).round() as i128).max(0) as Stamp,
            None => self.stamp,
        }
    }

    /// Earliest and latest point time in seconds relative to `stamp` (0, 0 without a time field).
    pub fn time_span(&self) -> (f32, f32) {
        match &self.time {
            Some(t) if !t.is_empty() => t
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                }),
            _ => (0.0, 0.0),
        }
    }
}

/// An RGB8 image, row-major, tightly packed (`width * 3` bytes per row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    pub stamp: Stamp,
    pub frame_id: String,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn new(stamp: Stamp, width: u32, height: u32) -> Self {
        Self {
            stamp,
            frame_id: String::new(),
            width,
            height,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// A stamped pose `T_parent_child` (e.g. ground truth or estimated body pose in the map frame).
#[derive(Debug, Clone, PartialEq)]
pub struct PoseStamped {
    pub stamp: Stamp,
    pub pose: Isometry3<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_conversions_round_trip() {
        let s = stamp_from_secs(1_700_000_000.125);
        assert!((stamp_to_secs(s) - 1_700_000_000.125).abs() < 1e-6);
        assert_eq!(stamp_from_secs(-1.0), 0);
        assert_eq!(stamp_diff_secs(1_000_000_000, 2_000_000_000), -1.0);
    }

    #[test]
    fn point_stamp_uses_relative_time() {
        let mut c = PointCloud::with_capacity(1_000_000_000, "lidar", 2, true);
        c.push([1.0, 2.0, 3.0], 0.0, 0.05);
        c.push([1.0, 2.0, 3.0], 0.0, -0.01);
        // f32 relative times resolve to a few nanoseconds over a 0.1 s scan.
        assert!(c.point_stamp(0).abs_diff(1_050_000_000) <= 10);
        assert!(c.point_stamp(1).abs_diff(990_000_000) <= 10);
        assert_eq!(c.time_span(), (-0.01, 0.05));
    }
}
