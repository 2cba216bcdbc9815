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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::state::State;
    use nalgebra::{Translation3, UnitQuaternion};

    /// Constant yaw rate and velocity: a point observed at time t must land where the static
    /// world point is, seen from the end pose.
    #[test]
    fn deskew_matches_constant_motion() {
        let w = Vector3::new(0.0, 0.0, 1.5);
        let v = Vector3::new(2.0, 0.5, 0.0);
        let t0: Stamp = 1_000_000_000;
        let seg = Segment {
            t0,
            state: State {
                vel: v,
                ..Default::default()
            },
            omega: w,
            acc_world: Vector3::zeros(),
        };
        let pose = |t: f64| {
            Isometry3::from_parts(
                Translation3::from(v * t),
                UnitQuaternion::from_scaled_axis(w * t),
            )
        };
        let ext = Isometry3::from_parts(
            Translation3::new(0.1, 0.0, 0.2),
            UnitQuaternion::from_euler_angles(0.0, 0.1, 0.3),
        );
        let world = [Vector3::new(5.0, 1.0, 0.5), Vector3::new(-3.0, 4.0, 1.0)];
        let times = [t0 + 20_000_000, t0 + 80_000_000];
        let end_t = 0.1;
        let pts: Vec<Vector3<f64>> = world
            .iter()
            .zip(times)
            .map(|(pw, t)| {
                let tb = pose((t - t0) as f64 * 1e-9);
                (tb * ext).inverse_transform_point(&(*pw).into()).coords
            })
            .collect();
        let out = deskew(&pts, &times, &[seg], &pose(end_t), &ext);
        for (o, pw) in out.iter().zip(&world) {
            let want = pose(end_t).inverse_transform_point(&(*pw).into()).coords;
            assert!((o - want).norm() < 1e-9, "{o} vs {want}");
        }
    }
}
