//! Training views kept to fight forgetting: optimising only the latest frame lets Gaussians
//! drift towards what that one view needs, and parts of earlier views degrade.
//!
//! The pool is spread over space rather than time: a frame joins when it moved far enough from
//! the last keyframe; when the pool is full, the most redundant keyframe (the one with the
//! closest two neighbours) leaves, so a long straight drive keeps evenly spaced views and a static start keeps
//! its one view. Keyframes farther than the window's range leave too: most of what they see is
//! no longer in the window, and fitting the window to them would distort it.

use std::collections::VecDeque;

use nalgebra::{Isometry3, Point3};

use super::optimise::Keyframe;

/// Keyframes with a round-robin cursor, so each gets iterations in turn across frames.
#[derive(Debug, Default)]
pub(crate) struct KeyframePool {
    /// Each with whether the window holds all it sees (see [`KeyframePool::set_windowed`]).
    frames: VecDeque<(Keyframe, bool)>,
    last: Option<Isometry3<f64>>,
    cursor: usize,
}

/// Camera centre of a `camera_t_world` pose.
fn eye(t_cw: &Isometry3<f64>) -> Point3<f64> {
    t_cw.inverse() * Point3::origin()
}

/// Pose distance in units of the keyframe thresholds: 1 = one threshold apart.
fn separation(a: &Isometry3<f64>, b: &Isometry3<f64>, metres: f64, degrees: f64) -> f64 {
    let dt = (eye(a) - eye(b)).norm() / metres.max(1e-9);
    let dr = a.rotation.angle_to(&b.rotation).to_degrees() / degrees.max(1e-9);
    dt + dr
}

impl KeyframePool {
    /// Keyframes (oldest first), the pose the last one joined at, and the round-robin cursor:
    /// everything a map file keeps.
    pub fn parts(&self) -> (Vec<Keyframe>, Option<Isometry3<f64>>, usize) {
        (
            self.frames.iter().map(|(k, _)| k.clone()).collect(),
            self.last,
            self.cursor,
        )
    }

    /// A pool as [`Self::parts`] gave it.
    pub fn from_parts(frames: Vec<Keyframe>, last: Option<Isometry3<f64>>, cursor: usize) -> Self {
        Self {
            // Whether a view is whole in the window is found again by the next windowing.
            frames: frames.into_iter().map(|k| (k, false)).collect(),
            last,
            cursor,
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Poses (`camera_t_world`) of the keyframes, in the pool's order.
    #[cfg(test)]
    pub fn poses(&self) -> impl Iterator<Item = &Isometry3<f64>> {
        self.frames.iter().map(|(k, _)| &k.camera_t_world)
    }

    /// Indices and poses of the keyframes, nearest to `t_cw` first (pose distance in units of
    /// the keyframe thresholds): the order in which the window takes their views.
    pub fn nearest_first(
        &self,
        t_cw: &Isometry3<f64>,
        metres: f64,
        degrees: f64,
    ) -> Vec<(usize, Isometry3<f64>)> {
        let mut v: Vec<(f64, usize, Isometry3<f64>)> = self
            .frames
            .iter()
            .enumerate()
            .map(|(i, (k, _))| {
                let t = k.camera_t_world;
                (separation(&t, t_cw, metres, degrees), i, t)
            })
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, i, t)| (i, t)).collect()
    }

    /// Marks the keyframes at `indices` as fully windowed and the others not: only those train
    /// (a view the window holds only part of renders holes its loss would fill with the wrong
    /// Gaussians). Keyframes added later count as windowed until the next call.
    pub fn set_windowed(&mut self, indices: &[usize]) {
        for (i, (_, w)) in self.frames.iter_mut().enumerate() {
            *w = indices.contains(&i);
        }
    }

    /// Whether some keyframe is fully windowed (one can train).
    pub fn any_windowed(&self) -> bool {
        self.frames.iter().any(|(_, w)| *w)
    }

    /// The fully windowed keyframe to optimise next (round robin), if any.
    pub fn next(&mut self) -> Option<&Keyframe> {
        let n = self.frames.len();
        let k = (1..=n)
            .map(|d| (self.cursor + d) % n)
            .find(|&i| self.frames[i].1)?;
        self.cursor = k;
        self.frames.get(k).map(|(f, _)| f)
    }

    /// Multiplies every target by `s` (the map's brightness unit changed).
    pub fn scale_targets(&mut self, s: f32) {
        for (k, _) in &mut self.frames {
            k.target.iter_mut().for_each(|v| *v *= s);
        }
    }

    /// Drops keyframes whose camera is farther than `range` from `t_cw`'s.
    pub fn drop_far(&mut self, t_cw: &Isometry3<f64>, range: f64) {
        let here = eye(t_cw);
        self.frames
            .retain(|(k, _)| (eye(&k.camera_t_world) - here).norm() <= range);
    }

    /// Adds the frame when it is at least `metres` or `degrees` from the last keyframe; keeps
    /// at most `capacity` by evicting the most redundant older one. Returns whether it joined.
    pub fn consider(
        &mut self,
        frame: impl FnOnce() -> Keyframe,
        t_cw: &Isometry3<f64>,
        capacity: usize,
        metres: f64,
        degrees: f64,
    ) -> bool {
        if capacity == 0 {
            self.frames.clear();
            return false;
        }
        let moved = self.last.as_ref().is_none_or(|last| {
            let d = last.inverse() * t_cw;
            d.translation.vector.norm() > metres || d.rotation.angle().to_degrees() > degrees
        });
        if !moved {
            return false;
        }
        self.frames.push_back((frame(), true));
        self.last = Some(*t_cw);
        while self.frames.len() > capacity {
            // The newest always stays; among the others, evict the one with the closest two
            // neighbours (an interior view of a well-covered stretch, not an end of it).
            let n = self.frames.len();
            let victim = (0..n - 1)
                .map(|i| {
                    let a = &self.frames[i].0.camera_t_world;
                    let mut d: Vec<f64> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| separation(a, &self.frames[j].0.camera_t_world, metres, degrees))
                        .collect();
                    d.sort_by(f64::total_cmp);
                    (i, d.iter().take(2).sum::<f64>())
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(i, _)| i);
            self.frames.remove(victim);
        }
        true
    }
}

/// Pose distance (in keyframe-threshold units, see [`separation`]) within which an anchor is
/// in reach of a view: 8 = 2.4 m or 80 degrees at the default thresholds (or 1.2 m and 40
/// degrees). The anchor's view joins the window then, and its render is judged only where the
/// window covers it. On the simulated room's looping trajectory, 16 anchors 3 units apart
/// were in reach for 19 % of the frames (gaps of 16 s, in which the brightness drifted by
/// 15 %); 8 units apart, one is always in reach.
pub(crate) const ANCHOR_REACH: f64 = 8.0;

/// Photometric anchors: the first keyframes, kept for the whole run with their targets in the
/// brightness unit the first images set. The map's colours and the exposure estimate are
/// known only up to one common factor (their product is what the camera sees), and nothing
/// else fixes it: every frame's exposure is measured against the map and the map is trained on
/// images divided by that exposure, so the factor random-walks with every bias of either fit.
/// Rendering an anchor's view and comparing it with its target measures the factor; the mapper
/// then scales the map back to the anchors' unit.
///
/// Anchors are spread like keyframes but at [`ANCHOR_REACH`] apart, so that more of the places
/// a looping trajectory comes back to have one.
#[derive(Debug, Default)]
pub(crate) struct AnchorSet {
    frames: Vec<Keyframe>,
}

impl AnchorSet {
    /// The anchors, oldest first (for map files).
    pub fn frames(&self) -> &[Keyframe] {
        &self.frames
    }

    pub fn from_frames(frames: Vec<Keyframe>) -> Self {
        Self { frames }
    }

    pub fn get(&self, i: usize) -> Option<&Keyframe> {
        self.frames.get(i)
    }

    /// Adds the frame while fewer than `capacity` anchors exist and it is out of reach of every
    /// anchor (thresholds as for keyframes). Returns whether it joined.
    pub fn consider(
        &mut self,
        frame: impl FnOnce() -> Keyframe,
        t_cw: &Isometry3<f64>,
        capacity: usize,
        metres: f64,
        degrees: f64,
    ) -> bool {
        if self.frames.len() >= capacity {
            return false;
        }
        let near = self
            .frames
            .iter()
            .any(|a| separation(&a.camera_t_world, t_cw, metres, degrees) < ANCHOR_REACH);
        if near {
            return false;
        }
        self.frames.push(frame());
        true
    }

    /// The anchor nearest to the view `t_cw` when it is in reach.
    pub fn in_reach(&self, t_cw: &Isometry3<f64>, metres: f64, degrees: f64) -> Option<usize> {
        self.frames
            .iter()
            .map(|a| separation(&a.camera_t_world, t_cw, metres, degrees))
            .enumerate()
            .filter(|(_, d)| *d < ANCHOR_REACH)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Translation3;

    fn at(x: f64) -> Isometry3<f64> {
        // camera_t_world of a camera at (x, 0, 0).
        Isometry3::from_parts(Translation3::new(-x, 0.0, 0.0), Default::default())
    }

    fn kf(x: f64) -> Keyframe {
        Keyframe {
            camera_t_world: at(x),
            target: vec![x as f32],
        }
    }

    #[test]
    fn pool_keeps_spread_views_and_the_static_start() {
        let mut p = KeyframePool::default();
        // A static start: many frames at x = 0 give one keyframe.
        for _ in 0..10 {
            p.consider(|| kf(0.0), &at(0.0), 4, 0.3, 10.0);
        }
        assert_eq!(p.len(), 1);
        // Driving on: frames every 0.1 m; keyframes every > 0.3 m; the pool stays spread out
        // (no two keyframes closer than the threshold) and the start is not simply aged out.
        let mut joined = Vec::new();
        for i in 1..=30 {
            let x = i as f64 * 0.1;
            if p.consider(|| kf(x), &at(x), 4, 0.3, 10.0) {
                joined.push(x);
            }
        }
        assert!(joined.len() >= 7, "{joined:?}");
        assert!(joined.windows(2).all(|w| w[1] - w[0] > 0.3 - 1e-9));
        assert_eq!(p.len(), 4);
        let mut xs: Vec<f64> = p.poses().map(|t| eye(t).x).collect();
        xs.sort_by(f64::total_cmp);
        assert!(
            (xs[3] - joined[joined.len() - 1]).abs() < 1e-9,
            "newest kept: {xs:?}"
        );
        assert!(xs[0] < 0.5, "the start stays represented: {xs:?}");
        assert!(xs.windows(2).all(|w| w[1] - w[0] > 0.3), "{xs:?}");
        // Far keyframes leave.
        p.drop_far(&at(2.8), 1.0);
        assert!(p.poses().all(|t| (eye(t).x - 2.8).abs() <= 1.0));
        // Round robin visits every keyframe.
        let n = p.len();
        let mut seen: Vec<f32> = (0..n).map(|_| p.next().unwrap().target[0]).collect();
        seen.sort_by(f32::total_cmp);
        seen.dedup();
        assert_eq!(seen.len(), n);
    }

    /// Keyframes the window holds only partly are skipped by the round robin; none windowed
    /// gives none; the order in which the window takes them is nearest first.
    #[test]
    fn only_windowed_keyframes_train() {
        let mut p = KeyframePool::default();
        for x in [0.0, 1.0, 2.0, 3.0] {
            p.consider(|| kf(x), &at(x), 4, 0.3, 10.0);
        }
        let order: Vec<usize> = p
            .nearest_first(&at(2.2), 0.3, 10.0)
            .iter()
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(order, vec![2, 3, 1, 0]);
        p.set_windowed(&[1, 3]);
        let seen: Vec<f32> = (0..6).map(|_| p.next().unwrap().target[0]).collect();
        assert_eq!(seen, vec![1.0, 3.0, 1.0, 3.0, 1.0, 3.0]);
        p.set_windowed(&[]);
        assert!(p.next().is_none());
        // A keyframe added later trains until the window says otherwise.
        p.consider(|| kf(5.0), &at(5.0), 8, 0.3, 10.0);
        assert_eq!(p.next().unwrap().target[0], 5.0);
    }

    #[test]
    fn anchors_are_the_first_spread_views_and_stay() {
        let mut a = AnchorSet::default();
        // Frames every 0.1 m: an anchor every 2.4 m (eight 0.3 m thresholds), four at most.
        let joined: Vec<f64> = (0..200)
            .map(|i| i as f64 * 0.1)
            .filter(|&x| a.consider(|| kf(x), &at(x), 4, 0.3, 10.0))
            .collect();
        assert_eq!(joined.len(), 4, "{joined:?}");
        assert!(joined.windows(2).all(|w| w[1] - w[0] >= 2.4 - 1e-9));
        assert!(joined[3] < 7.5, "the first views: {joined:?}");
        // In reach: the nearest anchor within 2.4 m; none far away.
        let i = a.in_reach(&at(3.0), 0.3, 10.0).expect("in reach");
        assert!((eye(&a.get(i).unwrap().camera_t_world).x - joined[1]).abs() < 1e-9);
        assert_eq!(a.in_reach(&at(12.0), 0.3, 10.0), None);
        assert!(!a.consider(|| kf(40.0), &at(40.0), 4, 0.3, 10.0));
        assert!(a.get(3).is_some() && a.get(4).is_none());
    }
}
