//! GPU timestamps after every dispatch (enabled by `GS_LIVO_RENDER_PROFILE`); per-kernel
//! milliseconds accumulate until [`crate::render::Renderer::kernel_profile`] takes them.

use std::cell::RefCell;
use std::sync::Arc;

use vulkano::query::{QueryPool, QueryPoolCreateInfo, QueryResultFlags, QueryType};
use vulkano::sync::PipelineStage;

use super::context::{vk, Context};
use super::submit::Builder;
use crate::render::RenderError;

/// Timestamp slots per command buffer (one before the first dispatch, one after each).
const PROFILE_QUERIES: u32 = 128;

pub(super) struct Profiler {
    pool: Arc<QueryPool>,
    period_ns: f64,
    /// Kernel names of the timestamps recorded into the current command buffer.
    pub labels: RefCell<Vec<&'static str>>,
    acc: RefCell<Vec<(&'static str, f64)>>,
}

impl Profiler {
    /// A profiler when `GS_LIVO_RENDER_PROFILE` is set.
    pub fn from_env(ctx: &Context) -> Result<Option<Self>, RenderError> {
        if std::env::var_os("GS_LIVO_RENDER_PROFILE").is_none() {
            return Ok(None);
        }
        let pool = QueryPool::new(
            ctx.device.clone(),
            QueryPoolCreateInfo {
                query_count: PROFILE_QUERIES,
                ..QueryPoolCreateInfo::query_type(QueryType::Timestamp)
            },
        )
        .map_err(vk("query pool"))?;
        Ok(Some(Self {
            pool,
            period_ns: ctx.device.physical_device().properties().timestamp_period as f64,
            labels: RefCell::new(Vec::new()),
            acc: RefCell::new(Vec::new()),
        }))
    }

    /// Resets the queries and writes the first timestamp of a new command buffer.
    pub fn begin(&self, b: &mut Builder) -> Result<(), RenderError> {
        self.labels.borrow_mut().clear();
        // SAFETY: the pool is only used by this renderer's (serial) submissions.
        unsafe {
            b.reset_query_pool(self.pool.clone(), 0..PROFILE_QUERIES)
                .map_err(vk("reset queries"))?;
            b.write_timestamp(self.pool.clone(), 0, PipelineStage::AllCommands)
                .map_err(vk("timestamp"))?;
        }
        Ok(())
    }

    /// Writes a timestamp after the dispatch of kernel `name` (while slots are left).
    pub fn mark(&self, b: &mut Builder, name: &'static str) -> Result<(), RenderError> {
        let mut labels = self.labels.borrow_mut();
        let q = labels.len() as u32 + 1;
        if q < PROFILE_QUERIES {
            // SAFETY: the query was reset at the start of this command buffer.
            unsafe { b.write_timestamp(self.pool.clone(), q, PipelineStage::AllCommands) }
                .map_err(vk("timestamp"))?;
            labels.push(name);
        }
        Ok(())
    }

    /// Reads the timestamps of the command buffer just waited for into the profile.
    pub fn collect(&self) -> Result<(), RenderError> {
        let labels = self.labels.borrow();
        if labels.is_empty() {
            return Ok(());
        }
        let mut ts = vec![0u64; labels.len() + 1];
        self.pool
            .get_results(0..ts.len() as u32, &mut ts, QueryResultFlags::WAIT)
            .map_err(vk("query results"))?;
        let mut acc = self.acc.borrow_mut();
        for (i, l) in labels.iter().enumerate() {
            let ms = ts[i + 1].saturating_sub(ts[i]) as f64 * self.period_ns * 1e-6;
            tracing::trace!(kernel = l, ms, "kernel time");
            acc.push((l, ms));
        }
        Ok(())
    }

    /// The accumulated per-kernel milliseconds, emptied.
    pub fn take(&self) -> Vec<(&'static str, f64)> {
        std::mem::take(&mut *self.acc.borrow_mut())
    }
}
