//! Device buffers (sized by Gaussian capacity, key capacity and image), the host buffers of
//! uploads and read-backs, and the copies between them.

use std::sync::Arc;

use vulkano::buffer::view::{BufferView, BufferViewCreateInfo};
use vulkano::buffer::{Buffer, BufferContents, BufferCreateInfo, BufferUsage, Subbuffer};
use vulkano::command_buffer::{BufferCopy, CopyBufferInfoTyped};
use vulkano::format::Format;
use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter};

use super::context::{vk, Context};
use super::renderer::VulkanRenderer;
use super::submit::Builder;
use crate::render::{group_widths, Camera, Gaussians, RenderError, GROUPS};

/// Keys per radix-sort block (one histogram of 16 digits each).
pub(super) const BLOCK_KEYS: usize = 2048;

/// Buffers sized by the Gaussian capacity.
pub(super) struct GaussBufs {
    pub cap: usize,
    pub params: Subbuffer<[f32]>,
    pub grads: Subbuffer<[f32]>,
    /// `params`, `grads` and the Adam moments as float texels (texel fetches vectorise on CPU
    /// drivers, storage-buffer loads do not).
    pub params_t: Arc<BufferView>,
    pub grads_t: Arc<BufferView>,
    pub m_t: Arc<BufferView>,
    pub v_t: Arc<BufferView>,
    pub m: Subbuffer<[f32]>,
    pub v: Subbuffer<[f32]>,
    pub proj: Subbuffer<[f32]>,
    /// `proj` as vec4 texels (PROJ_STRIDE / 4 per Gaussian).
    pub proj4: Arc<BufferView>,
    pub touched: Subbuffer<[u32]>,
    pub offsets: Subbuffer<[u32]>,
    pub g2d: Subbuffer<[f32]>,
}

impl GaussBufs {
    pub fn new(ctx: &Context, cap: usize, sh_degree: u32) -> Result<Self, RenderError> {
        let per: usize = group_widths(sh_degree).iter().sum();
        let proj = dev(ctx, 16 * cap)?;
        let params = dev(ctx, per * cap)?;
        let grads = dev(ctx, per * cap)?;
        let m = dev(ctx, per * cap)?;
        let v = dev(ctx, per * cap)?;
        Ok(Self {
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
}

/// Key buffers (two ping-pong sets of key/value) and the radix histograms.
pub(super) struct KeyBufs {
    pub cap: usize,
    /// Two sets of (key, value) arrays for the radix sorts' ping-pong.
    pub keys: [[Subbuffer<[u32]>; 2]; 2],
    /// The key and value arrays (`keys[s][0]`, `keys[s][1]`) as u32 texels.
    pub keyv: [Arc<BufferView>; 2],
    pub vals: [Arc<BufferView>; 2],
    pub hist: Subbuffer<[u32]>,
    pub hist_scan: Subbuffer<[u32]>,
}

impl KeyBufs {
    pub fn new(ctx: &Context, cap: usize) -> Result<Self, RenderError> {
        let cap = cap.div_ceil(BLOCK_KEYS) * BLOCK_KEYS;
        let set = || -> Result<[Subbuffer<[u32]>; 2], RenderError> {
            Ok([dev(ctx, cap)?, dev(ctx, cap)?])
        };
        let blocks = cap / BLOCK_KEYS;
        let keys = [set()?, set()?];
        Ok(Self {
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
}

/// Buffers sized by the image.
pub(super) struct ImageBufs {
    pub pixels: usize,
    pub tiles: usize,
    pub colour: Subbuffer<[f32]>,
    pub depth: Subbuffer<[f32]>,
    pub alpha: Subbuffer<[f32]>,
    pub final_t: Subbuffer<[f32]>,
    pub n_contrib: Subbuffer<[u32]>,
    pub dl_c: Subbuffer<[f32]>,
    pub dl_d: Subbuffer<[f32]>,
    pub dl_a: Subbuffer<[f32]>,
    pub target: Subbuffer<[f32]>,
    /// SSIM partials (dmu, dxx, dxy, 0) per pixel and channel.
    pub dpart: Subbuffer<[f32]>,
    pub lmap: Subbuffer<[f32]>,
    /// Row sums of the separable SSIM window (16 floats per pixel forward, 12 for the adjoint).
    pub hsum: Subbuffer<[f32]>,
    pub ranges: Subbuffer<[u32]>,
    /// Texel views for the loss kernels: colour and target as floats, `hsum` and `dpart` as vec4.
    pub colour_t: Arc<BufferView>,
    pub target_t: Arc<BufferView>,
    pub hsum_t: Arc<BufferView>,
    pub dpart_t: Arc<BufferView>,
}

impl ImageBufs {
    fn new(c: &Context, pixels: usize, tiles: usize) -> Result<Self, RenderError> {
        let colour = dev(c, 3 * pixels)?;
        let target = dev(c, 3 * pixels)?;
        let hsum = dev(c, 16 * pixels)?;
        let dpart = dev(c, 12 * pixels)?;
        Ok(Self {
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
        })
    }
}

/// Host-visible buffers shared by every upload (`up`) and read-back (`down`): grown when short,
/// never freed, so a frame allocates nothing. Submissions are serial and waited for, so one
/// command buffer at a time owns them; each command buffer stages its uploads in one call.
pub(super) struct HostBufs {
    pub up: Subbuffer<[f32]>,
    pub down: Subbuffer<[f32]>,
}

impl HostBufs {
    pub fn new(ctx: &Context) -> Result<Self, RenderError> {
        Ok(Self {
            up: host_buf(ctx, false, 1 << 16)?,
            down: host_buf(ctx, true, 1 << 16)?,
        })
    }
}

/// The small buffers beside the big ones: kernel counters (key count first), read by the host.
pub(super) fn counters_buf(ctx: &Context) -> Result<Subbuffer<[u32]>, RenderError> {
    Buffer::from_iter(
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
    .map_err(vk("counters"))
}

/// The per-submission values the kernels read (`FRAME_BUFFER` in common.glsl), host-written.
pub(super) fn frame_buf(ctx: &Context) -> Result<Subbuffer<[f32]>, RenderError> {
    Buffer::from_iter(
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
    .map_err(vk("frame buffer"))
}

impl VulkanRenderer {
    /// Grows the image buffers to fit `cam` (forgetting recordings that hold the old ones).
    pub(super) fn ensure_image(&mut self, cam: &Camera) -> Result<(), RenderError> {
        let pixels = cam.pixels();
        let (tx, ty) = cam.tiles();
        let tiles = (tx * ty) as usize;
        if let Some(b) = &self.img {
            if b.pixels >= pixels && b.tiles >= tiles {
                return Ok(());
            }
        }
        self.forget_recordings();
        self.img = Some(ImageBufs::new(&self.ctx, pixels, tiles)?);
        Ok(())
    }

    /// The image buffers (sized by [`Self::ensure_image`] before any recording).
    pub(super) fn img(&self) -> &ImageBufs {
        self.img.as_ref().expect("ensured")
    }

    /// Writes the per-submission values the kernels read: pose rows and/or Adam's bias
    /// corrections (the other part keeps its value).
    pub(super) fn write_frame(
        &self,
        pose: Option<&[f32; 12]>,
        adam: Option<[f32; 2]>,
    ) -> Result<(), RenderError> {
        let mut w = self.frame.write().map_err(vk("frame write"))?;
        if let Some(p) = pose {
            w[..12].copy_from_slice(p);
        }
        if let Some(a) = adam {
            w[12..14].copy_from_slice(&a);
        }
        Ok(())
    }

    /// The upload (`down == false`) or read-back buffer with room for `len` floats.
    pub(super) fn host(&self, down: bool, len: usize) -> Result<Subbuffer<[f32]>, RenderError> {
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
    pub(super) fn stage(
        &self,
        parts: &[&[f32]],
    ) -> Result<Vec<Option<Subbuffer<[f32]>>>, RenderError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let up = self.host(false, total)?;
        let mut out = Vec::with_capacity(parts.len());
        {
            let mut w = up.write().map_err(vk("staging write"))?;
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
    pub(super) fn copy(
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
        .map_err(vk("copy"))?;
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
    pub(super) fn record_read_params(
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
    pub(super) fn record_write_params(
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

    /// Reads `len` floats of the read-back buffer after a submission.
    pub(super) fn read_down(&self, len: usize) -> Result<Vec<f32>, RenderError> {
        let down = self.host(true, len)?;
        let r = down.read().map_err(vk("read"))?;
        Ok(r[..len].to_vec())
    }

    /// Reads the first `self.n` Gaussians of each parameter-layout buffer in `srcs` (one
    /// submission).
    pub(super) fn read_params(
        &self,
        srcs: &[&Subbuffer<[f32]>],
    ) -> Result<Vec<Gaussians>, RenderError> {
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

    /// Keys the latest forward emitted (may exceed the key capacity: then it regrows).
    pub(super) fn key_count(&self) -> Result<usize, RenderError> {
        Ok(self.counters.read().map_err(vk("counters"))?[0] as usize)
    }
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
    .map_err(vk("buffer view"))
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
    .map_err(vk("host buffer"))
}

/// A device-local buffer usable as storage, texels and copy source/destination.
pub(super) fn dev<T: BufferContents>(
    ctx: &Context,
    len: usize,
) -> Result<Subbuffer<[T]>, RenderError>
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
    .map_err(vk("buffer"))
}
