//! Fast CPU backend: the reference's math (`super::cpu`) in f32 where it is hot, organised the
//! way a GPU runs it, for machines without a GPU (lavapipe is as slow as the f64 reference).
//!
//! Projection and the chain rule run sixteen Gaussians at a time in f32 lanes ([`projv`],
//! [`chain`]), with the culling, depth and screen-position decisions made per Gaussian by the
//! reference's f64 code (outliers take the reference path, [`project`]); the visible splats
//! are radix-sorted by depth once and counting-sorted into 16x16 tiles by bands of tile rows
//! ([`bin`]); each tile gathers its splats into contiguous records ([`tile`]) and blends them
//! over 16-lane pixel rows limited to each splat's alpha >= 1/255 box, with per-pixel and
//! per-tile early termination ([`forward`]); the backward pass walks the same records back to
//! front and writes each splat's sums into the slot of its tile-list entry ([`backward`]), and
//! the chain rule adds a splat's slots in tile order. So tiles and Gaussians are shared out to
//! threads dynamically and the results are the same bits whatever the thread count or
//! scheduling; all buffers are kept between calls.

pub mod adam;
pub mod backward;
pub mod bin;
pub mod chain;
pub mod forward;
pub mod loss;
pub mod pool;
pub mod project;
pub mod projv;
pub mod tile;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use nalgebra::Isometry3;

use super::cpu::project::PoseRt;
use super::{
    check_grad_images, check_image, AdamConfig, AdamState, Backend, Camera, Gaussians, Gradients,
    LossConfig, RenderConfig, RenderError, RenderOutput, RenderView, Renderer,
};
use backward::{Acc, BwdState};
use bin::Bins;
use pool::Pool;
use project::{Params, Splat, View};
use tile::{Rec, TilePix, W};

/// Gaussians per job of the per-Gaussian phases (projection, chain rule): fixed, so the pose
/// gradient's partial sums do not depend on the thread count.
const CHUNK: usize = 512;

/// Multi-threaded f32 tile rasteriser on the CPU.
pub struct FastRenderer {
    threads: usize,
    /// Worker threads for the parallel loops (kept, not started per loop).
    pool: Pool,
    gaussians: Gaussians,
    state: AdamState,
    /// Camera and pose of the latest forward (`None`: no forward to differentiate).
    view: Option<View>,
    proj: Vec<Option<Splat>>,
    bins: Bins,
    tiles: Vec<TilePix>,
    /// One record per tile-list entry (`bins.list` order), written by the forward pass.
    recs: Vec<Rec>,
    /// The backward pass's sums per tile-list entry, 10 values per gradient slot (in slot
    /// order: a splat's entries side by side). Atomics only so tiles on different threads can
    /// write their (distinct) slots; relaxed loads and stores are plain moves.
    entry: Vec<AtomicU32>,
    /// Per Gaussian: its slots summed (10 f64 bit patterns).
    sums: Vec<AtomicU64>,
    colour: Vec<f32>,
    depth: Vec<f32>,
    alpha: Vec<f32>,
    /// Per-thread state of the backward pass.
    bwd: Vec<BwdWorker>,
    pose_parts: Vec<[f64; 6]>,
    grads: Gaussians,
    pose_grad: [f64; 6],
    have_grads: bool,
    loss_buf: loss::LossBuffers,
    loss_grad: Vec<f32>,
    prof: Prof,
}

/// Wall-clock milliseconds per phase when `GS_LIVO_RENDER_PROFILE` is set (the Vulkan backend's
/// switch for its kernel timestamps), taken by [`Renderer::kernel_profile`].
struct Prof {
    on: bool,
    since: Instant,
    laps: Vec<(&'static str, f64)>,
}

impl Prof {
    fn new() -> Self {
        Self {
            on: std::env::var_os("GS_LIVO_RENDER_PROFILE").is_some(),
            since: Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Starts timing a pass.
    fn start(&mut self) {
        if self.on {
            self.since = Instant::now();
        }
    }

    /// Ends phase `name` (begun at the last `start` or `lap`).
    fn lap(&mut self, name: &'static str) {
        if self.on {
            let now = Instant::now();
            self.laps
                .push((name, (now - self.since).as_secs_f64() * 1e3));
            self.since = now;
        }
    }
}

/// What one thread of the backward pass keeps between calls.
#[derive(Default)]
struct BwdWorker {
    st: Box<BwdState>,
    /// Sums of the current tile's entries.
    out: Vec<Acc>,
}

/// Runs `work` on every item on `states.len()` threads (the caller's among them), handing the
/// items out one at a time; each item must be computed alone, so which thread takes it does not
/// change the result.
fn par_items<S, I>(pool: &Pool, states: &mut [S], items: I, work: impl Fn(&mut S, I::Item) + Sync)
where
    S: Send,
    I: Iterator + Send,
    I::Item: Send,
{
    let queue = Mutex::new(items);
    let take = |st: &mut S| loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
        let Some(item) = next else { break };
        work(st, item);
    };
    if states.len() <= 1 || pool.threads() == 1 {
        if let Some(st) = states.first_mut() {
            take(st);
        }
        return;
    }
    // One state per thread; threads beyond the states (or states beyond the threads) sit out.
    let slots: Vec<Mutex<Option<&mut S>>> =
        states.iter_mut().map(|s| Mutex::new(Some(s))).collect();
    pool.run(&|i| {
        let st = slots
            .get(i)
            .and_then(|s| s.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(st) = st {
            take(st);
        }
    });
}

/// Splits `v` (one item per tile-list entry) into the slices of the tile rows (`tx` tiles
/// each).
fn per_band<'a, T>(mut v: &'a mut [T], bins: &Bins, tx: usize) -> Vec<&'a mut [T]> {
    let n = bins.tile_start.len().saturating_sub(1);
    let mut out = Vec::with_capacity(n.div_ceil(tx.max(1)));
    for t0 in (0..n).step_by(tx.max(1)) {
        let t1 = (t0 + tx).min(n);
        let len = (bins.tile_start[t1] - bins.tile_start[t0]) as usize;
        let (head, tail) = std::mem::take(&mut v).split_at_mut(len);
        out.push(head);
        v = tail;
    }
    out
}

impl FastRenderer {
    /// A renderer using all available cores.
    pub fn new(_cfg: &RenderConfig) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(threads)
    }

    /// A renderer using `threads` threads (at least one).
    pub fn with_threads(threads: usize) -> Self {
        let pool = Pool::new(threads.max(1));
        let threads = pool.threads();
        Self {
            threads,
            pool,
            gaussians: Gaussians::zeros(0, 0).expect("degree 0"),
            state: AdamState::new(0, 0).expect("degree 0"),
            view: None,
            proj: Vec::new(),
            bins: Bins::default(),
            tiles: Vec::new(),
            recs: Vec::new(),
            entry: Vec::new(),
            sums: Vec::new(),
            colour: Vec::new(),
            depth: Vec::new(),
            alpha: Vec::new(),
            bwd: (0..threads).map(|_| BwdWorker::default()).collect(),
            pose_parts: Vec::new(),
            grads: Gaussians::zeros(0, 0).expect("degree 0"),
            pose_grad: [0.0; 6],
            have_grads: false,
            loss_buf: loss::LossBuffers::default(),
            loss_grad: Vec::new(),
            prof: Prof::new(),
        }
    }

    /// Forward pass into the internal images.
    fn render(&mut self, cam: &Camera, t_cw: &Isometry3<f64>) -> Result<(), RenderError> {
        cam.validate()?;
        self.prof.start();
        let view = View::new(cam, PoseRt::from_iso(t_cw));
        let n = self.gaussians.len();
        let params = Params::new(&self.gaussians);
        // Every slot is rewritten below.
        self.proj.resize(n, None);
        let mut idle = vec![(); self.threads];
        par_items(
            &self.pool,
            &mut idle,
            self.proj.chunks_mut(CHUNK).enumerate(),
            |_, (ci, chunk)| {
                for (bi, batch) in chunk.chunks_mut(chain::L).enumerate() {
                    projv::project_batch(&params, &view, ci * CHUNK + bi * chain::L, batch);
                }
            },
        );
        self.prof.lap("project");
        let (tx, ty) = cam.tiles();
        self.bins.build(&self.proj, (tx, ty), &self.pool);
        self.prof.lap("bin");
        let ntiles = (tx * ty) as usize;
        self.tiles.resize(ntiles, TilePix::default());
        // Every record is rewritten by its tile below.
        self.recs.resize(self.bins.list.len(), Rec::default());
        let (w, h) = (cam.width as usize, cam.height as usize);
        self.colour.resize(3 * w * h, 0.0);
        self.depth.resize(w * h, 0.0);
        self.alpha.resize(w * h, 0.0);
        // A band of tiles (one tile row) per job: gathered, blended, and written into the
        // band's rows of the images.
        let bins = &self.bins;
        let items = self
            .tiles
            .chunks_mut(tx as usize)
            .zip(per_band(&mut self.recs, bins, tx as usize))
            .zip(self.colour.chunks_mut(3 * w * W))
            .zip(self.depth.chunks_mut(w * W))
            .zip(self.alpha.chunks_mut(w * W))
            .enumerate();
        par_items(
            &self.pool,
            &mut idle,
            items,
            |_, (y, ((((band, mut recs), colour), depth), alpha))| {
                let rows = (h - y * W).min(W);
                for (x, px) in band.iter_mut().enumerate() {
                    let t = y * tx as usize + x;
                    let (mine, rest) =
                        std::mem::take(&mut recs).split_at_mut(bins.tile_range(t).len());
                    recs = rest;
                    let ox = x * W;
                    let cols = (w - ox).min(W);
                    tile::gather(bins, t, x as u32, y as u32, rows, mine);
                    forward::raster_tile(mine, px, cols, rows);
                    for ly in 0..rows {
                        for lx in 0..cols {
                            let (p, q) = (ly * w + ox + lx, ly * W + lx);
                            for ch in 0..3 {
                                colour[3 * p + ch] = px.out[ch][q];
                            }
                            depth[p] = px.out[3][q];
                            alpha[p] = 1.0 - px.t[q];
                        }
                    }
                }
            },
        );
        self.prof.lap("raster");
        self.view = Some(view);
        self.have_grads = false;
        Ok(())
    }

    /// Backward pass of the latest forward into `self.grads` / `self.pose_grad`: per-tile
    /// sums of each splat, summed per Gaussian, then the chain rule through the projection.
    fn backprop(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<(), RenderError> {
        let view = self.view.ok_or(RenderError::NoForward)?;
        self.prof.start();
        check_grad_images(view.cam.pixels(), d_colour, d_depth, d_alpha)?;
        self.backward_tiles(&view, d_colour, d_depth, d_alpha);
        self.prof.lap("tiles");
        self.sum_slots();
        self.prof.lap("sum");
        self.chain_rule(&view)?;
        self.prof.lap("chain");
        self.have_grads = true;
        Ok(())
    }

    /// Each tile writes the sums of its own list entries (every entry, zero where unused)
    /// into their slots of `self.entry`, so tiles can be shared out dynamically and the
    /// gradients are still the same bits on every run.
    fn backward_tiles(
        &mut self,
        view: &View,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) {
        let cam = view.cam;
        let extra = d_depth.is_some() || d_alpha.is_some();
        let (tx, _) = cam.tiles();
        let (w, h) = (cam.width as usize, cam.height as usize);
        let (bins, recs) = (&self.bins, &self.recs);
        let total = bins.list.len();
        if self.entry.len() < 10 * total {
            self.entry.resize_with(10 * total, AtomicU32::default);
        }
        let entry = &self.entry;
        par_items(
            &self.pool,
            &mut self.bwd,
            self.tiles.iter().enumerate(),
            |wk, (t, px)| {
                let st = &mut wk.st;
                let (ox, oy) = ((t % tx as usize) * W, (t / tx as usize) * W);
                let cols = (w - ox).min(W);
                let rows = (h - oy).min(W);
                let chans = if extra { 5 } else { 3 };
                for c in st.dl[..chans].iter_mut() {
                    c.fill(0.0);
                }
                for ly in 0..rows {
                    for lx in 0..cols {
                        let (p, q) = ((oy + ly) * w + ox + lx, ly * W + lx);
                        for ch in 0..3 {
                            st.dl[ch][q] = d_colour[3 * p + ch];
                        }
                        if extra {
                            st.dl[3][q] = d_depth.map_or(0.0, |d| d[p]);
                            st.dl[4][q] = d_alpha.map_or(0.0, |d| d[p]);
                        }
                    }
                }
                let range = bins.tile_range(t);
                wk.out.clear();
                wk.out.resize(range.len(), [0.0; 10]);
                backward::backward_tile(&recs[range.clone()], px, st, extra, &mut wk.out);
                for (&k, o) in bins.slot_of[range].iter().zip(&wk.out) {
                    for (e, v) in entry[10 * k as usize..].iter().zip(o) {
                        e.store(v.to_bits(), Relaxed);
                    }
                }
            },
        );
    }

    /// Each splat's slots (side by side, in tile order) summed into `self.sums`, stored by
    /// Gaussian index: a pass in rank order reads the slots sequentially (the chain rule, in
    /// index order, would read them scattered).
    fn sum_slots(&mut self) {
        let n = self.gaussians.len();
        if self.sums.len() < 10 * n {
            self.sums.resize_with(10 * n, AtomicU64::default);
        }
        let (bins, entry, sums) = (&self.bins, &self.entry, &self.sums);
        let nvis = bins.order.len();
        let mut idle = vec![(); self.threads];
        par_items(&self.pool, &mut idle, (0..nvis).step_by(CHUNK), |_, r0| {
            for r in r0..(r0 + CHUNK).min(nvis) {
                let mut s = [0.0f64; 10];
                let ks = bins.slots_of(r);
                for e in entry[10 * ks.start..10 * ks.end].chunks_exact(10) {
                    for (a, b) in s.iter_mut().zip(e) {
                        *a += f32::from_bits(b.load(Relaxed)) as f64;
                    }
                }
                let i = bins.order[r].index as usize;
                for (d, v) in sums[10 * i..10 * i + 10].iter().zip(s) {
                    d.store(v.to_bits(), Relaxed);
                }
            }
        });
    }

    /// The chain rule from each reached Gaussian's screen-space sums to its parameters
    /// (`self.grads`) and the pose (`self.pose_grad`), in chunks of Gaussians.
    fn chain_rule(&mut self, view: &View) -> Result<(), RenderError> {
        let g = &self.gaussians;
        if self.grads.len() != g.len() || self.grads.sh_degree() != g.sh_degree() {
            self.grads = Gaussians::zeros(g.len(), g.sh_degree())?;
        }
        let (bins, sums) = (&self.bins, &self.sums);
        let params = Params::new(g);
        let parts = project::split_grads(&mut self.grads, g.len().div_ceil(CHUNK));
        self.pose_parts.clear();
        self.pose_parts.resize(parts.len(), [0.0; 6]);
        let mut idle = vec![(); self.threads];
        par_items(
            &self.pool,
            &mut idle,
            parts.into_iter().zip(self.pose_parts.iter_mut()),
            |_, (mut out, pose)| {
                for grp in out.groups.iter_mut() {
                    grp.fill(0.0);
                }
                let count = out.groups[3].len();
                let mut batch = Vec::with_capacity(chain::L);
                for i in out.first..out.first + count {
                    let r = bins.rank[i];
                    if r == u32::MAX {
                        continue;
                    }
                    let s: [f64; 10] =
                        std::array::from_fn(|m| f64::from_bits(sums[10 * i + m].load(Relaxed)));
                    if s.iter().all(|&v| v == 0.0) {
                        // No pixel reached it (e.g. hidden): its gradients stay zero.
                        continue;
                    }
                    let splat = &bins.order[r as usize];
                    batch.push(chain::Item {
                        index: i,
                        pg: backward::screen_grad(&s, splat.conic),
                        clamped: splat.clamped,
                    });
                    if batch.len() == chain::L {
                        chain::chain_batch(&params, view, &batch, &mut out, pose);
                        batch.clear();
                    }
                }
                chain::chain_batch(&params, view, &batch, &mut out, pose);
            },
        );
        self.pose_grad = self
            .pose_parts
            .iter()
            .fold([0.0; 6], |a, b| std::array::from_fn(|k| a[k] + b[k]));
        Ok(())
    }

    fn loss_into_buffer(&mut self, target: &[f32], cfg: &LossConfig) -> Result<f64, RenderError> {
        let view = self.view.ok_or(RenderError::NoForward)?;
        check_image(target.len(), self.colour.len(), "target")?;
        self.prof.start();
        let l = loss::l1_dssim(
            &self.colour,
            target,
            view.cam.width as usize,
            view.cam.height as usize,
            cfg.ssim_weight,
            &mut self.loss_buf,
            &mut self.loss_grad,
            &self.pool,
        );
        self.prof.lap("loss");
        Ok(l)
    }
}

impl Renderer for FastRenderer {
    fn backend(&self) -> Backend {
        Backend::Fast
    }

    fn device_name(&self) -> String {
        format!("CPU fast (f32, {} threads)", self.threads)
    }

    fn kernel_profile(&mut self) -> Vec<(&'static str, f64)> {
        std::mem::take(&mut self.prof.laps)
    }

    fn len(&self) -> usize {
        self.gaussians.len()
    }

    fn set_gaussians(
        &mut self,
        g: &Gaussians,
        state: Option<&AdamState>,
    ) -> Result<(), RenderError> {
        self.state = AdamState::for_gaussians(g, state)?;
        self.gaussians = g.clone();
        self.view = None;
        self.have_grads = false;
        Ok(())
    }

    fn update_gaussians(&mut self, start: usize, g: &Gaussians) -> Result<(), RenderError> {
        self.gaussians.overwrite(start, g)?;
        Ok(())
    }

    fn gaussians(&mut self) -> Result<Gaussians, RenderError> {
        Ok(self.gaussians.clone())
    }

    fn adam_state(&mut self) -> Result<AdamState, RenderError> {
        Ok(self.state.clone())
    }

    fn forward(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
    ) -> Result<RenderOutput, RenderError> {
        self.render(cam, t_cw)?;
        Ok(RenderOutput {
            width: cam.width,
            height: cam.height,
            colour: self.colour.clone(),
            depth: self.depth.clone(),
            alpha: self.alpha.clone(),
        })
    }

    fn backward(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<Gradients, RenderError> {
        self.backprop(d_colour, d_depth, d_alpha)?;
        Ok(Gradients {
            params: self.grads.clone(),
            pose: self.pose_grad,
        })
    }

    fn loss(&mut self, target: &[f32], cfg: &LossConfig) -> Result<(f64, Vec<f32>), RenderError> {
        let l = self.loss_into_buffer(target, cfg)?;
        Ok((l, self.loss_grad.clone()))
    }

    fn adam_step(&mut self, cfg: &AdamConfig) -> Result<(), RenderError> {
        if !self.have_grads {
            return Err(RenderError::NoForward);
        }
        self.prof.start();
        adam::adam_update(
            &mut self.gaussians,
            &self.grads,
            &mut self.state,
            cfg,
            &self.pool,
        );
        self.prof.lap("adam");
        self.have_grads = false;
        self.view = None;
        Ok(())
    }

    fn gaussians_ref(&self) -> Option<&Gaussians> {
        Some(&self.gaussians)
    }

    fn adam_state_ref(&self) -> Option<&AdamState> {
        Some(&self.state)
    }

    fn set_gaussians_owned(
        &mut self,
        g: Gaussians,
        state: Option<AdamState>,
    ) -> Result<(), RenderError> {
        self.state = match state {
            Some(s) => {
                s.check_fits(&g)?;
                s
            }
            None => AdamState::new(g.len(), g.sh_degree())?,
        };
        self.gaussians = g;
        self.view = None;
        self.have_grads = false;
        Ok(())
    }

    fn forward_kept(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
    ) -> Result<Option<RenderOutput>, RenderError> {
        self.render(cam, t_cw)?;
        Ok(None)
    }

    fn forward_view(&self) -> Option<RenderView<'_>> {
        let cam = self.view?.cam;
        Some(RenderView {
            width: cam.width,
            height: cam.height,
            colour: &self.colour,
            depth: &self.depth,
            alpha: &self.alpha,
        })
    }

    fn loss_into(
        &mut self,
        target: &[f32],
        cfg: &LossConfig,
        d_colour: &mut Vec<f32>,
    ) -> Result<f64, RenderError> {
        let l = self.loss_into_buffer(target, cfg)?;
        // The buffers trade places: the loss rewrites its buffer whole on the next call.
        std::mem::swap(d_colour, &mut self.loss_grad);
        Ok(l)
    }

    fn backward_kept(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<(), RenderError> {
        self.backprop(d_colour, d_depth, d_alpha)
    }

    fn step(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
        target: &[f32],
        loss: &LossConfig,
        adam: &AdamConfig,
    ) -> Result<(), RenderError> {
        self.render(cam, t_cw)?;
        self.loss_into_buffer(target, loss)?;
        let d = std::mem::take(&mut self.loss_grad);
        let r = self.backprop(&d, None, None);
        self.loss_grad = d;
        r?;
        self.adam_step(adam)
    }
}
