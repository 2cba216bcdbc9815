//! Forward-mode pose derivatives of rendered pixels (CPU, f64), for the photometric update.
//!
//! The backward pass gives `J^T v` for one image-sized `v`; Gauss-Newton needs the rows of `J`
//! at a few thousand selected pixels. Forward mode does that cheaply: every projected Gaussian
//! carries the derivatives of its screen mean, conic and colour with respect to the 6 pose
//! parameters (the [`crate::render::perturb_pose`] convention, `xi = [v, w]`), and a pixel's
//! blend propagates them front to back. Same culling, ordering, clamps and early termination as
//! [`super::raster::forward`], so colour and alpha equal the reference forward exactly.

use std::cell::{Cell, RefCell};

use nalgebra::{Matrix2, Matrix2x3, Matrix3, Quaternion, Vector3};

use super::project::{self, project_one, One, PoseRt, Projected};
use crate::render::sh;
use crate::render::types::{
    Camera, GaussianSet, Group, ALPHA_MAX, ALPHA_MIN, DILATION, TILE, T_MIN,
};

/// Derivative of a scalar w.r.t. the pose perturbation `[v, w]`.
pub type Tangent = [f64; 6];

/// The pose derivatives of what the blend uses from one projected Gaussian.
/// The tiles a masked frame must render completely: those holding the pixels it will read,
/// with a summed-area table so a rectangle of tiles is tested in constant time.
#[derive(Debug, Clone, PartialEq)]
pub struct TileMask {
    tiles: Vec<bool>,
    /// `sat[(y) * (tx + 1) + x]`: marked tiles in `[0, x) x [0, y)`.
    sat: Vec<u32>,
    tx: u32,
    ty: u32,
}

impl TileMask {
    /// The tiles of `cam` holding at least one of `pixels` (those outside the image ignored).
    pub fn of_pixels(cam: &Camera, pixels: &[(u32, u32)]) -> Self {
        let (tx, ty) = cam.tiles();
        let mut tiles = vec![false; (tx * ty) as usize];
        for &(px, py) in pixels {
            if px < cam.width && py < cam.height {
                tiles[((py / TILE) * tx + px / TILE) as usize] = true;
            }
        }
        let w = tx as usize + 1;
        let mut sat = vec![0u32; w * (ty as usize + 1)];
        for y in 0..ty as usize {
            for x in 0..tx as usize {
                sat[(y + 1) * w + x + 1] = sat[y * w + x + 1] + sat[(y + 1) * w + x]
                    - sat[y * w + x]
                    + u32::from(tiles[y * tx as usize + x]);
            }
        }
        Self { tiles, sat, tx, ty }
    }

    /// Indices (increasing) of the Gaussians of `g` whose footprint at world-to-camera pose
    /// `t_cw` may reach a marked tile with `margin` pixels to spare: the set to build the
    /// frames of nearby poses from (see [`PoseJacobianFrame::masked`]).
    pub fn gaussians_near(
        &self,
        g: &GaussianSet<f64>,
        cam: &Camera,
        t_cw: &nalgebra::Isometry3<f64>,
        margin: f64,
    ) -> Vec<u32> {
        let pose = PoseRt::from_iso(t_cw);
        let lim_x = 1.3 * cam.cx.max(cam.width as f64 - cam.cx) / cam.fx + margin / cam.fx;
        let lim_y = 1.3 * cam.cy.max(cam.height as f64 - cam.cy) / cam.fy + margin / cam.fy;
        let mut out = Vec::new();
        for (i, m) in g.group(Group::Mean).chunks_exact(3).enumerate() {
            let pc = pose.r * Vector3::new(m[0], m[1], m[2]) + pose.t;
            if !(pc.z > 0.5 * cam.near && pc.z < cam.far)
                || (pc.x / pc.z).abs() > lim_x
                || (pc.y / pc.z).abs() > lim_y
            {
                continue;
            }
            let ls = g.get(Group::LogScale, i);
            if self.may_reach_within(cam, &pc, ls[0].max(ls[1]).max(ls[2]), margin) {
                out.push(i as u32);
            }
        }
        out
    }

    /// Number of marked tiles.
    pub fn count(&self) -> usize {
        self.tiles.iter().filter(|&&t| t).count()
    }

    /// Whether a marked tile lies in tiles `[x0, x1) x [y0, y1)` (clamped to the grid).
    fn any_in(&self, x0: u32, x1: u32, y0: u32, y1: u32) -> bool {
        let (x1, y1) = (x1.min(self.tx) as usize, y1.min(self.ty) as usize);
        let (x0, y0) = (x0 as usize, y0 as usize);
        if x0 >= x1 || y0 >= y1 {
            return false;
        }
        let w = self.tx as usize + 1;
        let s = |x: usize, y: usize| self.sat[y * w + x];
        s(x1, y1) + s(x0, y0) > s(x0, y1) + s(x1, y0)
    }

    /// Whether a Gaussian at camera-frame centre `pc` (in front of the camera) with largest
    /// log-scale `max_log_scale` can have its projected rectangle on a marked tile. The
    /// projection's radius is `ceil(3 sqrt(lambda))` with `lambda <= a + c + sqrt(0.1)` (trace
    /// of the 2D covariance `J S J^T + DILATION I`), and `trace(J S J^T) <= |J|_F^2 s_max^2`;
    /// two pixels of margin cover rounding. A NaN bound keeps the Gaussian.
    fn may_reach(&self, cam: &Camera, pc: &Vector3<f64>, max_log_scale: f64) -> bool {
        self.may_reach_within(cam, pc, max_log_scale, 0.0)
    }

    /// [`Self::may_reach`] with the radius grown by `margin` pixels.
    fn may_reach_within(
        &self,
        cam: &Camera,
        pc: &Vector3<f64>,
        max_log_scale: f64,
        margin: f64,
    ) -> bool {
        let (x, y, z) = (pc.x, pc.y, pc.z);
        let s = max_log_scale.exp();
        let jf2 = (cam.fx * cam.fx * (z * z + x * x) + cam.fy * cam.fy * (z * z + y * y))
            / (z * z * z * z);
        let radius = 3.0 * (jf2 * s * s + 2.0 * DILATION + 0.1f64.sqrt()).sqrt() + 2.0 + margin;
        let (u, v) = (cam.fx * x / z + cam.cx, cam.fy * y / z + cam.cy);
        if !(radius.is_finite() && u.is_finite() && v.is_finite()) {
            return true;
        }
        let t = TILE as f64;
        let lo = |c: f64| ((c - radius) / t).floor().max(0.0).min(u32::MAX as f64) as u32;
        let hi = |c: f64| {
            (((c + radius) / t).floor() + 1.0)
                .max(0.0)
                .min(u32::MAX as f64) as u32
        };
        self.any_in(lo(u), hi(u), lo(v), hi(v))
    }
}

#[derive(Debug, Clone, Copy)]
struct ProjTangent {
    d_mean2d: [Tangent; 2],
    d_conic: [Tangent; 3],
    d_colour: [Tangent; 3],
}

/// Colour, alpha and their pose derivatives at one pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelJacobian {
    pub colour: [f64; 3],
    /// Accumulated opacity `1 - T_final`.
    pub alpha: f64,
    /// `d colour[ch] / d xi`.
    pub d_colour: [Tangent; 3],
    pub d_alpha: Tangent,
}

/// Colour, alpha and depth of a pixel's blend (no derivatives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surface {
    pub colour: [f64; 3],
    /// Accumulated opacity `1 - T_final`.
    pub alpha: f64,
    /// Blend-weighted mean camera depth (`sum d a T / alpha`; 0 where alpha is 0).
    pub depth: f64,
    /// Blend-weighted standard deviation of the depths: large where the pixel mixes surfaces.
    pub depth_spread: f64,
}

/// A power (exponent of the Gaussian falloff) below which even opacity 1 gives an alpha under
/// [`ALPHA_MIN`]: `exp(-5.55) = 0.00389 < 1/255 = 0.00392`, a margin far above exp's rounding.
const POWER_SKIP: f64 = -5.55;

/// What a pixel's blend reads of every binned Gaussian, packed (48 bytes) in depth order so the
/// tile lists, which are increasing indices into it, walk it forwards.
#[derive(Debug, Clone, Copy)]
struct Splat {
    mean2d: [f64; 2],
    conic: [f64; 3],
    opacity: f64,
}

/// A binned Gaussian: its parameters (read once for the projection, kept for its tangents:
/// re-reading them from the set at random indices stalled on cache misses), index in the set,
/// projection and colour clamps.
#[derive(Debug, Clone, Copy)]
struct Binned<'g> {
    one: One<'g, f64>,
    /// Index in the set (what the tests compare tile lists by).
    #[cfg_attr(not(test), allow(dead_code))]
    index: u32,
    proj: Projected,
    clamped: [bool; 3],
}

/// Projection of every Gaussian and the tile lists at one camera pose, with the tangents of
/// each Gaussian computed when a pixel's blend first uses it: the visual update reads at most
/// a few thousand pixels, which reach only part of the window, and tangents cost about as much
/// as the projection (same values as computing them all up front; with the single depth sort
/// of `new`, the update's frame and rows took 13 % fewer CPU samples on the embedded room).
/// The binned Gaussians are stored densely in depth order (tile lists index them), and the
/// tangents computed so far in one dense arena: a sparse per-Gaussian layout made the blend
/// wait on cache misses.
#[derive(Debug, Clone)]
pub struct PoseJacobianFrame<'g> {
    cam: Camera,
    pose: PoseRt,
    /// The binned Gaussians front to back (by f32 depth, then index).
    splats: Vec<Splat>,
    binned: Vec<Binned<'g>>,
    /// Per binned Gaussian: its tangents' place in `arena` (`u32::MAX`: not computed yet).
    slot: Vec<Cell<u32>>,
    arena: RefCell<Vec<ProjTangent>>,
    /// Tile `t` blends `items[start[t]..start[t + 1]]` (indices into `splats`), in order.
    start: Vec<u32>,
    /// The tiles whose lists are complete (all when `None`).
    mask: Option<TileMask>,
    items: Vec<u32>,
}

fn quat_to_mat(q: &[f64]) -> Option<Matrix3<f64>> {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if !(n.is_finite() && n > 1e-12) {
        return None;
    }
    let (w, x, y, z) = (q[0] / n, q[1] / n, q[2] / n, q[3] / n);
    Some(project::quat_to_mat(&Quaternion::new(w, x, y, z)))
}

fn skew(v: &Vector3<f64>) -> Matrix3<f64> {
    Matrix3::new(0.0, -v.z, v.y, v.z, 0.0, -v.x, -v.y, v.x, 0.0)
}

/// Tangents of one Gaussian that `project` kept.
fn tangents(
    g: &One<f64>,
    cam: &Camera,
    pose: &PoseRt,
    p: &Projected,
    clamped: [bool; 3],
) -> Option<ProjTangent> {
    let m = g.mean;
    let pw = Vector3::new(m[0], m[1], m[2]);
    let ls = g.log_scale;
    let s = Vector3::new(ls[0].exp(), ls[1].exp(), ls[2].exp());
    let rot = quat_to_mat(&g.rot)?;
    let msc = rot * Matrix3::from_diagonal(&s);
    let sigma_c = pose.r * (msc * msc.transpose()) * pose.r.transpose();
    let pc = pose.r * pw + pose.t;
    let (x, y, z) = (pc.x, pc.y, pc.z);
    let (fx, fy) = (cam.fx, cam.fy);
    let j = Matrix2x3::new(
        fx / z,
        0.0,
        -fx * x / (z * z),
        0.0,
        fy / z,
        -fy * y / (z * z),
    );
    let conic = Matrix2::new(p.conic[0], p.conic[1], p.conic[1], p.conic[2]);

    // View direction for the SH colour; only the translation moves the camera centre.
    let k = g.k;
    let dir_raw = pw - pose.centre();
    let n = dir_raw.norm();
    let d = dir_raw / n;
    let (mut yb, mut dyb) = ([0.0; 16], [[0.0; 3]; 16]);
    sh::basis([d.x, d.y, d.z], k, &mut yb, &mut dyb);
    // d colour / d (unit direction), per channel.
    let rest = g.rest;
    let mut dcol_ddir = [Vector3::zeros(); 3];
    for (ch, out) in dcol_ddir.iter_mut().enumerate() {
        for kk in 1..k {
            *out += Vector3::new(dyb[kk][0], dyb[kk][1], dyb[kk][2]) * rest[(kk - 1) * 3 + ch];
        }
    }
    let proj_dir = (Matrix3::identity() - d * d.transpose()) / n;

    let mut t = ProjTangent {
        d_mean2d: [[0.0; 6]; 2],
        d_conic: [[0.0; 6]; 3],
        d_colour: [[0.0; 6]; 3],
    };
    for kx in 0..6 {
        let e = Vector3::from_fn(|r, _| if r == kx % 3 { 1.0 } else { 0.0 });
        let (dpc, dsig) = if kx < 3 {
            (e, Matrix3::zeros())
        } else {
            let ks = skew(&e);
            (e.cross(&pc), ks * sigma_c - sigma_c * ks)
        };
        let (dx, dy, dz) = (dpc.x, dpc.y, dpc.z);
        t.d_mean2d[0][kx] = fx * (dx * z - x * dz) / (z * z);
        t.d_mean2d[1][kx] = fy * (dy * z - y * dz) / (z * z);
        let dj = Matrix2x3::new(
            -fx * dz / (z * z),
            0.0,
            -fx * dx / (z * z) + 2.0 * fx * x * dz / (z * z * z),
            0.0,
            -fy * dz / (z * z),
            -fy * dy / (z * z) + 2.0 * fy * y * dz / (z * z * z),
        );
        let jsj = dj * sigma_c * j.transpose();
        let dcov = jsj + jsj.transpose() + j * dsig * j.transpose();
        let dq = -(conic * dcov * conic);
        t.d_conic[0][kx] = dq[(0, 0)];
        t.d_conic[1][kx] = dq[(0, 1)];
        t.d_conic[2][kx] = dq[(1, 1)];
        if kx < 3 {
            // centre moves by -R^T v, so the raw direction by +R^T v.
            let ddir = proj_dir * (pose.r.transpose() * e);
            for ch in 0..3 {
                if !clamped[ch] {
                    t.d_colour[ch][kx] = dcol_ddir[ch].dot(&ddir);
                }
            }
        }
    }
    Some(t)
}

wide! {
    /// [`PoseJacobianFrame::pixel`], multiversioned (wider vectors for the 6-wide derivative
    /// loops; plain arithmetic, so every copy gives the same bits).
    fn pixel_wide(f: &PoseJacobianFrame<'_>, px: u32, py: u32) -> Option<PixelJacobian> {
        f.pixel_impl(px, py)
    }
}

impl<'g> PoseJacobianFrame<'g> {
    /// Projects every Gaussian at world-to-camera pose `t_cw` and bins them into tiles, each
    /// tile front to back (by f32 depth, then index).
    pub fn new(g: &'g GaussianSet<f64>, cam: &Camera, t_cw: &nalgebra::Isometry3<f64>) -> Self {
        Self::build(g, cam, t_cw, None, None)
    }

    /// [`Self::new`] for the pixels of `tiles` only: Gaussians whose footprint cannot reach a
    /// tile of the mask are dropped before their projection (a bound on the projected radius
    /// from the largest scale), so the masked tiles list exactly what [`Self::new`] lists, in
    /// the same order, and their pixels get the same bits; pixels of other tiles are `None`.
    /// The update reads a few hundred pixels; in a corridor the tiles around the vanishing
    /// point hold most of the window in tiny far discs.
    ///
    /// `subset` (increasing indices) restricts the Gaussians considered, e.g. to
    /// [`TileMask::gaussians_near`] of a nearby pose: the frame then equals the full one on the
    /// mask as long as no other Gaussian moved into reach.
    pub fn masked(
        g: &'g GaussianSet<f64>,
        cam: &Camera,
        t_cw: &nalgebra::Isometry3<f64>,
        tiles: &TileMask,
        subset: Option<&[u32]>,
    ) -> Self {
        Self::build(g, cam, t_cw, Some(tiles), subset)
    }

    fn build(
        g: &'g GaussianSet<f64>,
        cam: &Camera,
        t_cw: &nalgebra::Isometry3<f64>,
        mask: Option<&TileMask>,
        subset: Option<&[u32]>,
    ) -> Self {
        let pose = PoseRt::from_iso(t_cw);
        // The projection's depth and frustum tests first (the same expressions, so they reject
        // only what `project` would): most of a window is outside the view, and the full
        // projection (scales, opacity, colour) of those was half the frame's cost.
        let lim_x = 1.3 * cam.cx.max(cam.width as f64 - cam.cx) / cam.fx;
        let lim_y = 1.3 * cam.cy.max(cam.height as f64 - cam.cy) / cam.fy;
        let mut binned: Vec<Binned> = Vec::new();
        let means = g.group(Group::Mean);
        let order: Box<dyn Iterator<Item = usize>> = match subset {
            None => Box::new(0..g.len()),
            Some(s) => Box::new(s.iter().map(|&i| i as usize)),
        };
        for i in order {
            let Some(m) = means.get(3 * i..3 * i + 3) else {
                continue;
            };
            let pc = pose.r * Vector3::new(m[0], m[1], m[2]) + pose.t;
            if !(pc.z > cam.near && pc.z < cam.far)
                || (pc.x / pc.z).abs() > lim_x
                || (pc.y / pc.z).abs() > lim_y
            {
                continue;
            }
            if let Some(mask) = mask {
                let ls = &g.get(Group::LogScale, i);
                if !mask.may_reach(cam, &pc, ls[0].max(ls[1]).max(ls[2])) {
                    continue;
                }
            }
            // `project` checks the rotation the tangents need (the same test as
            // `quat_to_mat`), so every Gaussian binned here has tangents.
            let one = One::from_set(g, i);
            if let Some((proj, clamped)) = project_one(&one, cam, &pose) {
                binned.push(Binned {
                    one,
                    index: i as u32,
                    proj,
                    clamped,
                });
            }
        }
        // One sort of the visible Gaussians (`binned` is in index order, so its position breaks
        // depth ties like the index), then binning in that order, gives every tile the order a
        // sort per tile would (a strict total order), without sorting the Gaussians that
        // overlap several tiles once per tile.
        let mut order: Vec<(f32, u32)> = binned
            .iter()
            .enumerate()
            .map(|(k, b)| (b.proj.depth as f32, k as u32))
            .collect();
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let binned: Vec<Binned> = order.iter().map(|&(_, k)| binned[k as usize]).collect();
        let splats: Vec<Splat> = binned
            .iter()
            .map(|b| Splat {
                mean2d: b.proj.mean2d,
                conic: b.proj.conic,
                opacity: b.proj.opacity,
            })
            .collect();
        // Tile lists by counting: sizes, offsets, then the Gaussians front to back.
        let (tx, ty) = cam.tiles();
        let tiles_of = |b: &Binned| {
            let r = b.proj.rect;
            (r[2]..r[3]).flat_map(move |y| (r[0]..r[1]).map(move |x| (y * tx + x) as usize))
        };
        let mut start = vec![0u32; (tx * ty) as usize + 1];
        for b in &binned {
            for t in tiles_of(b) {
                start[t + 1] += 1;
            }
        }
        for t in 1..start.len() {
            start[t] += start[t - 1];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; start[start.len() - 1] as usize];
        for (j, b) in binned.iter().enumerate() {
            for t in tiles_of(b) {
                items[fill[t] as usize] = j as u32;
                fill[t] += 1;
            }
        }
        Self {
            cam: *cam,
            pose,
            mask: mask.cloned(),
            slot: vec![Cell::new(u32::MAX); binned.len()],
            arena: RefCell::new(Vec::new()),
            splats,
            binned,
            start,
            items,
        }
    }

    /// Where the tangents of binned Gaussian `j` are in `arena` (computed on first use).
    fn tangent(&self, arena: &mut Vec<ProjTangent>, j: usize) -> usize {
        let s = self.slot[j].get();
        if s != u32::MAX {
            return s as usize;
        }
        let b = &self.binned[j];
        // Never `None` for a binned Gaussian (see `new`); zeros keep a bad value local.
        arena.push(
            tangents(&b.one, &self.cam, &self.pose, &b.proj, b.clamped).unwrap_or(ProjTangent {
                d_mean2d: [[0.0; 6]; 2],
                d_conic: [[0.0; 6]; 3],
                d_colour: [[0.0; 6]; 3],
            }),
        );
        let s = arena.len() - 1;
        self.slot[j].set(s as u32);
        s
    }

    pub fn camera(&self) -> &Camera {
        &self.cam
    }

    /// The tile of an in-image pixel whose list is complete.
    #[inline(always)]
    fn tile_of(&self, px: u32, py: u32) -> Option<usize> {
        let (tx, _) = self.cam.tiles();
        let tile = ((py / TILE) * tx + px / TILE) as usize;
        match &self.mask {
            Some(m) if !m.tiles[tile] => None,
            _ => Some(tile),
        }
    }

    /// Number of Gaussians that survived culling.
    pub fn visible(&self) -> usize {
        self.binned.len()
    }

    /// Colour, alpha and pose derivatives at pixel `(px, py)` (`None` outside the image or
    /// the mask).
    pub fn pixel(&self, px: u32, py: u32) -> Option<PixelJacobian> {
        pixel_wide(self, px, py)
    }

    /// Colour and alpha at pixel `(px, py)` without the derivatives (`None` outside the
    /// image): the same blend as [`Self::pixel`], so the same bits, for the update's cost
    /// check at the posterior, which needs no Jacobian and computes no tangents.
    pub fn value(&self, px: u32, py: u32) -> Option<([f64; 3], f64)> {
        self.surface(px, py).map(|s| (s.colour, s.alpha))
    }

    /// [`Self::value`] with the blend's depth moments: what the direct photometric update
    /// back-projects a pixel with (its depth, and how far the blended depths spread).
    pub fn surface(&self, px: u32, py: u32) -> Option<Surface> {
        if px >= self.cam.width || py >= self.cam.height {
            return None;
        }
        let tile = self.tile_of(px, py)?;
        let list = &self.items[self.start[tile] as usize..self.start[tile + 1] as usize];
        let (fx, fy) = (px as f64, py as f64);
        let mut t = 1.0;
        let mut c = [0.0; 3];
        let (mut d1, mut d2) = (0.0, 0.0);
        for &j in list {
            let p = &self.splats[j as usize];
            let ddx = p.mean2d[0] - fx;
            let ddy = p.mean2d[1] - fy;
            let (ca, cb, cc) = (p.conic[0], p.conic[1], p.conic[2]);
            let power = -0.5 * (ca * ddx * ddx + cc * ddy * ddy) - cb * ddx * ddy;
            if power > 0.0 || (power < POWER_SKIP && p.opacity <= 1.0) {
                continue;
            }
            let a = (p.opacity * power.exp()).min(ALPHA_MAX);
            if a < ALPHA_MIN {
                continue;
            }
            let next_t = t * (1.0 - a);
            if next_t < T_MIN {
                break;
            }
            let proj = &self.binned[j as usize].proj;
            for (cv, col) in c.iter_mut().zip(proj.colour) {
                *cv += col * a * t;
            }
            d1 += proj.depth * a * t;
            d2 += proj.depth * proj.depth * a * t;
            t = next_t;
        }
        let alpha = 1.0 - t;
        let depth = if alpha > 0.0 { d1 / alpha } else { 0.0 };
        let spread = if alpha > 0.0 {
            (d2 / alpha - depth * depth).max(0.0).sqrt()
        } else {
            0.0
        };
        Some(Surface {
            colour: c,
            alpha,
            depth,
            depth_spread: spread,
        })
    }

    #[inline(always)]
    fn pixel_impl(&self, px: u32, py: u32) -> Option<PixelJacobian> {
        if px >= self.cam.width || py >= self.cam.height {
            return None;
        }
        let tile = self.tile_of(px, py)?;
        let list = &self.items[self.start[tile] as usize..self.start[tile + 1] as usize];
        let mut arena = self.arena.borrow_mut();
        let (fx, fy) = (px as f64, py as f64);
        let mut t = 1.0;
        let mut dt = [0.0; 6];
        let mut c = [0.0; 3];
        let mut dc = [[0.0; 6]; 3];
        for &j in list {
            let p = &self.splats[j as usize];
            let ddx = p.mean2d[0] - fx;
            let ddy = p.mean2d[1] - fy;
            let (ca, cb, cc) = (p.conic[0], p.conic[1], p.conic[2]);
            let power = -0.5 * (ca * ddx * ddx + cc * ddy * ddy) - cb * ddx * ddy;
            // Below `POWER_SKIP` the alpha is under `ALPHA_MIN` for any opacity up to 1 (not
            // for a NaN one, which the blend clamps to `ALPHA_MAX`): skipped without the exp.
            if power > 0.0 || (power < POWER_SKIP && p.opacity <= 1.0) {
                continue;
            }
            let raw = p.opacity * power.exp();
            let a = raw.min(ALPHA_MAX);
            if a < ALPHA_MIN {
                continue;
            }
            let next_t = t * (1.0 - a);
            if next_t < T_MIN {
                break;
            }
            let slot = self.tangent(&mut arena, j as usize);
            let pt = &arena[slot];
            let mut da = [0.0; 6];
            if raw <= ALPHA_MAX {
                for (k, dak) in da.iter_mut().enumerate() {
                    let dpow = -(ca * ddx + cb * ddy) * pt.d_mean2d[0][k]
                        - (cc * ddy + cb * ddx) * pt.d_mean2d[1][k]
                        - 0.5 * ddx * ddx * pt.d_conic[0][k]
                        - ddx * ddy * pt.d_conic[1][k]
                        - 0.5 * ddy * ddy * pt.d_conic[2][k];
                    *dak = raw * dpow;
                }
            }
            let colour = &self.binned[j as usize].proj.colour;
            for ch in 0..3 {
                let col = colour[ch];
                c[ch] += col * a * t;
                for k in 0..6 {
                    dc[ch][k] += pt.d_colour[ch][k] * a * t + col * (da[k] * t + a * dt[k]);
                }
            }
            for k in 0..6 {
                dt[k] = dt[k] * (1.0 - a) - t * da[k];
            }
            t = next_t;
        }
        Some(PixelJacobian {
            colour: c,
            alpha: 1.0 - t,
            d_colour: dc,
            d_alpha: dt.map(|v| -v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::cpu::render_f64;
    use crate::render::{perturb_pose, random_gaussians, test_camera, test_pose};

    /// Central differences of the reference forward for each pose direction at step `h`.
    fn central(
        g: &GaussianSet<f64>,
        cam: &Camera,
        pose: &nalgebra::Isometry3<f64>,
        h: f64,
    ) -> Vec<Vec<f64>> {
        (0..6)
            .map(|k| {
                let mut xi = [0.0; 6];
                xi[k] = h;
                let p = render_f64(g, cam, &perturb_pose(pose, &xi));
                xi[k] = -h;
                let m = render_f64(g, cam, &perturb_pose(pose, &xi));
                p.colour
                    .iter()
                    .zip(&m.colour)
                    .map(|(a, b)| (a - b) / (2.0 * h))
                    .collect()
            })
            .collect()
    }

    /// The value-only blend gives the derivative blend's colour and alpha bit for bit (the
    /// cost check at the posterior relies on it), including pixels where the blend terminates.
    #[test]
    fn value_equals_pixel_colour_and_alpha() {
        let g = random_gaussians(400, 1, 0.3, 5).map(|x| x as f64);
        let cam = test_camera(80, 56);
        let frame = PoseJacobianFrame::new(&g, &cam, &test_pose());
        let mut covered = 0;
        for py in 0..cam.height {
            for px in 0..cam.width {
                let p = frame.pixel(px, py).unwrap();
                let (c, a) = frame.value(px, py).unwrap();
                assert_eq!((c, a), (p.colour, p.alpha), "pixel {px},{py}");
                covered += usize::from(a > 0.5);
            }
        }
        assert!(covered > 100, "only {covered} covered pixels");
        assert!(frame.value(cam.width, 0).is_none());
    }

    /// The surface's depth is the reference forward's blended depth over its alpha, and its
    /// spread is zero only where one depth is blended.
    #[test]
    fn surface_depth_is_the_reference_blend() {
        let g = random_gaussians(400, 1, 0.3, 5).map(|x| x as f64);
        let cam = test_camera(80, 56);
        let frame = PoseJacobianFrame::new(&g, &cam, &test_pose());
        let reference = render_f64(&g, &cam, &test_pose());
        let mut spread = 0;
        for py in 0..cam.height {
            for px in 0..cam.width {
                let s = frame.surface(px, py).unwrap();
                let i = (py * cam.width + px) as usize;
                assert!((s.alpha - reference.alpha[i]).abs() < 1e-12);
                if s.alpha > 0.5 {
                    let d = reference.depth[i] / reference.alpha[i];
                    assert!((s.depth - d).abs() < 1e-9 * d, "pixel {px},{py}");
                    spread += usize::from(s.depth_spread > 1e-3);
                }
            }
        }
        assert!(spread > 50, "only {spread} pixels blend several depths");
    }

    /// A masked frame gives the full frame's bits on the mask's tiles and `None` elsewhere,
    /// while projecting fewer Gaussians; so does one built from `gaussians_near` of a nearby
    /// pose (1 px away, margin 8 px). A radius bound that undercounts the footprint drops
    /// Gaussians that reach the mask from outside it and fails the comparison.
    #[test]
    fn masked_frame_equals_full_frame_on_its_tiles() {
        let g = random_gaussians(600, 1, 0.3, 13).map(|x| x as f64);
        let cam = test_camera(96, 80);
        let pose = test_pose();
        let full = PoseJacobianFrame::new(&g, &cam, &pose);
        let pixels = [(3, 3), (40, 20), (41, 22), (90, 70), (20, 60)];
        let mask = TileMask::of_pixels(&cam, &pixels);
        assert_eq!(mask.count(), 4);
        let near_pose = perturb_pose(&pose, &[0.002, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let near = mask.gaussians_near(&g, &cam, &near_pose, 8.0);
        let masked = PoseJacobianFrame::masked(&g, &cam, &pose, &mask, None);
        let subset = PoseJacobianFrame::masked(&g, &cam, &pose, &mask, Some(&near));
        assert!(masked.visible() < full.visible(), "nothing culled");
        assert!(near.len() < g.len());
        let mut covered = 0;
        for py in 0..cam.height {
            for px in 0..cam.width {
                let tile = ((py / TILE) * cam.tiles().0 + px / TILE) as usize;
                if !mask.tiles[tile] {
                    assert!(masked.pixel(px, py).is_none() && masked.value(px, py).is_none());
                    continue;
                }
                let want = full.pixel(px, py).unwrap();
                assert_eq!(masked.pixel(px, py).unwrap(), want, "pixel {px},{py}");
                assert_eq!(subset.pixel(px, py).unwrap(), want, "pixel {px},{py}");
                assert_eq!(masked.value(px, py).unwrap(), (want.colour, want.alpha));
                covered += usize::from(want.alpha > 0.5);
            }
        }
        assert!(covered > 100, "only {covered} covered pixels");
    }

    /// Every tile lists exactly the projected Gaussians whose rectangle covers it (by the
    /// projection itself, so the frame's early frustum test drops nothing it keeps), front to
    /// back by f32 depth and then index (the order the reference rasteriser blends in).
    #[test]
    fn tiles_hold_their_gaussians_front_to_back() {
        let g = random_gaussians(400, 1, 0.3, 5).map(|x| x as f64);
        let cam = test_camera(80, 56);
        // Turned so that part of the scene is outside the view.
        let pose = perturb_pose(&test_pose(), &[0.0, 0.0, 0.0, 0.0, 0.35, 0.0]);
        let frame = PoseJacobianFrame::new(&g, &cam, &pose);
        let rt = PoseRt::from_iso(&pose);
        let proj: Vec<_> = (0..g.len())
            .map(|i| project::project(&g, i, &cam, &rt))
            .collect();
        let (tx, ty) = cam.tiles();
        let mut binned = 0;
        for t in 0..(tx * ty) as usize {
            let (x, y) = (t as u32 % tx, t as u32 / tx);
            let list: Vec<u32> = frame.items[frame.start[t] as usize..frame.start[t + 1] as usize]
                .iter()
                .map(|&j| frame.binned[j as usize].index)
                .collect();
            let want: Vec<u32> = (0..g.len() as u32)
                .filter(|&i| {
                    proj[i as usize].as_ref().is_some_and(|(p, _)| {
                        let r = p.rect;
                        (r[0]..r[1]).contains(&x) && (r[2]..r[3]).contains(&y)
                    })
                })
                .collect();
            let mut sorted = list.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, want, "tile {t}");
            let key = |i: u32| {
                let d = proj[i as usize].as_ref().unwrap().0.depth as f32;
                (d, i)
            };
            for w in list.windows(2) {
                let (a, b) = (key(w[0]), key(w[1]));
                assert!(a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).is_lt(), "tile {t}");
            }
            binned += list.len();
        }
        let visible = proj.iter().filter(|p| p.is_some()).count();
        assert_eq!(frame.visible(), visible);
        assert!(binned > 100 && visible > 50, "{binned} {visible}");
        assert!(visible < g.len(), "the scene must have culled Gaussians");
    }

    /// The skipped powers give alphas under the cut-off; the dispatched (AVX2) pixel equals the
    /// portable one bit for bit.
    #[test]
    fn skipped_powers_are_below_the_alpha_cut_and_dispatch_is_exact() {
        assert!(POWER_SKIP.exp() < 0.995 * ALPHA_MIN);
        assert!(
            (POWER_SKIP + 0.05).exp() > ALPHA_MIN,
            "the skip is not needlessly weak"
        );
        let g = random_gaussians(300, 1, 0.15, 9).map(|x| x as f64);
        let cam = test_camera(48, 40);
        let frame = PoseJacobianFrame::new(&g, &cam, &test_pose());
        for py in 0..cam.height {
            for px in 0..cam.width {
                let (a, b) = (
                    frame.pixel(px, py).unwrap(),
                    frame.pixel_impl(px, py).unwrap(),
                );
                let bits = |p: &PixelJacobian| {
                    let mut v: Vec<u64> = p.colour.iter().map(|x| x.to_bits()).collect();
                    v.push(p.alpha.to_bits());
                    v.extend(p.d_colour.iter().flatten().map(|x| x.to_bits()));
                    v.extend(p.d_alpha.iter().map(|x| x.to_bits()));
                    v
                };
                assert_eq!(bits(&a), bits(&b), "pixel {px},{py}");
            }
        }
        assert!(frame.pixel(cam.width, 0).is_none());
    }

    /// Pixel values equal the reference forward; derivatives match central differences of it.
    /// Pixels where a blending threshold (alpha cut-off, early termination) is crossed within
    /// the step are discontinuous; they are detected by disagreeing step sizes and must be rare.
    #[test]
    fn pixel_jacobian_matches_reference_forward_and_finite_differences() {
        for (seed, degree) in [(7u64, 1u32), (3, 0), (11, 3)] {
            let g = random_gaussians(300, degree, 0.15, seed).map(|x| x as f64);
            let cam = test_camera(48, 40);
            let pose = test_pose();
            let frame = PoseJacobianFrame::new(&g, &cam, &pose);
            let reference = render_f64(&g, &cam, &pose);
            let fd1 = central(&g, &cam, &pose, 1e-6);
            let fd2 = central(&g, &cam, &pose, 2e-6);
            let (mut err2, mut ref2, mut jumps) = (0.0, 0.0, 0);
            for py in 0..cam.height {
                for px in 0..cam.width {
                    let pix = (py * cam.width + px) as usize;
                    let pj = frame.pixel(px, py).unwrap();
                    assert!((pj.alpha - reference.alpha[pix]).abs() < 1e-12);
                    let smooth = (0..6).all(|k| {
                        (0..3).all(|ch| {
                            let (a, b) = (fd1[k][3 * pix + ch], fd2[k][3 * pix + ch]);
                            (a - b).abs() <= 1e-4 * (1.0 + a.abs())
                        })
                    });
                    if !smooth {
                        jumps += 1;
                        continue;
                    }
                    for ch in 0..3 {
                        assert!((pj.colour[ch] - reference.colour[3 * pix + ch]).abs() < 1e-12);
                        for (k, fdk) in fd1.iter().enumerate() {
                            let fd = fdk[3 * pix + ch];
                            err2 += (pj.d_colour[ch][k] - fd).powi(2);
                            ref2 += fd * fd;
                        }
                    }
                }
            }
            let rel = (err2 / ref2).sqrt();
            assert!(ref2 > 1.0, "scene must have pose signal");
            assert!(jumps * 100 < cam.pixels(), "{jumps} discontinuous pixels");
            assert!(rel < 1e-4, "seed {seed}: relative error {rel}");
        }
    }
}
