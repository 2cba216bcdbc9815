//! The global Gaussian map: a hash of root voxels, each a sparse octree whose leaves hold
//! indices into one Gaussian store.
//!
//! Cells are addressed on the integer grid of the finest leaves (`floor(p / leaf_size)`), so the
//! root key (`floor(p / root_size)`) and the path down the octree come from the same integers by
//! shifts: no floating-point disagreement between levels.
//!
//! A Gaussian hangs in the node whose cell matches its size: far surfaces (seen a few pixels per
//! fine cell) get Gaussians in coarse nodes, near ones in the finest leaves, so the Gaussians in
//! one view number about the same however deep the view (see `GaussianConfig::leaf_pixels`).
//! A node holding Gaussians refuses coarser ones above it but not finer ones below it: coming
//! closer adds detail.

use super::config::GaussianConfig;
use super::params::Gaussian;
use super::store::PackedStore;
use super::GaussianError;
use crate::voxel_key::KeyMap;

mod insert;
mod parts;

pub use parts::GaussianRecord;

/// `floor(p / root_size)` per axis.
pub type RootKey = [i64; 3];

/// Root voxels per edge of a block of the coarse index used for range queries.
const BLOCK_SHIFT: u32 = 3;

/// Slot value meaning "not in the window".
pub(crate) const NO_SLOT: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
struct Node {
    /// Child node indices within the root's arena; 0 = absent (0 is the root, never a child).
    children: [u32; 8],
    /// Gaussian ids whose cell is this node.
    gaussians: Vec<u32>,
    /// Gaussians in this node and all its descendants.
    subtree: u32,
    /// Index of the parent node (0 for the root itself).
    parent: u32,
}

/// One root voxel: an octree stored as an arena of nodes, node 0 the root.
#[derive(Debug, Clone)]
pub struct RootVoxel {
    nodes: Vec<Node>,
    count: u32,
}

impl RootVoxel {
    fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
            count: 0,
        }
    }

    /// Gaussians held by this voxel's leaves.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Ids of all Gaussians in this voxel.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.nodes.iter().flat_map(|n| n.gaussians.iter().copied())
    }
}

/// Book-keeping per stored Gaussian.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub root: RootKey,
    pub node: u32,
    /// Octree depth of `node` (0 = root): the Gaussian's cell is `root_size / 2^depth` wide.
    pub depth: u8,
    /// Window slot or `NO_SLOT`.
    pub slot: u32,
    pub alive: bool,
    pub coloured: bool,
}

/// Colour of a point to insert (index, world position): exposure-normalised RGB, or `None`
/// when no camera sees it.
pub type PointColour<'a> = dyn FnMut(usize, &[f64; 3]) -> Option<[f32; 3]> + 'a;

/// Outcome of inserting one scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InsertStats {
    pub points: usize,
    /// Points dropped: non-finite or beyond `insert_max_range`.
    pub out_of_range: usize,
    /// Points whose cell (or a finer cell inside it) was already full.
    pub occupied: usize,
    pub created: usize,
    /// Of `created`, those in a cell below a coarser cell that already holds a Gaussian: the
    /// surface was mapped before, from farther away (revisits that make the map finer).
    pub refined: usize,
    /// Points that would have refined a covered surface where the map did not need it.
    pub refine_skipped: usize,
    /// New Gaussians whose normal came from the viewing ray (no planar neighbourhood).
    pub normal_fallback: usize,
    /// New Gaussians the colour callback could not colour (left for later frames).
    pub uncoloured: Vec<u32>,
}

/// The global map. Gaussians are never moved in the store; a pruned one frees its id for reuse.
#[derive(Debug, Clone)]
pub struct GaussianMap {
    cfg: GaussianConfig,
    roots: KeyMap<RootKey, RootVoxel>,
    blocks: KeyMap<[i64; 3], Vec<RootKey>>,
    /// Values by id, packed to the configured SH degree.
    pub(crate) store: PackedStore,
    pub(crate) meta: Vec<Meta>,
    free: Vec<u32>,
    live: usize,
}

impl GaussianMap {
    pub fn new(cfg: GaussianConfig) -> Result<Self, GaussianError> {
        cfg.validate()?;
        Ok(Self {
            store: PackedStore::new(cfg.sh_degree),
            cfg,
            roots: KeyMap::default(),
            blocks: KeyMap::default(),
            meta: Vec::new(),
            free: Vec::new(),
            live: 0,
        })
    }

    pub fn config(&self) -> &GaussianConfig {
        &self.cfg
    }

    /// Live Gaussians.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// The stored value of a live Gaussian (SH coefficients above the configured degree are
    /// zero). While it sits in a window the window's copy is newer.
    pub fn get(&self, id: u32) -> Option<Gaussian> {
        let m = self.meta.get(id as usize)?;
        m.alive.then(|| self.store.get(id))
    }

    /// Changes a live Gaussian's stored value; false when `id` is not live.
    pub fn update(&mut self, id: u32, f: impl FnOnce(&mut Gaussian)) -> bool {
        if !self.meta.get(id as usize).is_some_and(|m| m.alive) {
            return false;
        }
        let mut g = self.store.get(id);
        f(&mut g);
        self.store.set(id, &g);
        true
    }

    pub fn is_coloured(&self, id: u32) -> bool {
        self.meta
            .get(id as usize)
            .is_some_and(|m| m.alive && m.coloured)
    }

    pub(crate) fn set_coloured(&mut self, id: u32) {
        if let Some(m) = self.meta.get_mut(id as usize) {
            m.coloured = true;
        }
    }

    /// Live Gaussians with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Gaussian)> + '_ {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, m)| m.alive)
            .map(|(i, _)| (i as u32, self.store.get(i as u32)))
    }

    pub fn root(&self, key: &RootKey) -> Option<&RootVoxel> {
        self.roots.get(key)
    }

    /// Bytes held by the store, its book-keeping and the octrees (capacity, not length).
    pub fn memory_bytes(&self) -> usize {
        let store = self.store.memory_bytes()
            + self.meta.capacity() * std::mem::size_of::<Meta>()
            + self.free.capacity() * 4;
        let trees: usize = self
            .roots
            .values()
            .map(|r| {
                std::mem::size_of::<RootVoxel>()
                    + std::mem::size_of::<RootKey>()
                    + r.nodes.capacity() * std::mem::size_of::<Node>()
                    + r.nodes
                        .iter()
                        .map(|n| n.gaussians.capacity() * 4)
                        .sum::<usize>()
            })
            .sum();
        let blocks: usize = self
            .blocks
            .values()
            .map(|b| 48 + b.capacity() * std::mem::size_of::<RootKey>())
            .sum();
        store + trees + blocks
    }

    fn leaf_coords(&self, p: &[f64; 3]) -> Option<[i64; 3]> {
        let s = self.cfg.leaf_size();
        let c = [(p[0] / s).floor(), (p[1] / s).floor(), (p[2] / s).floor()];
        // Refuse coordinates whose cells overflow i64 (or are NaN).
        c.iter()
            .all(|v| v.is_finite() && v.abs() < 1e15)
            .then(|| [c[0] as i64, c[1] as i64, c[2] as i64])
    }

    fn root_of(&self, leaf: [i64; 3]) -> RootKey {
        let sh = self.cfg.levels - 1;
        [leaf[0] >> sh, leaf[1] >> sh, leaf[2] >> sh]
    }

    /// Root key of a world point.
    pub fn root_key(&self, p: &[f64; 3]) -> Option<RootKey> {
        self.leaf_coords(p).map(|l| self.root_of(l))
    }

    /// Octant of `leaf` at `depth` (1 = first level below the root).
    fn child_index(&self, leaf: [i64; 3], depth: u32) -> usize {
        let bit = self.cfg.levels - 1 - depth;
        (((leaf[0] >> bit) & 1) | (((leaf[1] >> bit) & 1) << 1) | (((leaf[2] >> bit) & 1) << 2))
            as usize
    }

    /// Gaussians in the finest leaf containing `p` (0 when the leaf does not exist).
    pub fn leaf_occupancy(&self, p: &[f64; 3]) -> usize {
        self.find_leaf(p)
            .map(|(k, n)| self.roots[&k].nodes[n as usize].gaussians.len())
            .unwrap_or(0)
    }

    /// Edge (m) of the cells at octree `depth` (0 = root).
    pub fn cell_size(&self, depth: u32) -> f64 {
        self.cfg.root_size / f64::from(1u32 << depth.min(20))
    }

    /// The finest depth whose cells are at least `size` wide, clamped to the tree (the finest
    /// level for `size` at most the leaf size, the root for `size` above the root size).
    pub fn depth_for_size(&self, size: f64) -> u32 {
        let finest = self.cfg.levels - 1;
        if !(size.is_finite() && size > 0.0) {
            return finest;
        }
        let d = (self.cfg.root_size / size).log2().floor();
        if d <= 0.0 {
            0
        } else {
            (d as u32).min(finest)
        }
    }

    /// Octree depth of a live Gaussian (its cell is [`Self::cell_size`] of it).
    pub fn depth_of(&self, id: u32) -> Option<u32> {
        let m = self.meta.get(id as usize)?;
        m.alive.then_some(u32::from(m.depth))
    }

    fn find_leaf(&self, p: &[f64; 3]) -> Option<(RootKey, u32)> {
        let leaf = self.leaf_coords(p)?;
        self.find_node(leaf, self.cfg.levels - 1)
    }

    /// The existing node at `depth` on the path to finest-grid cell `leaf`.
    fn find_node(&self, leaf: [i64; 3], depth: u32) -> Option<(RootKey, u32)> {
        let key = self.root_of(leaf);
        let root = self.roots.get(&key)?;
        let mut node = 0u32;
        for d in 1..=depth {
            let c = root.nodes[node as usize].children[self.child_index(leaf, d)];
            if c == 0 {
                return None;
            }
            node = c;
        }
        Some((key, node))
    }

    /// Whether a node coarser than `depth` on the path to finest-grid cell `leaf` holds a
    /// Gaussian.
    fn covered_above(&self, leaf: [i64; 3], depth: u32) -> bool {
        let Some(root) = self.roots.get(&self.root_of(leaf)) else {
            return false;
        };
        let mut node = 0u32;
        for d in 0..depth {
            if !root.nodes[node as usize].gaussians.is_empty() {
                return true;
            }
            let c = root.nodes[node as usize].children[self.child_index(leaf, d + 1)];
            if c == 0 {
                return false;
            }
            node = c;
        }
        false
    }

    /// The node at `depth` over finest-grid cell `leaf`, created on demand; every node on
    /// the way counts one more Gaussian below it (the caller adds one there).
    fn node_for_insert(&mut self, leaf: [i64; 3], depth: u32) -> (RootKey, u32) {
        let key = self.root_of(leaf);
        let path: Vec<usize> = (1..=depth).map(|d| self.child_index(leaf, d)).collect();
        if let std::collections::hash_map::Entry::Vacant(e) = self.roots.entry(key) {
            e.insert(RootVoxel::new());
            self.blocks
                .entry([
                    key[0] >> BLOCK_SHIFT,
                    key[1] >> BLOCK_SHIFT,
                    key[2] >> BLOCK_SHIFT,
                ])
                .or_default()
                .push(key);
        }
        let root = self.roots.get_mut(&key).expect("just inserted");
        let mut node = 0u32;
        for oct in path {
            root.nodes[node as usize].subtree += 1;
            let c = root.nodes[node as usize].children[oct];
            node = if c == 0 {
                let id = root.nodes.len() as u32;
                root.nodes.push(Node {
                    parent: node,
                    ..Node::default()
                });
                root.nodes[node as usize].children[oct] = id;
                id
            } else {
                c
            };
        }
        root.nodes[node as usize].subtree += 1;
        (key, node)
    }

    /// Adds a Gaussian at its mean's cell, ignoring the capacity (used when loading maps). Its
    /// depth follows its size as at insertion: the finest whose cell is at least
    /// `2 max_scale / init_scale` wide (a Gaussian that grew while optimised may go coarser).
    pub fn insert_unchecked(&mut self, g: Gaussian, coloured: bool) -> Result<u32, GaussianError> {
        let leaf = self.leaf_of_mean(&g)?;
        let size = f64::from(g.max_scale()) / f64::from(self.cfg.init_scale);
        let depth = self.depth_for_size(size);
        Ok(self.insert_at(leaf, depth, g, coloured))
    }

    /// Adds a split's child at its mean's cell on octree level `depth` (clamped to the finest),
    /// ignoring the cell's capacity as the parent it replaces did not count against it.
    pub(crate) fn insert_child(&mut self, g: Gaussian, depth: u32) -> Result<u32, GaussianError> {
        let leaf = self.leaf_of_mean(&g)?;
        Ok(self.insert_at(leaf, depth.min(self.cfg.levels - 1), g, true))
    }

    /// Finest-grid cell of `g`'s mean, or an error when it is not finite.
    fn leaf_of_mean(&self, g: &Gaussian) -> Result<[i64; 3], GaussianError> {
        let p = [
            f64::from(g.mean[0]),
            f64::from(g.mean[1]),
            f64::from(g.mean[2]),
        ];
        self.leaf_coords(&p)
            .ok_or_else(|| GaussianError::Input(format!("gaussian mean {p:?} is not finite")))
    }

    fn insert_at(&mut self, leaf: [i64; 3], depth: u32, g: Gaussian, coloured: bool) -> u32 {
        let (root, node) = self.node_for_insert(leaf, depth);
        let meta = Meta {
            root,
            node,
            depth: depth as u8,
            slot: NO_SLOT,
            alive: true,
            coloured,
        };
        let id = if let Some(id) = self.free.pop() {
            self.store.set(id, &g);
            self.meta[id as usize] = meta;
            id
        } else {
            self.meta.push(meta);
            self.store.push(&g)
        };
        let r = self.roots.get_mut(&root).expect("leaf exists");
        r.nodes[node as usize].gaussians.push(id);
        r.count += 1;
        self.live += 1;
        id
    }

    /// Deletes a Gaussian (pruning). The caller must have taken it out of any window.
    pub fn remove(&mut self, id: u32) -> bool {
        let Some(m) = self.meta.get_mut(id as usize) else {
            return false;
        };
        if !m.alive {
            return false;
        }
        debug_assert_eq!(m.slot, NO_SLOT, "remove a windowed gaussian via the window");
        m.alive = false;
        let (root, node) = (m.root, m.node);
        if let Some(r) = self.roots.get_mut(&root) {
            let list = &mut r.nodes[node as usize].gaussians;
            if let Some(pos) = list.iter().position(|&x| x == id) {
                list.swap_remove(pos);
                r.count -= 1;
                // The mean may have moved since insertion: walk up by parent links.
                let mut n = node as usize;
                loop {
                    r.nodes[n].subtree -= 1;
                    if n == 0 {
                        break;
                    }
                    n = r.nodes[n].parent as usize;
                }
            }
        }
        self.free.push(id);
        self.live -= 1;
        true
    }

    /// Root voxels whose centre lies within `radius` of `centre` (block-indexed, so the cost
    /// grows with the queried volume, not with the map).
    pub fn roots_near(&self, centre: [f64; 3], radius: f64) -> Vec<RootKey> {
        let rs = self.cfg.root_size;
        let bs = rs * f64::from(1u32 << BLOCK_SHIFT);
        let lo = |c: f64| ((c - radius) / bs).floor() as i64;
        let hi = |c: f64| ((c + radius) / bs).floor() as i64;
        let r2 = radius * radius;
        let mut out = Vec::new();
        let range = [
            lo(centre[0])..=hi(centre[0]),
            lo(centre[1])..=hi(centre[1]),
            lo(centre[2])..=hi(centre[2]),
        ];
        let span: i64 = range
            .iter()
            .map(|r| r.end() - r.start() + 1)
            .product::<i64>();
        let visit = |key: &RootKey, out: &mut Vec<RootKey>| {
            let c = self.root_centre(key);
            let d2 = (c[0] - centre[0]).powi(2)
                + (c[1] - centre[1]).powi(2)
                + (c[2] - centre[2]).powi(2);
            if d2 <= r2 {
                out.push(*key);
            }
        };
        if span as usize > self.blocks.len() {
            // A query bigger than the map: scan the blocks themselves.
            for keys in self.blocks.values() {
                keys.iter().for_each(|k| visit(k, &mut out));
            }
        } else {
            for bx in range[0].clone() {
                for by in range[1].clone() {
                    for bz in range[2].clone() {
                        if let Some(keys) = self.blocks.get(&[bx, by, bz]) {
                            keys.iter().for_each(|k| visit(k, &mut out));
                        }
                    }
                }
            }
        }
        out
    }

    /// Centre of a root voxel in world coordinates.
    pub fn root_centre(&self, key: &RootKey) -> [f64; 3] {
        let rs = self.cfg.root_size;
        [
            (key[0] as f64 + 0.5) * rs,
            (key[1] as f64 + 0.5) * rs,
            (key[2] as f64 + 0.5) * rs,
        ]
    }

    /// Every live Gaussian is filed once, in the node its book-keeping names, at its depth;
    /// per-node subtree counts and parent links agree with the tree.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for (key, r) in &self.roots {
            let mut count = 0;
            // Depth of each node from the parent links (children come after their parents).
            let mut depth = vec![0u32; r.nodes.len()];
            for (ni, n) in r.nodes.iter().enumerate() {
                for &c in n.children.iter().filter(|&&c| c != 0) {
                    if r.nodes[c as usize].parent != ni as u32 || c as usize <= ni {
                        return Err(format!("node {c} of {key:?}: bad parent link"));
                    }
                    depth[c as usize] = depth[ni] + 1;
                }
                if depth[ni] >= self.cfg.levels {
                    return Err(format!("node {ni} of {key:?} below the finest level"));
                }
                for &id in &n.gaussians {
                    let m = self.meta[id as usize];
                    if !m.alive
                        || m.root != *key
                        || m.node != ni as u32
                        || u32::from(m.depth) != depth[ni]
                    {
                        return Err(format!("gaussian {id} mis-filed"));
                    }
                    count += 1;
                }
            }
            for (ni, n) in r.nodes.iter().enumerate().rev() {
                let below: u32 = n
                    .children
                    .iter()
                    .filter(|&&c| c != 0)
                    .map(|&c| r.nodes[c as usize].subtree)
                    .sum();
                if n.subtree != below + n.gaussians.len() as u32 {
                    return Err(format!("node {ni} of {key:?}: subtree count {}", n.subtree));
                }
            }
            if count != r.count as usize {
                return Err(format!("root {key:?} count {} != {count}", r.count));
            }
            seen += count;
        }
        if seen != self.live {
            return Err(format!("live {} but {seen} filed", self.live));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn cfg() -> GaussianConfig {
        GaussianConfig {
            root_size: 0.4,
            levels: 3,
            ..Default::default()
        }
    }

    pub(super) fn plane(n: usize, step: f64, z: f64) -> Vec<[f64; 3]> {
        let mut v = Vec::new();
        for i in 0..n {
            for j in 0..n {
                v.push([i as f64 * step + 0.001, j as f64 * step + 0.001, z]);
            }
        }
        v
    }

    #[test]
    fn keys_are_floor_of_root_size_including_negative() {
        let m = GaussianMap::new(cfg()).unwrap();
        assert_eq!(m.root_key(&[0.39, -0.01, 0.8]), Some([0, -1, 2]));
        assert_eq!(m.root_key(&[-0.4, 0.0, 1.25]), Some([-1, 0, 3]));
        assert_eq!(m.root_key(&[f64::NAN, 0.0, 0.0]), None);
    }

    #[test]
    fn one_gaussian_per_empty_leaf_and_invariants_hold() {
        let mut m = GaussianMap::new(cfg()).unwrap();
        let pts = plane(40, 0.02, 1.05); // 0.8 m square, leaves 0.1 m: 8 x 8 leaves
        let s = m.insert_scan(&pts, None, [0.4, 0.4, 3.0], 0.0, &mut |_, _| {
            Some([1.0, 0.0, 0.0])
        });
        assert_eq!(s.created, 64, "{s:?}");
        assert_eq!(s.occupied, pts.len() - 64);
        assert!(s.uncoloured.is_empty());
        m.check_invariants().unwrap();
        // Second pass over the same surface adds nothing.
        let s2 = m.insert_scan(&pts, None, [0.4, 0.4, 3.0], 0.0, &mut |_, _| None);
        assert_eq!(s2.created, 0);
        // Discs are flat with the normal along +z (towards the sensor) and red.
        let (_, g) = m.iter().nth(10).unwrap();
        assert!(g.normal()[2] > 0.999);
        assert!((g.log_scale[0].exp() - 0.06).abs() < 1e-6);
        assert!((g.base_colour()[0] - 1.0).abs() < 1e-6);
        assert_eq!(m.root_count(), 4);
    }

    #[test]
    fn remove_frees_leaf_and_id() {
        let mut m = GaussianMap::new(cfg()).unwrap();
        // Small enough for the finest leaf (0.1 m).
        let g = Gaussian {
            mean: [0.05, 0.05, 0.05],
            log_scale: [-3.0; 3],
            ..Default::default()
        };
        let id = m.insert_unchecked(g, true).unwrap();
        assert_eq!(m.depth_of(id), Some(2));
        assert_eq!(m.leaf_occupancy(&[0.06, 0.06, 0.06]), 1);
        assert!(m.remove(id));
        assert!(!m.remove(id));
        assert_eq!(m.leaf_occupancy(&[0.06, 0.06, 0.06]), 0);
        assert_eq!(m.len(), 0);
        let id2 = m.insert_unchecked(g, true).unwrap();
        assert_eq!(id2, id);
        m.check_invariants().unwrap();
    }

    #[test]
    fn range_query_matches_brute_force() {
        let mut m = GaussianMap::new(cfg()).unwrap();
        for i in -30..30 {
            for j in -30..30 {
                let g = Gaussian {
                    mean: [i as f32 * 0.3, j as f32 * 0.3, 0.1],
                    ..Default::default()
                };
                m.insert_unchecked(g, true).unwrap();
            }
        }
        let centre = [1.0, -2.0, 0.0];
        let mut got = m.roots_near(centre, 3.0);
        let mut want: Vec<RootKey> = m
            .roots
            .keys()
            .filter(|k| {
                let c = m.root_centre(k);
                (c[0] - 1.0).powi(2) + (c[1] + 2.0).powi(2) + c[2].powi(2) <= 9.0
            })
            .copied()
            .collect();
        got.sort();
        want.sort();
        assert!(!want.is_empty());
        assert_eq!(got, want);
        // A huge radius takes the whole-map path and agrees too.
        assert_eq!(m.roots_near(centre, 1e4).len(), m.root_count());
    }
}
