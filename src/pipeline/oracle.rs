//! Ground-truth poses for oracle-pose mapping (`--mode oracle`): the map is built with the
//! true trajectory, so its quality is measured apart from the estimator's drift.

use std::sync::Arc;

use nalgebra::Isometry3;

use super::register::interpolate;
use crate::sensors::{stamp_diff_secs, PoseStamped, Stamp};

/// Ground truth farther than this (s) from a query on either side gives no pose: interpolating
/// over a gap in the recording would invent motion.
const MAX_GAP_S: f64 = 0.2;

/// A time-sorted ground-truth trajectory, queried at sensor stamps.
#[derive(Debug, Clone, PartialEq)]
pub struct OraclePoses {
    poses: Arc<Vec<PoseStamped>>,
}

impl OraclePoses {
    /// Sorts `poses` by stamp and drops duplicated stamps; `None` when fewer than two remain.
    pub fn new(mut poses: Vec<PoseStamped>) -> Option<Self> {
        poses.sort_by_key(|p| p.stamp);
        poses.dedup_by_key(|p| p.stamp);
        (poses.len() >= 2).then(|| Self {
            poses: Arc::new(poses),
        })
    }

    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    /// The pose at `stamp`, interpolated between the two bracketing samples (linear
    /// translation, slerp); `None` outside the trajectory or across a gap.
    pub fn pose_at(&self, stamp: Stamp) -> Option<Isometry3<f64>> {
        let p = &self.poses;
        let i = p.partition_point(|q| q.stamp < stamp);
        if i < p.len() && p[i].stamp == stamp {
            return Some(p[i].pose);
        }
        if i == 0 || i == p.len() {
            return None;
        }
        let (a, b) = (&p[i - 1], &p[i]);
        let span = stamp_diff_secs(b.stamp, a.stamp);
        if span > 2.0 * MAX_GAP_S {
            return None;
        }
        let f = stamp_diff_secs(stamp, a.stamp) / span;
        Some(interpolate(&a.pose, &b.pose, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    fn pose(stamp_ms: u64, x: f64, yaw: f64) -> PoseStamped {
        PoseStamped {
            stamp: stamp_ms * 1_000_000,
            pose: Isometry3::from_parts(
                Translation3::new(x, 0.0, 0.0),
                UnitQuaternion::from_euler_angles(0.0, 0.0, yaw),
            ),
        }
    }

    #[test]
    fn interpolates_inside_and_refuses_outside_or_across_gaps() {
        // Unsorted input with a duplicate, and a 1 s gap after 200 ms.
        let o = OraclePoses::new(vec![
            pose(100, 1.0, 0.2),
            pose(0, 0.0, 0.0),
            pose(100, 1.0, 0.2),
            pose(200, 2.0, 0.4),
            pose(1200, 3.0, 0.4),
        ])
        .unwrap();
        assert_eq!(o.len(), 4);
        let m = o.pose_at(25_000_000).unwrap();
        assert!((m.translation.x - 0.25).abs() < 1e-12);
        assert!((m.rotation.euler_angles().2 - 0.05).abs() < 1e-12);
        assert_eq!(o.pose_at(100_000_000).unwrap().translation.x, 1.0);
        assert!(o.pose_at(1_300_000_000).is_none(), "after the end");
        assert!(o.pose_at(700_000_000).is_none(), "inside the gap");
        assert!(OraclePoses::new(vec![pose(0, 0.0, 0.0)]).is_none());
    }
}
