//! One root voxel: an octree whose leaves fit planes with uncertainty from running sums.

use nalgebra::{Matrix3, SymmetricEigen, Vector3};

use super::{MapPoint, VoxelMapConfig};

/// Point noise in the world frame, `Sigma = a I + b d d^T` (range along `d`, bearing across).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointNoise {
    pub a: f64,
    pub b: f64,
    pub dir: Vector3<f64>,
}

impl PointNoise {
    /// Range/bearing model: range std `sr` along the unit ray `dir`, bearing std `sb` (rad) at
    /// range `r`.
    pub fn range_bearing(dir: Vector3<f64>, r: f64, sr: f64, sb: f64) -> Self {
        let a = (r * sb) * (r * sb);
        Self {
            a,
            b: sr * sr - a,
            dir,
        }
    }

    pub fn isotropic(var: f64) -> Self {
        Self {
            a: var,
            b: 0.0,
            dir: Vector3::z(),
        }
    }

    /// Variance along the unit vector `n`.
    pub fn along(&self, n: &Vector3<f64>) -> f64 {
        let c = n.dot(&self.dir);
        self.a + self.b * c * c
    }

    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::identity() * self.a + self.dir * self.dir.transpose() * self.b
    }
}

/// A fitted plane with the uncertainty of its offset and tilt.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub normal: Vector3<f64>,
    pub center: Vector3<f64>,
    pub count: usize,
    /// Mean point variance along the normal.
    pub point_var: f64,
    /// In-plane principal axes and the point spread (variance) along them.
    pub axes: [Vector3<f64>; 2],
    pub spread: [f64; 2],
    /// Spread along the normal (smallest eigenvalue).
    pub thickness: f64,
}

impl Plane {
    /// Signed distance of `q` from the plane.
    pub fn distance(&self, q: &Vector3<f64>) -> f64 {
        self.normal.dot(&(q - self.center))
    }

    /// The in-plane axes and the variance (rad^2) of the normal's tilt toward each: the
    /// normal's covariance is `sum var_k a_k a_k^T`.
    pub fn tilt_axes(&self) -> [(Vector3<f64>, f64); 2] {
        let n = self.count as f64;
        [0, 1].map(|k| {
            (
                self.axes[k],
                self.point_var / (n * self.spread[k].max(1e-9)),
            )
        })
    }

    /// Variance of [`Plane::distance`] at `q` due to the plane estimate: offset (`sigma^2/N`)
    /// plus tilt about each in-plane axis (`sigma^2 / (N spread_k)`) times the lever arm squared.
    pub fn variance_at(&self, q: &Vector3<f64>) -> f64 {
        let n = self.count as f64;
        let d = q - self.center;
        let mut v = self.point_var / n;
        for k in 0..2 {
            let l = d.dot(&self.axes[k]);
            v += l * l * self.point_var / (n * self.spread[k].max(1e-9));
        }
        v
    }
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    center: Vector3<f64>,
    half: f64,
    depth: u8,
    n: usize,
    sum: Vector3<f64>,
    sum_sq: Matrix3<f64>,
    sum_cov: Matrix3<f64>,
    points: Vec<MapPoint>,
    plane: Option<Plane>,
    children: Option<Box<[Option<Node>; 8]>>,
    frozen: bool,
    since_fit: usize,
}

const REFIT_EVERY: usize = 5;

impl Node {
    pub(super) fn new(center: Vector3<f64>, half: f64, depth: u8) -> Self {
        Self {
            center,
            half,
            depth,
            n: 0,
            sum: Vector3::zeros(),
            sum_sq: Matrix3::zeros(),
            sum_cov: Matrix3::zeros(),
            points: Vec::new(),
            plane: None,
            children: None,
            frozen: false,
            since_fit: 0,
        }
    }

    pub(super) fn center(&self) -> Vector3<f64> {
        self.center
    }

    fn child_index(&self, p: &Vector3<f64>) -> usize {
        (p.x > self.center.x) as usize
            | ((p.y > self.center.y) as usize) << 1
            | ((p.z > self.center.z) as usize) << 2
    }

    fn child_center(&self, i: usize) -> Vector3<f64> {
        let q = 0.5 * self.half;
        let s = |bit: usize| if i & bit != 0 { q } else { -q };
        self.center + Vector3::new(s(1), s(2), s(4))
    }

    pub(super) fn insert(&mut self, mp: &MapPoint, cfg: &VoxelMapConfig) {
        if let Some(children) = self.children.as_mut() {
            let i = (mp.p.x > self.center.x) as usize
                | ((mp.p.y > self.center.y) as usize) << 1
                | ((mp.p.z > self.center.z) as usize) << 2;
            let q = 0.5 * self.half;
            let s = |bit: usize| if i & bit != 0 { q } else { -q };
            let c = self.center + Vector3::new(s(1), s(2), s(4));
            let depth = self.depth + 1;
            children[i]
                .get_or_insert_with(|| Node::new(c, q, depth))
                .insert(mp, cfg);
            return;
        }
        if self.frozen {
            return;
        }
        self.n += 1;
        self.sum += mp.p;
        self.sum_sq += mp.p * mp.p.transpose();
        self.sum_cov += mp.noise.matrix();
        self.points.push(*mp);
        self.since_fit += 1;
        if self.n < cfg.min_points || (self.plane.is_some() && self.since_fit < REFIT_EVERY) {
            return;
        }
        self.since_fit = 0;
        self.plane = self.fit(cfg);
        if self.plane.is_none() && self.depth < cfg.max_depth {
            self.split(cfg);
        } else if self.n >= cfg.max_points {
            self.frozen = true;
            self.points = Vec::new();
        }
    }

    fn split(&mut self, cfg: &VoxelMapConfig) {
        let mut children: Box<[Option<Node>; 8]> = Box::default();
        let points = std::mem::take(&mut self.points);
        for mp in &points {
            let i = self.child_index(&mp.p);
            let c = self.child_center(i);
            children[i]
                .get_or_insert_with(|| Node::new(c, 0.5 * self.half, self.depth + 1))
                .insert(mp, cfg);
        }
        self.children = Some(children);
        self.n = 0;
        self.sum = Vector3::zeros();
        self.sum_sq = Matrix3::zeros();
        self.sum_cov = Matrix3::zeros();
    }

    fn fit(&self, cfg: &VoxelMapConfig) -> Option<Plane> {
        let n = self.n as f64;
        let mean = self.sum / n;
        let cov = self.sum_sq / n - mean * mean.transpose();
        let eig = SymmetricEigen::new(cov);
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
        let l0 = eig.eigenvalues[order[0]].max(0.0);
        let l1 = eig.eigenvalues[order[1]];
        let planar = l0 < cfg.plane_std * cfg.plane_std && l1 > 9.0 * l0 && l1 > 1e-6;
        if !planar {
            return None;
        }
        let normal: Vector3<f64> = eig.eigenvectors.column(order[0]).into();
        let mean_cov = self.sum_cov / n;
        Some(Plane {
            normal,
            center: mean,
            count: self.n,
            point_var: (normal.transpose() * mean_cov * normal)[0].max(1e-12),
            axes: [
                eig.eigenvectors.column(order[1]).into(),
                eig.eigenvectors.column(order[2]).into(),
            ],
            spread: [l1, eig.eigenvalues[order[2]]],
            thickness: l0,
        })
    }

    pub(super) fn find(&self, p: &Vector3<f64>) -> Option<&Plane> {
        match &self.children {
            Some(ch) => ch[self.child_index(p)].as_ref()?.find(p),
            None => self.plane.as_ref(),
        }
    }

    pub(super) fn plane_count(&self) -> usize {
        match &self.children {
            Some(ch) => ch.iter().flatten().map(|c| c.plane_count()).sum(),
            None => self.plane.is_some() as usize,
        }
    }
}

/// One octree node as plain data, for saving and loading maps (`VoxelMap::to_parts`). Nodes of a
/// root are listed in pre-order; `children` says which of the eight octants follow.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub center: Vector3<f64>,
    pub half: f64,
    pub depth: u8,
    pub n: usize,
    pub sum: Vector3<f64>,
    pub sum_sq: Matrix3<f64>,
    pub sum_cov: Matrix3<f64>,
    pub points: Vec<MapPoint>,
    pub plane: Option<Plane>,
    /// `None`: a leaf; else bit `i` set when octant `i` exists.
    pub children: Option<u8>,
    pub frozen: bool,
    pub since_fit: usize,
}

impl Node {
    /// Appends this node and its subtree in pre-order.
    pub(super) fn to_records(&self, out: &mut Vec<NodeRecord>) {
        let children = self.children.as_ref().map(|ch| {
            ch.iter()
                .enumerate()
                .filter(|(_, c)| c.is_some())
                .fold(0u8, |m, (i, _)| m | (1 << i))
        });
        out.push(NodeRecord {
            center: self.center,
            half: self.half,
            depth: self.depth,
            n: self.n,
            sum: self.sum,
            sum_sq: self.sum_sq,
            sum_cov: self.sum_cov,
            points: self.points.clone(),
            plane: self.plane.clone(),
            children,
            frozen: self.frozen,
            since_fit: self.since_fit,
        });
        if let Some(ch) = &self.children {
            ch.iter().flatten().for_each(|c| c.to_records(out));
        }
    }

    /// Rebuilds a subtree from pre-order records starting at `*next`; checks that depths
    /// descend by one and stay within `max_depth`.
    pub(super) fn from_records(
        recs: &mut std::slice::Iter<'_, NodeRecord>,
        depth: u8,
        max_depth: u8,
    ) -> Result<Self, String> {
        let r = recs.next().ok_or("node list ends inside a tree")?;
        if r.depth != depth || depth > max_depth {
            return Err(format!(
                "node at depth {} where {depth} was expected (max {max_depth})",
                r.depth
            ));
        }
        let children = match r.children {
            None => None,
            Some(mask) => {
                let mut ch: Box<[Option<Node>; 8]> = Box::default();
                for (i, slot) in ch.iter_mut().enumerate() {
                    if mask & (1 << i) != 0 {
                        *slot = Some(Node::from_records(recs, depth + 1, max_depth)?);
                    }
                }
                Some(ch)
            }
        };
        Ok(Self {
            center: r.center,
            half: r.half,
            depth: r.depth,
            n: r.n,
            sum: r.sum,
            sum_sq: r.sum_sq,
            sum_cov: r.sum_cov,
            points: r.points.clone(),
            plane: r.plane.clone(),
            children,
            frozen: r.frozen,
            since_fit: r.since_fit,
        })
    }
}
