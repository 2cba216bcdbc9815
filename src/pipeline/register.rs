//! Registered scans for the map and the outputs: every point of a scan moved into the world
//! frame with the body pose at its own time.
//!
//! The estimator deskews a downsampled copy for its update; the Gaussian map wants the full
//! cloud. Between two estimated scan-end poses the motion is interpolated (linear translation,
//! slerp rotation), which at 10 Hz matches the IMU-propagated deskew to millimetres for the
//! smooth motions of handheld and ground robots.

use nalgebra::{Isometry3, Point3, Translation3};

use crate::sensors::{stamp_diff_secs, PointCloud, PoseStamped};

/// Body pose at fraction `a` between `p0` (a = 0) and `p1` (a = 1); extrapolates outside.
pub(crate) fn interpolate(p0: &Isometry3<f64>, p1: &Isometry3<f64>, a: f64) -> Isometry3<f64> {
    let t = p0.translation.vector * (1.0 - a) + p1.translation.vector * a;
    let d = p0.rotation.inverse() * p1.rotation;
    let r = p0.rotation * d.powf(a);
    Isometry3::from_parts(Translation3::from(t), r)
}

/// World points of `scan` (LiDAR frame, per-point times) between `min_range` and `max_range`,
/// given the body poses at the previous and the current scan end and `imu_t_lidar`. Non-finite
/// points are skipped. Without a previous pose every point uses the current one.
pub fn register_scan(
    scan: &PointCloud,
    prev: Option<&PoseStamped>,
    cur: &PoseStamped,
    imu_t_lidar: &Isometry3<f64>,
    min_range: f64,
    max_range: f64,
) -> Vec<[f64; 3]> {
    register_scan_with_intensity(scan, prev, cur, imu_t_lidar, min_range, max_range, None)
}

/// [`register_scan`], also collecting the intensity of every kept point into `intensity`
/// (0 where the cloud has none), for the published registered scan.
pub fn register_scan_with_intensity(
    scan: &PointCloud,
    prev: Option<&PoseStamped>,
    cur: &PoseStamped,
    imu_t_lidar: &Isometry3<f64>,
    min_range: f64,
    max_range: f64,
    mut intensity: Option<&mut Vec<f32>>,
) -> Vec<[f64; 3]> {
    let span = prev.map(|p| stamp_diff_secs(cur.stamp, p.stamp));
    let (r2_lo, r2_hi) = (min_range * min_range, max_range * max_range);
    let mut out = Vec::with_capacity(scan.len());
    // Poses are cached per distinct time bucket (points of one firing share a time).
    let mut cache: Option<(u64, Isometry3<f64>)> = None;
    for i in 0..scan.len() {
        let p = scan.point(i);
        if !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite()) {
            continue;
        }
        let r2 = p.norm_squared();
        if r2 < r2_lo || r2 > r2_hi {
            continue;
        }
        let stamp = scan.point_stamp(i);
        let pose = match (prev, span) {
            (Some(p0), Some(dt)) if dt > 1e-6 && stamp < cur.stamp => match cache {
                Some((s, pose)) if s == stamp => pose,
                _ => {
                    let a = stamp_diff_secs(stamp, p0.stamp) / dt;
                    let pose = interpolate(&p0.pose, &cur.pose, a.clamp(-1.0, 1.0)) * imu_t_lidar;
                    cache = Some((stamp, pose));
                    pose
                }
            },
            _ => cur.pose * imu_t_lidar,
        };
        let w = pose * Point3::from(p);
        out.push([w.x, w.y, w.z]);
        if let Some(v) = intensity.as_deref_mut() {
            v.push(scan.intensity.get(i).copied().unwrap_or(0.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{UnitQuaternion, Vector3};

    /// A point fixed in the world, observed by a moving, turning sensor at different times,
    /// registers to the same world point.
    #[test]
    fn registers_a_static_point_seen_while_moving() {
        let t0 = 1_000_000_000u64;
        let dt = 100_000_000u64;
        let pose_at = |a: f64| {
            Isometry3::from_parts(
                Translation3::new(1.0 * a, 0.5 * a, 0.0),
                UnitQuaternion::from_euler_angles(0.0, 0.0, 0.3 * a),
            )
        };
        let imu_t_lidar = Isometry3::from_parts(
            Translation3::new(0.05, 0.0, 0.1),
            UnitQuaternion::from_euler_angles(0.0, 0.0, 0.02),
        );
        let world = Vector3::new(5.0, 2.0, 1.0);
        let mut scan = PointCloud::with_capacity(t0, "lidar", 11, true);
        for k in 0..=10 {
            let a = k as f64 / 10.0;
            let pl = (pose_at(a) * imu_t_lidar).inverse() * Point3::from(world);
            scan.push(
                [pl.x as f32, pl.y as f32, pl.z as f32],
                0.0,
                (a * 0.1) as f32,
            );
        }
        let prev = PoseStamped {
            stamp: t0,
            pose: pose_at(0.0),
        };
        let cur = PoseStamped {
            stamp: t0 + dt,
            pose: pose_at(1.0),
        };
        let pts = register_scan(&scan, Some(&prev), &cur, &imu_t_lidar, 0.1, 100.0);
        assert_eq!(pts.len(), 11);
        for p in &pts {
            let e = (Vector3::from(*p) - world).norm();
            // Linear-translation + slerp vs the same motion: exact up to f32 input rounding.
            assert!(e < 1e-5, "{e}");
        }
        // Without the previous pose the early points are off by the motion during the scan.
        let pts = register_scan(&scan, None, &cur, &imu_t_lidar, 0.1, 100.0);
        let e0 = (Vector3::from(pts[0]) - world).norm();
        assert!(e0 > 0.5, "{e0}");
        // Range filter.
        assert!(register_scan(&scan, Some(&prev), &cur, &imu_t_lidar, 50.0, 100.0).is_empty());
    }
}
