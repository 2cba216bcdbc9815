//! Motion compensation: every point moved to the scan-end body frame with the propagated poses.

use nalgebra::{Isometry3, Matrix3, Vector3};

use super::ieskf::Segment;
use crate::sensors::Stamp;

/// Transforms lidar-frame points stamped `times[i]` into the body frame at `end`.
///
/// `segments` are the constant-input intervals from the IMU propagation (oldest first);
/// `end_pose` is the propagated `T_world_body` at `end`. Points outside the covered interval
/// use the nearest segment's constant-input extrapolation.
pub fn deskew(
    points: &[Vector3<f64>],
    times: &[Stamp],
    segments: &[Segment],
    end_pose: &Isometry3<f64>,
    imu_t_lidar: &Isometry3<f64>,
) -> Vec<Vector3<f64>> {
    let r_il = imu_t_lidar.rotation.to_rotation_matrix().into_inner();
    let t_il = imu_t_lidar.translation.vector;
    let r_end_t = end_pose
        .rotation
        .to_rotation_matrix()
        .into_inner()
        .transpose();
    let p_end = end_pose.translation.vector;
    let mut out = Vec::with_capacity(points.len());
    // Points are mostly time-ordered: cache the last segment and its pose at the last time.
    let mut cache: Option<(usize, Stamp, Matrix3<f64>, Vector3<f64>)> = None;
    for (pl, &t) in points.iter().zip(times) {
        let pb = r_il * pl + t_il;
        if segments.is_empty() {
            out.push(pb);
            continue;
        }
        let k = segments.partition_point(|s| s.t0 <= t).saturating_sub(1);
        let (r, p) = match cache {
            Some((ck, ct, r, p)) if ck == k && ct == t => (r, p),
            _ => {
                let (r, p) = segments[k].pose_at(t);
                cache = Some((k, t, r, p));
                (r, p)
            }
        };
        out.push(r_end_t * (r * pb + p - p_end));
    }
    out
}
