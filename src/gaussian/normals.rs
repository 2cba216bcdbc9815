//! Surface normals of scan points from a small PCA over their neighbours in the same scan.
//!
//! Independent of the LiDAR odometry's voxel map on purpose: the Gaussian map may be fed by any
//! registered cloud.

use nalgebra::{Matrix3, SymmetricEigen, Vector3};

use super::hash::KeyMap;

/// Fewest neighbours (including the point) for a normal.
const MIN_NEIGHBOURS: usize = 5;
/// Most neighbours used (the nearest cells first are enough for a plane).
const MAX_NEIGHBOURS: usize = 24;

/// Normals of `query` points (indices into `points`) from neighbours within `radius`.
///
/// Returns one entry per query: the unit normal (oriented towards `sensor`) or `None` when the
/// neighbourhood is too sparse or not planar (a line or a blob).
pub fn estimate_normals(
    points: &[[f64; 3]],
    query: &[usize],
    radius: f64,
    sensor: [f64; 3],
) -> Vec<Option<[f64; 3]>> {
    if points.is_empty() || query.is_empty() || radius.is_nan() || radius <= 0.0 {
        return vec![None; query.len()];
    }
    let cell = |p: &[f64; 3]| {
        [
            (p[0] / radius).floor() as i64,
            (p[1] / radius).floor() as i64,
            (p[2] / radius).floor() as i64,
        ]
    };
    let mut grid: KeyMap<[i64; 3], Vec<u32>> = KeyMap::default();
    for (i, p) in points.iter().enumerate() {
        grid.entry(cell(p)).or_default().push(i as u32);
    }
    let r2 = radius * radius;
    let mut neigh: Vec<Vector3<f64>> = Vec::with_capacity(64);
    query
        .iter()
        .map(|&qi| {
            let q = points.get(qi)?;
            let c = cell(q);
            neigh.clear();
            'outer: for dx in -1..=1 {
                for dy in -1..=1 {
                    for dz in -1..=1 {
                        let Some(ids) = grid.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) else {
                            continue;
                        };
                        for &j in ids {
                            let p = &points[j as usize];
                            let d = Vector3::new(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
                            if d.norm_squared() <= r2 {
                                neigh.push(Vector3::new(p[0], p[1], p[2]));
                                if neigh.len() >= MAX_NEIGHBOURS * 4 {
                                    break 'outer;
                                }
                            }
                        }
                    }
                }
            }
            if neigh.len() < MIN_NEIGHBOURS {
                return None;
            }
            plane_normal(&neigh).map(|n| {
                let to_sensor = Vector3::new(sensor[0] - q[0], sensor[1] - q[1], sensor[2] - q[2]);
                let n = if n.dot(&to_sensor) < 0.0 { -n } else { n };
                [n.x, n.y, n.z]
            })
        })
        .collect()
}

/// Normal of the best-fit plane, or `None` when the spread is not planar.
fn plane_normal(pts: &[Vector3<f64>]) -> Option<Vector3<f64>> {
    let n = pts.len() as f64;
    let mean = pts.iter().sum::<Vector3<f64>>() / n;
    let mut cov = Matrix3::zeros();
    for p in pts {
        let d = p - mean;
        cov += d * d.transpose();
    }
    cov /= n;
    let eig = SymmetricEigen::new(cov);
    let mut idx = [0usize, 1, 2];
    idx.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    let (l0, l1) = (eig.eigenvalues[idx[0]], eig.eigenvalues[idx[1]]);
    // Planar: the smallest spread well below the middle one; a line has l1 ~ l0 ~ 0.
    if !(l1 > 1e-12 && l0 < 0.25 * l1) {
        return None;
    }
    let v = eig.eigenvectors.column(idx[0]).into_owned();
    let len = v.norm();
    (len > 0.0).then(|| v / len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_normals_point_to_sensor() {
        // A tilted plane z = 0.5 x sampled on a grid, sensor above.
        let mut pts = Vec::new();
        for i in 0..20 {
            for j in 0..20 {
                let (x, y) = (i as f64 * 0.05, j as f64 * 0.05);
                pts.push([x, y, 0.5 * x + 1.0]);
            }
        }
        let q: Vec<usize> = (0..pts.len()).step_by(37).collect();
        let ns = estimate_normals(&pts, &q, 0.15, [0.5, 0.5, 5.0]);
        let expect = Vector3::new(-0.5, 0.0, 1.0).normalize();
        for n in ns {
            let n = n.expect("planar neighbourhood");
            let d = Vector3::new(n[0], n[1], n[2]).dot(&expect);
            assert!(d > 0.9999, "{n:?}");
        }
    }

    #[test]
    fn lines_and_isolated_points_have_no_normal() {
        let line: Vec<[f64; 3]> = (0..30).map(|i| [i as f64 * 0.01, 0.0, 0.0]).collect();
        let ns = estimate_normals(&line, &[10], 0.1, [0.0, 0.0, 1.0]);
        assert!(ns[0].is_none());
        let ns = estimate_normals(&[[0.0; 3]], &[0, 5], 0.1, [0.0; 3]);
        assert_eq!(ns, vec![None, None]);
    }
}
