//! Global relocalisation in a loaded LiDAR map: where in the map is the robot, with no initial
//! pose? Roll and pitch are known from gravity (the IMU initialiser), so the search is over yaw
//! and position: a coarse grid of hypotheses scored by how many scan points land near a plane
//! of the voxel plane map, the best few refined by point-to-plane Gauss-Newton over
//! (x, y, z, yaw), then judged. A result is accepted only when enough points fit (inlier
//! ratio) and the best clearly beats the best hypothesis elsewhere (the score gap); otherwise
//! the scan is refused with the reason, and the next scan is tried.

use nalgebra::{Isometry3, Matrix4, Rotation3, Translation3, UnitQuaternion, Vector3, Vector4};

use crate::lidar_map::VoxelMap;

/// Settings of the global search and of acceptance.
#[derive(Debug, Clone, PartialEq)]
pub struct RelocConfig {
    /// Grid step of the position hypotheses (m).
    pub grid_step: f64,
    /// Step of the yaw hypotheses (degrees).
    pub yaw_step_deg: f64,
    /// Scan points scored per coarse hypothesis.
    pub coarse_points: usize,
    /// Scan points used in refinement and the final score.
    pub fine_points: usize,
    /// Hypotheses refined.
    pub refine: usize,
    /// Distinct hypotheses carried from the coarse grid down to the refinement.
    pub beam: usize,
    /// Scan points scored per hypothesis while narrowing the beam.
    pub descent_points: usize,
    /// Point-to-plane distance of an inlier in the final score (m).
    pub inlier_distance: f64,
    /// Least fraction of the scan's points that must be inliers.
    pub min_inlier_ratio: f64,
    /// The best hypothesis elsewhere (farther than `distinct_m` or `distinct_deg`) may reach at
    /// most this fraction of the best one's inliers. In the simulated room (a box whose
    /// furniture breaks the 180-degree symmetry) the mirrored hypothesis fits 82-93 % of what
    /// the true one fits, depending on the view: views above 0.9 wait for the next scan.
    pub max_second_ratio: f64,
    pub distinct_m: f64,
    pub distinct_deg: f64,
    /// Most coarse hypotheses (the grid step grows until the search fits).
    pub max_hypotheses: usize,
}

impl Default for RelocConfig {
    fn default() -> Self {
        Self {
            grid_step: 0.5,
            yaw_step_deg: 10.0,
            coarse_points: 64,
            fine_points: 2000,
            refine: 24,
            beam: 64,
            descent_points: 256,
            inlier_distance: 0.1,
            min_inlier_ratio: 0.6,
            max_second_ratio: 0.9,
            distinct_m: 1.0,
            distinct_deg: 20.0,
            max_hypotheses: 400_000,
        }
    }
}

/// A judged relocalisation of one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct RelocResult {
    /// `T_map_body` of the best hypothesis.
    pub pose: Isometry3<f64>,
    /// Fraction of the scan's points within `inlier_distance` of a map plane at `pose`.
    pub inlier_ratio: f64,
    /// The best distinct hypothesis' inlier ratio over the best's (1 = ambiguous).
    pub second_ratio: f64,
    pub hypotheses: usize,
    /// `None`: accepted; else why not.
    pub refused: Option<String>,
}

impl RelocResult {
    pub fn accepted(&self) -> bool {
        self.refused.is_none()
    }
}

/// A hypothesis: yaw and position of the body in the map.
#[derive(Debug, Clone, Copy)]
struct Hyp {
    yaw: f64,
    t: Vector3<f64>,
    score: f64,
}

fn rz(yaw: f64) -> Rotation3<f64> {
    Rotation3::from_axis_angle(&Vector3::z_axis(), yaw)
}

/// Evenly spread subset of at most `n` points.
fn spread(points: &[Vector3<f64>], n: usize) -> Vec<Vector3<f64>> {
    if points.len() <= n {
        return points.to_vec();
    }
    let step = points.len() as f64 / n as f64;
    (0..n).map(|i| points[(i as f64 * step) as usize]).collect()
}

/// Smooth inlier count: each point near a plane counts `1 - (d / tol)^2`.
fn score(map: &VoxelMap, pts: &[Vector3<f64>], yaw: f64, t: &Vector3<f64>, tol: f64) -> f64 {
    let r = rz(yaw);
    pts.iter()
        .filter_map(|a| {
            let q = r * a + t;
            let pl = map.find_plane(&q)?;
            let d = pl.distance(&q) / tol;
            (d.abs() < 1.0).then_some(1.0 - d * d)
        })
        .sum()
}

/// Point-to-plane Gauss-Newton over (x, y, z, yaw) with a gate shrinking from `gate0` to
/// `gate1`.
fn refine(map: &VoxelMap, pts: &[Vector3<f64>], mut h: Hyp, gate0: f64, gate1: f64) -> Hyp {
    const ITERS: usize = 12;
    for it in 0..ITERS {
        let gate = gate0 + (gate1 - gate0) * it as f64 / (ITERS - 1) as f64;
        let r = rz(h.yaw);
        let mut a = Matrix4::<f64>::zeros();
        let mut b = Vector4::<f64>::zeros();
        let mut n = 0;
        for p in pts {
            let ra = r * p;
            let q = ra + h.t;
            let Some(pl) = map.find_plane(&q) else {
                continue;
            };
            let d = pl.distance(&q);
            if d.abs() > gate {
                continue;
            }
            let nz = pl.normal;
            // d/dyaw of n . (Rz(yaw) a) = n . (z x (Rz a)).
            let j = Vector4::new(nz.x, nz.y, nz.z, nz.dot(&Vector3::z().cross(&ra)));
            a += j * j.transpose();
            b += j * d;
            n += 1;
        }
        if n < 12 {
            break;
        }
        a += Matrix4::identity() * 1e-6;
        let Some(dx) = a.lu().solve(&(-b)) else { break };
        h.t += Vector3::new(dx[0], dx[1], dx[2]);
        h.yaw += dx[3];
        if dx.norm() < 1e-5 {
            break;
        }
    }
    h
}

fn inlier_ratio(map: &VoxelMap, pts: &[Vector3<f64>], h: &Hyp, dist: f64) -> f64 {
    let r = rz(h.yaw);
    let n = pts
        .iter()
        .filter(|a| {
            let q = r * *a + h.t;
            map.find_plane(&q)
                .is_some_and(|pl| pl.distance(&q).abs() < dist)
        })
        .count();
    n as f64 / pts.len().max(1) as f64
}

fn yaw_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
}

/// The best `n` of `sorted` (best first), none within 1.5 steps and 1.5 yaw steps of a better
/// one: distinct places, so that a beam is not spent on one neighbourhood.
fn distinct(sorted: Vec<Hyp>, n: usize, step: f64, yaw_step: f64) -> Vec<Hyp> {
    let mut kept: Vec<Hyp> = Vec::new();
    for h in sorted {
        if kept.len() >= n {
            break;
        }
        let near = kept
            .iter()
            .any(|s| (s.t - h.t).norm() < 1.5 * step && yaw_diff(s.yaw, h.yaw) < 1.5 * yaw_step);
        if !near {
            kept.push(h);
        }
    }
    kept
}

/// One level of the coarse-to-fine search: every hypothesis of the beam and its neighbours at
/// the finer `step` and `yaw_step` (3 x 3 x 3 positions x 3 yaws) scored with a tolerance of
/// that step; the best distinct ones form the next beam. A coarse grid alone scores with a
/// tolerance as wide as its step, which on a long street cannot tell positions along it apart
/// (a drive was placed 2.5 m ahead of the truth, 73 % inliers against 93 %); the beam keeps
/// many candidates until the tolerance is fine enough to judge them.
fn narrow(
    map: &VoxelMap,
    pts: &[Vector3<f64>],
    beam: &[Hyp],
    step: f64,
    yaw_step: f64,
    cfg: &RelocConfig,
) -> Vec<Hyp> {
    let tol = step.max(cfg.inlier_distance);
    let mut next = Vec::with_capacity(beam.len() * 81);
    for h in beam {
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    let t = h.t + Vector3::new(dx as f64, dy as f64, dz as f64) * step;
                    for dyaw in -1..=1 {
                        let yaw = h.yaw + dyaw as f64 * yaw_step;
                        let s = score(map, pts, yaw, &t, tol);
                        next.push(Hyp { yaw, t, score: s });
                    }
                }
            }
        }
    }
    next.sort_by(|a, b| b.score.total_cmp(&a.score));
    distinct(next, cfg.beam, step, yaw_step)
}

/// A pose hint (a user's `/initialpose`, as AMCL takes it): the search stays near it instead
/// of covering the whole map, which also settles what a symmetric place leaves ambiguous.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelocHint {
    /// Body position in the map; only x and y are used: a 2D pose tool gives z = 0, so the
    /// height is searched over the map's extent.
    pub position: Vector3<f64>,
    /// Body yaw in the map (rad).
    pub yaw: f64,
    /// Search radius around `position` in x and y (m).
    pub radius: f64,
    /// Search half-range around `yaw` (rad).
    pub yaw_range: f64,
}

impl RelocHint {
    /// The hint of `map_t_body` with a ROS pose covariance (row-major 6 x 6, x y z roll pitch
    /// yaw): three standard deviations, at least 0.5 m and 15 degrees (a hand-placed pose is
    /// never exact), at most 5 m and a full turn.
    pub fn from_pose(map_t_body: &Isometry3<f64>, covariance: &[f64; 36]) -> Self {
        let sd = |i: usize| {
            let v = covariance[i * 6 + i];
            if v.is_finite() && v > 0.0 {
                v.sqrt()
            } else {
                0.0
            }
        };
        let (_, _, yaw) = map_t_body.rotation.euler_angles();
        Self {
            position: map_t_body.translation.vector,
            yaw,
            radius: (3.0 * sd(0).max(sd(1))).clamp(0.5, 5.0),
            yaw_range: (3.0 * sd(5)).clamp(15f64.to_radians(), std::f64::consts::PI),
        }
    }

    /// Whether the numbers can be searched at all.
    pub fn is_finite(&self) -> bool {
        self.position.iter().all(|v| v.is_finite())
            && [self.yaw, self.radius, self.yaw_range]
                .iter()
                .all(|v| v.is_finite())
    }
}

/// Relocalises one scan: `points` in the body frame (deskewed), `tilt` the body's rotation
/// in a gravity-aligned frame with arbitrary yaw (roll and pitch are what matter).
pub fn relocalise(
    map: &VoxelMap,
    points: &[Vector3<f64>],
    tilt: &UnitQuaternion<f64>,
    cfg: &RelocConfig,
) -> RelocResult {
    search(map, points, tilt, None, cfg)
}

/// [`relocalise`] near a hint: positions within its radius (all heights of the map), yaws
/// within its range; acceptance as without one.
pub fn relocalise_near(
    map: &VoxelMap,
    points: &[Vector3<f64>],
    tilt: &UnitQuaternion<f64>,
    hint: &RelocHint,
    cfg: &RelocConfig,
) -> RelocResult {
    search(map, points, tilt, Some(hint), cfg)
}

fn search(
    map: &VoxelMap,
    points: &[Vector3<f64>],
    tilt: &UnitQuaternion<f64>,
    hint: Option<&RelocHint>,
    cfg: &RelocConfig,
) -> RelocResult {
    let refuse = |reason: String, hypotheses: usize| RelocResult {
        pose: Isometry3::identity(),
        inlier_ratio: 0.0,
        second_ratio: 1.0,
        hypotheses,
        refused: Some(reason),
    };
    // Points with the body's roll and pitch (and the filter's arbitrary yaw) applied.
    let level: Vec<Vector3<f64>> = points
        .iter()
        .filter(|p| p.iter().all(|v| v.is_finite()))
        .map(|p| tilt * p)
        .collect();
    if level.len() < 50 {
        return refuse(format!("{} usable points, 50 needed", level.len()), 0);
    }
    let Some((mut lo, mut hi)) = map.bounds() else {
        return refuse("the map is empty".into(), 0);
    };
    let coarse = spread(&level, cfg.coarse_points);
    let fine = spread(&level, cfg.fine_points);
    let mut step = cfg.grid_step;
    let yaws: Vec<f64> = match hint {
        None => (0..(360.0 / cfg.yaw_step_deg).round().max(1.0) as usize)
            .map(|i| (i as f64 * cfg.yaw_step_deg).to_radians())
            .collect(),
        Some(h) => {
            // Hypothesis yaws act on the tilted points, which carry the filter's own yaw.
            let centre = h.yaw - tilt.euler_angles().2;
            let n = (h.yaw_range.to_degrees() / cfg.yaw_step_deg).floor() as i64;
            (-n..=n)
                .map(|i| centre + (i as f64 * cfg.yaw_step_deg).to_radians())
                .collect()
        }
    };
    if let Some(h) = hint {
        let r = Vector3::new(h.radius, h.radius, 0.0);
        (lo.x, lo.y) = ((h.position - r).x, (h.position - r).y);
        (hi.x, hi.y) = ((h.position + r).x, (h.position + r).y);
        step = step.min(h.radius / 2.0);
    }
    // Positions on a grid inside the box, coarsened until the search fits.
    let axis = |lo: f64, hi: f64, step: f64| -> Vec<f64> {
        let n = ((hi - lo) / step).floor().max(0.0) as usize;
        (0..=n)
            .map(|i| lo + (i as f64 + 0.5) * step)
            .filter(|&v| v < hi)
            .collect()
    };
    let grid = loop {
        let (xs, ys, zs) = (
            axis(lo.x, hi.x, step),
            axis(lo.y, hi.y, step),
            axis(lo.z, hi.z, step),
        );
        if xs.len() * ys.len() * zs.len() * yaws.len() <= cfg.max_hypotheses || step > 1e3 {
            break (xs, ys, zs);
        }
        step *= 1.5;
    };
    let tol = step.max(cfg.inlier_distance);
    let mut hyps = Vec::new();
    for &x in &grid.0 {
        for &y in &grid.1 {
            for &z in &grid.2 {
                let t = Vector3::new(x, y, z);
                for &yaw in &yaws {
                    let s = score(map, &coarse, yaw, &t, tol);
                    if s > 0.0 {
                        hyps.push(Hyp { yaw, t, score: s });
                    }
                }
            }
        }
    }
    let total = grid.0.len() * grid.1.len() * grid.2.len() * yaws.len();
    hyps.sort_by(|a, b| b.score.total_cmp(&a.score));
    // The best `beam`, one per neighbourhood, narrowed coarse to fine; the best few of those
    // refined and judged on more points.
    let ystep = cfg.yaw_step_deg.to_radians();
    let mut beam = distinct(hyps, cfg.beam, step, ystep);
    let descent = spread(&level, cfg.descent_points);
    let (mut s, mut ys) = (step, ystep);
    while s > 2.0 * cfg.inlier_distance {
        (s, ys) = (s / 2.0, ys / 2.0);
        beam = narrow(map, &descent, &beam, s, ys, cfg);
    }
    beam.truncate(cfg.refine);
    let gate0 = (3.0 * s).max(2.0 * cfg.inlier_distance);
    let mut judged: Vec<(Hyp, f64)> = beam
        .into_iter()
        .map(|h| {
            let h = refine(map, &fine, h, gate0, cfg.inlier_distance * 2.0);
            let ratio = inlier_ratio(map, &fine, &h, cfg.inlier_distance);
            (h, ratio)
        })
        .collect();
    judged.sort_by(|a, b| b.1.total_cmp(&a.1));
    let Some(&(best, ratio)) = judged.first() else {
        return refuse(
            "no hypothesis puts any point near a map plane".into(),
            total,
        );
    };
    let second = judged
        .iter()
        .skip(1)
        .find(|(h, _)| {
            (h.t - best.t).norm() > cfg.distinct_m
                || yaw_diff(h.yaw, best.yaw) > cfg.distinct_deg.to_radians()
        })
        .map_or(0.0, |(_, r)| *r);
    let second_ratio = second / ratio.max(1e-9);
    let rot = UnitQuaternion::from_rotation_matrix(&rz(best.yaw)) * tilt;
    let pose = Isometry3::from_parts(Translation3::from(best.t), rot);
    let refused = if ratio < cfg.min_inlier_ratio {
        Some(format!(
            "best hypothesis fits {:.0} % of the points, {:.0} % needed (is this the mapped place?)",
            100.0 * ratio,
            100.0 * cfg.min_inlier_ratio
        ))
    } else if second_ratio > cfg.max_second_ratio {
        Some(format!(
            "ambiguous: a hypothesis {:.1} m / {:.0} deg away fits {:.0} % of what the best fits",
            (judged
                .iter()
                .skip(1)
                .find(|(_, r)| *r == second)
                .map_or(0.0, |(h, _)| (h.t - best.t).norm())),
            judged
                .iter()
                .skip(1)
                .find(|(_, r)| *r == second)
                .map_or(0.0, |(h, _)| yaw_diff(h.yaw, best.yaw).to_degrees()),
            100.0 * second_ratio
        ))
    } else {
        None
    };
    RelocResult {
        pose,
        inlier_ratio: ratio,
        second_ratio,
        hypotheses: total,
        refused,
    }
}

/// The LIO's loaded-map settings.
#[derive(Debug, Clone)]
pub struct PriorMapState {
    /// Localise only: no scan is inserted.
    pub frozen: bool,
    /// Relocalisation still to do (`None` once accepted, or when the start pose was given).
    pub reloc: Option<RelocConfig>,
    /// A pose hint the pending relocalisation searches around.
    pub hint: Option<RelocHint>,
}

/// What the relocalisation did, for summaries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RelocStatus {
    /// No relocalisation accepted since the map was loaded or the last hint: no pose in the
    /// map frame is given.
    pub pending: bool,
    /// Pose hints received (`/initialpose`).
    pub hints: usize,
    /// Scans tried and refused.
    pub refused_scans: usize,
    /// Scan count (of the LIO) at which a result was accepted.
    pub accepted_at_scan: Option<usize>,
    /// Of the accepted result, else of the last refused one.
    pub inlier_ratio: f64,
    pub second_ratio: f64,
    /// `T_map_body` accepted: x y z (m) and yaw (degrees).
    pub pose: Option<[f64; 4]>,
    /// Why the last refused scan was refused.
    pub last_refusal: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lidar_map::{MapPoint, PointNoise, VoxelMapConfig};

    /// Points on the faces of an axis-aligned box (`lo`..`hi`) every `step` m.
    fn box_faces(lo: [f64; 3], hi: [f64; 3], step: f64) -> Vec<Vector3<f64>> {
        let mut v = Vec::new();
        let n = |a: f64, b: f64| ((b - a) / step).round() as usize;
        for axis in 0..3 {
            let (u, w) = ((axis + 1) % 3, (axis + 2) % 3);
            for side in [lo[axis], hi[axis]] {
                for i in 0..=n(lo[u], hi[u]) {
                    for j in 0..=n(lo[w], hi[w]) {
                        let mut p = Vector3::zeros();
                        p[axis] = side;
                        p[u] = lo[u] + i as f64 * step;
                        p[w] = lo[w] + j as f64 * step;
                        v.push(p);
                    }
                }
            }
        }
        v
    }

    /// An L-shaped 8 x 6 x 3 m room (a 2.5 x 2.5 m corner cut out), with a box, a pillar and a
    /// partition reaching in from a wall, shifted off the voxel grid (a face exactly on a voxel
    /// boundary would leave its points' leaf to rounding). A plain box room with low furniture
    /// turned 180 degrees fits 92-95 % of what the truth fits (walls, floor and ceiling are
    /// most of the points): rightly ambiguous once the search refines that hypothesis as well
    /// as the truth.
    fn room() -> Vec<Vector3<f64>> {
        let cut = |p: &Vector3<f64>| p.x > 1.5 + 1e-9 && p.y > 0.5 + 1e-9;
        let mut v: Vec<Vector3<f64>> = box_faces([-4.0, -3.0, 0.0], [4.0, 3.0, 3.0], 0.04)
            .into_iter()
            .filter(|p| !cut(p))
            .collect();
        v.extend(
            box_faces([1.5, 0.5, 0.0], [4.0, 3.0, 3.0], 0.04)
                .into_iter()
                .filter(|p| (p.x - 1.5).abs() < 1e-9 || (p.y - 0.5).abs() < 1e-9),
        );
        v.extend(box_faces([-3.6, -2.4, 0.0], [-2.6, -1.4, 0.8], 0.04));
        v.extend(box_faces([0.5, -2.9, 0.0], [1.1, -2.3, 3.0], 0.04));
        v.extend(box_faces([-1.0, 1.4, 0.0], [-0.8, 3.0, 3.0], 0.04));
        let off = Vector3::new(0.013, 0.021, 0.017);
        v.iter().map(|p| p + off).collect()
    }

    fn map_of(points: &[Vector3<f64>]) -> VoxelMap {
        let mut m = VoxelMap::new(VoxelMapConfig {
            root_size: 0.5,
            ..Default::default()
        });
        let mp: Vec<MapPoint> = points
            .iter()
            .map(|&p| MapPoint {
                p,
                noise: PointNoise::isotropic(1e-4),
            })
            .collect();
        m.insert(&mp);
        m
    }

    /// What a sensor at `pose` sees of `world` within 8 m (every 7th point, no occlusion), in
    /// the body frame.
    fn scan(world: &[Vector3<f64>], pose: &Isometry3<f64>) -> Vec<Vector3<f64>> {
        let inv = pose.inverse();
        world
            .iter()
            .step_by(7)
            .map(|p| inv.transform_point(&(*p).into()).coords)
            .filter(|p| p.norm() < 8.0 && p.norm() > 0.5)
            .collect()
    }

    fn tilt(roll: f64, pitch: f64) -> UnitQuaternion<f64> {
        UnitQuaternion::from_euler_angles(roll, pitch, 0.0)
    }

    /// Found from a yaw and position far from any grid point, to within 3 cm and 0.5 degrees,
    /// with the roll and pitch the IMU gives; a corridor scan is refused with a reason.
    #[test]
    fn finds_the_pose_in_a_room_and_refuses_another_place() {
        let world = room();
        let map = map_of(&world);
        let (roll, pitch, yaw) = (0.03, -0.02, 2.31);
        let truth = Isometry3::from_parts(
            Translation3::new(1.23, -0.61, 1.37),
            UnitQuaternion::from_euler_angles(roll, pitch, yaw),
        );
        let pts = scan(&world, &truth);
        // The filter's own frame has another yaw: only roll and pitch carry over.
        let r = relocalise(&map, &pts, &tilt(roll, pitch), &RelocConfig::default());
        assert!(r.accepted(), "{r:?}");
        let dt = (r.pose.translation.vector - truth.translation.vector).norm();
        let dr = r.pose.rotation.angle_to(&truth.rotation).to_degrees();
        assert!(dt < 0.03 && dr < 0.5, "off by {dt} m, {dr} deg: {r:?}");
        assert!(r.inlier_ratio > 0.9, "{r:?}");
        assert!(r.second_ratio < 0.8, "{r:?}");

        // A corridor (2.4 m wide, open along x) is not the room.
        let mut corridor = Vec::new();
        for i in 0..400 {
            for j in 0..30 {
                let x = -8.0 + i as f64 * 0.04;
                let s = j as f64 * 0.08;
                corridor.push(Vector3::new(x, -1.21, s.min(2.6)));
                corridor.push(Vector3::new(x, 1.21, s.min(2.6)));
                corridor.push(Vector3::new(x, -1.2 + s, 0.01));
                corridor.push(Vector3::new(x, -1.2 + s, 2.61));
            }
        }
        let pose = Isometry3::translation(0.0, 0.1, 1.3);
        let r = relocalise(
            &map,
            &scan(&corridor, &pose),
            &tilt(0.0, 0.0),
            &RelocConfig::default(),
        );
        assert!(!r.accepted(), "a corridor was accepted in the room: {r:?}");
        assert!(r.refused.as_deref().unwrap_or("").len() > 10);
    }

    /// A hint near the truth (z = 0, as a 2D pose tool gives it) is found from a small search;
    /// a hint 3 m off with a tight radius is refused: the search stays where it was told.
    #[test]
    fn a_hint_is_searched_around_and_only_there() {
        let world = room();
        let map = map_of(&world);
        let truth = Isometry3::from_parts(
            Translation3::new(-1.62, 0.93, 1.41),
            UnitQuaternion::from_euler_angles(0.02, 0.01, -2.2),
        );
        let pts = scan(&world, &truth);
        // The filter's frame has its own yaw: only roll and pitch carry over.
        let tilt = UnitQuaternion::from_euler_angles(0.0, 0.0, 0.7) * tilt(0.02, 0.01);
        let cov = |xy: f64, yaw: f64| {
            let mut c = [0.0; 36];
            (c[0], c[7], c[35]) = (xy * xy, xy * xy, yaw * yaw);
            c
        };
        let near = Isometry3::from_parts(
            Translation3::new(-1.3, 1.1, 0.0),
            UnitQuaternion::from_euler_angles(0.0, 0.0, -2.0),
        );
        let hint = RelocHint::from_pose(&near, &cov(0.2, 0.1));
        let r = relocalise_near(&map, &pts, &tilt, &hint, &RelocConfig::default());
        assert!(r.accepted(), "{r:?}");
        let dt = (r.pose.translation.vector - truth.translation.vector).norm();
        let dr = r.pose.rotation.angle_to(&truth.rotation).to_degrees();
        assert!(dt < 0.03 && dr < 0.5, "off by {dt} m, {dr} deg: {r:?}");
        let global = relocalise(&map, &pts, &tilt, &RelocConfig::default());
        assert!(
            r.hypotheses * 20 < global.hypotheses,
            "{} vs {}",
            r.hypotheses,
            global.hypotheses
        );

        let far = Isometry3::translation(1.5, -1.0, 0.0) * near;
        let hint = RelocHint::from_pose(&far, &cov(0.1, 0.1));
        assert!(
            (hint.radius - 0.5).abs() < 1e-12,
            "clamped to the least radius"
        );
        let r = relocalise_near(&map, &pts, &tilt, &hint, &RelocConfig::default());
        let dt = (r.pose.translation.vector - truth.translation.vector).norm();
        assert!(!r.accepted() || dt < 0.03, "a wrong pose accepted: {r:?}");
        assert!(!r.accepted(), "found outside the hinted region: {r:?}");
    }
}
