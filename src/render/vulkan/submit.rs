//! Command buffers: building, submitting and waiting, keeping recordings for resubmission,
//! and the one dispatch helper every stage records with.

use std::sync::Arc;

use vulkano::buffer::view::BufferView;
use vulkano::buffer::Subbuffer;
use vulkano::command_buffer::{
    AutoCommandBufferBuilder, CommandBufferUsage, PrimaryAutoCommandBuffer,
    PrimaryCommandBufferAbstract,
};
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::pipeline::{Pipeline, PipelineBindPoint};
use vulkano::sync::GpuFuture;

use super::buffers::KeyBufs;
use super::context::vk;
use super::kernels::Kernel;
use super::renderer::VulkanRenderer;
use crate::render::{Camera, RenderError};

pub(super) type Builder = AutoCommandBufferBuilder<PrimaryAutoCommandBuffer>;

/// A command buffer kept for resubmission, with the kernel labels of its timestamps.
pub(super) struct Recorded {
    cb: Arc<PrimaryAutoCommandBuffer>,
    labels: Vec<&'static str>,
}

/// Most recordings kept at once (a mapper cycles through a few cameras and call kinds).
const MAX_RECORDED: usize = 32;

/// What a recording is for; with the words of [`CbKey`] it names everything recorded into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum CbKind {
    Forward,
    Step,
    Backward,
    Loss,
    Adam,
}

/// Identifies a recording: its kind and every value recorded into it (push constants, sizes,
/// staging lengths). Buffers are not in it: replacing one forgets every recording.
pub(super) type CbKey = (CbKind, Vec<u32>);

/// A buffer or texel view bound to a kernel's descriptor set.
pub(super) trait Bind {
    fn write(&self, binding: u32) -> WriteDescriptorSet;
}

impl<T: ?Sized> Bind for Subbuffer<T> {
    fn write(&self, binding: u32) -> WriteDescriptorSet {
        WriteDescriptorSet::buffer(binding, self.clone())
    }
}

impl Bind for Arc<BufferView> {
    fn write(&self, binding: u32) -> WriteDescriptorSet {
        WriteDescriptorSet::buffer_view(binding, self.clone())
    }
}

impl VulkanRenderer {
    /// Records kernel `k` over `groups` workgroups with push constants `pc`; `binds[i]` goes to
    /// binding `i` (bindings the kernel does not declare are left out).
    pub(super) fn dispatch(
        &self,
        b: &mut Builder,
        k: &Kernel,
        binds: &[&dyn Bind],
        pc: &[u32; 32],
        groups: [u32; 3],
    ) -> Result<(), RenderError> {
        let p = &k.p;
        let layout = p.layout().clone();
        let bindings = layout.set_layouts()[0].bindings();
        let writes: Vec<_> = (0u32..)
            .zip(binds)
            .filter(|(i, _)| bindings.contains_key(i))
            .map(|(i, w)| w.write(i))
            .collect();
        let set = DescriptorSet::new(
            self.ctx.ds_alloc.clone(),
            layout.set_layouts()[0].clone(),
            writes,
            [],
        )
        .map_err(vk("descriptor set"))?;
        b.bind_pipeline_compute(p.clone())
            .map_err(vk("bind"))?
            .bind_descriptor_sets(PipelineBindPoint::Compute, layout.clone(), 0, set)
            .map_err(vk("bind sets"))?
            .push_constants(layout, 0, *pc)
            .map_err(vk("push"))?;
        let groups = groups.map(|g| g.max(1));
        // SAFETY: every shader bounds-checks its indices against sizes in the push constants,
        // which match the bound buffers.
        unsafe { b.dispatch(groups) }.map_err(vk("dispatch"))?;
        match &self.prof {
            Some(pr) => pr.mark(b, k.name),
            None => Ok(()),
        }
    }

    pub(super) fn builder(&self) -> Result<Builder, RenderError> {
        self.builder_for(CommandBufferUsage::OneTimeSubmit)
    }

    fn builder_for(&self, usage: CommandBufferUsage) -> Result<Builder, RenderError> {
        let mut b = AutoCommandBufferBuilder::primary(
            self.ctx.cb_alloc.clone(),
            self.ctx.queue.queue_family_index(),
            usage,
        )
        .map_err(vk("command buffer"))?;
        if let Some(pr) = &self.prof {
            pr.begin(&mut b)?;
        }
        Ok(b)
    }

    pub(super) fn submit(&self, b: Builder) -> Result<(), RenderError> {
        let cb = b.build().map_err(vk("build"))?;
        self.execute(cb)
    }

    /// Submits `cb`, waits for it and collects its timestamps.
    fn execute(&self, cb: Arc<PrimaryAutoCommandBuffer>) -> Result<(), RenderError> {
        let t0 = std::time::Instant::now();
        cb.execute(self.ctx.queue.clone())
            .map_err(vk("execute"))?
            .then_signal_fence_and_flush()
            .map_err(vk("flush"))?
            .wait(None)
            .map_err(vk("wait"))?;
        if let Some(pr) = &self.prof {
            pr.collect()?;
        }
        tracing::trace!(run_ms = t0.elapsed().as_secs_f64() * 1e3, "submit");
        Ok(())
    }

    /// Submits the recording named by `key`, recording it with `record` first when there is
    /// none. The frame buffer must hold this submission's values.
    pub(super) fn run_recorded(
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
            None => self.record_and_keep(key, record)?,
        };
        self.execute(cb)
    }

    /// Records a command buffer with `record` and keeps it under `key`.
    fn record_and_keep(
        &self,
        key: CbKey,
        record: impl FnOnce(&Self, &mut Builder) -> Result<(), RenderError>,
    ) -> Result<Arc<PrimaryAutoCommandBuffer>, RenderError> {
        let t0 = std::time::Instant::now();
        let mut b = self.builder_for(CommandBufferUsage::MultipleSubmit)?;
        record(self, &mut b)?;
        let cb = b.build().map_err(vk("build"))?;
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
        Ok(cb)
    }

    /// Drops every kept recording (they hold buffers that are being replaced).
    pub(super) fn forget_recordings(&self) {
        self.recorded.borrow_mut().clear();
    }

    /// Runs the recording `kind` with the static values `words` (recorded by `record`, which
    /// records a forward and gets the push constants) and regrows the key buffers when they
    /// overflowed.
    pub(super) fn run_with_keys(
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
            self.grow_keys(used)?;
            if !retry {
                return Ok(());
            }
        }
    }

    /// Regrows the key buffers after a forward emitted `used` keys (more than they hold).
    fn grow_keys(&mut self, used: usize) -> Result<(), RenderError> {
        let new_cap = (used as f64 * 1.25) as usize;
        tracing::debug!(used, old = self.k.cap, new_cap, "growing key buffers");
        self.forget_recordings();
        self.k = KeyBufs::new(&self.ctx, new_cap)?;
        self.keys_per_gaussian = self
            .keys_per_gaussian
            .max(new_cap as f64 / self.n.max(1) as f64);
        Ok(())
    }
}
