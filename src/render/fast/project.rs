//! Per-Gaussian projection to a screen splat and the chain rule back to the parameters and the
//! pose: the f64 reference's own code (`cpu::project`, on one Gaussian's values), which keeps
//! the depth order and the culling decisions identical to it and is cheap next to the
//! rasteriser, plus what the tile rasteriser needs (alpha box, listed tiles, f32 values).

use crate::render::cpu::project::{
    project_backward_one, project_one, One, OneGrad, PoseRt, ProjGrad, Projected,
};
use crate::render::types::{group_widths, sh_coeffs, Camera, Gaussians, Group, ALPHA_MIN, TILE};

/// A projected Gaussian as the tile rasteriser reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Splat {
    /// Screen mean (f64 so tile-local coordinates keep full precision).
    pub mean: [f64; 2],
    /// Inverse 2D covariance (a, b, c).
    pub conic: [f32; 3],
    pub opacity: f32,
    pub colour: [f32; 3],
    /// Camera-frame depth (the sort key, rounded like the reference's f32 key).
    pub depth: f32,
    /// Half-widths of the box outside which alpha < 1/255 (pixels there never contribute).
    pub extent: [f32; 2],
    /// Tiles [x0, x1) x [y0, y1) the splat is listed in: the reference's rectangle cut down to
    /// the tiles its alpha >= 1/255 box touches (the others could never use it).
    pub rect: [u32; 4],
    /// The alpha >= 1/255 ellipse's shape, for listing only the tiles it touches.
    pub rows: EllipseRows,
    /// Index of the Gaussian.
    pub index: u32,
    /// Colour channels clamped at zero (bit per channel).
    pub clamped: u8,
}

/// The ellipse `d^T conic d <= level` (`d = mean - pixel`) in the form its horizontal chords
/// need: at `dy` the chord spans `dx = -slope dy +- sqrt(inv_a (level - curv dy^2))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EllipseRows {
    pub level: f32,
    /// `b / a`.
    pub slope: f32,
    /// `det / a`.
    pub curv: f32,
    pub inv_a: f32,
    /// `dy` of the ellipse's leftmost point (its rightmost is at `-dy_left`).
    pub dy_left: f32,
}

impl EllipseRows {
    /// From the conic and the level; the level is widened slightly so that f32 rounding in
    /// the rasteriser can never reach a tile the chords leave out.
    fn new(conic: [f64; 3], reach: f64) -> Self {
        let [a, b, c] = conic;
        let det = a * c - b * b;
        let level = 2.0 * reach * (1.0 + 1e-3) + 1e-3;
        let e = (level * c / det).sqrt();
        Self {
            level: level as f32,
            slope: (b / a) as f32,
            curv: (det / a) as f32,
            inv_a: (1.0 / a) as f32,
            dy_left: (-b * e / c) as f32,
        }
    }
}

/// Read-only views of the parameter groups.
pub struct Params<'a> {
    pub mean: &'a [f32],
    pub log_scale: &'a [f32],
    pub rot: &'a [f32],
    pub opacity: &'a [f32],
    pub dc: &'a [f32],
    pub rest: &'a [f32],
    /// SH coefficients per channel.
    pub k: usize,
}

impl<'a> Params<'a> {
    pub fn new(g: &'a Gaussians) -> Self {
        Self {
            mean: g.group(Group::Mean),
            log_scale: g.group(Group::LogScale),
            rot: g.group(Group::Rotation),
            opacity: g.group(Group::Opacity),
            dc: g.group(Group::ShDc),
            rest: g.group(Group::ShRest),
            k: sh_coeffs(g.sh_degree()),
        }
    }

    /// Gaussian `i`'s values.
    pub fn one(&self, i: usize) -> One<'a, f32> {
        let rw = 3 * (self.k - 1);
        let (dc, rest): (&'a [f32], &'a [f32]) = (self.dc, self.rest);
        One::from_groups(
            [
                &self.mean[3 * i..3 * i + 3],
                &self.log_scale[3 * i..3 * i + 3],
                &self.rot[4 * i..4 * i + 4],
            ],
            self.opacity[i],
            &dc[3 * i..3 * i + 3],
            &rest[rw * i..rw * (i + 1)],
            self.k,
        )
    }
}

/// Camera and pose of a render.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub cam: Camera,
    pub pose: PoseRt,
}

impl View {
    pub fn new(cam: &Camera, pose: PoseRt) -> Self {
        Self { cam: *cam, pose }
    }
}

/// Projects Gaussian `i`; `None` when culled by the reference's rules (invalid, outside the
/// near/far range or the guard frustum, degenerate covariance, off-screen tile rectangle) or
/// when it could never contribute (opacity below 1/255, alpha box in no tile).
pub fn project(p: &Params, i: usize, v: &View) -> Option<Splat> {
    let (pr, clamp) = project_one(&p.one(i), &v.cam, &v.pose)?;
    finish(&pr, clamp, i)
}

/// The splat of Gaussian `i` from its reference projection: the alpha box, the tiles it can
/// reach, f32 values; `None` when it could never contribute.
pub fn finish(pr: &Projected, clamp: [bool; 3], i: usize) -> Option<Splat> {
    // The 2D covariance's diagonal back from the conic (what the alpha box needs).
    let [qa, qb, qc] = pr.conic;
    let det = qa * qc - qb * qb;
    let (a, c) = (qc / det, qa / det);
    // alpha >= 1/255 needs 0.5 d^T conic d <= ln(255 opacity): a box of sqrt(2 ln(..) cov_ii).
    let reach = (pr.opacity / ALPHA_MIN).ln();
    if reach.is_nan() || reach <= 0.0 {
        return None;
    }
    let extent = [
        ((2.0 * reach * a).sqrt() * (1.0 + 1e-4) + 1e-3) as f32,
        ((2.0 * reach * c).sqrt() * (1.0 + 1e-4) + 1e-3) as f32,
    ];
    let t = TILE as f64;
    let cut = |lo: u32, hi: u32, c: f64, e: f32| {
        let a = ((c - e as f64) / t).floor().max(0.0);
        let b = ((c + e as f64) / t).floor() + 1.0;
        let a = (a.min(u32::MAX as f64) as u32).max(lo);
        let b = (b.max(0.0).min(u32::MAX as f64) as u32).min(hi);
        (a, b.max(a))
    };
    let (x0, x1) = cut(pr.rect[0], pr.rect[1], pr.mean2d[0], extent[0]);
    let (y0, y1) = cut(pr.rect[2], pr.rect[3], pr.mean2d[1], extent[1]);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    Some(Splat {
        mean: pr.mean2d,
        conic: pr.conic.map(|x| x as f32),
        opacity: pr.opacity as f32,
        colour: pr.colour.map(|x| x as f32),
        depth: pr.depth as f32,
        extent,
        rect: [x0, x1, y0, y1],
        rows: EllipseRows::new(pr.conic, reach),
        index: i as u32,
        clamped: clamp
            .iter()
            .enumerate()
            .fold(0, |m, (ch, &c)| m | (u8::from(c) << ch)),
    })
}

/// Mutable per-Gaussian slices of the six gradient groups (one chunk of Gaussians).
pub struct GradOut<'a> {
    pub first: usize,
    pub groups: [&'a mut [f32]; 6],
}

/// Splits a gradient set into `parts` chunks of consecutive Gaussians, each with its six group
/// slices, so threads can write disjoint Gaussians.
pub fn split_grads(g: &mut Gaussians, parts: usize) -> Vec<GradOut<'_>> {
    let n = g.len();
    let widths = group_widths(g.sh_degree());
    let per = n.div_ceil(parts.max(1)).max(1);
    let mut rest: &mut [f32] = &mut g.data;
    let mut chunks: Vec<std::slice::ChunksMut<'_, f32>> = Vec::with_capacity(6);
    for w in widths {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(w * n);
        // A zero-width group (SH degree 0) yields no chunks; it gets empty slices below.
        chunks.push(head.chunks_mut((w * per).max(1)));
        rest = tail;
    }
    let mut out = Vec::new();
    let mut first = 0;
    while first < n {
        let groups: [&mut [f32]; 6] = std::array::from_fn(|gi| {
            if widths[gi] == 0 {
                Default::default()
            } else {
                chunks[gi].next().expect("chunk per part")
            }
        });
        out.push(GradOut { first, groups });
        first += per;
    }
    out
}

/// Chain rule of Gaussian `i` (at `out.first + local`) from its screen gradient to its parameters
/// (written to `out`) and to the pose perturbation (added to `pose_grad`): the reference's
/// `cpu::project::project_backward_one`.
pub fn project_backward(
    p: &Params,
    i: usize,
    v: &View,
    pg: &ProjGrad,
    clamped: u8,
    out: &mut GradOut,
    pose_grad: &mut [f64; 6],
) {
    let clamped = std::array::from_fn(|ch| clamped & (1 << ch) != 0);
    let mut og = OneGrad::default();
    if !project_backward_one(&p.one(i), &v.cam, &v.pose, pg, clamped, &mut og, pose_grad) {
        return;
    }
    let li = i - out.first;
    let rw = 3 * (p.k - 1);
    let [mean, ls, rot, op, dc, rest] = &mut out.groups;
    og.write(
        [
            &mut mean[3 * li..3 * li + 3],
            &mut ls[3 * li..3 * li + 3],
            &mut rot[4 * li..4 * li + 4],
            &mut op[li..li + 1],
            &mut dc[3 * li..3 * li + 3],
            &mut rest[rw * li..rw * (li + 1)],
        ],
        p.k,
        |x| x as f32,
    );
}
