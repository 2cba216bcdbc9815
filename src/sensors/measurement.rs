//! One decoded sensor message on its way from ingestion (bag reader or ROS node) into the
//! pipeline, and the per-sensor corrections the config asks for.

use super::rig::{Imu, TimeOffset};
use super::{Image, ImuSample, PointCloud, Stamp};

/// A decoded sensor message, in SI units and on the sensor's own clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    Imu(ImuSample),
    Cloud(PointCloud),
    Image(Image),
}

/// Which sensor a [`Measurement`] came from (for counters and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SensorKind {
    Imu,
    Lidar,
    Camera,
}

impl SensorKind {
    pub const ALL: [SensorKind; 3] = [SensorKind::Imu, SensorKind::Lidar, SensorKind::Camera];

    pub fn name(self) -> &'static str {
        match self {
            SensorKind::Imu => "imu",
            SensorKind::Lidar => "lidar",
            SensorKind::Camera => "camera",
        }
    }

    /// Position in [`SensorKind::ALL`], for per-sensor arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Measurement {
    pub fn stamp(&self) -> Stamp {
        match self {
            Measurement::Imu(m) => m.stamp,
            Measurement::Cloud(m) => m.stamp,
            Measurement::Image(m) => m.stamp,
        }
    }

    pub fn kind(&self) -> SensorKind {
        match self {
            Measurement::Imu(_) => SensorKind::Imu,
            Measurement::Cloud(_) => SensorKind::Lidar,
            Measurement::Image(_) => SensorKind::Camera,
        }
    }
}

/// Unit and clock corrections from the config (`imu.accel_scale`, `time_offset.*`).
///
/// Decoders return what the driver published; the ingest stage (bag reader or ROS node) applies
/// these exactly once, so that everything downstream sees m/s^2 and stamps on the IMU clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SensorCorrections {
    /// Multiplies the accelerometer reading (9.81 for drivers that publish in g).
    pub accel_scale: f64,
    /// Nanoseconds added to LiDAR stamps.
    pub lidar_offset_ns: i64,
    /// Nanoseconds added to camera stamps.
    pub camera_offset_ns: i64,
}

impl Default for SensorCorrections {
    fn default() -> Self {
        Self {
            accel_scale: 1.0,
            lidar_offset_ns: 0,
            camera_offset_ns: 0,
        }
    }
}

impl SensorCorrections {
    /// The corrections of the rig's `imu.accel_scale` and `time_offset.*`.
    pub fn new(imu: &Imu, time_offset: &TimeOffset) -> Self {
        let ns = |s: f64| (s * 1e9).round() as i64;
        Self {
            accel_scale: imu.accel_scale,
            lidar_offset_ns: ns(time_offset.lidar),
            camera_offset_ns: ns(time_offset.camera),
        }
    }

    /// Applies the corrections in place. A stamp shifted below zero saturates at zero.
    pub fn apply(&self, m: &mut Measurement) {
        let shift = |stamp: &mut Stamp, by: i64| {
            *stamp = (*stamp as i128 + by as i128).clamp(0, Stamp::MAX as i128) as Stamp;
        };
        match m {
            Measurement::Imu(s) => s.accel *= self.accel_scale,
            Measurement::Cloud(c) => shift(&mut c.stamp, self.lidar_offset_ns),
            Measurement::Image(i) => shift(&mut i.stamp, self.camera_offset_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn corrections_scale_accel_and_shift_stamps() {
        let imu = Imu {
            accel_scale: 9.81,
            ..Imu::default()
        };
        let offsets = TimeOffset {
            lidar: -0.25,
            camera: 0.0125,
        };
        let c = SensorCorrections::new(&imu, &offsets);

        let mut imu = Measurement::Imu(ImuSample {
            stamp: 5,
            gyro: Vector3::new(0.1, 0.2, 0.3),
            accel: Vector3::new(0.0, 0.0, 1.0),
        });
        c.apply(&mut imu);
        let Measurement::Imu(s) = &imu else { panic!() };
        assert!((s.accel.z - 9.81).abs() < 1e-12);
        assert_eq!(s.gyro, Vector3::new(0.1, 0.2, 0.3));
        assert_eq!(s.stamp, 5, "IMU defines the clock");

        let mut cloud = Measurement::Cloud(PointCloud {
            stamp: 1_000_000_000,
            ..Default::default()
        });
        c.apply(&mut cloud);
        assert_eq!(cloud.stamp(), 750_000_000);
        assert_eq!(cloud.kind(), SensorKind::Lidar);

        let mut img = Measurement::Image(Image::new(2_000_000_000, 2, 2));
        c.apply(&mut img);
        assert_eq!(img.stamp(), 2_012_500_000);

        // Saturates instead of wrapping.
        let mut early = Measurement::Cloud(PointCloud {
            stamp: 100,
            ..Default::default()
        });
        c.apply(&mut early);
        assert_eq!(early.stamp(), 0);
    }

    #[test]
    fn kinds_index_their_slot() {
        for (i, k) in SensorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
