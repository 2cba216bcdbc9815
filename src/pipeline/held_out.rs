//! The delivered map scored on views it never trained on: the camera images the mapper held
//! out (`gaussian.held_out_every`), kept with their estimated poses, and the exported PLY read
//! back from the file and rendered at them as a standard 3DGS viewer would (every Gaussian in
//! the file, no background model).

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::map_stage::PosedFrameImage;
use super::PipelineError;
use crate::eval::image::{psnr_rgb8_exposed, ssim_rgb8_exposed};
use crate::gaussian::{read_ply, render_camera, to_render, ExportStats, Gaussian, SH_C0};
use crate::render::{create_renderer, RenderConfig};
use crate::sensors::{Camera, Image};
use nalgebra::Isometry3;

/// Held-out frames kept at most: full-resolution images (0.9 MB each at 640x480), so memory
/// stays bounded over any run length. When full, every second one is dropped and only every
/// second later one is taken, so the kept frames stay spread over the whole run.
pub const MAX_HELD_OUT_FRAMES: usize = 32;

/// The held-out camera images of a run with their estimated poses, spread over the run.
#[derive(Debug, Default)]
pub struct HeldOutFrames {
    frames: Vec<PosedFrameImage>,
    offered: u64,
    stride: u64,
}

impl HeldOutFrames {
    /// Takes a held-out frame if it falls on the current stride.
    pub fn offer(&mut self, f: &PosedFrameImage) {
        let stride = self.stride.max(1);
        let take = self.offered.is_multiple_of(stride);
        self.offered += 1;
        if !take {
            return;
        }
        self.frames.push(f.clone());
        if self.frames.len() > MAX_HELD_OUT_FRAMES {
            let mut i = 0;
            self.frames.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride = stride * 2;
        }
    }

    pub fn frames(&self) -> &[PosedFrameImage] {
        &self.frames
    }

    /// Held-out frames seen (kept or not).
    pub fn offered(&self) -> u64 {
        self.offered
    }
}

/// Quality of the exported map (`map.ply`, read back from the file) at held-out views.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportedMapQuality {
    /// Held-out camera images of the run, and how many were rendered (a bounded, spread set).
    pub held_out_frames: u64,
    pub scored_frames: usize,
    /// Mean PSNR (dB) and SSIM over the scored frames, in camera units (render times the
    /// frame's exposure gain, as the window's training figure); `None` without scored frames.
    pub held_out_psnr_db: Option<f64>,
    pub held_out_ssim: Option<f64>,
    /// The same at training images (the one before each held-out image), so a gap between
    /// the window's training PSNR and `held_out_psnr_db` splits into what the export loses
    /// (window against file at the same views) and what novel views lose.
    pub training_frames: usize,
    pub training_psnr_db: Option<f64>,
    pub training_ssim: Option<f64>,
    /// Gaussians in the file, and placeholders (never coloured, never optimised) left out.
    pub gaussians: usize,
    /// Of `gaussians`, the background's shell (see `gaussian::shell`).
    pub background_shell: usize,
    pub placeholders_left_out: usize,
    /// Gaussians whose DC colour has a channel outside [0, 1] (in the file, not clamped).
    pub dc_out_of_range: usize,
    /// Wall time of reading and rendering (ms).
    pub score_ms: f64,
}

impl ExportedMapQuality {
    /// One line for tables: held-out PSNR/SSIM and what the file holds.
    pub fn describe(&self) -> String {
        let score = match (self.held_out_psnr_db, self.held_out_ssim) {
            (Some(p), Some(s)) => format!("PSNR {p:.2} dB, SSIM {s:.3}"),
            (Some(p), None) => format!("PSNR {p:.2} dB"),
            _ => "no held-out frame".into(),
        };
        let trained = match (self.training_psnr_db, self.training_ssim) {
            (Some(p), Some(s)) => format!("{p:.2} dB / {s:.3}"),
            (Some(p), None) => format!("{p:.2} dB"),
            _ => "-".into(),
        };
        format!(
            "{score} at {} of {} held-out frames (at {} training frames: {trained}); {} Gaussians ({} of them the background shell), {} placeholders left out, {} with DC colour outside [0, 1]",
            self.scored_frames,
            self.held_out_frames,
            self.training_frames,
            self.gaussians,
            self.background_shell,
            self.placeholders_left_out,
            self.dc_out_of_range
        )
    }
}

/// Whether a Gaussian's view-independent colour leaves [0, 1] in some channel.
fn dc_out_of_range(g: &Gaussian) -> bool {
    g.sh[0]
        .iter()
        .map(|d| 0.5 + SH_C0 * d)
        .any(|c| !(0.0..=1.0).contains(&c))
}

/// Renders a PLY file at camera poses `camera_t_world` (RGB8, map units; nothing behind the
/// Gaussians, i.e. black), reading nothing but the file.
pub fn render_ply(
    ply: &Path,
    render: &RenderConfig,
    camera: &Camera,
    far: f64,
    camera_t_world: &[Isometry3<f64>],
) -> Result<(Vec<Image>, Vec<Gaussian>), PipelineError> {
    let file = std::fs::File::open(ply).map_err(|e| PipelineError::io(ply, e))?;
    let (gs, degree) = read_ply(std::io::BufReader::new(file))
        .map_err(|e| PipelineError::Output(format!("{}: {e}", ply.display())))?;
    let mut images = Vec::with_capacity(camera_t_world.len());
    if gs.is_empty() {
        images.resize(
            camera_t_world.len(),
            Image::new(0, camera.width, camera.height),
        );
        return Ok((images, gs));
    }
    let mut r = create_renderer(render)?;
    r.set_gaussians(&to_render(&gs, degree)?, None)?;
    let cam = render_camera(camera, far);
    for t in camera_t_world {
        let out = r.forward(&cam, t)?;
        let mut img = Image::new(0, camera.width, camera.height);
        for (d, s) in img.rgb.iter_mut().zip(&out.colour) {
            *d = (s.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
        images.push(img);
    }
    Ok((images, gs))
}

/// Scores the exported map `ply` at the held-out frames and at the sampled training frames
/// `trained` (camera `camera`, mounted at `imu_t_camera`).
#[allow(clippy::too_many_arguments)]
pub fn score_exported_map(
    ply: &Path,
    export: ExportStats,
    held_out: &HeldOutFrames,
    trained: &HeldOutFrames,
    render: &RenderConfig,
    camera: &Camera,
    imu_t_camera: &Isometry3<f64>,
    far: f64,
) -> Result<ExportedMapQuality, PipelineError> {
    let t = Instant::now();
    let frames: Vec<&PosedFrameImage> = held_out.frames().iter().chain(trained.frames()).collect();
    let poses: Vec<Isometry3<f64>> = frames
        .iter()
        .map(|f| (f.world_t_imu * imu_t_camera).inverse())
        .collect();
    let (renders, gs) = render_ply(ply, render, camera, far, &poses)?;
    let mut psnr = [Vec::new(), Vec::new()];
    let mut ssim = [Vec::new(), Vec::new()];
    let n_held = held_out.frames().len();
    for (i, (img, f)) in renders.iter().zip(&frames).enumerate() {
        let set = usize::from(i >= n_held);
        if let Ok(p) = psnr_rgb8_exposed(img, &f.image, f.exposure) {
            psnr[set].push(p);
        }
        if let Ok(s) = ssim_rgb8_exposed(img, &f.image, f.exposure) {
            ssim[set].push(s);
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    Ok(ExportedMapQuality {
        held_out_frames: held_out.offered(),
        scored_frames: psnr[0].len(),
        held_out_psnr_db: mean(&psnr[0]),
        held_out_ssim: mean(&ssim[0]),
        training_frames: psnr[1].len(),
        training_psnr_db: mean(&psnr[1]),
        training_ssim: mean(&ssim[1]),
        gaussians: gs.len(),
        background_shell: export.background_shell,
        placeholders_left_out: export.placeholders_left_out,
        dc_out_of_range: gs.iter().filter(|g| dc_out_of_range(g)).count(),
        score_ms: t.elapsed().as_secs_f64() * 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: u8) -> PosedFrameImage {
        let mut image = Image::new(u64::from(i), 2, 2);
        image.rgb[0] = i;
        PosedFrameImage {
            image,
            world_t_imu: Isometry3::identity(),
            exposure: 1.0,
        }
    }

    /// The kept set never exceeds its bound and stays spread from the first frame to late ones.
    #[test]
    fn held_out_frames_stay_bounded_and_spread() {
        let mut h = HeldOutFrames::default();
        let n = 5 * MAX_HELD_OUT_FRAMES as u64 + 3;
        for i in 0..n {
            h.offer(&frame(i as u8));
            assert!(h.frames().len() <= MAX_HELD_OUT_FRAMES);
        }
        assert_eq!(h.offered(), n);
        let kept: Vec<u64> = h.frames().iter().map(|f| f.image.stamp).collect();
        assert_eq!(kept[0], 0);
        assert!(kept.len() >= MAX_HELD_OUT_FRAMES / 2, "{kept:?}");
        // Evenly strided: the last kept is within one stride of the end.
        let stride = kept[1] - kept[0];
        assert!(kept.windows(2).all(|w| w[1] - w[0] == stride), "{kept:?}");
        assert!(n - kept[kept.len() - 1] <= stride, "{kept:?}");
    }
}
