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

/// [`voxel_downsample`] that keeps at least `min_points` (or all of `idx`, if fewer): the leaf
/// shrinks by steps of 1/sqrt(2), to a quarter of `leaf` at the finest. Returns the kept
/// indices and whether a finer leaf was used.
pub fn voxel_downsample_keeping(
    x: &[f32],
    y: &[f32],
    z: &[f32],
    idx: &[u32],
    leaf: f64,
    min_points: usize,
) -> (Vec<u32>, bool) {
    let mut kept = voxel_downsample(x, y, z, idx, leaf);
    let wanted = min_points.min(idx.len());
    if leaf <= 0.0 || kept.len() >= wanted {
        return (kept, false);
    }
    let finest = leaf * 0.25;
    let mut finer = leaf;
    while kept.len() < wanted && finer > finest * (1.0 + 1e-9) {
        finer = (finer * std::f64::consts::FRAC_1_SQRT_2).max(finest);
        kept = voxel_downsample(x, y, z, idx, finer);
    }
    (kept, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 m square at 1 cm spacing in z = 0, offset so no point sits on a voxel boundary.
    fn plane() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<u32>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..100 {
            for j in 0..100 {
                x.push(i as f32 * 0.01 + 0.0037);
                y.push(j as f32 * 0.01 + 0.0037);
            }
        }
        let z = vec![0.0; x.len()];
        let idx = (0..x.len() as u32).collect();
        (x, y, z, idx)
    }

    #[test]
    fn keeping_refines_the_leaf_only_when_too_few_points_remain() {
        let (x, y, z, idx) = plane();
        let coarse = voxel_downsample(&x, &y, &z, &idx, 0.3);
        assert_eq!(coarse.len(), 16, "4 x 4 voxels of 0.3 m over the square");
        // Enough already: untouched.
        assert_eq!(
            voxel_downsample_keeping(&x, &y, &z, &idx, 0.3, 16),
            (coarse.clone(), false)
        );
        // 100 wanted: 0.3 -> 0.212 (25) -> 0.15 (49) -> 0.106 (100).
        let (kept, finer) = voxel_downsample_keeping(&x, &y, &z, &idx, 0.3, 100);
        assert!(finer);
        assert!(kept.len() >= 100 && kept.len() < 200, "{}", kept.len());
        // The floor is a quarter of the leaf (0.075 m: 14 x 14 voxels), however many are wanted.
        let (kept, _) = voxel_downsample_keeping(&x, &y, &z, &idx, 0.3, 5000);
        assert_eq!(kept.len(), 14 * 14);
    }

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
