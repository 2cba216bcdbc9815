//! Inserting a scan into the map: one Gaussian per point that finds room in the cell matching
//! its range, oriented by the local surface.

use nalgebra::Vector3;

use super::{GaussianMap, InsertStats, PointColour};
use crate::gaussian::normals::estimate_surfels;
use crate::gaussian::params::{opacity_to_logit, rotation_from_normal, Gaussian};
use crate::voxel_key::KeyMap;

impl GaussianMap {
    /// Creates Gaussians from a registered scan (world frame) in cells with room.
    ///
    /// Each point's cell is the finest whose edge is at least `cell_angle` times its range from
    /// the sensor (0: always the finest leaves): a cell holding `leaf_capacity` Gaussians, in
    /// itself or below, takes no more. `normals`, when given, are per-point unit normals;
    /// otherwise they are estimated from the scan's own neighbours, falling back to the viewing
    /// ray. `colour` maps a point (index, world position) to an exposure-normalised RGB in [0, 1] or `None` when
    /// no camera sees it; such Gaussians are returned in `uncoloured` (grey until a later frame
    /// colours them).
    pub fn insert_scan(
        &mut self,
        points: &[[f64; 3]],
        normals: Option<&[[f64; 3]]>,
        sensor: [f64; 3],
        cell_angle: f64,
        colour: &mut PointColour<'_>,
    ) -> InsertStats {
        self.insert_scan_gated(points, normals, sensor, cell_angle, colour, &mut |_| true)
    }

    /// [`Self::insert_scan`] where a point whose cell lies below a coarser cell that already
    /// holds a Gaussian (the surface is mapped, from farther away) creates a finer one only if
    /// `refine` says the map needs it there (counted in `InsertStats::refine_skipped`).
    pub fn insert_scan_gated(
        &mut self,
        points: &[[f64; 3]],
        normals: Option<&[[f64; 3]]>,
        sensor: [f64; 3],
        cell_angle: f64,
        colour: &mut PointColour<'_>,
        refine: &mut dyn FnMut(&[f64; 3]) -> bool,
    ) -> InsertStats {
        let mut stats = InsertStats {
            points: points.len(),
            ..Default::default()
        };
        let cap = self.cfg.leaf_capacity as usize;
        let leaf_size = self.cfg.leaf_size();
        let finest = self.cfg.levels - 1;
        let max_r2 = self.cfg.insert_max_range * self.cfg.insert_max_range;
        // Pass 1: choose the points that will create Gaussians (claims within this scan count).
        let mut claimed: KeyMap<[i64; 4], Vec<usize>> = KeyMap::default();
        let mut chosen: Vec<(usize, [i64; 3], u32)> = Vec::new();
        for (i, p) in points.iter().enumerate() {
            let d2 = (p[0] - sensor[0]).powi(2)
                + (p[1] - sensor[1]).powi(2)
                + (p[2] - sensor[2]).powi(2);
            let Some(leaf) = self.leaf_coords(p).filter(|_| d2 <= max_r2) else {
                stats.out_of_range += 1;
                continue;
            };
            let depth = if cell_angle > 0.0 {
                self.depth_for_size(cell_angle * d2.sqrt())
            } else {
                finest
            };
            let sh = finest - depth;
            let cell = [
                leaf[0] >> sh,
                leaf[1] >> sh,
                leaf[2] >> sh,
                i64::from(depth),
            ];
            // The cell's node, looked up once for its occupancy and its Gaussians.
            let node = self
                .find_node(leaf, depth)
                .map(|(k, n)| &self.roots[&k].nodes[n as usize]);
            let existing = node.map_or(0, |n| n.subtree as usize);
            let mine = claimed.entry(cell).or_default();
            if existing + mine.len() >= cap {
                stats.occupied += 1;
                continue;
            }
            if cap > 1 {
                let s = self.cell_size(depth) / (cap as f64).cbrt();
                let near = |q: &[f64; 3]| {
                    (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) + (q[2] - p[2]).powi(2) < s * s
                };
                let crowded = mine.iter().any(|&j| near(&points[j]))
                    || node.is_some_and(|n| {
                        n.gaussians.iter().any(|&g| {
                            let m = self.store.mean(g);
                            near(&[f64::from(m[0]), f64::from(m[1]), f64::from(m[2])])
                        })
                    });
                if crowded {
                    stats.occupied += 1;
                    continue;
                }
            }
            let covered = self.covered_above(leaf, depth);
            if covered && !refine(p) {
                stats.refine_skipped += 1;
                continue;
            }
            stats.refined += usize::from(covered);
            mine.push(i);
            chosen.push((i, leaf, depth));
        }
        if chosen.is_empty() {
            return stats;
        }
        // Pass 2: normals and point spacing for the chosen points only.
        let q: Vec<usize> = chosen.iter().map(|&(i, _, _)| i).collect();
        let surfels = estimate_surfels(
            points,
            &q,
            self.cfg.normal_radius * leaf_size,
            self.cfg
                .normal_max_radius
                .max(self.cfg.normal_radius * leaf_size),
            sensor,
        );
        let given = normals.filter(|n| n.len() == points.len());
        // In-plane size: the cell, or the local point spacing where the scan is sparser (so a
        // sparse scan leaves no holes), capped well below the pruning size.
        let thickness = self.cfg.disc_thickness;
        let opacity_logit = opacity_to_logit(self.cfg.init_opacity);
        for (&(i, leaf, depth), surfel) in chosen.iter().zip(surfels) {
            let p = points[i];
            let cell = self.cell_size(depth);
            let max_sigma = 0.5 * f64::from(self.cfg.prune_scale) * cell;
            let spacing = surfel.spacing.unwrap_or(cell).max(cell);
            let sigma = (f64::from(self.cfg.init_scale) * spacing).min(max_sigma) as f32;
            let (log_s, log_t) = (sigma.ln(), (sigma * thickness).ln());
            let n = given.map(|n| n[i]).or(surfel.normal);
            let n = match n.filter(|n| n.iter().all(|v| v.is_finite())) {
                Some(n) => n,
                None => {
                    stats.normal_fallback += 1;
                    [sensor[0] - p[0], sensor[1] - p[1], sensor[2] - p[2]]
                }
            };
            let nv = Vector3::new(n[0] as f32, n[1] as f32, n[2] as f32);
            let mut g = Gaussian {
                mean: [p[0] as f32, p[1] as f32, p[2] as f32],
                log_scale: [log_s, log_s, log_t],
                rotation: rotation_from_normal([nv.x, nv.y, nv.z]),
                opacity_logit,
                ..Default::default()
            };
            let c = colour(i, &p);
            let coloured = c.is_some();
            g.set_base_colour(c.unwrap_or([0.5; 3]));
            let id = self.insert_at(leaf, depth, g, coloured);
            stats.created += 1;
            if !coloured {
                stats.uncoloured.push(id);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, plane};
    use super::*;
    use crate::gaussian::GaussianConfig;

    /// A scan sparser than the leaves gets discs as wide as its point spacing (no holes), and
    /// never wider than half the pruning size.
    #[test]
    fn sparse_scans_get_wider_discs() {
        let mut m = GaussianMap::new(cfg()).unwrap();
        let leaf = m.config().leaf_size();
        let pts = plane(8, 0.3, 1.05);
        m.insert_scan(&pts, None, [1.0, 1.0, 3.0], 0.0, &mut |_, _| None);
        let init = f64::from(m.config().init_scale);
        let (_, g) = m.iter().nth(20).unwrap();
        let sigma = f64::from(g.log_scale[0].exp());
        assert!((sigma - init * 0.3).abs() < 1e-4, "{sigma}");
        assert!(g.normal()[2] > 0.999);
        let mut far = GaussianMap::new(cfg()).unwrap();
        far.insert_scan(
            &plane(5, 0.9, 1.05),
            None,
            [2.0, 2.0, 3.0],
            0.0,
            &mut |_, _| None,
        );
        // Interior points (neighbours within the largest normal radius) hit the cap; the
        // corners, with too few neighbours, fall back to the leaf size.
        let cap = 0.5 * f64::from(far.config().prune_scale) * leaf;
        let sigmas: Vec<f64> = far
            .iter()
            .map(|(_, g)| f64::from(g.log_scale[0].exp()))
            .collect();
        let capped = sigmas.iter().filter(|&&s| (s - cap).abs() < 1e-4).count();
        assert_eq!(capped, 25 - 4, "{sigmas:?}");
        assert!(sigmas.iter().all(|&s| s <= cap + 1e-4));
    }

    /// Far points go into coarse cells, near ones into the finest leaves; a coarse cell with
    /// finer Gaussians inside takes no coarse one, a coarse Gaussian does not stop finer ones
    /// below it, and removal keeps the per-node counts.
    #[test]
    fn cells_follow_range_and_finer_ones_add_detail() {
        let c = GaussianConfig {
            root_size: 0.8,
            levels: 4, // cells 0.8, 0.4, 0.2, 0.1 m
            ..Default::default()
        };
        let mut m = GaussianMap::new(c).unwrap();
        assert_eq!(m.depth_for_size(0.05), 3);
        assert_eq!(m.depth_for_size(0.1), 3);
        assert_eq!(m.depth_for_size(0.15), 2);
        assert_eq!(m.depth_for_size(0.39), 1);
        assert_eq!(m.depth_for_size(5.0), 0);
        // A 1.6 m square sampled every 2 cm at z = 0: from 39 m with 0.01 rad per metre the
        // cells are 0.4 m wide (16 of them), from 4 m the finest (256).
        let pts = plane(80, 0.02, 0.0);
        let far = m.insert_scan(&pts, None, [0.8, 0.8, 39.0], 0.01, &mut |_, _| None);
        assert_eq!(far.created, 16, "{far:?}");
        assert!(m.iter().all(|(id, _)| m.depth_of(id) == Some(1)));
        let (_, g) = m.iter().next().unwrap();
        assert!((f64::from(g.log_scale[0].exp()) - 0.6 * 0.4).abs() < 1e-4);
        m.check_invariants().unwrap();
        // Coming closer: every finest leaf gets one too (the coarse ones stay).
        let near = m.insert_scan(&pts, None, [0.8, 0.8, 4.0], 0.01, &mut |_, _| None);
        assert_eq!(near.created, 256, "{near:?}");
        m.check_invariants().unwrap();
        // From far again: nothing new (the coarse cells hold Gaussians in and below them).
        let again = m.insert_scan(&pts, None, [0.8, 0.8, 19.0], 0.01, &mut |_, _| None);
        assert_eq!(again.created, 0, "{again:?}");
        // Removing every coarse and half the fine Gaussians keeps the counts consistent, and
        // a far scan then refills only the coarse cells left without any Gaussian inside.
        let ids: Vec<(u32, u32)> = m
            .iter()
            .map(|(id, _)| (id, m.depth_of(id).unwrap()))
            .collect();
        let mut removed_fine = 0;
        for (k, &(id, d)) in ids.iter().enumerate() {
            let g = m.get(id).unwrap();
            // Fine Gaussians in the left half (x < 0.8) go.
            if d == 1 || g.mean[0] < 0.8 {
                assert!(m.remove(id));
                removed_fine += usize::from(d == 3);
            }
            if k % 50 == 0 {
                m.check_invariants().unwrap();
            }
        }
        assert_eq!(removed_fine, 128);
        m.check_invariants().unwrap();
        let refill = m.insert_scan(&pts, None, [0.8, 0.8, 39.0], 0.01, &mut |_, _| None);
        assert_eq!(refill.created, 8, "{refill:?}");
        m.check_invariants().unwrap();
    }

    /// A surface mapped from far (coarse cells) is refined from near only where the gate
    /// asks for it: the rest of the near scan is counted as skipped, not created, and uncovered
    /// surface is created whatever the gate says.
    #[test]
    fn refining_a_covered_surface_follows_the_gate() {
        let c = GaussianConfig {
            root_size: 0.8,
            levels: 4, // cells 0.8, 0.4, 0.2, 0.1 m
            ..Default::default()
        };
        let mut m = GaussianMap::new(c).unwrap();
        let pts = plane(80, 0.02, 0.0); // 1.6 m square
        let far = m.insert_scan(&pts, None, [0.8, 0.8, 39.0], 0.01, &mut |_, _| None);
        assert_eq!((far.created, far.refined), (16, 0), "{far:?}");
        // From near, only the left quarter (x < 0.4) needs detail: 4 x 16 of the 256 leaves.
        let mut asked = 0;
        let near = m.insert_scan_gated(
            &pts,
            None,
            [0.8, 0.8, 4.0],
            0.01,
            &mut |_, _| None,
            &mut |p| {
                asked += 1;
                p[0] < 0.4
            },
        );
        assert_eq!((near.created, near.refined), (64, 64), "{near:?}");
        assert!(near.refine_skipped >= 256 - 64, "{near:?}");
        assert_eq!(asked, near.refine_skipped + near.refined);
        m.check_invariants().unwrap();
        // A new surface (z = 1, nothing above it) is created with the gate shut.
        let fresh = plane(10, 0.02, 1.0);
        let s = m.insert_scan_gated(
            &fresh,
            None,
            [0.1, 0.1, 4.0],
            0.01,
            &mut |_, _| None,
            &mut |_| false,
        );
        assert!(
            s.created > 0 && s.refine_skipped == 0 && s.refined == 0,
            "{s:?}"
        );
    }

    #[test]
    fn capacity_and_spacing_for_bigger_leaves() {
        let mut c = cfg();
        c.leaf_capacity = 8;
        let mut m = GaussianMap::new(c).unwrap();
        let pts = plane(40, 0.02, 1.05);
        let s = m.insert_scan(&pts, None, [0.4, 0.4, 3.0], 0.0, &mut |_, _| None);
        assert!(s.created > 64 && s.created <= 64 * 8, "{s:?}");
        assert_eq!(s.uncoloured.len(), s.created);
        m.check_invariants().unwrap();
    }

    /// Points in one cell fill it up to its capacity and no further (closer ones than the
    /// crowding distance do not count), also when other cells' points come in between.
    #[test]
    fn points_fill_each_cell_to_its_capacity() {
        let mut c = cfg();
        c.leaf_capacity = 2;
        let mut m = GaussianMap::new(c).unwrap();
        // Leaves of 0.1 m; within a leaf the crowding distance is 0.1 / cbrt(2) = 0.079 m.
        let pts = [
            [0.01, 0.01, 1.01], // leaf A: created
            [0.09, 0.09, 1.01], // leaf A, 0.11 m away: created, A full
            [0.05, 0.05, 1.01], // leaf A full: occupied
            [0.02, 0.08, 1.01], // leaf A full: occupied
            [0.11, 0.01, 1.01], // leaf B: created
            [0.05, 0.02, 1.01], // back in A: occupied
            [0.12, 0.02, 1.01], // leaf B, 0.014 m from its first point: crowded
            [0.19, 0.09, 1.01], // leaf B, 0.11 m away: created, B full
        ];
        let s = m.insert_scan(&pts, None, [0.1, 0.1, 3.0], 0.0, &mut |_, _| None);
        assert_eq!((s.created, s.occupied), (4, 4), "{s:?}");
        m.check_invariants().unwrap();
        // With capacity 1 the first point of each leaf wins.
        let mut m = GaussianMap::new(cfg()).unwrap();
        let s = m.insert_scan(&pts, None, [0.1, 0.1, 3.0], 0.0, &mut |_, _| None);
        assert_eq!((s.created, s.occupied), (2, 6), "{s:?}");
        let means: Vec<[f32; 3]> = m.iter().map(|(_, g)| g.mean).collect();
        let f = |p: [f64; 3]| p.map(|v| v as f32);
        assert_eq!(means, vec![f(pts[0]), f(pts[4])]);
    }
}
