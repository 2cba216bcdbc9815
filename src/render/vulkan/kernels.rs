//! Kernel loading: one compute pipeline per shader, from the SPIR-V that build.rs compiled.

use std::sync::Arc;

use vulkano::pipeline::ComputePipeline;

use super::context::Context;
use crate::render::{RenderError, TILE};

macro_rules! spv {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".spv"))
    };
}

/// A compute pipeline and its name (for the kernel profile).
pub(super) struct Kernel {
    pub p: Arc<ComputePipeline>,
    pub name: &'static str,
}

/// Every kernel the renderer records, by stage.
pub(super) struct Pipelines {
    pub project: Kernel,
    pub scan: Kernel,
    pub emit: Kernel,
    pub hist: Kernel,
    pub scatter: Kernel,
    pub ranges: Kernel,
    pub fwd: Kernel,
    pub bwd: Kernel,
    pub pbwd: Kernel,
    pub ssim_h: Kernel,
    pub loss_fwd: Kernel,
    pub ssim_bh: Kernel,
    pub loss_bwd: Kernel,
    pub adam: Kernel,
}

impl Pipelines {
    /// Builds every pipeline; the backward kernels in their compare-and-swap form where the
    /// device lacks float atomics.
    pub fn load(ctx: &Context) -> Result<Self, RenderError> {
        let fa = ctx.float_atomics;
        // Workgroup size (id 0) and the pixel block per invocation (ids 1-3) of the raster kernels.
        let spec = |[r, c, cull]: [u32; 3]| [(0, TILE * TILE / (r * c)), (1, r), (2, c), (3, cull)];
        let fwd_spec = spec(ctx.raster_fwd);
        let bwd_spec = spec(ctx.raster_bwd);
        Ok(Self {
            project: kernel(ctx, "project", spv!("project"))?,
            scan: kernel(ctx, "scan", spv!("scan"))?,
            emit: kernel(ctx, "emit", spv!("emit"))?,
            hist: kernel(ctx, "radix_hist", spv!("radix_hist"))?,
            scatter: kernel(ctx, "radix_scatter", spv!("radix_scatter"))?,
            ranges: kernel(ctx, "ranges", spv!("ranges"))?,
            fwd: kernel_spec(ctx, "raster_fwd", spv!("raster_fwd"), &fwd_spec)?,
            bwd: if fa {
                kernel_spec(ctx, "raster_bwd", spv!("raster_bwd"), &bwd_spec)?
            } else {
                kernel_spec(ctx, "raster_bwd_cas", spv!("raster_bwd_cas"), &bwd_spec)?
            },
            pbwd: if fa {
                kernel(ctx, "project_bwd", spv!("project_bwd"))?
            } else {
                kernel(ctx, "project_bwd_cas", spv!("project_bwd_cas"))?
            },
            ssim_h: kernel(ctx, "ssim_h", spv!("ssim_h"))?,
            loss_fwd: kernel(ctx, "loss_fwd", spv!("loss_fwd"))?,
            ssim_bh: kernel(ctx, "ssim_bh", spv!("ssim_bh"))?,
            loss_bwd: kernel(ctx, "loss_bwd", spv!("loss_bwd"))?,
            adam: kernel(ctx, "adam", spv!("adam"))?,
        })
    }
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
