//! What a view shows where the map is transparent: the sky, and surfaces beyond the LiDAR's or
//! the window's range. Both are far enough that only the viewing direction matters, so the
//! background is a colour per world direction: a latitude-longitude grid (azimuth about world z,
//! elevation from the xy plane), sampled bilinearly.
//!
//! It is fitted, not optimised by gradient: a render composites `colour + (1 - alpha) bg`, so for
//! fixed Gaussians the least-squares background of a cell is
//! `sum (1 - a)(target - colour) / sum (1 - a)^2` over the pixels that see it. Each cell keeps
//! decaying sums of both, so it follows the latest evidence and ignores pixels the map covers
//! (which neither teach nor make it forget).
//! Cells with little evidence shrink towards the mean over all cells.

use std::path::Path;

use nalgebra::{Isometry3, Vector3};

use super::GaussianError;
use crate::render::Camera;

/// Most pixels per side of the blocks the background is looked up and fitted at.
const MAX_BLOCK: usize = 16;

/// Evidence (in fully transparent pixels) with which the global mean enters every cell: cells
/// never seen take the mean, cells seen by a few pixels are barely moved.
const PRIOR_WEIGHT: f64 = 0.25;

/// Camera-frame ray (not normalised) through pixel coordinates (u, v).
fn ray(cam: &Camera, u: f64, v: f64) -> Vector3<f64> {
    Vector3::new((u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0)
}

/// Where one view (camera and rotation) looks in a background's grid: the bilinear taps of its
/// lookup grid ([`Background::per_pixel`]) and of its fit blocks' centres
/// ([`Background::fit`]). They depend on the view only, not on the fitted colours, so a
/// frame that looks up and fits the same view several times computes their trigonometry once.
#[derive(Debug, Clone)]
pub struct BackgroundLookup {
    cam: Camera,
    rotation: nalgebra::UnitQuaternion<f64>,
    bins: (usize, usize),
    block: usize,
    /// Lookup grid pixel columns and rows.
    xs: Vec<usize>,
    ys: Vec<usize>,
    /// Taps per lookup grid point (row-major) and per fit block (row-major).
    grid: Vec<[(usize, f64); 4]>,
    blocks: Vec<[(usize, f64); 4]>,
}

impl BackgroundLookup {
    /// Whether this was made for view `cam`, `t_cw` of a grid like `bg`'s.
    pub fn fits(&self, bg: &Background, cam: &Camera, t_cw: &Isometry3<f64>) -> bool {
        self.bins == bg.bins()
            && self.cam == *cam
            && self.rotation.coords == t_cw.rotation.coords
            && self.block == bg.block(cam)
    }
}

/// A [`Background`]'s grid as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundGrid {
    pub az_bins: usize,
    pub el_bins: usize,
    pub num: Vec<[f64; 3]>,
    pub den: Vec<f64>,
    pub baked: Vec<[f32; 3]>,
}

/// Direction-dependent background colour (exposure-normalised RGB).
#[derive(Debug, Clone, PartialEq)]
pub struct Background {
    az_bins: usize,
    el_bins: usize,
    /// Per cell: decayed sums of `w (1 - a)(t - c)` per channel and of `w (1 - a)^2`.
    num: Vec<[f64; 3]>,
    den: Vec<f64>,
    /// Baked colours (what `colour_at` samples), refreshed after each fit.
    baked: Vec<[f32; 3]>,
}

impl Background {
    /// An empty background of `az_bins` azimuth cells and `az_bins / 2` elevation cells (black
    /// until fitted).
    pub fn new(az_bins: u32) -> Self {
        let az_bins = (az_bins as usize).max(4);
        let el_bins = (az_bins / 2).max(2);
        Self {
            az_bins,
            el_bins,
            num: vec![[0.0; 3]; az_bins * el_bins],
            den: vec![0.0; az_bins * el_bins],
            baked: vec![[0.0; 3]; az_bins * el_bins],
        }
    }

    /// The grid as plain data (for map files).
    pub fn to_grid(&self) -> BackgroundGrid {
        BackgroundGrid {
            az_bins: self.az_bins,
            el_bins: self.el_bins,
            num: self.num.clone(),
            den: self.den.clone(),
            baked: self.baked.clone(),
        }
    }

    /// A background from [`Self::to_grid`]; an error when the arrays do not match the grid.
    pub fn from_grid(g: BackgroundGrid) -> Result<Self, GaussianError> {
        let cells = g.az_bins.saturating_mul(g.el_bins);
        if g.az_bins < 4 || g.el_bins < 2 || [g.num.len(), g.den.len(), g.baked.len()] != [cells; 3]
        {
            return Err(GaussianError::Input(format!(
                "background grid {}x{} with {} / {} / {} cells",
                g.az_bins,
                g.el_bins,
                g.num.len(),
                g.den.len(),
                g.baked.len()
            )));
        }
        Ok(Self {
            az_bins: g.az_bins,
            el_bins: g.el_bins,
            num: g.num,
            den: g.den,
            baked: g.baked,
        })
    }

    /// Grid size (azimuth, elevation).
    pub fn bins(&self) -> (usize, usize) {
        (self.az_bins, self.el_bins)
    }

    /// Pixels per side of the blocks a camera's view is looked up and fitted at: about half a
    /// cell, so the grid stays finer than the cells it samples.
    pub fn block(&self, cam: &Camera) -> usize {
        let cell = std::f64::consts::TAU / self.az_bins as f64;
        let pixel = 1.0 / cam.fx.max(cam.fy).max(1e-9);
        ((0.5 * cell / pixel).floor() as usize).clamp(1, MAX_BLOCK)
    }

    /// Whether any pixel has been fitted (or the grid was loaded).
    pub fn is_fitted(&self) -> bool {
        self.den.iter().any(|&d| d > 0.0)
    }

    /// Continuous cell coordinates of a world direction: x in [0, az_bins) wraps, y in
    /// [0, el_bins) (cell centres at +0.5).
    fn grid_coords(&self, d: &Vector3<f64>) -> (f64, f64) {
        let n = d.norm();
        if !(n > 0.0 && n.is_finite()) {
            return (0.0, 0.0);
        }
        let az = d.y.atan2(d.x); // -pi..pi
        let el = (d.z / n).clamp(-1.0, 1.0).asin(); // -pi/2..pi/2
        let x = (az / std::f64::consts::TAU + 0.5) * self.az_bins as f64;
        let y = (0.5 - el / std::f64::consts::PI) * self.el_bins as f64;
        (x, y)
    }

    /// The four cells around grid coordinates with their bilinear weights.
    fn taps(&self, x: f64, y: f64) -> [(usize, f64); 4] {
        let (fx, fy) = (x - 0.5, y - 0.5);
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let wrap = |i: i64| i.rem_euclid(self.az_bins as i64) as usize;
        let clampy = |j: i64| j.clamp(0, self.el_bins as i64 - 1) as usize;
        let (xa, xb) = (wrap(x0 as i64), wrap(x0 as i64 + 1));
        let (ya, yb) = (clampy(y0 as i64), clampy(y0 as i64 + 1));
        let c = |i: usize, j: usize| j * self.az_bins + i;
        [
            (c(xa, ya), (1.0 - tx) * (1.0 - ty)),
            (c(xb, ya), tx * (1.0 - ty)),
            (c(xa, yb), (1.0 - tx) * ty),
            (c(xb, yb), tx * ty),
        ]
    }

    /// Mean colour of the cells fitted so far (black when none): one colour for consumers that
    /// model the background as uniform, like the visual update, which uses well-covered pixels.
    pub fn mean_colour(&self) -> [f32; 3] {
        let (mut sum, mut n) = ([0.0f64; 3], 0usize);
        for (c, _) in self.baked.iter().zip(&self.den).filter(|(_, &d)| d > 0.0) {
            for (s, v) in sum.iter_mut().zip(c) {
                *s += f64::from(*v);
            }
            n += 1;
        }
        sum.map(|s| if n > 0 { (s / n as f64) as f32 } else { 0.0 })
    }

    /// Background colour in world direction `d`.
    pub fn colour_at(&self, d: &Vector3<f64>) -> [f32; 3] {
        let (x, y) = self.grid_coords(d);
        let mut out = [0.0f32; 3];
        for (cell, w) in self.taps(x, y) {
            for (o, b) in out.iter_mut().zip(self.baked[cell]) {
                *o += w as f32 * b;
            }
        }
        out
    }

    /// Where a view's lookup grid and fit blocks fall on the cells (see [`BackgroundLookup`]).
    pub fn lookup(&self, cam: &Camera, t_cw: &Isometry3<f64>) -> BackgroundLookup {
        let r_wc = t_cw.rotation.inverse();
        let (w, h) = (cam.width as usize, cam.height as usize);
        let block = self.block(cam);
        // Grid points every `block` pixels, the last on the last pixel (no extrapolation).
        let points = |n: usize| -> Vec<usize> {
            let mut p: Vec<usize> = (0..n).step_by(block).collect();
            if n > 0 && p.last() != Some(&(n - 1)) {
                p.push(n - 1);
            }
            p
        };
        let (xs, ys) = (points(w), points(h));
        let taps_of = |u: f64, v: f64| {
            let (x, y) = self.grid_coords(&(r_wc * ray(cam, u, v)));
            self.taps(x, y)
        };
        let mut grid = Vec::with_capacity(xs.len() * ys.len());
        for &v in &ys {
            for &u in &xs {
                grid.push(taps_of(u as f64, v as f64));
            }
        }
        let (bw, bh) = (w.div_ceil(block), h.div_ceil(block));
        let mut blocks = Vec::with_capacity(bw * bh);
        for by in 0..bh {
            for bx in 0..bw {
                // Centre of the pixels the block holds (edge blocks may be cut).
                let uc = (bx * block + (bx * block + block).min(w) - 1) as f64 / 2.0;
                let vc = (by * block + (by * block + block).min(h) - 1) as f64 / 2.0;
                blocks.push(taps_of(uc, vc));
            }
        }
        BackgroundLookup {
            cam: *cam,
            rotation: t_cw.rotation,
            bins: self.bins(),
            block,
            xs,
            ys,
            grid,
            blocks,
        }
    }

    /// `lookup` when it was made for this view and grid, else a new one for it.
    fn lookup_for<'a>(
        &self,
        lookup: Option<&'a BackgroundLookup>,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
    ) -> std::borrow::Cow<'a, BackgroundLookup> {
        match lookup {
            Some(l) if l.fits(self, cam, t_cw) => std::borrow::Cow::Borrowed(l),
            _ => std::borrow::Cow::Owned(self.lookup(cam, t_cw)),
        }
    }

    /// Bilinear sample of the baked colours at precomputed taps (what `colour_at` does after
    /// finding them).
    fn sample(&self, taps: &[(usize, f64); 4]) -> [f32; 3] {
        let mut out = [0.0f32; 3];
        for &(cell, w) in taps {
            for (o, b) in out.iter_mut().zip(self.baked[cell]) {
                *o += w as f32 * b;
            }
        }
        out
    }

    /// Per-pixel background (interleaved RGB) of a pinhole view with pose `t_cw`.
    ///
    /// Looked up on a grid of every [`Background::block`]th pixel and interpolated in between:
    /// the background is smooth on that scale, and the lookups' trigonometry would otherwise
    /// cost as much as a small render.
    pub fn per_pixel(&self, cam: &Camera, t_cw: &Isometry3<f64>) -> Vec<f32> {
        let mut out = Vec::new();
        self.per_pixel_into(cam, t_cw, None, &mut out);
        out
    }

    /// [`Background::per_pixel`] into `out` (resized), with the view's `lookup` when it has
    /// one (its trigonometry is then not repeated).
    pub fn per_pixel_into(
        &self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
        lookup: Option<&BackgroundLookup>,
        out: &mut Vec<f32>,
    ) {
        let (w, h) = (cam.width as usize, cam.height as usize);
        out.clear();
        out.resize(w * h * 3, 0.0);
        if w == 0 || h == 0 {
            return;
        }
        let lk = self.lookup_for(lookup, cam, t_cw);
        let (block, xs, ys) = (lk.block, &lk.xs, &lk.ys);
        let gw = xs.len();
        let grid: Vec<[f32; 3]> = lk.grid.iter().map(|t| self.sample(t)).collect();
        // Interpolation index and weight of a pixel along one axis.
        let locate = |p: &[usize], i: usize| -> (usize, usize, f32) {
            let k = (i / block).min(p.len() - 1);
            let k1 = (k + 1).min(p.len() - 1);
            let span = p[k1] - p[k];
            let f = if span == 0 {
                0.0
            } else {
                (i - p[k]) as f32 / span as f32
            };
            (k, k1, f)
        };
        let cols: Vec<(usize, usize, f32)> = (0..w).map(|u| locate(xs, u)).collect();
        let mut row = vec![[0f32; 3]; gw];
        for (v, line) in out.chunks_exact_mut(w * 3).enumerate() {
            // Interpolate the grid rows first, then along the row.
            let (y0, y1, fy) = locate(ys, v);
            let (top, bot) = (&grid[y0 * gw..(y0 + 1) * gw], &grid[y1 * gw..(y1 + 1) * gw]);
            for ((r, t), b) in row.iter_mut().zip(top).zip(bot) {
                for k in 0..3 {
                    r[k] = t[k] + (b[k] - t[k]) * fy;
                }
            }
            for (o, &(x0, x1, fx)) in line.chunks_exact_mut(3).zip(&cols) {
                let (a, b) = (row[x0], row[x1]);
                for k in 0..3 {
                    o[k] = a[k] + (b[k] - a[k]) * fx;
                }
            }
        }
    }

    /// Fits the cells a view sees to `target` given the map's `colour` and `alpha` there (the
    /// layouts of the renderer's output); old evidence is multiplied by `decay` first.
    ///
    /// Pixels are pooled per block (as in [`Background::per_pixel`]) and each pool is splatted
    /// at the block's centre direction: the cells are at least twice as large.
    pub fn fit(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
        target: &[f32],
        colour: &[f32],
        alpha: &[f32],
        decay: f64,
    ) {
        self.fit_with(cam, t_cw, None, target, colour, alpha, decay);
    }

    /// [`Background::fit`] with the view's `lookup` when it has one.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_with(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
        lookup: Option<&BackgroundLookup>,
        target: &[f32],
        colour: &[f32],
        alpha: &[f32],
        decay: f64,
    ) {
        let (w, h) = (cam.width as usize, cam.height as usize);
        if w == 0
            || h == 0
            || target.len() != w * h * 3
            || colour.len() != w * h * 3
            || alpha.len() != w * h
        {
            return;
        }
        let lk = self.lookup_for(lookup, cam, t_cw);
        let block = lk.block;
        let (bw, bh) = (w.div_ceil(block), h.div_ceil(block));
        // Per block: sum (1 - a)(t - c) per channel, sum (1 - a)^2, pixel count (in pixel
        // order within a block: rows top-down, each left to right).
        let mut pool = vec![([0.0f64; 3], 0.0f64, 0.0f64); bw * bh];
        for v in 0..h {
            let blocks = &mut pool[(v / block) * bw..(v / block + 1) * bw];
            let (a_row, t_row, c_row) = (
                &alpha[v * w..(v + 1) * w],
                &target[v * w * 3..(v + 1) * w * 3],
                &colour[v * w * 3..(v + 1) * w * 3],
            );
            for (p, ((a_b, t_b), c_b)) in blocks.iter_mut().zip(
                a_row
                    .chunks(block)
                    .zip(t_row.chunks(3 * block))
                    .zip(c_row.chunks(3 * block)),
            ) {
                // A count of whole pixels: exact, as the sum of ones it replaces.
                p.2 += a_b.len() as f64;
                for ((a, t3), c3) in a_b.iter().zip(t_b.chunks_exact(3)).zip(c_b.chunks_exact(3)) {
                    let t = 1.0 - f64::from(*a).clamp(0.0, 1.0);
                    if t <= 1e-3 {
                        continue;
                    }
                    for k in 0..3 {
                        p.0[k] += t * (f64::from(t3[k]) - f64::from(c3[k]));
                    }
                    p.1 += t * t;
                }
            }
        }
        let mut num = vec![[0.0f64; 3]; self.den.len()];
        let mut den = vec![0.0f64; self.den.len()];
        let mut cover = vec![0.0f64; self.den.len()];
        for (&(sum, sq, n), taps) in pool.iter().zip(&lk.blocks) {
            for &(cell, wt) in taps {
                cover[cell] += wt * n;
                if sq > 0.0 {
                    for (nc, s) in num[cell].iter_mut().zip(sum) {
                        *nc += wt * s;
                    }
                    den[cell] += wt * sq;
                }
            }
        }
        // A cell forgets in proportion to the new evidence: fully by `decay` when this view
        // sees it through a transparent map, not at all where the map covers it (so the sky
        // behind a facade, or the ground under the rig, keeps what earlier views taught).
        for k in 0..self.den.len() {
            if cover[k] <= 0.0 {
                continue;
            }
            let f = decay.powf((den[k] / cover[k]).min(1.0));
            for (old, new) in self.num[k].iter_mut().zip(num[k]) {
                *old = *old * f + new;
            }
            self.den[k] = self.den[k] * f + den[k];
        }
        self.bake();
    }

    /// Multiplies every colour by `s` (the map's brightness unit changed, see
    /// `GaussianMapper::rescale_brightness`).
    pub fn scale_colours(&mut self, s: f32) {
        for n in &mut self.num {
            n.iter_mut().for_each(|v| *v *= f64::from(s));
        }
        self.bake();
    }

    /// Recomputes the sampled colours: each cell's estimate shrunk towards the global mean.
    fn bake(&mut self) {
        let total: f64 = self.den.iter().sum();
        let mut mean = [0.0f64; 3];
        if total > 0.0 {
            for n in &self.num {
                for (m, v) in mean.iter_mut().zip(n) {
                    *m += v / total;
                }
            }
        }
        for ((baked, num), den) in self.baked.iter_mut().zip(&self.num).zip(&self.den) {
            for ((b, n), m) in baked.iter_mut().zip(num).zip(mean) {
                *b = ((n + PRIOR_WEIGHT * m) / (den + PRIOR_WEIGHT)).clamp(0.0, 1.5) as f32;
            }
        }
    }

    /// Saves the baked grid as an equirectangular PNG (columns = azimuth from -180 deg, rows =
    /// elevation from +90 deg), the usual environment-map layout.
    pub fn save_png(&self, path: &Path) -> Result<(), GaussianError> {
        let mut img = image::RgbImage::new(self.az_bins as u32, self.el_bins as u32);
        for (k, c) in self.baked.iter().enumerate() {
            let px = Self::rgb8(c);
            img.put_pixel(
                (k % self.az_bins) as u32,
                (k / self.az_bins) as u32,
                image::Rgb(px),
            );
        }
        img.save(path)
            .map_err(|e| GaussianError::Input(format!("writing {}: {e}", path.display())))
    }

    /// Loads an equirectangular PNG written by [`Background::save_png`] (any size with width =
    /// 2 x height); every cell counts as fitted.
    pub fn load_png(path: &Path) -> Result<Self, GaussianError> {
        let img = image::open(path)
            .map_err(|e| GaussianError::Input(format!("reading {}: {e}", path.display())))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        if w < 4 || h < 2 || w != 2 * h {
            return Err(GaussianError::Input(format!(
                "{}: background must be an equirectangular image (width = 2 x height), got {w}x{h}",
                path.display()
            )));
        }
        Ok(Self::from_rgb8(w, img.pixels().map(|p| p.0)))
    }

    /// What [`Self::save_png`] then [`Self::load_png`] give: the grid at 8 bits a channel. The
    /// background shell of a saved map is made from it, so re-saving a loaded map writes the
    /// same shell.
    pub fn quantised(&self) -> Self {
        Self::from_rgb8(self.az_bins as u32, self.baked.iter().map(Self::rgb8))
    }

    fn rgb8(c: &[f32; 3]) -> [u8; 3] {
        c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
    }

    /// A grid of `width` azimuth cells from 8-bit colours in PNG order; every cell fitted.
    fn from_rgb8(width: u32, pixels: impl Iterator<Item = [u8; 3]>) -> Self {
        let mut bg = Self::new(width);
        for (k, p) in pixels.enumerate().take(bg.num.len()) {
            let c = p.map(|v| f64::from(v) / 255.0);
            bg.num[k] = c.map(|v| v * 1e6);
            bg.den[k] = 1e6;
        }
        bg.bake();
        bg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix3, Translation3, UnitQuaternion};

    fn cam() -> Camera {
        Camera {
            near: 0.05,
            far: 100.0,
            ..Camera::new(64, 48, 40.0, 40.0)
        }
    }

    /// Camera at the origin looking along world +x (optical z), level.
    fn level(yaw: f64) -> Isometry3<f64> {
        let r = Matrix3::new(0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, -1.0, 0.0);
        let world_t_cam = Isometry3::from_parts(
            Translation3::identity(),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw)
                * UnitQuaternion::from_matrix(&r),
        );
        world_t_cam.inverse()
    }

    /// Sky above the horizon, "ground" below: the truth a fitted background must reproduce.
    fn truth(cam: &Camera, t_cw: &Isometry3<f64>) -> Vec<f32> {
        let r_wc = t_cw.rotation.inverse();
        let mut out = Vec::new();
        for v in 0..cam.height {
            for u in 0..cam.width {
                let d = r_wc
                    * Vector3::new(
                        (f64::from(u) - cam.cx) / cam.fx,
                        (f64::from(v) - cam.cy) / cam.fy,
                        1.0,
                    );
                out.extend_from_slice(if d.z > 0.0 {
                    &[0.5, 0.7, 0.9]
                } else {
                    &[0.4, 0.35, 0.2]
                });
            }
        }
        out
    }

    #[test]
    fn fits_sky_and_ground_from_transparent_pixels_and_renders_new_views() {
        let c = cam();
        let mut bg = Background::new(64);
        let n = c.pixels();
        for k in 0..8 {
            let pose = level(k as f64 * 0.7);
            bg.fit(
                &c,
                &pose,
                &truth(&c, &pose),
                &vec![0.0; n * 3],
                &vec![0.0; n],
                0.5,
            );
        }
        // A view between the fitted ones matches away from the horizon row.
        let pose = level(0.35);
        let got = bg.per_pixel(&c, &pose);
        let want = truth(&c, &pose);
        let mut worst = 0.0f32;
        // The horizon is blurred over about a cell (bilinear) and a block on either side.
        let cell_px = std::f64::consts::TAU / 64.0 * c.fy;
        for v in 0..c.height as usize {
            if (v as f64 - c.cy).abs() < 1.5 * cell_px + bg.block(&c) as f64 {
                continue;
            }
            for u in 0..c.width as usize {
                for ch in 0..3 {
                    let i = (v * c.width as usize + u) * 3 + ch;
                    worst = worst.max((got[i] - want[i]).abs());
                }
            }
        }
        assert!(worst < 0.03, "worst error {worst}");
    }

    #[test]
    fn covered_pixels_teach_nothing_and_partial_cover_is_unmixed() {
        let c = cam();
        let n = c.pixels();
        let pose = level(0.0);
        let target = truth(&c, &pose);
        // Fully opaque map with some colour: no evidence at all.
        let mut bg = Background::new(32);
        bg.fit(&c, &pose, &target, &vec![0.3; n * 3], &vec![1.0; n], 0.5);
        assert!(!bg.is_fitted());
        // Half-transparent map whose colour is 0.5 * 0.1: target = 0.05 + 0.5 bg, so the
        // least-squares background is exactly (target - 0.05) / 0.5 = the truth.
        let colour = vec![0.05; n * 3];
        let composite: Vec<f32> = target.iter().map(|t| 0.05 + 0.5 * t).collect();
        bg.fit(&c, &pose, &composite, &colour, &vec![0.5; n], 0.5);
        let got = bg.per_pixel(&c, &pose);
        let top = 2 * c.width as usize * 3; // row 2, well above the horizon
        assert!((got[top + 2] - 0.9).abs() < 0.02, "{}", got[top + 2]);
        // Later views where the map covers everything (another target) change nothing.
        for _ in 0..20 {
            bg.fit(&c, &pose, &vec![0.0; n * 3], &colour, &vec![1.0; n], 0.5);
        }
        assert_eq!(bg.per_pixel(&c, &pose), got);
    }

    #[test]
    fn a_views_lookup_gives_the_same_bits_and_a_stale_one_is_not_used() {
        let c = cam();
        let n = c.pixels();
        let (pose, other) = (level(0.3), level(1.9));
        let mut plain = Background::new(32);
        let mut cached = plain.clone();
        let lk = cached.lookup(&c, &pose);
        assert!(lk.fits(&cached, &c, &pose) && !lk.fits(&cached, &c, &other));
        let alpha: Vec<f32> = (0..n).map(|i| (i % 5) as f32 / 5.0).collect();
        let colour = vec![0.1; n * 3];
        for p in [pose, other, pose] {
            let target = truth(&c, &p);
            plain.fit(&c, &p, &target, &colour, &alpha, 0.7);
            // Always handed the first view's lookup: used only where it fits.
            cached.fit_with(&c, &p, Some(&lk), &target, &colour, &alpha, 0.7);
            assert_eq!(cached, plain);
            for q in [pose, other] {
                let mut got = vec![7.0; 5];
                cached.per_pixel_into(&c, &q, Some(&lk), &mut got);
                assert_eq!(got, plain.per_pixel(&c, &q));
            }
        }
        assert!(plain.is_fitted());
    }

    #[test]
    fn png_round_trip_keeps_colours() {
        let c = cam();
        let n = c.pixels();
        let mut bg = Background::new(16);
        let pose = level(1.0);
        bg.fit(
            &c,
            &pose,
            &truth(&c, &pose),
            &vec![0.0; n * 3],
            &vec![0.0; n],
            0.5,
        );
        let dir = std::env::temp_dir().join(format!("gs_bg_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bg.png");
        bg.save_png(&p).unwrap();
        let back = Background::load_png(&p).unwrap();
        assert_eq!(back.bins(), bg.bins());
        for (a, b) in back.baked.iter().zip(&bg.baked) {
            for k in 0..3 {
                assert!((a[k] - b[k].min(1.0)).abs() <= 0.5 / 255.0 + 1e-6);
            }
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
