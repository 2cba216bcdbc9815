//! The map as plain data for map files: each live Gaussian with the octree cell it is filed in
//! (which can differ from its mean's cell: means move while optimised) and its colour flag.

use super::{GaussianMap, RootKey, NO_SLOT};
use crate::gaussian::params::Gaussian;
use crate::gaussian::GaussianError;

/// One stored Gaussian and where it hangs in the octree.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianRecord {
    pub gaussian: Gaussian,
    /// Octree depth of its node (0 = root).
    pub depth: u8,
    /// Cell of its node on the grid of that depth (`floor(p / cell_size(depth))`).
    pub cell: [i64; 3],
    pub coloured: bool,
}

impl GaussianMap {
    /// Live Gaussians in id order with their cells. Windowed values must have been written back
    /// first (`GaussianMapper::sync_map`); ids are not kept: a loaded map numbers them 0..n.
    pub fn to_records(&self) -> Vec<GaussianRecord> {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, m)| m.alive)
            .map(|(id, m)| {
                let root = &self.roots[&m.root];
                // Octants from the node up to the root, then applied top-down to the root key.
                let mut octants = Vec::with_capacity(m.depth as usize);
                let mut n = m.node;
                while n != 0 {
                    let p = root.nodes[n as usize].parent;
                    let oct = root.nodes[p as usize]
                        .children
                        .iter()
                        .position(|&c| c == n)
                        .unwrap_or(0) as i64;
                    octants.push(oct);
                    n = p;
                }
                let mut cell = m.root;
                for oct in octants.iter().rev() {
                    cell = [
                        cell[0] * 2 + (oct & 1),
                        cell[1] * 2 + ((oct >> 1) & 1),
                        cell[2] * 2 + ((oct >> 2) & 1),
                    ];
                }
                GaussianRecord {
                    gaussian: self.store.get(id as u32),
                    depth: m.depth,
                    cell,
                    coloured: m.coloured,
                }
            })
            .collect()
    }

    /// A map holding `records` in their cells (ids 0..n in order); an error, and no map, when
    /// a record's depth is outside the tree, its cell overflows, or a value is not finite.
    pub fn from_records(
        cfg: crate::gaussian::GaussianConfig,
        records: &[GaussianRecord],
    ) -> Result<Self, GaussianError> {
        let mut map = GaussianMap::new(cfg)?;
        for (i, r) in records.iter().enumerate() {
            map.insert_record(r)
                .map_err(|e| GaussianError::Input(format!("gaussian {i}: {e}")))?;
        }
        Ok(map)
    }

    /// Files `r` in its cell (a record read from a map file); an error, and nothing inserted,
    /// when its depth is outside the tree, its cell overflows, or a value is not finite.
    pub fn insert_record(&mut self, r: &GaussianRecord) -> Result<u32, String> {
        let finest = self.cfg.levels - 1;
        let bad = |what: String| what;
        let depth = u32::from(r.depth);
        if depth > finest {
            return Err(bad(format!(
                "depth {depth} below the finest level {finest}"
            )));
        }
        let g = &r.gaussian;
        let finite = g
            .mean
            .iter()
            .chain(&g.log_scale)
            .chain(&g.rotation)
            .chain(std::iter::once(&g.opacity_logit))
            .chain(g.sh.iter().flatten())
            .all(|v| v.is_finite());
        if !finite {
            return Err(bad("non-finite value".into()));
        }
        let sh = finest - depth;
        let limit = 1i64 << (62 - sh.min(62));
        if r.cell.iter().any(|c| c.abs() >= limit / 2) {
            return Err(bad(format!("cell {:?} out of range", r.cell)));
        }
        let leaf = [r.cell[0] << sh, r.cell[1] << sh, r.cell[2] << sh];
        let id = self.insert_at(leaf, depth, *g, r.coloured);
        debug_assert_eq!(self.meta[id as usize].slot, NO_SLOT);
        Ok(id)
    }

    /// Deletes root voxel `key` with its Gaussians (paging out); none may be windowed.
    /// Returns how many Gaussians went.
    pub fn remove_root(&mut self, key: &RootKey) -> usize {
        let ids: Vec<u32> = match self.roots.get(key) {
            Some(r) => r.ids().collect(),
            None => return 0,
        };
        for &id in &ids {
            debug_assert_eq!(self.meta[id as usize].slot, NO_SLOT);
            self.meta[id as usize].alive = false;
            self.free.push(id);
        }
        self.live -= ids.len();
        self.roots.remove(key);
        let block = key.map(|v| v >> super::BLOCK_SHIFT);
        if let Some(keys) = self.blocks.get_mut(&block) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.blocks.remove(&block);
            }
        }
        ids.len()
    }

    /// Whether any Gaussian of root voxel `key` sits in the window.
    pub fn root_windowed(&self, key: &RootKey) -> bool {
        self.roots
            .get(key)
            .is_some_and(|r| r.ids().any(|id| self.meta[id as usize].slot != NO_SLOT))
    }
}

impl GaussianRecord {
    /// The root voxel of its cell.
    pub fn root_key(&self) -> RootKey {
        self.cell.map(|c| c >> self.depth.min(62))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, plane};
    use super::*;

    /// Records of a map whose Gaussians moved after insertion and some were removed rebuild a
    /// map whose records are the same (cells kept, not recomputed from the means).
    #[test]
    fn records_round_trip_with_moved_and_removed_gaussians() {
        let mut m = GaussianMap::new(cfg()).unwrap();
        let pts = plane(30, 0.03, 0.35);
        m.insert_scan(&pts, None, [0.4, 0.4, 3.0], 0.0, &mut |i, _| {
            (i % 3 != 0).then_some([0.2, 0.4, 0.6])
        });
        let ids: Vec<u32> = m.iter().map(|(id, _)| id).collect();
        assert!(ids.len() > 20);
        // Move one across a root boundary, remove two.
        m.update(ids[5], |g| g.mean[0] += 0.9);
        m.remove(ids[1]);
        m.remove(ids[7]);
        let recs = m.to_records();
        assert_eq!(recs.len(), m.len());
        let back = GaussianMap::from_records(cfg(), &recs).unwrap();
        back.check_invariants().unwrap();
        assert_eq!(back.to_records(), recs);
        assert_eq!(back.len(), m.len());
        assert_eq!(back.root_count(), m.root_count());
        // The moved Gaussian stayed in its original cell.
        let moved = m.get(ids[5]).unwrap();
        let (nid, _) = back.iter().find(|(_, g)| *g == moved).unwrap();
        assert_eq!(back.depth_of(nid), m.depth_of(ids[5]));
        let i = recs.iter().position(|r| r.gaussian == moved).unwrap();
        let leaf_of_mean = back.root_key(&[
            f64::from(moved.mean[0]),
            f64::from(moved.mean[1]),
            f64::from(moved.mean[2]),
        ]);
        assert_ne!(Some(back.meta[nid as usize].root), leaf_of_mean);
        assert_eq!(recs[i].coloured, m.is_coloured(ids[5]));
        // Bad records are refused.
        let mut bad = recs.clone();
        bad[3].depth = 9;
        assert!(GaussianMap::from_records(cfg(), &bad).is_err());
        bad[3].depth = recs[3].depth;
        bad[3].gaussian.mean[1] = f32::NAN;
        assert!(GaussianMap::from_records(cfg(), &bad).is_err());
    }
}
