//! The sliding window: the Gaussians the current (and next expected, and keyframe) views need,
//! in contiguous buffers that mirror the renderer's persistent GPU buffers.
//!
//! Granularity is the root voxel. Each frame: select root voxels in range of the current view
//! and in a (widened) frustum of any given view; write back and drop the windowed Gaussians of voxels no longer
//! selected (swap-remove compaction, logged as slot moves so a GPU mirror can follow); append
//! the Gaussians of newly selected voxels. When the selection exceeds the capacity, the first
//! (current) view's voxels are taken nearest-first and every other view is taken whole or not
//! at all, in the order given; the rest are refused and counted. A view whose voxels are only
//! partly windowed must not be trained on: its render has holes where its surfaces were refused,
//! and the loss would drag the windowed Gaussians into them (see [`MaintainStats::complete`]).

use nalgebra::{Isometry3, Point3};

use super::map::{GaussianMap, RootKey, NO_SLOT};
use super::params::Gaussian;
use crate::sensors::Camera;

/// One view the window must cover: the camera pose as `camera_t_world`.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub camera_t_world: Isometry3<f64>,
}

/// What one maintenance step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaintainStats {
    pub candidate_roots: usize,
    pub selected_roots: usize,
    pub removed: usize,
    pub added: usize,
    /// Gaussians of selected-but-refused voxels (capacity reached).
    pub refused: usize,
    /// Gaussians in the voxels the current view's (widened) frustum holds in range, taken or
    /// not: more than the capacity and the current view cannot be windowed whole.
    pub current_need: usize,
    pub len: usize,
    /// Per view given: whether every voxel in range that its (widened) frustum holds is in the
    /// window, so its render shows all the map has there.
    pub complete: Vec<bool>,
}

/// Changes a mirror of the window must apply; see [`Window::take_sync`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncPlan {
    pub moves: Vec<(u32, u32)>,
    pub dirty: Vec<u32>,
    pub len: usize,
}

/// Contiguous window of Gaussians plus the global ids they came from.
#[derive(Debug, Clone)]
pub struct Window {
    capacity: usize,
    ids: Vec<u32>,
    gaussians: Vec<Gaussian>,
    /// Per global id: the epoch in which it was last selected.
    want: Vec<u32>,
    epoch: u32,
    /// Slot moves `(from, to)` since the last [`Window::take_sync`], in order (compaction).
    moves: Vec<(u32, u32)>,
    /// Per slot: contents changed since the last sync (new, or moved from a changed slot).
    dirty: Vec<bool>,
    refused_total: u64,
    /// Reused buffer for the ids a maintenance step adds.
    scratch: Vec<u32>,
    /// Per global id: in the window. Mirrors the map's slot numbers in a bitset, which stays in
    /// cache where the map's book-keeping (tens of bytes per id) does not.
    member: IdBits,
}

/// A growable set of ids as bits.
#[derive(Debug, Clone, Default)]
struct IdBits(Vec<u64>);

impl IdBits {
    fn get(&self, id: u32) -> bool {
        self.0
            .get(id as usize / 64)
            .is_some_and(|w| w >> (id % 64) & 1 == 1)
    }

    fn set(&mut self, id: u32, on: bool) {
        let word = id as usize / 64;
        if word >= self.0.len() {
            if !on {
                return;
            }
            self.0.resize(word + 1, 0);
        }
        let bit = 1u64 << (id % 64);
        if on {
            self.0[word] |= bit;
        } else {
            self.0[word] &= !bit;
        }
    }
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ids: Vec::with_capacity(capacity),
            gaussians: Vec::with_capacity(capacity),
            want: Vec::new(),
            epoch: 0,
            moves: Vec::new(),
            dirty: Vec::with_capacity(capacity),
            refused_total: 0,
            scratch: Vec::new(),
            member: IdBits::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The windowed Gaussians, contiguous (what the renderer uploads).
    pub fn gaussians(&self) -> &[Gaussian] {
        &self.gaussians
    }

    /// Mutable access for the optimiser; values reach the global map on write-back.
    pub fn gaussians_mut(&mut self) -> &mut [Gaussian] {
        &mut self.gaussians
    }

    /// Global id of each slot.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// What a mirror (GPU buffers, optimiser state) must do to match the window since the last
    /// call: replay `moves` in order on its per-slot state (a move whose source is beyond the
    /// mirror's length can be skipped: its target is dirty), truncate or grow to `len`, then
    /// re-upload the `dirty` slots (and reset their optimiser state).
    pub fn take_sync(&mut self) -> SyncPlan {
        let dirty: Vec<u32> = self
            .dirty
            .iter()
            .enumerate()
            .filter(|(_, d)| **d)
            .map(|(i, _)| i as u32)
            .collect();
        self.dirty.iter_mut().for_each(|d| *d = false);
        SyncPlan {
            moves: std::mem::take(&mut self.moves),
            dirty,
            len: self.len(),
        }
    }

    /// Marks slot `i` for upload after the caller changed it outside the optimiser (without this
    /// the mirror keeps its old values and the next read-back overwrites the change).
    pub fn mark_dirty(&mut self, i: usize) {
        self.dirty[i] = true;
    }

    /// Marks every slot for upload (e.g. after the mirror was lost).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.iter_mut().for_each(|d| *d = true);
    }

    /// Swap-removes slot `i`, logging the move and keeping the map's slot numbers.
    fn remove_slot(&mut self, map: &mut GaussianMap, i: usize) {
        let last = self.ids.len() - 1;
        self.ids.swap_remove(i);
        self.gaussians.swap_remove(i);
        self.dirty.swap_remove(i);
        if i != last {
            self.moves.push((last as u32, i as u32));
            map.meta[self.ids[i] as usize].slot = i as u32;
        }
    }

    /// Gaussians refused for capacity since creation.
    pub fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// Host bytes of the window buffers at capacity: the GPU mirror holds the same per slot.
    pub fn memory_bytes(&self) -> usize {
        self.gaussians.capacity() * std::mem::size_of::<Gaussian>() + self.ids.capacity() * 4
    }

    /// Updates the window for `views` (the first is the current one and sets the priority).
    pub fn maintain(
        &mut self,
        map: &mut GaussianMap,
        camera: &Camera,
        views: &[View],
        range: f64,
        margin: f64,
    ) -> MaintainStats {
        let mut stats = MaintainStats::default();
        let Some(first) = views.first() else {
            stats.len = self.len();
            return stats;
        };
        let cfg = map.config();
        // Bounding sphere of a root voxel plus room for Gaussians that stick out of it (a
        // Gaussian in the root cell itself is up to about half a root wide).
        let radius = cfg.root_size * (0.5 * 3f64.sqrt() + 0.5);
        let planes = camera.side_planes(margin);
        let centre_of = |v: &View| {
            let c = v.camera_t_world.inverse() * Point3::origin();
            [c.x, c.y, c.z]
        };
        // Candidates: roots in range of the first (current) view that any view's (widened)
        // frustum holds. Other views only widen the field of view inside that sphere: one range
        // query however many views (keyframes) there are. `seen` holds, per candidate, which
        // views see it (row-major, one row per candidate).
        let eye0 = centre_of(first);
        let mut chosen: Vec<(f64, RootKey, usize)> = Vec::new();
        let mut seen: Vec<bool> = Vec::new();
        let mut row = vec![false; views.len()];
        for key in map.roots_near(eye0, range + radius) {
            stats.candidate_roots += 1;
            let c = map.root_centre(&key);
            for (r, v) in row.iter_mut().zip(views) {
                let pc = v.camera_t_world * Point3::new(c[0], c[1], c[2]);
                *r = pc.z >= -radius && planes.iter().all(|n| n.dot(&pc.coords) >= -radius);
            }
            let n = map.root(&key).map_or(0, |r| r.len());
            if n > 0 && row.iter().any(|&r| r) {
                let d2 =
                    (c[0] - eye0[0]).powi(2) + (c[1] - eye0[1]).powi(2) + (c[2] - eye0[2]).powi(2);
                chosen.push((d2, key, n));
                seen.extend_from_slice(&row);
            }
        }
        let nv = views.len();
        let mut order: Vec<usize> = (0..chosen.len()).collect();
        order.sort_by(|&a, &b| {
            chosen[a]
                .0
                .total_cmp(&chosen[b].0)
                .then(chosen[a].1.cmp(&chosen[b].1))
        });
        // The current view's voxels nearest-first, then each other view whole or not at all:
        // voxels taken nearest-first over all views (as before) left the current view's far
        // walls out for whatever the keyframes saw behind the camera, and every view then
        // trained on renders with holes.
        let mut taken = vec![false; chosen.len()];
        stats.complete = vec![true; nv];
        let mut total = 0usize;
        for &i in &order {
            if !seen[i * nv] {
                continue;
            }
            stats.current_need += chosen[i].2;
            if total + chosen[i].2 > self.capacity {
                stats.complete[0] = false;
                continue;
            }
            total += chosen[i].2;
            taken[i] = true;
        }
        for v in 1..nv {
            let need: usize = (0..chosen.len())
                .filter(|&i| seen[i * nv + v] && !taken[i])
                .map(|i| chosen[i].2)
                .sum();
            if total + need > self.capacity {
                stats.complete[v] = false;
                continue;
            }
            total += need;
            for i in 0..chosen.len() {
                taken[i] |= seen[i * nv + v];
            }
        }
        // Mark wanted Gaussians, and list what is new.
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.want.iter_mut().for_each(|w| *w = 0);
            self.epoch = 1;
        }
        if self.want.len() < map.meta.len() {
            self.want.resize(map.meta.len(), 0);
        }
        let mut new_ids = std::mem::take(&mut self.scratch);
        new_ids.clear();
        for &i in &order {
            let (_, key, n) = &chosen[i];
            if !taken[i] {
                stats.refused += n;
                continue;
            }
            let Some(root) = map.root(key) else { continue };
            stats.selected_roots += 1;
            for id in root.ids() {
                self.want[id as usize] = self.epoch;
                if !self.member.get(id) {
                    new_ids.push(id);
                }
            }
        }
        self.refused_total += stats.refused as u64;
        // Remove (with write-back) what is no longer wanted.
        let mut i = 0;
        while i < self.ids.len() {
            let id = self.ids[i];
            if self.want[id as usize] == self.epoch {
                i += 1;
                continue;
            }
            map.store.set(id, &self.gaussians[i]);
            map.meta[id as usize].slot = NO_SLOT;
            self.member.set(id, false);
            self.remove_slot(map, i);
            stats.removed += 1;
        }
        // Add the newly wanted.
        for &id in &new_ids {
            map.meta[id as usize].slot = self.ids.len() as u32;
            self.member.set(id, true);
            self.ids.push(id);
            self.gaussians.push(map.store.get(id));
            self.dirty.push(true);
            stats.added += 1;
        }
        self.scratch = new_ids;
        stats.len = self.ids.len();
        stats
    }

    /// Copies every windowed value into the global map, keeping the window (before saving).
    pub fn write_back_all(&self, map: &mut GaussianMap) {
        for (id, g) in self.ids.iter().zip(&self.gaussians) {
            map.store.set(*id, g);
        }
    }

    /// Writes back and empties the window.
    pub fn clear(&mut self, map: &mut GaussianMap) {
        self.write_back_all(map);
        for id in &self.ids {
            map.meta[*id as usize].slot = NO_SLOT;
            self.member.set(*id, false);
        }
        self.ids.clear();
        self.gaussians.clear();
        self.dirty.clear();
        self.moves.clear();
    }

    /// Adds live map Gaussian `id` (a split's child, created beside its windowed parent) to the
    /// window so the next render shows it; false when the window is full, it is in already or
    /// not live (a later `maintain` takes it with its root voxel).
    pub fn adopt(&mut self, map: &mut GaussianMap, id: u32) -> bool {
        let live = map.meta.get(id as usize).is_some_and(|m| m.alive);
        if !live || self.ids.len() >= self.capacity || self.member.get(id) {
            return false;
        }
        map.meta[id as usize].slot = self.ids.len() as u32;
        self.member.set(id, true);
        self.ids.push(id);
        self.gaussians.push(map.store.get(id));
        self.dirty.push(true);
        true
    }

    /// Deletes the windowed Gaussians for which `remove(gaussian, octree depth)` is true, from
    /// the window and the global map (pruning). Returns how many; slot moves are appended to
    /// `moves()`.
    pub fn prune(
        &mut self,
        map: &mut GaussianMap,
        remove: impl Fn(&Gaussian, u32) -> bool,
    ) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.ids.len() {
            let id = self.ids[i];
            let depth = u32::from(map.meta[id as usize].depth);
            if !remove(&self.gaussians[i], depth) {
                i += 1;
                continue;
            }
            map.meta[id as usize].slot = NO_SLOT;
            self.member.set(id, false);
            map.remove(id);
            self.remove_slot(map, i);
            n += 1;
        }
        n
    }

    /// Consistency of slots and ids with the map (tests and debug checks).
    pub fn check_invariants(&self, map: &GaussianMap) -> Result<(), String> {
        if self.ids.len() != self.gaussians.len() || self.ids.len() > self.capacity {
            return Err("length mismatch or over capacity".into());
        }
        for (slot, &id) in self.ids.iter().enumerate() {
            let m = map
                .meta
                .get(id as usize)
                .ok_or_else(|| format!("slot {slot}: id {id} unknown"))?;
            if !m.alive || m.slot != slot as u32 {
                return Err(format!("slot {slot}: id {id} has slot {}", m.slot));
            }
            if !self.member.get(id) {
                return Err(format!("slot {slot}: id {id} not marked as a member"));
            }
        }
        let windowed = map
            .meta
            .iter()
            .filter(|m| m.alive && m.slot != NO_SLOT)
            .count();
        let members: usize = self.member.0.iter().map(|w| w.count_ones() as usize).sum();
        if members != self.ids.len() {
            return Err(format!(
                "{members} member bits, {} in window",
                self.ids.len()
            ));
        }
        if windowed != self.ids.len() {
            return Err(format!(
                "{windowed} marked windowed, {} in window",
                self.ids.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::GaussianConfig;
    use nalgebra::{Translation3, UnitQuaternion};

    fn camera() -> Camera {
        Camera {
            width: 64,
            height: 48,
            fx: 40.0,
            fy: 40.0,
            cx: 31.5,
            cy: 23.5,
            distortion: [0.0; 5],
        }
    }

    /// Walls parallel to x at each `y`, Gaussians every 0.1 m for x in `xs` (decimetres) and z
    /// in 0..2 m.
    fn walls(ys: &[f32], xs: std::ops::Range<i32>) -> GaussianMap {
        let cfg = GaussianConfig {
            root_size: 0.5,
            levels: 2,
            ..Default::default()
        };
        let mut m = GaussianMap::new(cfg).unwrap();
        for &y in ys {
            for i in xs.clone() {
                for k in 0..20 {
                    let g = Gaussian {
                        mean: [i as f32 * 0.1 + 0.05, y, k as f32 * 0.1 + 0.05],
                        ..Default::default()
                    };
                    m.insert_unchecked(g, true).unwrap();
                }
            }
        }
        m
    }

    /// A long wall at y = 5 (facing -y), x in 0..60 m.
    fn wall_map() -> GaussianMap {
        walls(&[5.0], 0..600)
    }

    /// Camera at (x, 0, 1) looking along +y (optical z = world y, x = world x, y = -world z).
    fn view_at(x: f64) -> View {
        let r = nalgebra::Matrix3::new(1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0);
        let world_r_cam = UnitQuaternion::from_matrix(&r);
        let world_t_cam = Isometry3::from_parts(Translation3::new(x, 0.0, 1.0), world_r_cam);
        View {
            camera_t_world: world_t_cam.inverse(),
        }
    }

    #[test]
    fn window_follows_the_camera_and_writes_back() {
        let mut map = wall_map();
        let cam = camera();
        let mut w = Window::new(100_000);
        let s = w.maintain(&mut map, &cam, &[view_at(5.0)], 10.0, 0.0);
        assert!(s.added > 0 && s.removed == 0, "{s:?}");
        w.check_invariants(&map).unwrap();
        // Horizontal FOV half-angle atan(32/40): at depth 5 the wall spans x = 5 +- 4 m.
        for g in w.gaussians() {
            assert!((g.mean[0] - 5.0).abs() < 4.0 + 1.0, "{:?}", g.mean);
        }
        // Modify a windowed Gaussian; move away; the change must be in the global map.
        let id = w.ids()[0];
        w.gaussians_mut()[0].opacity_logit = 3.25;
        let s = w.maintain(&mut map, &cam, &[view_at(40.0)], 10.0, 0.0);
        assert!(s.removed > 0 && s.added > 0, "{s:?}");
        w.check_invariants(&map).unwrap();
        assert!(!w.ids().contains(&id));
        assert_eq!(map.get(id).unwrap().opacity_logit, 3.25);
        // Coming back brings the written-back value into the window.
        w.maintain(&mut map, &cam, &[view_at(5.0)], 10.0, 0.0);
        let slot = w.ids().iter().position(|&x| x == id).unwrap();
        assert_eq!(w.gaussians()[slot].opacity_logit, 3.25);
    }

    #[test]
    fn capacity_keeps_nearest_and_counts_refusals() {
        let mut map = wall_map();
        let cam = camera();
        let mut w = Window::new(500);
        let s = w.maintain(&mut map, &cam, &[view_at(20.0)], 30.0, 0.5);
        assert!(s.len <= 500 && s.len > 300, "{s:?}");
        assert!(s.refused > 0);
        assert_eq!(w.refused_total(), s.refused as u64);
        // Everything kept is nearer to x = 20 than what a far refused voxel would be.
        for g in w.gaussians() {
            assert!((g.mean[0] - 20.0).abs() < 3.0, "{:?}", g.mean);
        }
        w.check_invariants(&map).unwrap();
    }

    /// Camera at (x, 0, 1) looking along -y.
    fn back_view_at(x: f64) -> View {
        let r = nalgebra::Matrix3::new(-1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, -1.0, 0.0);
        let world_r_cam = UnitQuaternion::from_matrix(&r);
        let world_t_cam = Isometry3::from_parts(Translation3::new(x, 0.0, 1.0), world_r_cam);
        View {
            camera_t_world: world_t_cam.inverse(),
        }
    }

    /// Walls at y = 5 (in front of a camera at y = 0 looking +y) and y = -2 (behind it), x in
    /// 10..30 m.
    fn two_walls() -> GaussianMap {
        walls(&[5.0, -2.0], 100..300)
    }

    /// Over capacity, the current view is windowed whole before a keyframe's view that holds
    /// nearer voxels (the wall behind the camera), and that keyframe is refused whole and
    /// reported incomplete; with room for both, both are complete.
    #[test]
    fn current_view_first_and_other_views_whole_or_not() {
        let cam = camera();
        let (front, back) = (view_at(20.0), back_view_at(20.0));
        let alone = |views: &[View]| {
            let mut map = two_walls();
            let mut w = Window::new(1_000_000);
            let s = w.maintain(&mut map, &cam, views, 30.0, 0.1);
            let mut ids = w.ids().to_vec();
            ids.sort_unstable();
            (s.len, ids)
        };
        let (n_front, front_ids) = alone(&[front]);
        let (n_back, _) = alone(&[back]);
        let (n_both, _) = alone(&[front, back]);
        assert!(
            n_front > 0 && n_back > 0 && n_both > n_front,
            "{n_front} {n_back} {n_both}"
        );

        let mut map = two_walls();
        let mut w = Window::new(n_front + (n_both - n_front) / 2);
        let s = w.maintain(&mut map, &cam, &[front, back], 30.0, 0.1);
        assert_eq!(s.complete, vec![true, false], "{s:?}");
        let mut ids = w.ids().to_vec();
        ids.sort_unstable();
        assert_eq!(ids, front_ids, "the window holds exactly the current view");
        assert_eq!(s.refused, n_both - n_front);
        w.check_invariants(&map).unwrap();

        let mut w = Window::new(n_both);
        let s = w.maintain(&mut map, &cam, &[front, back], 30.0, 0.1);
        assert_eq!(s.complete, vec![true, true], "{s:?}");
        assert_eq!((s.len, s.refused), (n_both, 0));
    }

    #[test]
    fn moves_replay_keeps_a_mirror_consistent() {
        let mut map = wall_map();
        let cam = camera();
        let mut w = Window::new(100_000);
        // A mirror of per-slot ids, maintained only from moves() and the new tail.
        let mut mirror: Vec<u32> = Vec::new();
        let replay = |mirror: &mut Vec<u32>, w: &mut Window| {
            let plan = w.take_sync();
            for &(from, to) in &plan.moves {
                if (from as usize) < mirror.len() {
                    mirror[to as usize] = mirror[from as usize];
                }
            }
            mirror.resize(plan.len, u32::MAX);
            for &s in &plan.dirty {
                mirror[s as usize] = w.ids()[s as usize];
            }
            assert_eq!(mirror.as_slice(), w.ids());
        };
        for x in [3.0, 4.0, 6.5, 9.0, 7.0, 30.0, 31.0] {
            w.maintain(&mut map, &cam, &[view_at(x), view_at(x + 0.5)], 8.0, 0.1);
            if x == 9.0 {
                // Maintenance then pruning before the mirror syncs.
                w.maintain(&mut map, &cam, &[view_at(12.0)], 8.0, 0.1);
                assert!(w.prune(&mut map, |g, _| g.mean[2] > 1.75) > 0);
            }
            replay(&mut mirror, &mut w);
            w.check_invariants(&map).unwrap();
        }
        let n = w.prune(&mut map, |g, _| g.mean[2] < 0.3);
        assert!(n > 0);
        replay(&mut mirror, &mut w);
        w.check_invariants(&map).unwrap();
        map.check_invariants().unwrap();
        assert!(w.gaussians().iter().all(|g| g.mean[2] >= 0.3));
    }
}
