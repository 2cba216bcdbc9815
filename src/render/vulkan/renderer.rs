//! The Vulkan renderer: persistent growable buffers and command recording.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use nalgebra::Isometry3;
use vulkano::buffer::view::{BufferView, BufferViewCreateInfo};
use vulkano::buffer::{Buffer, BufferContents, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::{
    AutoCommandBufferBuilder, BufferCopy, CommandBufferUsage, CopyBufferInfoTyped,
    PrimaryAutoCommandBuffer, PrimaryCommandBufferAbstract,
};
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::format::Format;
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};
use vulkano::pipeline::{ComputePipeline, Pipeline, PipelineBindPoint};
use vulkano::query::{QueryPool, QueryPoolCreateInfo, QueryResultFlags, QueryType};
use vulkano::sync::GpuFuture;
use vulkano::sync::PipelineStage;

use super::context::Context;
use crate::render::{
    check_image, group_widths, sh_coeffs, AdamConfig, AdamState, Backend, Camera, Gaussians,
    Gradients, LossConfig, RenderConfig, RenderError, RenderOutput, Renderer, GROUPS, TILE,
};

type Builder = AutoCommandBufferBuilder<PrimaryAutoCommandBuffer>;

macro_rules! spv {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".spv"))
    };
}

fn err<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> RenderError {
    move |e| RenderError::Vulkan(format!("{what}: {e:?}"))
}

/// A compute pipeline and its name (for the kernel profile).
struct Kernel {
    p: Arc<ComputePipeline>,
    name: &'static str,
}

struct Pipelines {
    project: Kernel,
    scan: Kernel,
    emit: Kernel,
    hist: Kernel,
    scatter: Kernel,
    ranges: Kernel,
    fwd: Kernel,
    bwd: Kernel,
    pbwd: Kernel,
    ssim_h: Kernel,
    loss_fwd: Kernel,
    ssim_bh: Kernel,
    loss_bwd: Kernel,
    adam: Kernel,
}

/// GPU timestamps after every dispatch (enabled by `GS_LIVO_RENDER_PROFILE`); per-kernel
/// milliseconds accumulate until [`Renderer::kernel_profile`] takes them.
struct Profiler {
    pool: Arc<QueryPool>,
    period_ns: f64,
    labels: RefCell<Vec<&'static str>>,
    acc: RefCell<Vec<(&'static str, f64)>>,
}

const PROFILE_QUERIES: u32 = 128;

/// A command buffer kept for resubmission, with the kernel labels of its timestamps.
struct Recorded {
    cb: Arc<PrimaryAutoCommandBuffer>,
    labels: Vec<&'static str>,
}

/// Most recordings kept at once (a mapper cycles through a few cameras and call kinds).
const MAX_RECORDED: usize = 32;

/// What a recording is for; with the words of [`CbKey`] it names everything recorded into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum CbKind {
    Forward,
    Step,
    Backward,
    Loss,
    Adam,
}

/// Identifies a recording: its kind and every value recorded into it (push constants, sizes,
/// staging lengths). Buffers are not in it: replacing one forgets every recording.
type CbKey = (CbKind, Vec<u32>);

/// Buffers sized by the Gaussian capacity.
struct GaussBufs {
    cap: usize,
    params: Subbuffer<[f32]>,
    grads: Subbuffer<[f32]>,
    /// `params`, `grads` and the Adam moments as float texels (texel fetches vectorise on CPU
    /// drivers, storage-buffer loads do not).
    params_t: Arc<BufferView>,
    grads_t: Arc<BufferView>,
    m_t: Arc<BufferView>,
    v_t: Arc<BufferView>,
    m: Subbuffer<[f32]>,
    v: Subbuffer<[f32]>,
    proj: Subbuffer<[f32]>,
    /// `proj` as vec4 texels (PROJ_STRIDE / 4 per Gaussian).
    proj4: Arc<BufferView>,
    touched: Subbuffer<[u32]>,
    offsets: Subbuffer<[u32]>,
    g2d: Subbuffer<[f32]>,
}

/// Key buffers (two ping-pong sets of key/value) and the radix histograms.
struct KeyBufs {
    cap: usize,
    /// Two sets of (key, value) arrays for the radix sorts' ping-pong.
    keys: [[Subbuffer<[u32]>; 2]; 2],
    /// The key and value arrays (`keys[s][0]`, `keys[s][1]`) as u32 texels.
    keyv: [Arc<BufferView>; 2],
    vals: [Arc<BufferView>; 2],
    hist: Subbuffer<[u32]>,
    hist_scan: Subbuffer<[u32]>,
}

/// Buffers sized by the image.
struct ImageBufs {
    pixels: usize,
    tiles: usize,
    colour: Subbuffer<[f32]>,
    depth: Subbuffer<[f32]>,
    alpha: Subbuffer<[f32]>,
    final_t: Subbuffer<[f32]>,
    n_contrib: Subbuffer<[u32]>,
    dl_c: Subbuffer<[f32]>,
    dl_d: Subbuffer<[f32]>,
    dl_a: Subbuffer<[f32]>,
    target: Subbuffer<[f32]>,
    /// SSIM partials (dmu, dxx, dxy, 0) per pixel and channel.
    dpart: Subbuffer<[f32]>,
    lmap: Subbuffer<[f32]>,
    /// Row sums of the separable SSIM window (16 floats per pixel forward, 12 for the adjoint).
    hsum: Subbuffer<[f32]>,
    ranges: Subbuffer<[u32]>,
    /// Texel views for the loss kernels: colour and target as floats, `hsum` and `dpart` as vec4.
    colour_t: Arc<BufferView>,
    target_t: Arc<BufferView>,
    hsum_t: Arc<BufferView>,
    dpart_t: Arc<BufferView>,
}

/// Host-visible buffers shared by every upload (`up`) and read-back (`down`): grown when short,
/// never freed, so a frame allocates nothing. Submissions are serial and waited for, so one
/// command buffer at a time owns them; each command buffer stages its uploads in one call.
struct HostBufs {
    up: Subbuffer<[f32]>,
    down: Subbuffer<[f32]>,
}

/// Rasteriser on a Vulkan device; Gaussians, Adam moments and all intermediates stay on the GPU.
pub struct VulkanRenderer {
    ctx: Context,
    pl: Pipelines,
    n: usize,
    sh_degree: u32,
    adam_step: u32,
    keys_per_gaussian: f64,
    g: GaussBufs,
    k: KeyBufs,
    img: Option<ImageBufs>,
    counters: Subbuffer<[u32]>,
    pose_grad: Subbuffer<[f32]>,
    /// Camera, push constants and pose rows of the latest forward (for backward / loss).
    last: Option<(Camera, [u32; 32], [f32; 12])>,
    have_grads: bool,
    prof: Option<Profiler>,
    host: RefCell<HostBufs>,
    /// Per-submission values the kernels read (`FRAME_BUFFER` in common.glsl): pose rows, Adam
    /// bias corrections. Host-visible, written before each submission.
    frame: Subbuffer<[f32]>,
    /// Command buffers recorded once and submitted again while their key matches: recording
    /// and building one costs about a millisecond of CPU per optimisation step, which on a GPU
    /// is as long as the step itself.
    recorded: RefCell<HashMap<CbKey, Recorded>>,
}

const BLOCK_KEYS: usize = 2048;

impl VulkanRenderer {
    pub fn new(cfg: &RenderConfig) -> Result<Self, RenderError> {
        let ctx = Context::new(cfg)?;
        let fa = ctx.float_atomics;
        // Workgroup size (id 0) and the pixel block per invocation (ids 1-3) of the raster kernels.
        let spec = |[r, c, cull]: [u32; 3]| [(0, TILE * TILE / (r * c)), (1, r), (2, c), (3, cull)];
        let fwd_spec = spec(ctx.raster_fwd);
        let bwd_spec = spec(ctx.raster_bwd);
        let pl = Pipelines {
            project: kernel(&ctx, "project", spv!("project"))?,
            scan: kernel(&ctx, "scan", spv!("scan"))?,
            emit: kernel(&ctx, "emit", spv!("emit"))?,
            hist: kernel(&ctx, "radix_hist", spv!("radix_hist"))?,
            scatter: kernel(&ctx, "radix_scatter", spv!("radix_scatter"))?,
            ranges: kernel(&ctx, "ranges", spv!("ranges"))?,
            fwd: kernel_spec(&ctx, "raster_fwd", spv!("raster_fwd"), &fwd_spec)?,
            bwd: if fa {
                kernel_spec(&ctx, "raster_bwd", spv!("raster_bwd"), &bwd_spec)?
            } else {
                kernel_spec(&ctx, "raster_bwd_cas", spv!("raster_bwd_cas"), &bwd_spec)?
            },
            pbwd: if fa {
                kernel(&ctx, "project_bwd", spv!("project_bwd"))?
            } else {
                kernel(&ctx, "project_bwd_cas", spv!("project_bwd_cas"))?
            },
            ssim_h: kernel(&ctx, "ssim_h", spv!("ssim_h"))?,
            loss_fwd: kernel(&ctx, "loss_fwd", spv!("loss_fwd"))?,
            ssim_bh: kernel(&ctx, "ssim_bh", spv!("ssim_bh"))?,
            loss_bwd: kernel(&ctx, "loss_bwd", spv!("loss_bwd"))?,
            adam: kernel(&ctx, "adam", spv!("adam"))?,
        };
        let cap = cfg.initial_capacity.max(16);
        let g = Self::gauss_bufs(&ctx, cap, 0)?;
        let kcap = ((cap as f64 * cfg.keys_per_gaussian.max(1.0)) as usize).max(BLOCK_KEYS);
        let k = Self::key_bufs(&ctx, kcap)?;
        let counters = Buffer::from_iter(
            ctx.mem.clone(),
            BufferCreateInfo {
                usage: BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_DST,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE
                    | MemoryTypeFilter::HOST_RANDOM_ACCESS,
                ..Default::default()
            },
            [0u32; 16],
        )
        .map_err(err("counters"))?;
        let pose_grad = dev::<f32>(&ctx, 8)?;
        let frame = Buffer::from_iter(
            ctx.mem.clone(),
            BufferCreateInfo {
                usage: BufferUsage::STORAGE_BUFFER,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE
                    | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
                ..Default::default()
            },
            [0f32; 16],
        )
        .map_err(err("frame buffer"))?;
        let host = RefCell::new(HostBufs {
            up: host_buf(&ctx, false, 1 << 16)?,
            down: host_buf(&ctx, true, 1 << 16)?,
        });
        let prof = if std::env::var_os("GS_LIVO_RENDER_PROFILE").is_some() {
            let pool = QueryPool::new(
                ctx.device.clone(),
                QueryPoolCreateInfo {
                    query_count: PROFILE_QUERIES,
                    ..QueryPoolCreateInfo::query_type(QueryType::Timestamp)
                },
            )
            .map_err(err("query pool"))?;
            Some(Profiler {
                pool,
                period_ns: ctx.device.physical_device().properties().timestamp_period as f64,
                labels: RefCell::new(Vec::new()),
                acc: RefCell::new(Vec::new()),
            })
        } else {
            None
        };
        Ok(Self {
            prof,
            host,
            ctx,
            pl,
            n: 0,
            sh_degree: 0,
            adam_step: 0,
            keys_per_gaussian: cfg.keys_per_gaussian.max(1.0),
            g,
            k,
            img: None,
            counters,
            pose_grad,
            last: None,
            have_grads: false,
            frame,
            recorded: RefCell::new(HashMap::new()),
        })
    }

    fn gauss_bufs(ctx: &Context, cap: usize, sh_degree: u32) -> Result<GaussBufs, RenderError> {
        let per: usize = group_widths(sh_degree).iter().sum();
        let proj = dev(ctx, 16 * cap)?;
        let params = dev(ctx, per * cap)?;
        let grads = dev(ctx, per * cap)?;
        let m = dev(ctx, per * cap)?;
        let v = dev(ctx, per * cap)?;
        Ok(GaussBufs {
            cap,
            params_t: view(&params, Format::R32_SFLOAT)?,
            grads_t: view(&grads, Format::R32_SFLOAT)?,
            m_t: view(&m, Format::R32_SFLOAT)?,
            v_t: view(&v, Format::R32_SFLOAT)?,
            params,
            grads,
            m,
            v,
            proj4: view(&proj, Format::R32G32B32A32_SFLOAT)?,
            proj,
            touched: dev(ctx, cap)?,
            offsets: dev(ctx, cap)?,
            g2d: dev(ctx, 10 * cap)?,
        })
    }

    fn key_bufs(ctx: &Context, cap: usize) -> Result<KeyBufs, RenderError> {
        let cap = cap.div_ceil(BLOCK_KEYS) * BLOCK_KEYS;
        let set = || -> Result<[Subbuffer<[u32]>; 2], RenderError> {
            Ok([dev(ctx, cap)?, dev(ctx, cap)?])
        };
        let blocks = cap / BLOCK_KEYS;
        let keys = [set()?, set()?];
        Ok(KeyBufs {
            cap,
            keyv: [
                view(&keys[0][0], Format::R32_UINT)?,
                view(&keys[1][0], Format::R32_UINT)?,
            ],
            vals: [
                view(&keys[0][1], Format::R32_UINT)?,
                view(&keys[1][1], Format::R32_UINT)?,
            ],
            keys,
            hist: dev(ctx, 16 * blocks)?,
            hist_scan: dev(ctx, 16 * blocks)?,
        })
    }

    fn ensure_image(&mut self, cam: &Camera) -> Result<(), RenderError> {
        let pixels = cam.pixels();
        let (tx, ty) = cam.tiles();
        let tiles = (tx * ty) as usize;
        if let Some(b) = &self.img {
            if b.pixels >= pixels && b.tiles >= tiles {
                return Ok(());
            }
        }
        self.forget_recordings();
        let c = &self.ctx;
        let colour = dev(c, 3 * pixels)?;
        let target = dev(c, 3 * pixels)?;
        let hsum = dev(c, 16 * pixels)?;
        let dpart = dev(c, 12 * pixels)?;
        self.img = Some(ImageBufs {
            pixels,
            tiles,
            colour_t: view(&colour, Format::R32_SFLOAT)?,
            target_t: view(&target, Format::R32_SFLOAT)?,
            hsum_t: view(&hsum, Format::R32G32B32A32_SFLOAT)?,
            dpart_t: view(&dpart, Format::R32G32B32A32_SFLOAT)?,
            colour,
            target,
            hsum,
            dpart,
            depth: dev(c, pixels)?,
            alpha: dev(c, pixels)?,
            final_t: dev(c, pixels)?,
            n_contrib: dev(c, pixels)?,
            dl_c: dev(c, 3 * pixels)?,
            dl_d: dev(c, pixels)?,
            dl_a: dev(c, pixels)?,
            lmap: dev(c, pixels)?,
            ranges: dev(c, 2 * tiles)?,
        });
        Ok(())
    }

    fn builder(&self) -> Result<Builder, RenderError> {
        self.builder_for(CommandBufferUsage::OneTimeSubmit)
    }

    fn builder_for(&self, usage: CommandBufferUsage) -> Result<Builder, RenderError> {
        let mut b = AutoCommandBufferBuilder::primary(
            self.ctx.cb_alloc.clone(),
            self.ctx.queue.queue_family_index(),
            usage,
        )
        .map_err(err("command buffer"))?;
        if let Some(pr) = &self.prof {
            pr.labels.borrow_mut().clear();
            // SAFETY: the pool is only used by this renderer's (serial) submissions.
            unsafe {
                b.reset_query_pool(pr.pool.clone(), 0..PROFILE_QUERIES)
                    .map_err(err("reset queries"))?;
                b.write_timestamp(pr.pool.clone(), 0, PipelineStage::AllCommands)
                    .map_err(err("timestamp"))?;
            }
        }
        Ok(b)
    }

    /// Reads the timestamps of the command buffer just waited for into the profile.
    fn collect_profile(&self) -> Result<(), RenderError> {
        let Some(pr) = &self.prof else {
            return Ok(());
        };
        let labels = pr.labels.borrow();
        if labels.is_empty() {
            return Ok(());
        }
        let mut ts = vec![0u64; labels.len() + 1];
        pr.pool
            .get_results(0..ts.len() as u32, &mut ts, QueryResultFlags::WAIT)
            .map_err(err("query results"))?;
        let mut acc = pr.acc.borrow_mut();
        for (i, l) in labels.iter().enumerate() {
            let ms = ts[i + 1].saturating_sub(ts[i]) as f64 * pr.period_ns * 1e-6;
            tracing::trace!(kernel = l, ms, "kernel time");
            acc.push((l, ms));
        }
        Ok(())
    }

    fn submit(&self, b: Builder) -> Result<(), RenderError> {
        let cb = b.build().map_err(err("build"))?;
        self.execute(cb)
    }

    /// Submits `cb`, waits for it and collects its timestamps.
    fn execute(&self, cb: Arc<PrimaryAutoCommandBuffer>) -> Result<(), RenderError> {
        let t0 = std::time::Instant::now();
        cb.execute(self.ctx.queue.clone())
            .map_err(err("execute"))?
            .then_signal_fence_and_flush()
            .map_err(err("flush"))?
            .wait(None)
            .map_err(err("wait"))?;
        self.collect_profile()?;
        tracing::trace!(run_ms = t0.elapsed().as_secs_f64() * 1e3, "submit");
        Ok(())
    }

    /// Submits the recording named by `key`, recording it with `record` first when there is
    /// none. The frame buffer must hold this submission's values.
    fn run_recorded(
        &self,
        key: CbKey,
        record: impl FnOnce(&Self, &mut Builder) -> Result<(), RenderError>,
    ) -> Result<(), RenderError> {
        let hit = self
            .recorded
            .borrow()
            .get(&key)
            .map(|r| (r.cb.clone(), r.labels.clone()));
        let cb = match hit {
            Some((cb, labels)) => {
                if let Some(pr) = &self.prof {
                    *pr.labels.borrow_mut() = labels;
                }
                cb
            }
            None => {
                let t0 = std::time::Instant::now();
                let mut b = self.builder_for(CommandBufferUsage::MultipleSubmit)?;
                record(self, &mut b)?;
                let cb = b.build().map_err(err("build"))?;
                tracing::trace!(
                    kind = ?key.0,
                    record_ms = t0.elapsed().as_secs_f64() * 1e3,
                    "recorded"
                );
                let labels = self
                    .prof
                    .as_ref()
                    .map(|p| p.labels.borrow().clone())
                    .unwrap_or_default();
                let mut rec = self.recorded.borrow_mut();
                if rec.len() >= MAX_RECORDED {
                    rec.clear();
                }
                rec.insert(
                    key,
                    Recorded {
                        cb: cb.clone(),
                        labels,
                    },
                );
                cb
            }
        };
        self.execute(cb)
    }

    /// Drops every kept recording (they hold buffers that are being replaced).
    fn forget_recordings(&self) {
        self.recorded.borrow_mut().clear();
    }

    /// Writes the per-submission values the kernels read: pose rows and/or Adam's bias
    /// corrections (the other part keeps its value).
    fn write_frame(
        &self,
        pose: Option<&[f32; 12]>,
        adam: Option<[f32; 2]>,
    ) -> Result<(), RenderError> {
        let mut w = self.frame.write().map_err(err("frame write"))?;
        if let Some(p) = pose {
            w[..12].copy_from_slice(p);
        }
        if let Some(a) = adam {
            w[12..14].copy_from_slice(&a);
        }
        Ok(())
    }

    fn dispatch(
        &self,
        b: &mut Builder,
        k: &Kernel,
        writes: Vec<WriteDescriptorSet>,
        pc: &[u32; 32],
        groups: [u32; 3],
    ) -> Result<(), RenderError> {
        let p = &k.p;
        let layout = p.layout().clone();
        let bindings = layout.set_layouts()[0].bindings();
        let writes: Vec<_> = writes
            .into_iter()
            .filter(|w| bindings.contains_key(&w.binding()))
            .collect();
        let set = DescriptorSet::new(
            self.ctx.ds_alloc.clone(),
            layout.set_layouts()[0].clone(),
            writes,
            [],
        )
        .map_err(err("descriptor set"))?;
        b.bind_pipeline_compute(p.clone())
            .map_err(err("bind"))?
            .bind_descriptor_sets(PipelineBindPoint::Compute, layout.clone(), 0, set)
            .map_err(err("bind sets"))?
            .push_constants(layout, 0, *pc)
            .map_err(err("push"))?;
        let groups = groups.map(|g| g.max(1));
        // SAFETY: every shader bounds-checks its indices against sizes in the push constants,
        // which match the bound buffers.
        unsafe { b.dispatch(groups) }.map_err(err("dispatch"))?;
        if let Some(pr) = &self.prof {
            let mut labels = pr.labels.borrow_mut();
            let q = labels.len() as u32 + 1;
            if q < PROFILE_QUERIES {
                // SAFETY: the query was reset at the start of this command buffer.
                unsafe { b.write_timestamp(pr.pool.clone(), q, PipelineStage::AllCommands) }
                    .map_err(err("timestamp"))?;
                labels.push(k.name);
            }
        }
        Ok(())
    }

    /// Push constants for a camera (the pose goes to the frame buffer: [`pose_rows`]).
    fn base_pc(&self, cam: &Camera) -> [u32; 32] {
        let (tx, ty) = cam.tiles();
        let mut f = [0f32; 20];
        f[12..16].copy_from_slice(&[cam.fx as f32, cam.fy as f32, cam.cx as f32, cam.cy as f32]);
        f[16] = cam.near as f32;
        f[17] = cam.far as f32;
        f[19] = 1.0 / (3.0 * cam.pixels() as f32);
        let mut pc = [0u32; 32];
        for (i, v) in f.iter().enumerate() {
            pc[i] = v.to_bits();
        }
        pc[20..24].copy_from_slice(&[cam.width, cam.height, tx, ty]);
        pc[24..28].copy_from_slice(&[
            self.n as u32,
            self.g.cap as u32,
            sh_coeffs(self.sh_degree) as u32,
            self.k.cap as u32,
        ]);
        pc
    }

    /// The upload (`down == false`) or read-back buffer with room for `len` floats.
    fn host(&self, down: bool, len: usize) -> Result<Subbuffer<[f32]>, RenderError> {
        let mut h = self.host.borrow_mut();
        let buf = if down { &mut h.down } else { &mut h.up };
        if (buf.len() as usize) < len {
            let grown = len.max(buf.len() as usize * 3 / 2);
            tracing::debug!(down, floats = grown, "growing host buffer");
            *buf = host_buf(&self.ctx, down, grown)?;
            self.forget_recordings();
        }
        Ok(buf.clone())
    }

    /// Writes `parts` back to back into the upload buffer and returns their ranges there (empty
    /// parts give `None`). Call once per command buffer: a second call reuses the same memory.
    fn stage(&self, parts: &[&[f32]]) -> Result<Vec<Option<Subbuffer<[f32]>>>, RenderError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let up = self.host(false, total)?;
        let mut out = Vec::with_capacity(parts.len());
        {
            let mut w = up.write().map_err(err("staging write"))?;
            let mut o = 0;
            for p in parts {
                w[o..o + p.len()].copy_from_slice(p);
                out.push((!p.is_empty()).then(|| up.clone().slice(o as u64..(o + p.len()) as u64)));
                o += p.len();
            }
        }
        Ok(out)
    }

    /// Records copies of float `regions` (source offset, destination offset, length) from `src`
    /// to `dst`; empty regions are dropped.
    fn copy(
        b: &mut Builder,
        src: Subbuffer<[f32]>,
        dst: Subbuffer<[f32]>,
        regions: impl IntoIterator<Item = (usize, usize, usize)>,
    ) -> Result<(), RenderError> {
        let regions: Vec<BufferCopy> = regions
            .into_iter()
            .filter(|r| r.2 > 0)
            .map(|(s, d, len)| BufferCopy {
                src_offset: s as u64,
                dst_offset: d as u64,
                size: len as u64,
                ..Default::default()
            })
            .collect();
        if regions.is_empty() {
            return Ok(());
        }
        b.copy_buffer(CopyBufferInfoTyped {
            regions: regions.into_iter().collect(),
            ..CopyBufferInfoTyped::buffers(src, dst)
        })
        .map_err(err("copy"))?;
        Ok(())
    }

    /// Copy regions `(capacity layout, n layout at base, len)` of the parameter groups of
    /// Gaussians `start..start + count` (device buffers keep groups `cap` apart, host data `count`).
    fn group_regions(&self, start: usize, count: usize, base: usize) -> Vec<(usize, usize, usize)> {
        let w = group_widths(self.sh_degree);
        let mut pre = 0;
        let mut out = Vec::with_capacity(GROUPS.len());
        for grp in GROUPS {
            let wi = w[grp as usize];
            out.push((
                pre * self.g.cap + wi * start,
                base + pre * count,
                wi * count,
            ));
            pre += wi;
        }
        out
    }

    /// Records the read-back of the first `self.n` Gaussians of a parameter-layout buffer into
    /// the read-back buffer at `base` (n layout).
    fn record_read_params(
        &self,
        b: &mut Builder,
        src: &Subbuffer<[f32]>,
        down: &Subbuffer<[f32]>,
        base: usize,
    ) -> Result<(), RenderError> {
        Self::copy(
            b,
            src.clone(),
            down.clone(),
            self.group_regions(0, self.n, base),
        )
    }

    /// Uploads Gaussians (n layout) into a parameter-layout buffer at index `start`.
    fn record_write_params(
        &self,
        b: &mut Builder,
        staged: Option<Subbuffer<[f32]>>,
        dst: &Subbuffer<[f32]>,
        start: usize,
        count: usize,
    ) -> Result<(), RenderError> {
        let Some(st) = staged else { return Ok(()) };
        let regions = self
            .group_regions(start, count, 0)
            .into_iter()
            .map(|(d, s, len)| (s, d, len));
        Self::copy(b, st, dst.clone(), regions)
    }

    /// Records forward: project, scan, emit keys, radix sort, tile ranges, blend.
    fn record_forward(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
    ) -> Result<(), RenderError> {
        let img = self.img.as_ref().expect("ensured");
        let n = self.n as u32;
        let g = &self.g;
        let k = &self.k;
        let ng = n.div_ceil(256);
        // Project; (depth, index) pairs into key set 0.
        self.dispatch(
            b,
            &self.pl.project,
            vec![
                WriteDescriptorSet::buffer_view(0, g.params_t.clone()),
                WriteDescriptorSet::buffer(1, g.proj.clone()),
                WriteDescriptorSet::buffer(2, g.touched.clone()),
                WriteDescriptorSet::buffer(3, k.keys[0][0].clone()),
                WriteDescriptorSet::buffer(4, k.keys[0][1].clone()),
                WriteDescriptorSet::buffer(5, self.frame.clone()),
            ],
            pc,
            [ng, 1, 1],
        )?;
        // Depth sort of the Gaussians (8 passes: back in set 0).
        let depth_passes: Vec<u32> = (0..8).map(|i| 4 * i).collect();
        self.record_radix(b, pc, &depth_passes, 0, true)?;
        // Tile counts in depth order, scanned: each Gaussian's first key slot.
        let mut p = *pc;
        p[28] = n;
        p[29] = 0;
        p[31] = 1;
        self.dispatch(
            b,
            &self.pl.scan,
            vec![
                WriteDescriptorSet::buffer(0, g.touched.clone()),
                WriteDescriptorSet::buffer(1, g.offsets.clone()),
                WriteDescriptorSet::buffer(2, self.counters.clone()),
                WriteDescriptorSet::buffer(3, k.keys[0][1].clone()),
            ],
            &p,
            [1, 1, 1],
        )?;
        // Keys (tile, Gaussian) in depth order into set 1, then a stable sort by tile.
        self.dispatch(
            b,
            &self.pl.emit,
            vec![
                WriteDescriptorSet::buffer_view(0, g.proj4.clone()),
                WriteDescriptorSet::buffer(1, g.offsets.clone()),
                WriteDescriptorSet::buffer_view(2, k.vals[0].clone()),
                WriteDescriptorSet::buffer(3, k.keys[1][0].clone()),
                WriteDescriptorSet::buffer(4, k.keys[1][1].clone()),
            ],
            pc,
            [ng, 1, 1],
        )?;
        let tile_passes: Vec<u32> = (0..tile_sort_passes(cam)).map(|i| 4 * i).collect();
        self.record_radix(b, pc, &tile_passes, 1, false)?;
        let (tx, ty) = cam.tiles();
        let last = (1 + tile_passes.len()) % 2;
        let sorted_keys = &k.keyv[last];
        let sorted_vals = &k.vals[last];
        b.fill_buffer(img.ranges.clone(), 0).map_err(err("fill"))?;
        self.dispatch(
            b,
            &self.pl.ranges,
            vec![
                WriteDescriptorSet::buffer_view(0, sorted_keys.clone()),
                WriteDescriptorSet::buffer(1, self.counters.clone()),
                WriteDescriptorSet::buffer(2, img.ranges.clone()),
            ],
            pc,
            [(k.cap as u32).div_ceil(256), 1, 1],
        )?;
        let mut p = *pc;
        p[30] = 1; // "one" for the raster kernels' skip loops
        self.dispatch(
            b,
            &self.pl.fwd,
            vec![
                WriteDescriptorSet::buffer_view(0, g.proj4.clone()),
                WriteDescriptorSet::buffer_view(1, sorted_vals.clone()),
                WriteDescriptorSet::buffer(2, img.ranges.clone()),
                WriteDescriptorSet::buffer(3, img.colour.clone()),
                WriteDescriptorSet::buffer(4, img.depth.clone()),
                WriteDescriptorSet::buffer(5, img.alpha.clone()),
                WriteDescriptorSet::buffer(6, img.final_t.clone()),
                WriteDescriptorSet::buffer(7, img.n_contrib.clone()),
            ],
            &p,
            [tx, ty, 1],
        )?;
        Ok(())
    }

    /// LSD radix passes (4-bit digits at `shifts`) over the (key, value) pairs of key set
    /// `first`, ping-ponging between the sets: the result is in set `(first + passes) % 2`. The
    /// count is the Gaussian count (`gaussians`) or the emitted key count (`counters[0]`).
    fn record_radix(
        &self,
        b: &mut Builder,
        pc: &[u32; 32],
        shifts: &[u32],
        first: usize,
        gaussians: bool,
    ) -> Result<(), RenderError> {
        let k = &self.k;
        let blocks = if gaussians {
            self.n.div_ceil(BLOCK_KEYS).max(1) as u32
        } else {
            (k.cap / BLOCK_KEYS) as u32
        };
        for (pi, &shift) in shifts.iter().enumerate() {
            let s = (first + pi) % 2;
            let dst = &k.keys[(first + pi + 1) % 2];
            let mut p = *pc;
            p[28] = shift;
            p[29] = blocks;
            p[31] = u32::from(gaussians);
            self.dispatch(
                b,
                &self.pl.hist,
                vec![
                    WriteDescriptorSet::buffer_view(0, k.keyv[s].clone()),
                    WriteDescriptorSet::buffer(1, self.counters.clone()),
                    WriteDescriptorSet::buffer(2, k.hist.clone()),
                ],
                &p,
                [blocks, 1, 1],
            )?;
            let mut ps = *pc;
            ps[28] = 16 * blocks;
            ps[29] = 1;
            self.dispatch(
                b,
                &self.pl.scan,
                vec![
                    WriteDescriptorSet::buffer(0, k.hist.clone()),
                    WriteDescriptorSet::buffer(1, k.hist_scan.clone()),
                    WriteDescriptorSet::buffer(2, self.counters.clone()),
                    WriteDescriptorSet::buffer(3, k.hist.clone()),
                ],
                &ps,
                [1, 1, 1],
            )?;
            self.dispatch(
                b,
                &self.pl.scatter,
                vec![
                    WriteDescriptorSet::buffer_view(0, k.keyv[s].clone()),
                    WriteDescriptorSet::buffer_view(1, k.vals[s].clone()),
                    WriteDescriptorSet::buffer(2, dst[0].clone()),
                    WriteDescriptorSet::buffer(3, dst[1].clone()),
                    WriteDescriptorSet::buffer(4, self.counters.clone()),
                    WriteDescriptorSet::buffer(5, k.hist_scan.clone()),
                ],
                &p,
                [blocks, 1, 1],
            )?;
        }
        Ok(())
    }

    /// The sorted Gaussian ids of the latest forward, as texels.
    fn sorted_vals(&self, cam: &Camera) -> Arc<BufferView> {
        self.k.vals[(1 + tile_sort_passes(cam) as usize) % 2].clone()
    }

    /// Records backward from the gradient images in `dl_*` (flags: bit0 depth, bit1 alpha).
    fn record_backward(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
        flags: u32,
    ) -> Result<(), RenderError> {
        let img = self.img.as_ref().expect("ensured");
        let g = &self.g;
        b.fill_buffer(g.g2d.clone().reinterpret::<[u32]>(), 0)
            .map_err(err("fill"))?;
        b.fill_buffer(self.pose_grad.clone().reinterpret::<[u32]>(), 0)
            .map_err(err("fill"))?;
        let (tx, ty) = cam.tiles();
        let mut p = *pc;
        p[30] = 1; // "one" for the skip loops
        p[31] = flags;
        self.dispatch(
            b,
            &self.pl.bwd,
            vec![
                WriteDescriptorSet::buffer_view(0, g.proj4.clone()),
                WriteDescriptorSet::buffer_view(1, self.sorted_vals(cam)),
                WriteDescriptorSet::buffer(2, img.ranges.clone()),
                WriteDescriptorSet::buffer(3, img.final_t.clone()),
                WriteDescriptorSet::buffer(4, img.n_contrib.clone()),
                WriteDescriptorSet::buffer(5, img.dl_c.clone()),
                WriteDescriptorSet::buffer(6, img.dl_d.clone()),
                WriteDescriptorSet::buffer(7, img.dl_a.clone()),
                WriteDescriptorSet::buffer(8, g.g2d.clone()),
            ],
            &p,
            [tx, ty, 1],
        )?;
        self.dispatch(
            b,
            &self.pl.pbwd,
            vec![
                WriteDescriptorSet::buffer_view(0, g.params_t.clone()),
                WriteDescriptorSet::buffer(1, g.proj.clone()),
                WriteDescriptorSet::buffer(2, g.g2d.clone()),
                WriteDescriptorSet::buffer(3, g.grads.clone()),
                WriteDescriptorSet::buffer(4, self.pose_grad.clone()),
                WriteDescriptorSet::buffer(5, self.frame.clone()),
            ],
            pc,
            [(self.n as u32).div_ceil(256), 1, 1],
        )?;
        Ok(())
    }

    fn record_loss(
        &self,
        b: &mut Builder,
        cam: &Camera,
        pc: &[u32; 32],
        lambda: f32,
    ) -> Result<(), RenderError> {
        let img = self.img.as_ref().expect("ensured");
        let mut p = *pc;
        p[18] = lambda.to_bits();
        let groups = [(cam.pixels() as u32).div_ceil(256), 1, 1];
        // SSIM window sums (separable: rows, then columns with the loss and its partials), then
        // their adjoint the same way.
        let bv = WriteDescriptorSet::buffer_view;
        let bf = WriteDescriptorSet::buffer;
        self.dispatch(
            b,
            &self.pl.ssim_h,
            vec![
                bv(0, img.colour_t.clone()),
                bv(1, img.target_t.clone()),
                bf(2, img.hsum.clone()),
            ],
            &p,
            groups,
        )?;
        self.dispatch(
            b,
            &self.pl.loss_fwd,
            vec![
                bv(0, img.colour_t.clone()),
                bv(1, img.target_t.clone()),
                bv(2, img.hsum_t.clone()),
                bf(3, img.dpart.clone()),
                bf(4, img.lmap.clone()),
                bf(5, img.dl_c.clone()),
            ],
            &p,
            groups,
        )?;
        self.dispatch(
            b,
            &self.pl.ssim_bh,
            vec![bv(0, img.dpart_t.clone()), bf(1, img.hsum.clone())],
            &p,
            groups,
        )?;
        self.dispatch(
            b,
            &self.pl.loss_bwd,
            vec![
                bv(0, img.colour_t.clone()),
                bv(1, img.target_t.clone()),
                bv(2, img.hsum_t.clone()),
                bf(3, img.dl_c.clone()),
            ],
            &p,
            groups,
        )
    }

    /// Push constants of the Adam kernel (its step-dependent values: [`adam_frame`]).
    fn adam_pc(&self, cfg: &AdamConfig) -> [u32; 32] {
        let f = [
            cfg.lr[0], cfg.lr[1], cfg.lr[2], cfg.lr[3], cfg.lr[4], cfg.lr[5], cfg.beta1, cfg.beta2,
            cfg.eps,
        ];
        let mut pc = [0u32; 32];
        for (i, v) in f.iter().enumerate() {
            pc[i] = (*v as f32).to_bits();
        }
        pc[24..28].copy_from_slice(&[
            self.n as u32,
            self.g.cap as u32,
            sh_coeffs(self.sh_degree) as u32,
            self.k.cap as u32,
        ]);
        pc
    }

    fn record_adam(&self, b: &mut Builder, pc: &[u32; 32]) -> Result<(), RenderError> {
        let g = &self.g;
        let per: usize = group_widths(self.sh_degree).iter().sum();
        self.dispatch(
            b,
            &self.pl.adam,
            vec![
                WriteDescriptorSet::buffer(0, g.params.clone()),
                WriteDescriptorSet::buffer_view(1, g.grads_t.clone()),
                WriteDescriptorSet::buffer(2, g.m.clone()),
                WriteDescriptorSet::buffer(3, g.v.clone()),
                WriteDescriptorSet::buffer_view(4, g.params_t.clone()),
                WriteDescriptorSet::buffer_view(5, g.m_t.clone()),
                WriteDescriptorSet::buffer_view(6, g.v_t.clone()),
                WriteDescriptorSet::buffer(7, self.frame.clone()),
            ],
            pc,
            [((per * g.cap) as u32).div_ceil(256), 1, 1],
        )
    }

    /// Reads `len` floats of the read-back buffer after a submission.
    fn read_down(&self, len: usize) -> Result<Vec<f32>, RenderError> {
        let down = self.host(true, len)?;
        let r = down.read().map_err(err("read"))?;
        Ok(r[..len].to_vec())
    }

    /// Reads the first `self.n` Gaussians of each parameter-layout buffer in `srcs` (one
    /// submission).
    fn read_params(&self, srcs: &[&Subbuffer<[f32]>]) -> Result<Vec<Gaussians>, RenderError> {
        let per: usize = group_widths(self.sh_degree).iter().sum();
        let len = per * self.n;
        let down = self.host(true, len * srcs.len())?;
        let mut b = self.builder()?;
        for (i, src) in srcs.iter().enumerate() {
            self.record_read_params(&mut b, src, &down, i * len)?;
        }
        self.submit(b)?;
        let data = self.read_down(len * srcs.len())?;
        data.chunks(len.max(1))
            .take(srcs.len())
            .map(|c| Gaussians::from_data(self.n, self.sh_degree, c[..len].to_vec()))
            .collect()
    }

    fn key_count(&self) -> Result<usize, RenderError> {
        Ok(self.counters.read().map_err(err("counters"))?[0] as usize)
    }

    /// Runs the recording `kind` with the static values `words` (recorded by `record`, which
    /// records a forward and gets the push constants) and regrows the key buffers when they
    /// overflowed.
    fn run_with_keys(
        &mut self,
        cam: &Camera,
        kind: CbKind,
        words: &[u32],
        mut record: impl FnMut(&Self, &mut Builder, &[u32; 32]) -> Result<(), RenderError>,
        retry: bool,
    ) -> Result<(), RenderError> {
        loop {
            // The push constants name the key capacity: a regrowth changes the key.
            let pc = self.base_pc(cam);
            let mut key = words.to_vec();
            key.extend_from_slice(&pc);
            self.run_recorded((kind, key), |s, b| record(s, b, &pc))?;
            let used = self.key_count()?;
            tracing::trace!(keys = used, gaussians = self.n, "forward keys");
            if used <= self.k.cap {
                return Ok(());
            }
            let new_cap = (used as f64 * 1.25) as usize;
            tracing::debug!(used, old = self.k.cap, new_cap, "growing key buffers");
            self.forget_recordings();
            self.k = Self::key_bufs(&self.ctx, new_cap)?;
            self.keys_per_gaussian = self
                .keys_per_gaussian
                .max(new_cap as f64 / self.n.max(1) as f64);
            if !retry {
                return Ok(());
            }
        }
    }
}

/// World-to-camera rotation rows with the translation as 4th element (the frame buffer's r0..r2).
fn pose_rows(t_cw: &Isometry3<f64>) -> [f32; 12] {
    let r = t_cw.rotation.to_rotation_matrix();
    let t = t_cw.translation.vector;
    let mut f = [0f32; 12];
    for row in 0..3 {
        for col in 0..3 {
            f[4 * row + col] = r[(row, col)] as f32;
        }
        f[4 * row + 3] = t[row] as f32;
    }
    f
}

/// Adam's bias corrections at `step` (1-based): 1 / (1 - beta1^t), 1 / sqrt(1 - beta2^t).
fn adam_frame(cfg: &AdamConfig, step: u32) -> [f32; 2] {
    let t = f64::from(step);
    let bc1 = 1.0 - cfg.beta1.powf(t);
    let bc2 = 1.0 - cfg.beta2.powf(t);
    [(1.0 / bc1) as f32, (1.0 / bc2.sqrt()) as f32]
}

/// Radix passes (4 bits each) over the tile ids of a camera.
fn tile_sort_passes(cam: &Camera) -> u32 {
    let (tx, ty) = cam.tiles();
    let tile_bits = (32 - (tx * ty).saturating_sub(1).leading_zeros()).max(1);
    tile_bits.div_ceil(4)
}

/// A kernel from its built-in SPIR-V, or from `$GS_LIVO_SHADER_DIR/<name>.spv` when that file
/// exists (for shader development without rebuilding the crate).
fn kernel(ctx: &Context, name: &'static str, spv: &[u8]) -> Result<Kernel, RenderError> {
    kernel_spec(ctx, name, spv, &[])
}

/// [`kernel`] with specialisation constants `(id, value)`.
fn kernel_spec(
    ctx: &Context,
    name: &'static str,
    spv: &[u8],
    spec: &[(u32, u32)],
) -> Result<Kernel, RenderError> {
    if let Some(dir) = std::env::var_os("GS_LIVO_SHADER_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.spv"));
        if let Ok(bytes) = std::fs::read(&path) {
            tracing::warn!(path = %path.display(), "kernel {name} loaded from GS_LIVO_SHADER_DIR");
            return Ok(Kernel {
                p: ctx.pipeline(name, &bytes, spec)?,
                name,
            });
        }
    }
    Ok(Kernel {
        p: ctx.pipeline(name, spv, spec)?,
        name,
    })
}

/// A texel view (e.g. `R32G32B32A32_SFLOAT` for vec4 reads through `texelFetch`, which CPU
/// drivers vectorise, unlike storage-buffer loads).
fn view<T: BufferContents>(
    buf: &Subbuffer<[T]>,
    format: Format,
) -> Result<Arc<BufferView>, RenderError>
where
    [T]: BufferContents,
{
    BufferView::new(
        buf.clone(),
        BufferViewCreateInfo {
            format,
            ..Default::default()
        },
    )
    .map_err(err("buffer view"))
}

/// A host-visible float buffer for uploads (`down == false`) or read-backs.
fn host_buf(ctx: &Context, down: bool, len: usize) -> Result<Subbuffer<[f32]>, RenderError> {
    let (usage, access) = if down {
        (
            BufferUsage::TRANSFER_DST,
            MemoryTypeFilter::HOST_RANDOM_ACCESS,
        )
    } else {
        (
            BufferUsage::TRANSFER_SRC,
            MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
        )
    };
    Buffer::new_slice::<f32>(
        ctx.mem.clone(),
        BufferCreateInfo {
            usage,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_HOST | access,
            ..Default::default()
        },
        len.max(16) as u64,
    )
    .map_err(err("host buffer"))
}

fn dev<T: BufferContents>(ctx: &Context, len: usize) -> Result<Subbuffer<[T]>, RenderError>
where
    [T]: BufferContents,
{
    Buffer::new_slice::<T>(
        ctx.mem.clone(),
        BufferCreateInfo {
            usage: BufferUsage::STORAGE_BUFFER
                | BufferUsage::UNIFORM_TEXEL_BUFFER
                | BufferUsage::STORAGE_TEXEL_BUFFER
                | BufferUsage::TRANSFER_SRC
                | BufferUsage::TRANSFER_DST,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_DEVICE,
            ..Default::default()
        },
        len.max(16) as u64,
    )
    .map_err(err("buffer"))
}

impl Renderer for VulkanRenderer {
    fn backend(&self) -> Backend {
        Backend::Vulkan
    }

    fn device_name(&self) -> String {
        format!(
            "{} ({})",
            self.ctx.name,
            if self.ctx.float_atomics {
                "float atomics"
            } else {
                "CAS atomics"
            }
        )
    }

    fn len(&self) -> usize {
        self.n
    }

    fn kernel_profile(&mut self) -> Vec<(&'static str, f64)> {
        self.prof
            .as_ref()
            .map(|p| std::mem::take(&mut *p.acc.borrow_mut()))
            .unwrap_or_default()
    }

    fn set_gaussians(
        &mut self,
        g: &Gaussians,
        state: Option<&AdamState>,
    ) -> Result<(), RenderError> {
        if let Some(s) = state {
            s.check_fits(g)?;
        }
        if g.len() > self.g.cap || g.sh_degree() != self.sh_degree {
            let cap = if g.len() > self.g.cap {
                g.len().max(self.g.cap * 3 / 2)
            } else {
                self.g.cap
            };
            self.forget_recordings();
            self.g = Self::gauss_bufs(&self.ctx, cap, g.sh_degree())?;
        }
        let want_keys = (g.len() as f64 * self.keys_per_gaussian) as usize;
        if want_keys > self.k.cap {
            self.forget_recordings();
            self.k = Self::key_bufs(&self.ctx, want_keys)?;
        }
        self.n = g.len();
        self.sh_degree = g.sh_degree();
        let n = g.len();
        let mut b = self.builder()?;
        match state {
            Some(s) => {
                let st = self.stage(&[&g.data, &s.m.data, &s.v.data])?;
                let [p, m, v] = <[_; 3]>::try_from(st).expect("three parts");
                self.record_write_params(&mut b, p, &self.g.params, 0, n)?;
                self.record_write_params(&mut b, m, &self.g.m, 0, n)?;
                self.record_write_params(&mut b, v, &self.g.v, 0, n)?;
                self.adam_step = s.step;
            }
            None => {
                let st = self.stage(&[&g.data])?.pop().flatten();
                self.record_write_params(&mut b, st, &self.g.params, 0, n)?;
                b.fill_buffer(self.g.m.clone().reinterpret::<[u32]>(), 0)
                    .map_err(err("fill"))?;
                b.fill_buffer(self.g.v.clone().reinterpret::<[u32]>(), 0)
                    .map_err(err("fill"))?;
                self.adam_step = 0;
            }
        }
        self.submit(b)?;
        self.last = None;
        self.have_grads = false;
        Ok(())
    }

    fn update_gaussians(&mut self, start: usize, g: &Gaussians) -> Result<(), RenderError> {
        crate::render::types::check_update(start, g, self.n, self.sh_degree)?;
        if g.is_empty() {
            return Ok(());
        }
        let mut b = self.builder()?;
        let st = self.stage(&[&g.data])?.pop().flatten();
        self.record_write_params(&mut b, st, &self.g.params, start, g.len())?;
        self.submit(b)
    }

    fn gaussians(&mut self) -> Result<Gaussians, RenderError> {
        Ok(self.read_params(&[&self.g.params])?.remove(0))
    }

    fn adam_state(&mut self) -> Result<AdamState, RenderError> {
        let mut mv = self.read_params(&[&self.g.m, &self.g.v])?;
        let v = mv.pop().expect("two sets");
        let m = mv.pop().expect("two sets");
        Ok(AdamState {
            m,
            v,
            step: self.adam_step,
        })
    }

    fn forward(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
    ) -> Result<RenderOutput, RenderError> {
        cam.validate()?;
        self.ensure_image(cam)?;
        let np = cam.pixels();
        // The images go to the read-back buffer in the same command buffer: colour, depth, alpha.
        let down = self.host(true, 5 * np)?;
        let pose = pose_rows(t_cw);
        self.write_frame(Some(&pose), None)?;
        self.run_with_keys(
            cam,
            CbKind::Forward,
            &[],
            |s, b, pc| {
                s.record_forward(b, cam, pc)?;
                let img = s.img.as_ref().expect("ensured");
                Self::copy(b, img.colour.clone(), down.clone(), [(0, 0, 3 * np)])?;
                Self::copy(b, img.depth.clone(), down.clone(), [(0, 3 * np, np)])?;
                Self::copy(b, img.alpha.clone(), down.clone(), [(0, 4 * np, np)])
            },
            true,
        )?;
        self.last = Some((*cam, self.base_pc(cam), pose));
        self.have_grads = false;
        let mut d = self.read_down(5 * np)?;
        let alpha = d.split_off(4 * np);
        let depth = d.split_off(3 * np);
        Ok(RenderOutput {
            width: cam.width,
            height: cam.height,
            colour: d,
            depth,
            alpha,
        })
    }

    fn backward(
        &mut self,
        d_colour: &[f32],
        d_depth: Option<&[f32]>,
        d_alpha: Option<&[f32]>,
    ) -> Result<Gradients, RenderError> {
        let (cam, pc, pose) = self.last.ok_or(RenderError::NoForward)?;
        let np = cam.pixels();
        check_image(d_colour.len(), 3 * np, "d_colour")?;
        if let Some(d) = d_depth {
            check_image(d.len(), np, "d_depth")?;
        }
        if let Some(d) = d_alpha {
            check_image(d.len(), np, "d_alpha")?;
        }
        let st = self.stage(&[
            d_colour,
            d_depth.unwrap_or_default(),
            d_alpha.unwrap_or_default(),
        ])?;
        let [sc, sd, sa] = <[_; 3]>::try_from(st).expect("three parts");
        let per: usize = group_widths(self.sh_degree).iter().sum();
        let glen = per * self.n;
        let down = self.host(true, glen + 6)?;
        self.write_frame(Some(&pose), None)?;
        // The staged lengths (which images are given) and the push constants name it.
        let mut key: Vec<u32> = [&sc, &sd, &sa]
            .iter()
            .map(|st| st.as_ref().map_or(0, |b| b.len() as u32))
            .collect();
        key.extend_from_slice(&pc);
        self.run_recorded((CbKind::Backward, key), |s, b| {
            let img = s.img.as_ref().expect("ensured");
            let mut flags = 0;
            for (st, dst, flag) in [(sc, &img.dl_c, 0), (sd, &img.dl_d, 1), (sa, &img.dl_a, 2)] {
                if let Some(st) = st {
                    let len = st.len() as usize;
                    Self::copy(b, st, dst.clone(), [(0, 0, len)])?;
                    flags |= flag;
                }
            }
            s.record_backward(b, &cam, &pc, flags)?;
            // Gradients (n layout) and the pose gradient read back in the same command buffer.
            s.record_read_params(b, &s.g.grads, &down, 0)?;
            Self::copy(b, s.pose_grad.clone(), down.clone(), [(0, glen, 6)])
        })?;
        self.have_grads = true;
        let mut d = self.read_down(glen + 6)?;
        let pg = d.split_off(glen);
        Ok(Gradients {
            params: Gaussians::from_data(self.n, self.sh_degree, d)?,
            pose: std::array::from_fn(|i| pg[i] as f64),
        })
    }

    fn loss(&mut self, target: &[f32], cfg: &LossConfig) -> Result<(f64, Vec<f32>), RenderError> {
        let (cam, pc, _) = self.last.ok_or(RenderError::NoForward)?;
        let np = cam.pixels();
        check_image(target.len(), 3 * np, "target")?;
        let st = self.stage(&[target])?.pop().flatten();
        let down = self.host(true, 4 * np)?;
        let lambda = cfg.ssim_weight as f32;
        let mut key = vec![u32::from(st.is_some()), lambda.to_bits()];
        key.extend_from_slice(&pc);
        self.run_recorded((CbKind::Loss, key), |s, b| {
            let img = s.img.as_ref().expect("ensured");
            if let Some(st) = st {
                Self::copy(b, st, img.target.clone(), [(0, 0, 3 * np)])?;
            }
            s.record_loss(b, &cam, &pc, lambda)?;
            Self::copy(b, img.lmap.clone(), down.clone(), [(0, 0, np)])?;
            Self::copy(b, img.dl_c.clone(), down.clone(), [(0, np, 3 * np)])
        })?;
        let mut d = self.read_down(4 * np)?;
        let grad = d.split_off(np);
        let loss = d.iter().map(|v| *v as f64).sum();
        Ok((loss, grad))
    }

    fn adam_step(&mut self, cfg: &AdamConfig) -> Result<(), RenderError> {
        if !self.have_grads {
            return Err(RenderError::NoForward);
        }
        self.adam_step += 1;
        self.write_frame(None, Some(adam_frame(cfg, self.adam_step)))?;
        let pc = self.adam_pc(cfg);
        self.run_recorded((CbKind::Adam, pc.to_vec()), |s, b| s.record_adam(b, &pc))?;
        self.have_grads = false;
        Ok(())
    }

    fn step(
        &mut self,
        cam: &Camera,
        t_cw: &Isometry3<f64>,
        target: &[f32],
        loss: &LossConfig,
        adam: &AdamConfig,
    ) -> Result<(), RenderError> {
        cam.validate()?;
        check_image(target.len(), 3 * cam.pixels(), "target")?;
        self.ensure_image(cam)?;
        self.adam_step += 1;
        let step = self.adam_step;
        let st = self.stage(&[target])?.pop().flatten();
        self.write_frame(Some(&pose_rows(t_cw)), Some(adam_frame(adam, step)))?;
        let adam_pc = self.adam_pc(adam);
        let lambda = loss.ssim_weight as f32;
        let mut words = vec![target.len() as u32, lambda.to_bits()];
        words.extend_from_slice(&adam_pc);
        self.run_with_keys(
            cam,
            CbKind::Step,
            &words,
            |s, b, pc| {
                let img = s.img.as_ref().expect("ensured");
                if let Some(st) = &st {
                    Self::copy(b, st.clone(), img.target.clone(), [(0, 0, target.len())])?;
                }
                s.record_forward(b, cam, pc)?;
                s.record_loss(b, cam, pc, lambda)?;
                s.record_backward(b, cam, pc, 0)?;
                s.record_adam(b, &adam_pc)
            },
            false,
        )?;
        self.last = None;
        self.have_grads = false;
        Ok(())
    }
}
