//! The LiDAR map a node saves: registered scans kept at one point per voxel (the first seen),
//! written as a binary PLY point cloud (x y z intensity) that CloudCompare, PCL and Open3D read.
//! Memory is bounded by the number of voxels, not by the run's length.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::sensors::PointCloud;

/// Voxel edge (m): fine enough to see walls and furniture, coarse enough to stay small.
pub const DEFAULT_LEAF: f32 = 0.1;
/// Most voxels kept (about 32 MB); later points in new voxels are counted, not stored.
pub const DEFAULT_MAX_POINTS: usize = 2_000_000;

/// Registered points, one per voxel.
#[derive(Debug)]
pub struct VoxelCloud {
    leaf: f32,
    max_points: usize,
    cells: HashMap<(i32, i32, i32), u32>,
    points: Vec<[f32; 4]>,
    /// Points in new voxels refused because the cloud was full.
    pub refused: u64,
}

impl Default for VoxelCloud {
    fn default() -> Self {
        Self::new(DEFAULT_LEAF, DEFAULT_MAX_POINTS)
    }
}

impl VoxelCloud {
    pub fn new(leaf: f32, max_points: usize) -> Self {
        Self {
            leaf: leaf.max(1e-3),
            max_points,
            cells: HashMap::new(),
            points: Vec::new(),
            refused: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Adds the points of a registered (world-frame) cloud.
    pub fn insert(&mut self, c: &PointCloud) {
        for i in 0..c.len() {
            let p = [c.x[i], c.y[i], c.z[i]];
            if !p.iter().all(|v| v.is_finite()) {
                continue;
            }
            let key = (
                (p[0] / self.leaf).floor() as i32,
                (p[1] / self.leaf).floor() as i32,
                (p[2] / self.leaf).floor() as i32,
            );
            if self.cells.contains_key(&key) {
                continue;
            }
            if self.points.len() >= self.max_points {
                self.refused += 1;
                continue;
            }
            self.cells.insert(key, self.points.len() as u32);
            let intensity = c.intensity.get(i).copied().unwrap_or(0.0);
            self.points.push([p[0], p[1], p[2], intensity]);
        }
    }

    /// The kept points (x, y, z, intensity) and the voxel edge, copied so the file can be
    /// written without holding the publisher's lock.
    pub fn snapshot(&self) -> (f32, Vec<[f32; 4]>) {
        (self.leaf, self.points.clone())
    }

    /// Binary little-endian PLY with float x, y, z, intensity.
    pub fn write_ply(&self, path: &Path) -> std::io::Result<()> {
        write_ply(path, self.leaf, &self.points)
    }
}

/// Writes `points` (x, y, z, intensity) as a binary little-endian PLY.
pub fn write_ply(path: &Path, leaf: f32, points: &[[f32; 4]]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    write!(
        out,
        "ply\nformat binary_little_endian 1.0\ncomment gs_livo LiDAR map, {leaf} m voxels\n\
         element vertex {}\nproperty float x\nproperty float y\nproperty float z\n\
         property float intensity\nend_header\n",
        points.len()
    )?;
    for p in points {
        for v in p {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_point_per_voxel_and_writes_a_readable_ply() {
        let mut c = PointCloud::with_capacity(0, "map", 4, false);
        c.push([0.01, 0.01, 0.01], 5.0, 0.0);
        c.push([0.05, 0.02, 0.03], 6.0, 0.0); // same voxel
        c.push([0.25, 0.0, 0.0], 7.0, 0.0);
        c.push([f32::NAN, 0.0, 0.0], 1.0, 0.0);
        let mut v = VoxelCloud::new(0.1, 10);
        v.insert(&c);
        assert_eq!(v.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.ply");
        v.write_ply(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let end = b"end_header\n";
        let at = bytes.windows(end.len()).position(|w| w == end).unwrap() + end.len();
        let body = &bytes[at..];
        assert_eq!(body.len(), 2 * 16);
        let f = |i: usize| f32::from_le_bytes(body[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((f(0), f(3)), (0.01, 5.0));
        assert_eq!((f(4), f(7)), (0.25, 7.0));
        let header = String::from_utf8_lossy(&bytes[..at]);
        assert!(header.contains("element vertex 2"), "{header}");

        let mut small = VoxelCloud::new(0.1, 1);
        small.insert(&c);
        assert_eq!((small.len(), small.refused), (1, 1));
    }
}
