//! The Vulkan renderer: its state and the [`Renderer`] calls, each staging its inputs,
//! running one recorded command buffer (see `submit`) and reading its outputs back. The
//! recording of each stage lives in its own module (`project`, `sort`, `raster`, `backward`,
//! `loss`, `adam`).

use std::cell::RefCell;
use std::collections::HashMap;

use nalgebra::Isometry3;
use vulkano::buffer::Subbuffer;

use super::adam::adam_frame;
use super::buffers::{
    counters_buf, dev, frame_buf, GaussBufs, HostBufs, ImageBufs, KeyBufs, BLOCK_KEYS,
};
use super::context::{vk, Context};
use super::kernels::Pipelines;
use super::profiler::Profiler;
use super::project::pose_rows;
use super::submit::{CbKey, CbKind, Recorded};
use crate::render::{
    check_grad_images, check_image, group_widths, AdamConfig, AdamState, Backend, Camera,
    Gaussians, Gradients, LossConfig, RenderConfig, RenderError, RenderOutput, Renderer,
};

/// Rasteriser on a Vulkan device; Gaussians, Adam moments and all intermediates stay on the GPU.
pub struct VulkanRenderer {
    pub(super) ctx: Context,
    pub(super) pl: Pipelines,
    pub(super) n: usize,
    pub(super) sh_degree: u32,
    pub(super) adam_step: u32,
    pub(super) keys_per_gaussian: f64,
    pub(super) g: GaussBufs,
    pub(super) k: KeyBufs,
    pub(super) img: Option<ImageBufs>,
    pub(super) counters: Subbuffer<[u32]>,
    pub(super) pose_grad: Subbuffer<[f32]>,
    /// Camera, push constants and pose rows of the latest forward (for backward / loss).
    pub(super) last: Option<(Camera, [u32; 32], [f32; 12])>,
    pub(super) have_grads: bool,
    pub(super) prof: Option<Profiler>,
    pub(super) host: RefCell<HostBufs>,
    /// Per-submission values the kernels read (`FRAME_BUFFER` in common.glsl): pose rows, Adam
    /// bias corrections. Host-visible, written before each submission.
    pub(super) frame: Subbuffer<[f32]>,
    /// Command buffers recorded once and submitted again while their key matches: recording
    /// and building one costs about a millisecond of CPU per optimisation step, which on a GPU
    /// is as long as the step itself.
    pub(super) recorded: RefCell<HashMap<CbKey, Recorded>>,
}

impl VulkanRenderer {
    /// Opens the device, loads the kernels and allocates buffers for
    /// `cfg.initial_capacity` Gaussians.
    pub fn new(cfg: &RenderConfig) -> Result<Self, RenderError> {
        let ctx = Context::new(cfg)?;
        let pl = Pipelines::load(&ctx)?;
        let cap = cfg.initial_capacity.max(16);
        let g = GaussBufs::new(&ctx, cap, 0)?;
        let kcap = ((cap as f64 * cfg.keys_per_gaussian.max(1.0)) as usize).max(BLOCK_KEYS);
        let k = KeyBufs::new(&ctx, kcap)?;
        Ok(Self {
            counters: counters_buf(&ctx)?,
            pose_grad: dev::<f32>(&ctx, 8)?,
            frame: frame_buf(&ctx)?,
            host: RefCell::new(HostBufs::new(&ctx)?),
            prof: Profiler::from_env(&ctx)?,
            ctx,
            pl,
            n: 0,
            sh_degree: 0,
            adam_step: 0,
            keys_per_gaussian: cfg.keys_per_gaussian.max(1.0),
            g,
            k,
            img: None,
            last: None,
            have_grads: false,
            recorded: RefCell::new(HashMap::new()),
        })
    }
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
        self.prof.as_ref().map(Profiler::take).unwrap_or_default()
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
            self.g = GaussBufs::new(&self.ctx, cap, g.sh_degree())?;
        }
        let want_keys = (g.len() as f64 * self.keys_per_gaussian) as usize;
        if want_keys > self.k.cap {
            self.forget_recordings();
            self.k = KeyBufs::new(&self.ctx, want_keys)?;
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
                    .map_err(vk("fill"))?;
                b.fill_buffer(self.g.v.clone().reinterpret::<[u32]>(), 0)
                    .map_err(vk("fill"))?;
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
                let img = s.img();
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
        check_grad_images(np, d_colour, d_depth, d_alpha)?;
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
            let img = s.img();
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
            let img = s.img();
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
                let img = s.img();
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
