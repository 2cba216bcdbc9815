//! Voxel plane map for the LiDAR point-to-plane residuals: hashed root voxels, each an octree of
//! plane-fitting leaves.
//!
//! Leaves keep running sums (count, sum, sum of outer products, sum of point covariances), so a
//! plane and its uncertainty refit in O(1); a leaf that is not planar splits into eight children
//! until `max_depth`. A leaf with `max_points` points freezes (keeps its plane, drops its points),
//! which bounds memory and time per voxel; roots far from the robot are pruned.

mod filter;
mod octree;

pub use filter::{voxel_downsample, voxel_downsample_keeping};
pub use octree::{NodeRecord, Plane, PointNoise};

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::voxel_key::KeyMap;
use octree::Node;

/// `lidar_map.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoxelMapConfig {
    /// Edge of a root voxel (m).
    pub root_size: f64,
    /// Octree levels below the root (0 = root voxels only).
    pub max_depth: u8,
    /// Points needed before a leaf fits a plane.
    pub min_points: usize,
    /// Points after which a planar leaf freezes.
    pub max_points: usize,
    /// A leaf is planar when the standard deviation along its normal is below this (m).
    pub plane_std: f64,
    /// Roots farther than this from the robot are dropped (m); 0 keeps everything.
    pub map_radius: f64,
}

impl Default for VoxelMapConfig {
    fn default() -> Self {
        Self {
            root_size: 1.0,
            max_depth: 2,
            min_points: 8,
            max_points: 100,
            plane_std: 0.04,
            map_radius: 150.0,
        }
    }
}

/// The map: a hash of root voxels keyed by `floor(p / root_size)`.
#[derive(Debug, Clone)]
pub struct VoxelMap {
    cfg: VoxelMapConfig,
    /// Only looked up, counted and pruned, never iterated in an order that reaches an output.
    roots: KeyMap<[i32; 3], Node>,
}

/// A point to insert, in the world frame, with its noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPoint {
    pub p: Vector3<f64>,
    pub noise: PointNoise,
}

impl VoxelMap {
    pub fn new(cfg: VoxelMapConfig) -> Self {
        Self {
            cfg,
            roots: KeyMap::default(),
        }
    }

    pub fn config(&self) -> &VoxelMapConfig {
        &self.cfg
    }

    fn key(&self, p: &Vector3<f64>) -> Option<[i32; 3]> {
        let s = 1.0 / self.cfg.root_size;
        let k = [(p.x * s).floor(), (p.y * s).floor(), (p.z * s).floor()];
        if k.iter().all(|v| v.abs() < i32::MAX as f64 / 2.0) {
            Some([k[0] as i32, k[1] as i32, k[2] as i32])
        } else {
            None
        }
    }

    /// Inserts world points (ones with a non-finite position or noise are ignored: one NaN in
    /// a leaf's running sums would poison its plane for good).
    pub fn insert(&mut self, points: &[MapPoint]) {
        for mp in points {
            let n = &mp.noise;
            let finite = mp.p.iter().chain(n.dir.iter()).all(|v| v.is_finite())
                && n.a.is_finite()
                && n.b.is_finite();
            if !finite {
                continue;
            }
            let Some(k) = self.key(&mp.p) else { continue };
            let size = self.cfg.root_size;
            let node = self.roots.entry(k).or_insert_with(|| {
                let c = Vector3::new(
                    (k[0] as f64 + 0.5) * size,
                    (k[1] as f64 + 0.5) * size,
                    (k[2] as f64 + 0.5) * size,
                );
                Node::new(c, 0.5 * size, 0)
            });
            node.insert(mp, &self.cfg);
        }
    }

    /// The plane of the leaf containing `p`, if that leaf is planar.
    pub fn find_plane(&self, p: &Vector3<f64>) -> Option<&Plane> {
        let k = self.key(p)?;
        self.roots.get(&k)?.find(p)
    }

    /// Drops root voxels whose centre is farther than `map_radius` from `center`; returns how
    /// many were dropped.
    pub fn prune(&mut self, center: &Vector3<f64>) -> usize {
        if self.cfg.map_radius <= 0.0 {
            return 0;
        }
        let r2 = self.cfg.map_radius * self.cfg.map_radius;
        let before = self.roots.len();
        self.roots
            .retain(|_, n| (n.center() - center).norm_squared() <= r2);
        before - self.roots.len()
    }

    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// The box spanned by the root voxels (min and max corner), `None` when empty.
    pub fn bounds(&self) -> Option<(Vector3<f64>, Vector3<f64>)> {
        let s = self.cfg.root_size;
        let mut it = self.roots.keys();
        let k = it.next()?;
        let corner = |k: &[i32; 3]| Vector3::new(k[0] as f64, k[1] as f64, k[2] as f64) * s;
        let (mut lo, mut hi) = (corner(k), corner(k));
        for k in it {
            let c = corner(k);
            lo = lo.inf(&c);
            hi = hi.sup(&c);
        }
        Some((lo, hi + Vector3::repeat(s)))
    }

    /// Number of planar leaves.
    pub fn plane_count(&self) -> usize {
        self.roots.values().map(|n| n.plane_count()).sum()
    }

    /// The whole map as plain data, roots sorted by key (so equal maps give equal lists), each
    /// root's nodes in pre-order: what a map file stores.
    pub fn to_parts(&self) -> Vec<([i32; 3], Vec<NodeRecord>)> {
        let mut keys: Vec<[i32; 3]> = self.roots.keys().copied().collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|k| {
                let mut recs = Vec::new();
                self.roots[&k].to_records(&mut recs);
                (k, recs)
            })
            .collect()
    }

    /// Rebuilds a map from [`Self::to_parts`]; an error (never a partial map) when the trees do
    /// not fit the config (depth) or a root's records do not form exactly one tree.
    pub fn from_parts(
        cfg: VoxelMapConfig,
        parts: Vec<([i32; 3], Vec<NodeRecord>)>,
    ) -> Result<Self, String> {
        let mut map = Self::new(cfg);
        for (k, recs) in parts {
            let mut it = recs.iter();
            let node = Node::from_records(&mut it, 0, map.cfg.max_depth)
                .map_err(|e| format!("root {k:?}: {e}"))?;
            if it.next().is_some() {
                return Err(format!("root {k:?}: records left after its tree"));
            }
            if map.roots.insert(k, node).is_some() {
                return Err(format!("root {k:?} listed twice"));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise() -> PointNoise {
        PointNoise::isotropic(1e-4)
    }

    #[test]
    fn fits_a_plane_with_uncertainty() {
        let mut map = VoxelMap::new(VoxelMapConfig::default());
        let mut pts = Vec::new();
        // A tilted plane z = 0.1 x + 0.2 y + 3 sampled densely, noise-free.
        for i in 0..40 {
            for j in 0..40 {
                let x = i as f64 * 0.05;
                let y = j as f64 * 0.05;
                pts.push(MapPoint {
                    p: Vector3::new(x, y, 0.1 * x + 0.2 * y + 3.05),
                    noise: noise(),
                });
            }
        }
        map.insert(&pts);
        let q = Vector3::new(0.52, 0.51, 0.1 * 0.52 + 0.2 * 0.51 + 3.05);
        let pl = map.find_plane(&q).expect("plane");
        let n_true = Vector3::new(-0.1, -0.2, 1.0).normalize();
        assert!(pl.normal.dot(&n_true).abs() > 0.9999);
        assert!(pl.distance(&q).abs() < 1e-9);
        let v = pl.variance_at(&q);
        assert!(v > 0.0 && v < 1e-4, "v={v}");
        // Farther from the centroid the plane is less certain.
        assert!(pl.variance_at(&(q + Vector3::new(5.0, 0.0, 0.5))) > v);
    }

    #[test]
    fn points_with_non_finite_noise_leave_the_plane_alone() {
        let mut map = VoxelMap::new(VoxelMapConfig::default());
        let mut pts: Vec<MapPoint> = (0..400)
            .map(|i| MapPoint {
                p: Vector3::new((i % 20) as f64 * 0.05, (i / 20) as f64 * 0.05, 3.05),
                noise: noise(),
            })
            .collect();
        // A point at the sensor origin: its ray direction normalised to NaN (first, before the
        // leaf has all the points it keeps).
        pts.insert(
            0,
            MapPoint {
                p: Vector3::new(0.5, 0.5, 3.05),
                noise: PointNoise::range_bearing(Vector3::zeros().normalize(), 0.0, 0.02, 0.002),
            },
        );
        map.insert(&pts);
        let mut clean = VoxelMap::new(VoxelMapConfig::default());
        clean.insert(&pts[1..]);
        // The NaN would not show as a NaN: the plane's point variance, max(NaN, floor), would
        // silently become the floor (an overconfident plane).
        let q = Vector3::new(0.52, 0.51, 3.05);
        let (pl, want) = (map.find_plane(&q).unwrap(), clean.find_plane(&q).unwrap());
        assert_eq!(pl.point_var, want.point_var);
        assert_eq!(pl.variance_at(&q), want.variance_at(&q));
    }

    #[test]
    fn corner_splits_into_planar_children_and_prune_bounds_map() {
        let mut map = VoxelMap::new(VoxelMapConfig::default());
        let mut pts = Vec::new();
        // Two perpendicular walls meeting inside one root voxel [0,1)^3.
        for i in 0..30 {
            for j in 0..30 {
                let a = 0.01 + i as f64 / 30.0;
                let b = 0.01 + j as f64 / 30.0;
                pts.push(MapPoint {
                    p: Vector3::new(0.3, a, b),
                    noise: noise(),
                });
                pts.push(MapPoint {
                    p: Vector3::new(a, 0.3, b),
                    noise: noise(),
                });
            }
        }
        // Scan order mixes both walls; a deterministic shuffle (LCG) stands in for it.
        let mut state = 12345u64;
        for i in (1..pts.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            pts.swap(i, (state >> 33) as usize % (i + 1));
        }
        map.insert(&pts);
        let pl = map
            .find_plane(&Vector3::new(0.3, 0.8, 0.8))
            .expect("x wall leaf");
        assert!(pl.normal.x.abs() > 0.999, "{pl:?}");
        let pl = map
            .find_plane(&Vector3::new(0.8, 0.3, 0.2))
            .expect("y wall leaf");
        assert!(pl.normal.y.abs() > 0.999);
        assert!(map.plane_count() >= 4);
        let far = vec![MapPoint {
            p: Vector3::new(1000.0, 0.0, 0.0),
            noise: noise(),
        }];
        map.insert(&far);
        assert_eq!(map.root_count(), 2);
        assert_eq!(map.prune(&Vector3::zeros()), 1);
        assert_eq!(map.root_count(), 1);
    }

    #[test]
    fn ignores_non_finite_points() {
        let mut map = VoxelMap::new(VoxelMapConfig::default());
        map.insert(&[MapPoint {
            p: Vector3::new(f64::NAN, 0.0, 0.0),
            noise: noise(),
        }]);
        assert_eq!(map.root_count(), 0);
        assert!(map.find_plane(&Vector3::new(f64::NAN, 1.0, 1.0)).is_none());
    }
}
