//! Scan filters.

use crate::voxel_key::KeyMap;

/// Voxel-grid downsampling: returns the indices of the kept points, the one nearest to its voxel
/// centre per voxel, in input order. `leaf <= 0` keeps all.
pub fn voxel_downsample(x: &[f32], y: &[f32], z: &[f32], idx: &[u32], leaf: f64) -> Vec<u32> {
    if leaf <= 0.0 {
        return idx.to_vec();
    }
    let inv = 1.0 / leaf;
    let mut best: KeyMap<[i32; 3], (u32, f64)> = KeyMap::default();
    best.reserve(idx.len() / 2);
    for &i in idx {
        let k = i as usize;
        let p = [x[k] as f64 * inv, y[k] as f64 * inv, z[k] as f64 * inv];
        let key = [
            p[0].floor() as i32,
            p[1].floor() as i32,
            p[2].floor() as i32,
        ];
        let d: f64 = (0..3)
            .map(|a| {
                let c = key[a] as f64 + 0.5;
                (p[a] - c) * (p[a] - c)
            })
            .sum();
        best.entry(key)
            .and_modify(|e| {
                if d < e.1 {
                    *e = (i, d)
                }
            })
            .or_insert((i, d));
    }
    // Sorted, so the hash map's iteration order does not reach the output.
    let mut out: Vec<u32> = best.values().map(|v| v.0).collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_point_per_voxel() {
        let x = [0.1f32, 0.15, 0.9, 1.2, -0.1];
        let y = [0.0f32; 5];
        let z = [0.0f32; 5];
        let idx: Vec<u32> = (0..5).collect();
        let kept = voxel_downsample(&x, &y, &z, &idx, 0.5);
        // Voxels: [0,0.5): points 0,1 (0.15 nearer 0.25 -> index 1); [0.5,1): 2; [1,1.5): 3; [-0.5,0): 4.
        assert_eq!(kept, vec![1, 2, 3, 4]);
    }
}
