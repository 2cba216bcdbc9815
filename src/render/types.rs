//! Data exchanged with the rasteriser: camera, Gaussians (flat, grouped parameter vector),
//! images, gradients and the pose perturbation convention.

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};

use super::RenderError;

/// Side length of a screen tile in pixels (fixed: shaders use 16x16 workgroups).
pub const TILE: u32 = 16;
/// Low-pass dilation added to the 2D covariance diagonal (px^2), as in 3DGS.
pub const DILATION: f64 = 0.3;
/// Opacity clamp of one Gaussian at one pixel.
pub const ALPHA_MAX: f64 = 0.99;
/// Contributions below this alpha are skipped.
pub const ALPHA_MIN: f64 = 1.0 / 255.0;
/// Front-to-back blending stops when transmittance would fall below this.
pub const T_MIN: f64 = 1e-4;

/// Pinhole camera (optical frame: z forward, x right, y down). Pixel (u, v) samples the
/// continuous image point (u, v), i.e. pixel centres are at integer coordinates (OpenCV).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    pub width: u32,
    pub height: u32,
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    /// Gaussians with camera-frame depth below `near` are culled.
    pub near: f64,
    /// Gaussians with camera-frame depth above `far` are culled.
    pub far: f64,
}

impl Camera {
    /// A camera with the principal point at the image centre and `near = 0.01`, `far = 1000`.
    pub fn new(width: u32, height: u32, fx: f64, fy: f64) -> Self {
        Self {
            width,
            height,
            fx,
            fy,
            cx: (width as f64 - 1.0) / 2.0,
            cy: (height as f64 - 1.0) / 2.0,
            near: 0.01,
            far: 1000.0,
        }
    }

    pub fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }

    pub fn tiles(&self) -> (u32, u32) {
        (self.width.div_ceil(TILE), self.height.div_ceil(TILE))
    }

    pub(crate) fn validate(&self) -> Result<(), RenderError> {
        let ok = self.width > 0
            && self.height > 0
            && self.width <= 16384
            && self.height <= 16384
            && [self.fx, self.fy].iter().all(|f| f.is_finite() && *f > 0.0)
            && self.cx.is_finite()
            && self.cy.is_finite()
            && self.near > 0.0
            && self.far > self.near;
        if ok {
            Ok(())
        } else {
            Err(RenderError::InvalidInput(format!("bad camera {self:?}")))
        }
    }
}

/// Number of SH coefficients per colour channel for a degree (0..=3).
pub const fn sh_coeffs(degree: u32) -> usize {
    ((degree + 1) * (degree + 1)) as usize
}

/// Parameter groups, in storage order. Adam has one learning rate per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// World-frame mean, 3 per Gaussian.
    Mean = 0,
    /// Natural log of the three axis scales.
    LogScale = 1,
    /// Rotation quaternion (w, x, y, z), need not be normalised.
    Rotation = 2,
    /// Opacity logit (opacity = sigmoid(logit)).
    Opacity = 3,
    /// SH degree-0 coefficients (RGB).
    ShDc = 4,
    /// SH coefficients of degree 1..=3, per Gaussian `(K - 1) * 3` values, coefficient-major
    /// (`[k][rgb]`), k = 1..K.
    ShRest = 5,
}

pub const GROUPS: [Group; 6] = [
    Group::Mean,
    Group::LogScale,
    Group::Rotation,
    Group::Opacity,
    Group::ShDc,
    Group::ShRest,
];

/// Floats per Gaussian in each group for an SH degree.
pub fn group_widths(sh_degree: u32) -> [usize; 6] {
    [3, 3, 4, 1, 3, 3 * (sh_coeffs(sh_degree) - 1)]
}

/// A set of Gaussians (or gradients, or Adam moments) as one flat vector, structure of arrays by
/// group: `[means 3n | log_scales 3n | rotations 4n | opacity n | sh_dc 3n | sh_rest 3(K-1)n]`.
/// Within a group, Gaussian i owns a contiguous run (`width * i ..`).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianSet<T> {
    n: usize,
    sh_degree: u32,
    pub data: Vec<T>,
}

/// Gaussians as stored and uploaded (f32).
pub type Gaussians = GaussianSet<f32>;

impl<T: Copy + Default> GaussianSet<T> {
    /// `n` Gaussians with all parameters zero.
    pub fn zeros(n: usize, sh_degree: u32) -> Result<Self, RenderError> {
        if sh_degree > 3 {
            return Err(RenderError::InvalidInput(format!(
                "SH degree {sh_degree} > 3"
            )));
        }
        let per: usize = group_widths(sh_degree).iter().sum();
        Ok(Self {
            n,
            sh_degree,
            data: vec![T::default(); per * n],
        })
    }

    /// Wraps a flat vector (checked length).
    pub fn from_data(n: usize, sh_degree: u32, data: Vec<T>) -> Result<Self, RenderError> {
        let z = Self::zeros(0, sh_degree)?;
        let per: usize = group_widths(sh_degree).iter().sum();
        if data.len() != per * n {
            return Err(RenderError::InvalidInput(format!(
                "parameter vector has {} values, expected {}",
                data.len(),
                per * n
            )));
        }
        Ok(Self { n, data, ..z })
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn sh_degree(&self) -> u32 {
        self.sh_degree
    }

    /// Floats per Gaussian over all groups.
    pub fn floats_per_gaussian(&self) -> usize {
        group_widths(self.sh_degree).iter().sum()
    }

    /// Start of a group in `data`.
    pub fn group_offset(&self, g: Group) -> usize {
        let w = group_widths(self.sh_degree);
        w[..g as usize].iter().sum::<usize>() * self.n
    }

    pub fn group(&self, g: Group) -> &[T] {
        let o = self.group_offset(g);
        &self.data[o..o + group_widths(self.sh_degree)[g as usize] * self.n]
    }

    pub fn group_mut(&mut self, g: Group) -> &mut [T] {
        let o = self.group_offset(g);
        let len = group_widths(self.sh_degree)[g as usize] * self.n;
        &mut self.data[o..o + len]
    }

    /// The values of Gaussian `i` in group `g`.
    pub fn get(&self, g: Group, i: usize) -> &[T] {
        let w = group_widths(self.sh_degree)[g as usize];
        &self.group(g)[w * i..w * (i + 1)]
    }

    pub fn get_mut(&mut self, g: Group, i: usize) -> &mut [T] {
        let w = group_widths(self.sh_degree)[g as usize];
        &mut self.group_mut(g)[w * i..w * (i + 1)]
    }

    /// Gaussians `range` as a new set.
    pub fn slice(&self, start: usize, count: usize) -> Self {
        let mut out = Self {
            n: count,
            sh_degree: self.sh_degree,
            data: Vec::with_capacity(count * self.floats_per_gaussian()),
        };
        for g in GROUPS {
            let w = group_widths(self.sh_degree)[g as usize];
            out.data
                .extend_from_slice(&self.group(g)[w * start..w * (start + count)]);
        }
        out
    }

    /// Converts the element type (e.g. f32 <-> f64).
    pub fn map<U: Copy + Default>(&self, f: impl Fn(T) -> U) -> GaussianSet<U> {
        GaussianSet {
            n: self.n,
            sh_degree: self.sh_degree,
            data: self.data.iter().map(|&x| f(x)).collect(),
        }
    }
}

/// An error unless `update` Gaussians written at `start` fit a set of `len` Gaussians of SH
/// degree `sh_degree` (what `Renderer::update_gaussians` accepts).
pub(crate) fn check_update(
    start: usize,
    update: &Gaussians,
    len: usize,
    sh_degree: u32,
) -> Result<(), RenderError> {
    if update.sh_degree() != sh_degree || start + update.len() > len {
        return Err(RenderError::InvalidInput(format!(
            "update of {} Gaussians at {start} (degree {}) does not fit {len} (degree {sh_degree})",
            update.len(),
            update.sh_degree(),
        )));
    }
    Ok(())
}

impl Gaussians {
    /// Overwrites Gaussians `start..start + g.len()` with `g` (same SH degree).
    pub fn overwrite(&mut self, start: usize, g: &Gaussians) -> Result<(), RenderError> {
        check_update(start, g, self.len(), self.sh_degree())?;
        for grp in GROUPS {
            let w = group_widths(g.sh_degree())[grp as usize];
            self.group_mut(grp)[w * start..w * (start + g.len())].copy_from_slice(g.group(grp));
        }
        Ok(())
    }

    /// Appends one Gaussian. `sh` holds `K * 3` values (`[k][rgb]`, k = 0 the DC term).
    pub fn push(
        &mut self,
        mean: [f32; 3],
        log_scale: [f32; 3],
        rotation_wxyz: [f32; 4],
        opacity_logit: f32,
        sh: &[f32],
    ) -> Result<(), RenderError> {
        let k = sh_coeffs(self.sh_degree);
        if sh.len() != 3 * k {
            return Err(RenderError::InvalidInput(format!(
                "{} SH values for degree {}",
                sh.len(),
                self.sh_degree
            )));
        }
        let mut next = Self::zeros(self.n + 1, self.sh_degree)?;
        for g in GROUPS {
            let o = self.group(g).len();
            next.group_mut(g)[..o].copy_from_slice(self.group(g));
        }
        let i = self.n;
        next.get_mut(Group::Mean, i).copy_from_slice(&mean);
        next.get_mut(Group::LogScale, i).copy_from_slice(&log_scale);
        next.get_mut(Group::Rotation, i)
            .copy_from_slice(&rotation_wxyz);
        next.get_mut(Group::Opacity, i)[0] = opacity_logit;
        next.get_mut(Group::ShDc, i).copy_from_slice(&sh[..3]);
        next.get_mut(Group::ShRest, i).copy_from_slice(&sh[3..]);
        *self = next;
        Ok(())
    }
}

/// SH degree-0 coefficient that yields a given RGB colour (colour = C0 * dc + 0.5).
pub fn rgb_to_sh_dc(rgb: [f32; 3]) -> [f32; 3] {
    rgb.map(|c| ((c as f64 - 0.5) / super::sh::C0) as f32)
}

/// Rendered images, row-major, `width * height` pixels; colour is interleaved RGB.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutput {
    pub width: u32,
    pub height: u32,
    /// RGB, `3 * pixels` (linear, not clamped to 1).
    pub colour: Vec<f32>,
    /// Alpha-weighted camera-frame depth sum_i z_i alpha_i T_i (divide by alpha for a mean).
    pub depth: Vec<f32>,
    /// Accumulated opacity 1 - T_final.
    pub alpha: Vec<f32>,
}

/// Gradients of a scalar loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// Same layout as the Gaussians.
    pub params: Gaussians,
    /// d loss / d xi for the camera pose perturbation, see [`perturb_pose`]:
    /// `[v_x, v_y, v_z, w_x, w_y, w_z]` (translation first, then rotation).
    pub pose: [f64; 6],
}

/// The pose perturbation the pose gradient refers to: a LEFT perturbation of the world-to-camera
/// pose, in the camera frame: `T_cw(xi) = (exp(w) R_cw, exp(w) t_cw + v)` with
/// `xi = [v, w]`, i.e. a camera-frame point moves as `p_c -> exp(w) p_c + v`. To first order this
/// equals `Exp_SE3(xi) * T_cw`. For a body pose `T_wb` with extrinsic `T_bc`,
/// `T_cw = T_bc^-1 T_wb^-1`; chain accordingly.
pub fn perturb_pose(t_cw: &Isometry3<f64>, xi: &[f64; 6]) -> Isometry3<f64> {
    let dr = UnitQuaternion::from_scaled_axis(Vector3::new(xi[3], xi[4], xi[5]));
    let rot = dr * t_cw.rotation;
    let trans = dr * t_cw.translation.vector + Vector3::new(xi[0], xi[1], xi[2]);
    Isometry3::from_parts(Translation3::from(trans), rot)
}

/// Loss settings: `(1 - ssim_weight) * L1 + ssim_weight * (1 - SSIM)`, both means over pixels
/// and channels; SSIM with an 11x11 Gaussian window (sigma 1.5), zero padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossConfig {
    pub ssim_weight: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self { ssim_weight: 0.2 }
    }
}

/// Adam settings with one learning rate per parameter group (order of [`GROUPS`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: [f64; 6],
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        // 3DGS defaults (position lr scaled for metric scenes of a few metres).
        Self {
            lr: [1.6e-4, 5e-3, 1e-3, 5e-2, 2.5e-3, 2.5e-3 / 20.0],
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-15,
        }
    }
}

/// Adam moments in the Gaussians' layout, plus the step count (for bias correction).
#[derive(Debug, Clone, PartialEq)]
pub struct AdamState {
    pub m: Gaussians,
    pub v: Gaussians,
    pub step: u32,
}

impl AdamState {
    pub fn new(n: usize, sh_degree: u32) -> Result<Self, RenderError> {
        Ok(Self {
            m: Gaussians::zeros(n, sh_degree)?,
            v: Gaussians::zeros(n, sh_degree)?,
            step: 0,
        })
    }

    /// An error unless these moments belong to Gaussians like `g` (count and SH degree).
    pub fn check_fits(&self, g: &Gaussians) -> Result<(), RenderError> {
        let fits = |x: &Gaussians| x.len() == g.len() && x.sh_degree() == g.sh_degree();
        if fits(&self.m) && fits(&self.v) {
            Ok(())
        } else {
            Err(RenderError::InvalidInput(
                "Adam state does not match the Gaussians".into(),
            ))
        }
    }

    /// `state` when it fits `g`, zero moments when there is none (what `set_gaussians` keeps).
    pub fn for_gaussians(g: &Gaussians, state: Option<&AdamState>) -> Result<Self, RenderError> {
        match state {
            Some(s) => s.check_fits(g).map(|()| s.clone()),
            None => Self::new(g.len(), g.sh_degree()),
        }
    }
}

/// Target image for the loss as interleaved RGB f32 in [0, 1] (from an RGB8 image).
pub fn image_to_f32(img: &crate::sensors::Image) -> Vec<f32> {
    img.rgb.iter().map(|&b| b as f32 / 255.0).collect()
}
