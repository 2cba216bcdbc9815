//! Surface normals of scan points from a small PCA over their neighbours in the same scan.
//!
//! Independent of the LiDAR odometry's voxel map on purpose: the Gaussian map may be fed by any
//! registered cloud.

use nalgebra::{Matrix3, SymmetricEigen, Vector3};

use crate::voxel_key::KeyMap;

/// Fewest neighbours (including the point) for a normal.
const MIN_NEIGHBOURS: usize = 5;
/// Most neighbours gathered per query (the query's own cell first, so the nearest are in).
const MAX_NEIGHBOURS: usize = 256;
/// Neighbours whose distances give the local point spacing (as 3DGS sizes new Gaussians).
const SPACING_K: usize = 3;

/// Local surface of one scan point: plane normal and point spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surfel {
    /// Unit normal towards the sensor; `None` when no radius gave a planar neighbourhood.
    pub normal: Option<[f64; 3]>,
    /// RMS distance to the nearest few neighbours (m); `None` when too few were found.
    pub spacing: Option<f64>,
}

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
    estimate_surfels(points, query, radius, radius, sensor)
        .into_iter()
        .map(|s| s.normal)
        .collect()
}

/// Normals and spacings of `query` points, searching radii `radius`, `2 radius`, ... and last
/// `max_radius` until a neighbourhood is planar.
///
/// Growing the radius matters for spinning LiDARs: far from the sensor the rings are farther
/// apart than a small radius, and a single ring is a line, which has no normal.
pub fn estimate_surfels(
    points: &[[f64; 3]],
    query: &[usize],
    radius: f64,
    max_radius: f64,
    sensor: [f64; 3],
) -> Vec<Surfel> {
    let none = Surfel {
        normal: None,
        spacing: None,
    };
    let mut out = vec![none; query.len()];
    if points.is_empty() || query.is_empty() || !(radius > 0.0 && radius.is_finite()) {
        return out;
    }
    let mut todo: Vec<usize> = (0..query.len()).collect();
    let mut r = radius;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    loop {
        // Few queries left (the wider radii): bucket only the points a query can reach.
        let near: Option<Vec<[f64; 3]>> = (todo.len() * 27 < points.len()).then(|| {
            todo.iter()
                .filter_map(|&k| points.get(query[k]).copied())
                .collect()
        });
        let grid = Grid::new(points, r, near.as_deref());
        let last = r >= max_radius * (1.0 - 1e-9);
        // Each query alone against the shared grid, in parallel chunks when there are many;
        // the results are applied in query order, so the threads do not change them.
        let visit = |ks: &[usize]| -> Vec<Visit> {
            let mut neigh: Vec<Vector3<f64>> = Vec::with_capacity(MAX_NEIGHBOURS);
            let mut dist2: Vec<f64> = Vec::with_capacity(MAX_NEIGHBOURS);
            ks.iter()
                .map(|&k| {
                    let want_spacing = out[k].spacing.is_none();
                    visit_query(
                        &grid,
                        points,
                        query[k],
                        r,
                        want_spacing,
                        sensor,
                        &mut neigh,
                        &mut dist2,
                    )
                })
                .collect()
        };
        let visits: Vec<Visit> = if threads > 1 && todo.len() >= PARALLEL_QUERIES {
            let chunk = todo.len().div_ceil(threads);
            std::thread::scope(|sc| {
                let handles: Vec<_> = todo
                    .chunks(chunk)
                    .skip(1)
                    .map(|ks| sc.spawn(move || visit(ks)))
                    .collect();
                let mut all = visit(&todo[..chunk.min(todo.len())]);
                for h in handles {
                    // A panic in a worker is a bug in this module: propagate it.
                    all.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
                }
                all
            })
        } else {
            visit(&todo)
        };
        let mut done = visits.into_iter();
        todo.retain(|&k| {
            let Some(v) = done.next() else { return false };
            if v.spacing.is_some() {
                out[k].spacing = v.spacing;
            }
            match v {
                Visit { valid: false, .. } => false,
                Visit {
                    normal: Some(n), ..
                } => {
                    out[k].normal = Some(n);
                    false
                }
                _ => !last,
            }
        });
        if last || todo.is_empty() {
            return out;
        }
        r = (r * 2.0).min(max_radius);
    }
}

/// Queries per radius from which the search runs on all cores.
const PARALLEL_QUERIES: usize = 256;

/// What one query found at one radius.
struct Visit {
    /// False when the query index is out of range (dropped, no result).
    valid: bool,
    spacing: Option<f64>,
    normal: Option<[f64; 3]>,
}

/// Spacing (when `want_spacing`) and normal of point `qi` from its neighbours within `r`.
#[allow(clippy::too_many_arguments)]
fn visit_query(
    grid: &Grid,
    points: &[[f64; 3]],
    qi: usize,
    r: f64,
    want_spacing: bool,
    sensor: [f64; 3],
    neigh: &mut Vec<Vector3<f64>>,
    dist2: &mut Vec<f64>,
) -> Visit {
    let Some(q) = points.get(qi) else {
        return Visit {
            valid: false,
            spacing: None,
            normal: None,
        };
    };
    grid.neighbours(points, q, r, MAX_NEIGHBOURS, neigh, dist2);
    let mut spacing = None;
    if want_spacing && dist2.len() > SPACING_K {
        // The K + 1 smallest include the query itself (distance 0): drop the smallest.
        dist2.select_nth_unstable_by(SPACING_K, f64::total_cmp);
        let near = &dist2[..=SPACING_K];
        let min = near.iter().copied().fold(f64::INFINITY, f64::min);
        let ms = (near.iter().sum::<f64>() - min) / SPACING_K as f64;
        spacing = Some(ms.sqrt());
    }
    let normal = (neigh.len() >= MIN_NEIGHBOURS)
        .then(|| plane_normal(neigh))
        .flatten()
        .map(|n| {
            let to_sensor = Vector3::new(sensor[0] - q[0], sensor[1] - q[1], sensor[2] - q[2]);
            let n = if n.dot(&to_sensor) < 0.0 { -n } else { n };
            [n.x, n.y, n.z]
        });
    Visit {
        valid: true,
        spacing,
        normal,
    }
}

/// The 27 cell offsets a query visits, its own cell first: when the cap cuts, the nearest
/// points are already in.
const AROUND: [[i64; 3]; 27] = {
    const ORDER: [i64; 3] = [0, -1, 1];
    let mut out = [[0i64; 3]; 27];
    let mut i = 0;
    while i < 27 {
        out[i] = [ORDER[i / 9], ORDER[i / 3 % 3], ORDER[i % 3]];
        i += 1;
    }
    out
};

/// Points bucketed in cubes of the search radius (a query visits the 27 around it), as one
/// index list sorted by cell (point order within a cell) and a hash from cell to its run: no
/// allocation per cell.
struct Grid {
    cell: f64,
    /// Cell key to its index in `start`.
    map: KeyMap<[i64; 3], u32>,
    /// Start of each cell's run in `ids`, plus the end.
    start: Vec<u32>,
    ids: Vec<u32>,
}

impl Grid {
    /// Buckets `points`; with `near`, only those in the 27 cells around one of `near` (all a
    /// query at those positions can see).
    fn new(points: &[[f64; 3]], cell: f64, near: Option<&[[f64; 3]]>) -> Self {
        let mut g = Self {
            cell,
            map: KeyMap::default(),
            start: Vec::new(),
            ids: Vec::new(),
        };
        let wanted: Option<KeyMap<[i64; 3], ()>> = near.map(|qs| {
            let mut w = KeyMap::default();
            for q in qs {
                let c = g.key(q);
                for d in AROUND {
                    w.insert([c[0] + d[0], c[1] + d[1], c[2] + d[2]], ());
                }
            }
            w
        });
        // Pass 1: cell of each point (u32::MAX: not bucketed) and cell sizes.
        let mut counts: Vec<u32> = Vec::new();
        let cells: Vec<u32> = points
            .iter()
            .map(|p| {
                let k = g.key(p);
                if wanted.as_ref().is_some_and(|w| !w.contains_key(&k)) {
                    return u32::MAX;
                }
                let c = *g.map.entry(k).or_insert_with(|| {
                    counts.push(0);
                    (counts.len() - 1) as u32
                });
                counts[c as usize] += 1;
                c
            })
            .collect();
        // Pass 2: runs by prefix sum, filled in point order.
        g.start = Vec::with_capacity(counts.len() + 1);
        let mut acc = 0u32;
        for &n in &counts {
            g.start.push(acc);
            acc += n;
        }
        g.start.push(acc);
        let mut next: Vec<u32> = g.start[..counts.len()].to_vec();
        g.ids = vec![0; acc as usize];
        for (i, &c) in cells.iter().enumerate() {
            if c != u32::MAX {
                g.ids[next[c as usize] as usize] = i as u32;
                next[c as usize] += 1;
            }
        }
        g
    }

    fn key(&self, p: &[f64; 3]) -> [i64; 3] {
        [
            (p[0] / self.cell).floor() as i64,
            (p[1] / self.cell).floor() as i64,
            (p[2] / self.cell).floor() as i64,
        ]
    }

    /// Up to `max` points within `r` of `q` into `out` (positions) and `d2` (squared distances).
    fn neighbours(
        &self,
        points: &[[f64; 3]],
        q: &[f64; 3],
        r: f64,
        max: usize,
        out: &mut Vec<Vector3<f64>>,
        d2: &mut Vec<f64>,
    ) {
        out.clear();
        d2.clear();
        let c = self.key(q);
        let r2 = r * r;
        for d in AROUND {
            let Some(&cell) = self.map.get(&[c[0] + d[0], c[1] + d[1], c[2] + d[2]]) else {
                continue;
            };
            let run = self.start[cell as usize] as usize..self.start[cell as usize + 1] as usize;
            for &j in &self.ids[run] {
                let p = &points[j as usize];
                let d = Vector3::new(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
                let n2 = d.norm_squared();
                if n2 <= r2 {
                    out.push(Vector3::new(p[0], p[1], p[2]));
                    d2.push(n2);
                    if out.len() >= max {
                        return;
                    }
                }
            }
        }
    }
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
    let (l0, l1, l2) = (
        eig.eigenvalues[idx[0]],
        eig.eigenvalues[idx[1]],
        eig.eigenvalues[idx[2]],
    );
    // Planar: the smallest spread well below the middle one, and the middle one not negligible
    // against the largest (a line, such as one LiDAR ring, is not a plane even if it bends).
    if !(l1 > 1e-12 && l0 < 0.25 * l1 && l1 > 0.02 * l2) {
        return None;
    }
    let v = eig.eigenvectors.column(idx[0]).into_owned();
    let len = v.norm();
    (len > 0.0).then(|| v / len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucketed search finds exactly the points within the radius (brute force), and the
    /// grid restricted to the cells around the queries finds the same, in the same order.
    #[test]
    fn grid_neighbours_match_brute_force_and_the_restricted_grid() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let pts: Vec<[f64; 3]> = (0..3000)
            .map(|_| [4.0 * rnd() - 2.0, 4.0 * rnd() - 2.0, 0.1 * rnd()])
            .collect();
        let queries: Vec<[f64; 3]> = (0..40).map(|i| pts[i * 71]).collect();
        let mut found = 0;
        for r in [0.1, 0.35] {
            let full = Grid::new(&pts, r, None);
            let part = Grid::new(&pts, r, Some(&queries));
            assert!(part.ids.len() < full.ids.len());
            let (mut a, mut da, mut b, mut db) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for q in &queries {
                full.neighbours(&pts, q, r, usize::MAX, &mut a, &mut da);
                part.neighbours(&pts, q, r, usize::MAX, &mut b, &mut db);
                assert_eq!(a, b);
                assert_eq!(da, db);
                let mut got: Vec<f64> = da.clone();
                let mut want: Vec<f64> = pts
                    .iter()
                    .map(|p| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2))
                    .filter(|&d| d <= r * r)
                    .collect();
                got.sort_by(f64::total_cmp);
                want.sort_by(f64::total_cmp);
                assert_eq!(got, want, "r {r}");
                found += want.len();
            }
        }
        // The queries themselves and, on average, several neighbours each.
        assert!(found > 5 * 2 * queries.len(), "{found}");
    }

    /// Many queries (searched in parallel chunks) give what each query gives alone: normals,
    /// spacings and the radius each settled at do not depend on the batch or the threads.
    #[test]
    fn batched_surfels_equal_single_queries() {
        // A wavy floor, sparser in x than in y, with a few outliers above it.
        let mut pts = Vec::new();
        for i in 0..60 {
            for j in 0..40 {
                let (x, y) = (i as f64 * 0.06, j as f64 * 0.025);
                pts.push([x, y, 0.05 * (3.0 * x).sin() * (2.0 * y).cos()]);
            }
        }
        for i in 0..20 {
            pts.push([i as f64 * 0.17, 0.5, 0.8]);
        }
        let q: Vec<usize> = (0..pts.len()).step_by(3).collect();
        assert!(q.len() >= PARALLEL_QUERIES);
        let sensor = [1.5, 0.5, 2.0];
        let all = estimate_surfels(&pts, &q, 0.05, 0.4, sensor);
        let mut normals = 0;
        for (k, &i) in q.iter().enumerate() {
            let one = estimate_surfels(&pts, &[i], 0.05, 0.4, sensor);
            assert_eq!(one[0], all[k], "query {i}");
            normals += usize::from(all[k].normal.is_some());
        }
        assert!(normals > q.len() / 2, "{normals} of {}", q.len());
    }

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

    /// Two LiDAR "rings" on the ground 0.3 m apart: each alone is a line. A fixed 0.1 m radius
    /// sees one ring (no normal); the growing radius reaches the other and finds the plane.
    #[test]
    fn growing_radius_bridges_sparse_rings_but_not_a_single_line() {
        let mut pts = Vec::new();
        for i in 0..60 {
            let x = i as f64 * 0.03;
            pts.push([x, 0.0, 0.0]);
            pts.push([x, 0.3, 0.0]);
        }
        let q = [40usize];
        let sensor = [0.5, 0.15, 2.0];
        assert_eq!(estimate_normals(&pts, &q, 0.1, sensor), vec![None]);
        let s = estimate_surfels(&pts, &q, 0.1, 0.8, sensor);
        let n = s[0].normal.expect("plane across the rings");
        assert!(n[2] > 0.999, "{n:?}");
        // Spacing from the three nearest neighbours: two at 0.03 m, one at 0.06 m.
        let want = ((0.03f64.powi(2) * 2.0 + 0.06f64.powi(2)) / 3.0).sqrt();
        assert!((s[0].spacing.unwrap() - want).abs() < 1e-9, "{:?}", s[0]);
        // A single slightly noisy line stays without a normal at any radius.
        let line: Vec<[f64; 3]> = (0..60)
            .map(|i| {
                let e = if i % 2 == 0 { 0.002 } else { -0.002 };
                [i as f64 * 0.03, e, -e]
            })
            .collect();
        let s = estimate_surfels(&line, &q, 0.1, 1.6, sensor);
        assert_eq!(s[0].normal, None);
        assert!(s[0].spacing.is_some());
    }
}
