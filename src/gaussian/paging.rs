//! Paging a frozen map from its file: only the tiles (cubes of root voxels) near the camera are
//! resident. Before the window moves, every tile that could hold a root voxel the window may
//! select is read in; after it moved, resident tiles beyond a wider radius (hysteresis, so a
//! camera pacing along a tile border does not read the same tile every frame) and holding no
//! windowed Gaussian are dropped. Resident memory then follows the window's range, not the
//! map's size. Pages are never written back: a paged map is frozen (localise mode).

use super::map::{GaussianMap, GaussianRecord, RootKey};
use super::GaussianError;
use crate::voxel_key::KeyMap;

/// Tile key: `floor(root_key / tile_roots)` per axis.
pub type TileKey = [i64; 3];

/// Where the tiles come from (a map file); reads are checked (checksums) by the source.
pub trait TileSource: Send {
    /// Root voxels per tile edge.
    fn tile_roots(&self) -> i64;
    /// Keys of every stored tile.
    fn tiles(&self) -> Vec<TileKey>;
    /// The Gaussians of tile `key`, in their cells; an error names what is wrong.
    fn read(&mut self, key: &TileKey) -> Result<Vec<GaussianRecord>, String>;
}

/// Counters of one paged run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageStats {
    pub tiles_read: u64,
    pub tiles_dropped: u64,
    /// Tiles resident now, and at most so far.
    pub resident: usize,
    pub peak_resident: usize,
    pub gaussians_read: u64,
}

/// The tiles of a [`TileSource`] kept resident in a [`GaussianMap`] around a moving centre.
pub struct Pager {
    source: Box<dyn TileSource>,
    tiles: Vec<TileKey>,
    /// Resident tiles and the root voxels each brought in.
    resident: KeyMap<TileKey, Vec<RootKey>>,
    load_radius: f64,
    drop_radius: f64,
    stats: PageStats,
}

impl Pager {
    /// Reads tiles within `load_radius` (m, from the centre to the tile's box) and drops them
    /// beyond `drop_radius` (at least `load_radius`).
    pub fn new(source: Box<dyn TileSource>, load_radius: f64, drop_radius: f64) -> Self {
        let tiles = source.tiles();
        Self {
            source,
            tiles,
            resident: KeyMap::default(),
            load_radius,
            drop_radius: drop_radius.max(load_radius),
            stats: PageStats::default(),
        }
    }

    /// The radii a window of `range` (m) needs on a map of `root_size`: every root voxel whose
    /// centre the window may query (within `range` plus a root's reach) is resident, and tiles
    /// are dropped half a tile (at least 2 m) farther out.
    pub fn radii(range: f64, root_size: f64, tile_roots: i64) -> (f64, f64) {
        let load = range + root_size * (3f64.sqrt() + 0.5);
        let hysteresis = (0.5 * tile_roots as f64 * root_size).max(2.0);
        (load, load + hysteresis)
    }

    pub fn stats(&self) -> &PageStats {
        &self.stats
    }

    /// Tiles resident now.
    pub fn resident_tiles(&self) -> Vec<TileKey> {
        let mut v: Vec<TileKey> = self.resident.keys().copied().collect();
        v.sort_unstable();
        v
    }

    fn distance(&self, key: &TileKey, c: [f64; 3], root_size: f64) -> f64 {
        let edge = self.source.tile_roots() as f64 * root_size;
        (0..3)
            .map(|i| {
                let lo = key[i] as f64 * edge;
                let d = (lo - c[i]).max(c[i] - (lo + edge)).max(0.0);
                d * d
            })
            .sum::<f64>()
            .sqrt()
    }

    /// Reads every tile within the load radius of `centre` that is not resident.
    pub fn load_near(
        &mut self,
        map: &mut GaussianMap,
        centre: [f64; 3],
    ) -> Result<usize, GaussianError> {
        let rs = map.config().root_size;
        let want: Vec<TileKey> = self
            .tiles
            .iter()
            .filter(|k| !self.resident.contains_key(*k))
            .filter(|k| self.distance(k, centre, rs) <= self.load_radius)
            .copied()
            .collect();
        for key in &want {
            self.load(map, key)?;
        }
        Ok(want.len())
    }

    /// Reads every tile (a save or an export of the whole map).
    pub fn load_all(&mut self, map: &mut GaussianMap) -> Result<(), GaussianError> {
        let all: Vec<TileKey> = self
            .tiles
            .iter()
            .filter(|k| !self.resident.contains_key(*k))
            .copied()
            .collect();
        for key in &all {
            self.load(map, key)?;
        }
        Ok(())
    }

    fn load(&mut self, map: &mut GaussianMap, key: &TileKey) -> Result<(), GaussianError> {
        let records = self
            .source
            .read(key)
            .map_err(|e| GaussianError::Input(format!("paging in map tile {key:?}: {e}")))?;
        let t = self.source.tile_roots();
        let mut roots: Vec<RootKey> = Vec::new();
        for r in &records {
            let root = r.root_key();
            if root.map(|v| v.div_euclid(t)) != *key {
                return Err(GaussianError::Input(format!(
                    "map tile {key:?} holds a Gaussian of root voxel {root:?}, outside it"
                )));
            }
            if map.root(&root).is_some() && !roots.contains(&root) {
                return Err(GaussianError::Input(format!(
                    "map tile {key:?}: root voxel {root:?} is resident already"
                )));
            }
            map.insert_record(r).map_err(|e| {
                GaussianError::Input(format!("map tile {key:?}: gaussian of {root:?}: {e}"))
            })?;
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        self.stats.tiles_read += 1;
        self.stats.gaussians_read += records.len() as u64;
        self.resident.insert(*key, roots);
        self.stats.resident = self.resident.len();
        self.stats.peak_resident = self.stats.peak_resident.max(self.stats.resident);
        Ok(())
    }

    /// Drops resident tiles beyond the drop radius of `centre` that hold no windowed Gaussian.
    pub fn drop_far(&mut self, map: &mut GaussianMap, centre: [f64; 3]) -> usize {
        let rs = map.config().root_size;
        let far: Vec<TileKey> = self
            .resident
            .iter()
            .filter(|(k, _)| self.distance(k, centre, rs) > self.drop_radius)
            .filter(|(_, roots)| !roots.iter().any(|r| map.root_windowed(r)))
            .map(|(k, _)| *k)
            .collect();
        for k in &far {
            if let Some(roots) = self.resident.remove(k) {
                roots.iter().for_each(|r| {
                    map.remove_root(r);
                });
            }
        }
        self.stats.tiles_dropped += far.len() as u64;
        self.stats.resident = self.resident.len();
        far.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::{Gaussian, GaussianConfig};

    /// Tiles from an in-memory map, counting reads.
    struct Memory {
        tiles: KeyMap<TileKey, Vec<GaussianRecord>>,
        t: i64,
    }

    impl TileSource for Memory {
        fn tile_roots(&self) -> i64 {
            self.t
        }
        fn tiles(&self) -> Vec<TileKey> {
            self.tiles.keys().copied().collect()
        }
        fn read(&mut self, key: &TileKey) -> Result<Vec<GaussianRecord>, String> {
            self.tiles.get(key).cloned().ok_or("no such tile".into())
        }
    }

    /// A floor of Gaussians every 0.25 m over 40 x 40 m; root 0.5 m, tiles of 8 roots (4 m).
    #[test]
    fn only_tiles_near_the_centre_are_resident_and_far_ones_drop() {
        let cfg = GaussianConfig {
            root_size: 0.5,
            levels: 2,
            ..Default::default()
        };
        let mut full = GaussianMap::new(cfg.clone()).unwrap();
        for i in 0..160 {
            for j in 0..160 {
                let g = Gaussian {
                    mean: [i as f32 * 0.25 + 0.1, j as f32 * 0.25 + 0.1, 0.1],
                    log_scale: [-4.0; 3],
                    ..Default::default()
                };
                full.insert_unchecked(g, true).unwrap();
            }
        }
        let mut tiles: KeyMap<TileKey, Vec<GaussianRecord>> = KeyMap::default();
        for r in full.to_records() {
            tiles
                .entry(r.root_key().map(|v| v.div_euclid(8)))
                .or_default()
                .push(r);
        }
        assert_eq!(tiles.len(), 100);
        let mut map = GaussianMap::new(cfg).unwrap();
        let mut p = Pager::new(Box::new(Memory { tiles, t: 8 }), 5.0, 7.0);
        p.load_near(&mut map, [20.0, 20.0, 0.0]).unwrap();
        // Tiles whose box is within 5 m of (20, 20): x and y tiles 3..=6 minus the corners.
        assert_eq!(p.resident_tiles().len(), 12, "{:?}", p.resident_tiles());
        map.check_invariants().unwrap();
        assert_eq!(map.len(), 12 * 16 * 16);
        // Every Gaussian within 5 m of the centre is resident.
        let near = full
            .iter()
            .filter(|(_, g)| (g.mean[0] - 20.0).hypot(g.mean[1] - 20.0) <= 5.0)
            .count();
        let got = map
            .iter()
            .filter(|(_, g)| (g.mean[0] - 20.0).hypot(g.mean[1] - 20.0) <= 5.0)
            .count();
        assert_eq!(got, near);
        // 1 m on, nothing drops inside the hysteresis.
        p.load_near(&mut map, [21.0, 20.0, 0.0]).unwrap();
        assert_eq!(p.drop_far(&mut map, [21.0, 20.0, 0.0]), 0);
        // Far away: the old tiles drop, the memory of the map follows.
        let before = map.len();
        p.load_near(&mut map, [36.0, 36.0, 0.0]).unwrap();
        let dropped = p.drop_far(&mut map, [36.0, 36.0, 0.0]);
        assert!(dropped >= 12, "{dropped}");
        map.check_invariants().unwrap();
        assert!(map.len() < before, "{} {before}", map.len());
        assert!(p.resident_tiles().iter().all(|k| k[0] >= 7 && k[1] >= 7));
        // Coming back reads them again with the same values.
        p.load_near(&mut map, [20.0, 20.0, 0.0]).unwrap();
        p.drop_far(&mut map, [20.0, 20.0, 0.0]);
        assert_eq!(p.resident_tiles().len(), 12);
        let mut a: Vec<[u32; 3]> = map.iter().map(|(_, g)| g.mean.map(f32::to_bits)).collect();
        let mut b: Vec<[u32; 3]> = full
            .iter()
            .filter(|(_, g)| {
                let k = [g.mean[0], g.mean[1]].map(|v| ((v / 0.5).floor() as i64).div_euclid(8));
                (3..=6).contains(&k[0]) && (3..=6).contains(&k[1])
            })
            .filter(|(_, g)| {
                // The corners of the 4 x 4 block are farther than 5 m.
                let k = [g.mean[0], g.mean[1]].map(|v| ((v / 0.5).floor() as i64).div_euclid(8));
                !((k[0] == 3 || k[0] == 6) && (k[1] == 3 || k[1] == 6))
            })
            .map(|(_, g)| g.mean.map(f32::to_bits))
            .collect();
        a.sort_unstable();
        b.sort_unstable();
        assert!(a == b);
        assert!(p.stats().tiles_dropped >= 12 && p.stats().peak_resident >= 12);
    }
}
