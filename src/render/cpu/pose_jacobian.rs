//! Forward-mode pose derivatives of rendered pixels (CPU, f64), for the photometric update.
//!
//! The backward pass gives `J^T v` for one image-sized `v`; Gauss-Newton needs the rows of `J`
//! at a few thousand selected pixels. Forward mode does that cheaply: every projected Gaussian
//! carries the derivatives of its screen mean, conic and colour with respect to the 6 pose
//! parameters (the [`crate::render::perturb_pose`] convention, `xi = [v, w]`), and a pixel's
//! blend propagates them front to back. Same culling, ordering, clamps and early termination as
//! [`super::raster::forward`], so colour and alpha equal the reference forward exactly.

use std::cell::OnceCell;

use nalgebra::{Matrix2, Matrix2x3, Matrix3, Quaternion, Vector3};

use super::project::{self, project, PoseRt, Projected};
use crate::render::sh;
use crate::render::types::{
    sh_coeffs, Camera, GaussianSet, Group, ALPHA_MAX, ALPHA_MIN, TILE, T_MIN,
};

/// Derivative of a scalar w.r.t. the pose perturbation `[v, w]`.
pub type Tangent = [f64; 6];

/// The pose derivatives of what the blend uses from one projected Gaussian.
#[derive(Debug, Clone, Copy)]
struct ProjTangent {
    d_mean2d: [Tangent; 2],
    d_conic: [Tangent; 3],
    d_colour: [Tangent; 3],
}

/// Colour, alpha and their pose derivatives at one pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelJacobian {
    pub colour: [f64; 3],
    /// Accumulated opacity `1 - T_final`.
    pub alpha: f64,
    /// `d colour[ch] / d xi`.
    pub d_colour: [Tangent; 3],
    pub d_alpha: Tangent,
}

/// Projection of every Gaussian and the tile lists at one camera pose, with the tangents of
/// each Gaussian computed when a pixel's blend first uses it: the visual update reads at most
/// a few thousand pixels, which reach only part of the window, and tangents cost about as much
/// as the projection (same values as computing them all up front; with the single depth sort
/// of `new`, the update's frame and rows took 13 % fewer CPU samples on the embedded room).
#[derive(Debug, Clone)]
pub struct PoseJacobianFrame<'g> {
    g: &'g GaussianSet<f64>,
    cam: Camera,
    pose: PoseRt,
    /// Projection and colour clamps of the Gaussians that are binned.
    proj: Vec<Option<(Projected, [bool; 3])>>,
    tangents: Vec<OnceCell<ProjTangent>>,
    tiles: Vec<Vec<u32>>,
}

fn quat_to_mat(q: &[f64]) -> Option<Matrix3<f64>> {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if !(n.is_finite() && n > 1e-12) {
        return None;
    }
    let (w, x, y, z) = (q[0] / n, q[1] / n, q[2] / n, q[3] / n);
    Some(project::quat_to_mat(&Quaternion::new(w, x, y, z)))
}

fn skew(v: &Vector3<f64>) -> Matrix3<f64> {
    Matrix3::new(0.0, -v.z, v.y, v.z, 0.0, -v.x, -v.y, v.x, 0.0)
}

/// Tangents of one Gaussian that `project` kept.
fn tangents(
    g: &GaussianSet<f64>,
    i: usize,
    cam: &Camera,
    pose: &PoseRt,
    p: &Projected,
    clamped: [bool; 3],
) -> Option<ProjTangent> {
    let m = g.get(Group::Mean, i);
    let pw = Vector3::new(m[0], m[1], m[2]);
    let ls = g.get(Group::LogScale, i);
    let s = Vector3::new(ls[0].exp(), ls[1].exp(), ls[2].exp());
    let rot = quat_to_mat(g.get(Group::Rotation, i))?;
    let msc = rot * Matrix3::from_diagonal(&s);
    let sigma_c = pose.r * (msc * msc.transpose()) * pose.r.transpose();
    let pc = pose.r * pw + pose.t;
    let (x, y, z) = (pc.x, pc.y, pc.z);
    let (fx, fy) = (cam.fx, cam.fy);
    let j = Matrix2x3::new(
        fx / z,
        0.0,
        -fx * x / (z * z),
        0.0,
        fy / z,
        -fy * y / (z * z),
    );
    let conic = Matrix2::new(p.conic[0], p.conic[1], p.conic[1], p.conic[2]);

    // View direction for the SH colour; only the translation moves the camera centre.
    let k = sh_coeffs(g.sh_degree());
    let dir_raw = pw - pose.centre();
    let n = dir_raw.norm();
    let d = dir_raw / n;
    let (mut yb, mut dyb) = ([0.0; 16], [[0.0; 3]; 16]);
    sh::basis([d.x, d.y, d.z], k, &mut yb, &mut dyb);
    // d colour / d (unit direction), per channel.
    let rest = g.get(Group::ShRest, i);
    let mut dcol_ddir = [Vector3::zeros(); 3];
    for (ch, out) in dcol_ddir.iter_mut().enumerate() {
        for kk in 1..k {
            *out += Vector3::new(dyb[kk][0], dyb[kk][1], dyb[kk][2]) * rest[(kk - 1) * 3 + ch];
        }
    }
    let proj_dir = (Matrix3::identity() - d * d.transpose()) / n;

    let mut t = ProjTangent {
        d_mean2d: [[0.0; 6]; 2],
        d_conic: [[0.0; 6]; 3],
        d_colour: [[0.0; 6]; 3],
    };
    for kx in 0..6 {
        let e = Vector3::from_fn(|r, _| if r == kx % 3 { 1.0 } else { 0.0 });
        let (dpc, dsig) = if kx < 3 {
            (e, Matrix3::zeros())
        } else {
            let ks = skew(&e);
            (e.cross(&pc), ks * sigma_c - sigma_c * ks)
        };
        let (dx, dy, dz) = (dpc.x, dpc.y, dpc.z);
        t.d_mean2d[0][kx] = fx * (dx * z - x * dz) / (z * z);
        t.d_mean2d[1][kx] = fy * (dy * z - y * dz) / (z * z);
        let dj = Matrix2x3::new(
            -fx * dz / (z * z),
            0.0,
            -fx * dx / (z * z) + 2.0 * fx * x * dz / (z * z * z),
            0.0,
            -fy * dz / (z * z),
            -fy * dy / (z * z) + 2.0 * fy * y * dz / (z * z * z),
        );
        let jsj = dj * sigma_c * j.transpose();
        let dcov = jsj + jsj.transpose() + j * dsig * j.transpose();
        let dq = -(conic * dcov * conic);
        t.d_conic[0][kx] = dq[(0, 0)];
        t.d_conic[1][kx] = dq[(0, 1)];
        t.d_conic[2][kx] = dq[(1, 1)];
        if kx < 3 {
            // centre moves by -R^T v, so the raw direction by +R^T v.
            let ddir = proj_dir * (pose.r.transpose() * e);
            for ch in 0..3 {
                if !clamped[ch] {
                    t.d_colour[ch][kx] = dcol_ddir[ch].dot(&ddir);
                }
            }
        }
    }
    Some(t)
}

impl<'g> PoseJacobianFrame<'g> {
    /// Projects every Gaussian at world-to-camera pose `t_cw` and bins them into tiles, each
    /// tile front to back (by f32 depth, then index).
    pub fn new(g: &'g GaussianSet<f64>, cam: &Camera, t_cw: &nalgebra::Isometry3<f64>) -> Self {
        let pose = PoseRt::from_iso(t_cw);
        let proj: Vec<Option<(Projected, [bool; 3])>> = (0..g.len())
            .map(|i| {
                // `tangents` needs the rotation `project` already checked (same test), so
                // every Gaussian binned here has tangents.
                project(g, i, cam, &pose)
                    .filter(|_| quat_to_mat(g.get(Group::Rotation, i)).is_some())
            })
            .collect();
        // One sort of the visible Gaussians, then binning in that order, gives every tile the
        // order a sort per tile would (a strict total order), without sorting the Gaussians
        // that overlap several tiles once per tile.
        let mut order: Vec<(f32, u32)> = proj
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|(p, _)| (p.depth as f32, i as u32)))
            .collect();
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (tx, ty) = cam.tiles();
        let mut tiles: Vec<Vec<u32>> = vec![Vec::new(); (tx * ty) as usize];
        for &(_, i) in &order {
            if let Some((p, _)) = &proj[i as usize] {
                let r = p.rect;
                for y in r[2]..r[3] {
                    for x in r[0]..r[1] {
                        tiles[(y * tx + x) as usize].push(i);
                    }
                }
            }
        }
        Self {
            g,
            cam: *cam,
            pose,
            tangents: vec![OnceCell::new(); proj.len()],
            proj,
            tiles,
        }
    }

    /// The tangents of binned Gaussian `i` (computed on first use).
    fn tangent(&self, i: usize, p: &Projected, clamped: [bool; 3]) -> &ProjTangent {
        self.tangents[i].get_or_init(|| {
            // Never `None` for a binned Gaussian (see `new`); zeros keep a bad value local.
            tangents(self.g, i, &self.cam, &self.pose, p, clamped).unwrap_or(ProjTangent {
                d_mean2d: [[0.0; 6]; 2],
                d_conic: [[0.0; 6]; 3],
                d_colour: [[0.0; 6]; 3],
            })
        })
    }

    pub fn camera(&self) -> &Camera {
        &self.cam
    }

    /// Number of Gaussians that survived culling.
    pub fn visible(&self) -> usize {
        self.proj.iter().filter(|p| p.is_some()).count()
    }

    /// Colour, alpha and pose derivatives at pixel `(px, py)` (`None` outside the image).
    pub fn pixel(&self, px: u32, py: u32) -> Option<PixelJacobian> {
        if px >= self.cam.width || py >= self.cam.height {
            return None;
        }
        let (tx, _) = self.cam.tiles();
        let list = &self.tiles[((py / TILE) * tx + px / TILE) as usize];
        let (fx, fy) = (px as f64, py as f64);
        let mut t = 1.0;
        let mut dt = [0.0; 6];
        let mut c = [0.0; 3];
        let mut dc = [[0.0; 6]; 3];
        for &gi in list {
            let Some((p, clamped)) = self.proj[gi as usize].as_ref() else {
                continue; // binned Gaussians are projected (see `new`)
            };
            let ddx = p.mean2d[0] - fx;
            let ddy = p.mean2d[1] - fy;
            let (ca, cb, cc) = (p.conic[0], p.conic[1], p.conic[2]);
            let power = -0.5 * (ca * ddx * ddx + cc * ddy * ddy) - cb * ddx * ddy;
            if power > 0.0 {
                continue;
            }
            let raw = p.opacity * power.exp();
            let a = raw.min(ALPHA_MAX);
            if a < ALPHA_MIN {
                continue;
            }
            let next_t = t * (1.0 - a);
            if next_t < T_MIN {
                break;
            }
            let pt = self.tangent(gi as usize, p, *clamped);
            let mut da = [0.0; 6];
            if raw <= ALPHA_MAX {
                for (k, dak) in da.iter_mut().enumerate() {
                    let dpow = -(ca * ddx + cb * ddy) * pt.d_mean2d[0][k]
                        - (cc * ddy + cb * ddx) * pt.d_mean2d[1][k]
                        - 0.5 * ddx * ddx * pt.d_conic[0][k]
                        - ddx * ddy * pt.d_conic[1][k]
                        - 0.5 * ddy * ddy * pt.d_conic[2][k];
                    *dak = raw * dpow;
                }
            }
            for ch in 0..3 {
                let col = p.colour[ch];
                c[ch] += col * a * t;
                for k in 0..6 {
                    dc[ch][k] += pt.d_colour[ch][k] * a * t + col * (da[k] * t + a * dt[k]);
                }
            }
            for k in 0..6 {
                dt[k] = dt[k] * (1.0 - a) - t * da[k];
            }
            t = next_t;
        }
        Some(PixelJacobian {
            colour: c,
            alpha: 1.0 - t,
            d_colour: dc,
            d_alpha: dt.map(|v| -v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::cpu::render_f64;
    use crate::render::{perturb_pose, random_gaussians, test_camera, test_pose};

    /// Central differences of the reference forward for each pose direction at step `h`.
    fn central(
        g: &GaussianSet<f64>,
        cam: &Camera,
        pose: &nalgebra::Isometry3<f64>,
        h: f64,
    ) -> Vec<Vec<f64>> {
        (0..6)
            .map(|k| {
                let mut xi = [0.0; 6];
                xi[k] = h;
                let p = render_f64(g, cam, &perturb_pose(pose, &xi));
                xi[k] = -h;
                let m = render_f64(g, cam, &perturb_pose(pose, &xi));
                p.colour
                    .iter()
                    .zip(&m.colour)
                    .map(|(a, b)| (a - b) / (2.0 * h))
                    .collect()
            })
            .collect()
    }

    /// Every tile lists exactly the projected Gaussians whose rectangle covers it, front to
    /// back by f32 depth and then index (the order the reference rasteriser blends in).
    #[test]
    fn tiles_hold_their_gaussians_front_to_back() {
        let g = random_gaussians(400, 1, 0.3, 5).map(|x| x as f64);
        let cam = test_camera(80, 56);
        let frame = PoseJacobianFrame::new(&g, &cam, &test_pose());
        let (tx, _) = cam.tiles();
        let mut binned = 0;
        for (t, list) in frame.tiles.iter().enumerate() {
            let (x, y) = (t as u32 % tx, t as u32 / tx);
            let want: Vec<u32> = (0..g.len() as u32)
                .filter(|&i| {
                    frame.proj[i as usize].as_ref().is_some_and(|(p, _)| {
                        let r = p.rect;
                        (r[0]..r[1]).contains(&x) && (r[2]..r[3]).contains(&y)
                    })
                })
                .collect();
            let mut sorted = list.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, want, "tile {t}");
            let key = |i: u32| {
                let d = frame.proj[i as usize].as_ref().unwrap().0.depth as f32;
                (d, i)
            };
            for w in list.windows(2) {
                let (a, b) = (key(w[0]), key(w[1]));
                assert!(a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).is_lt(), "tile {t}");
            }
            binned += list.len();
        }
        assert!(
            binned > 100 && frame.visible() > 50,
            "{binned} {}",
            frame.visible()
        );
    }

    /// Pixel values equal the reference forward; derivatives match central differences of it.
    /// Pixels where a blending threshold (alpha cut-off, early termination) is crossed within
    /// the step are discontinuous; they are detected by disagreeing step sizes and must be rare.
    #[test]
    fn pixel_jacobian_matches_reference_forward_and_finite_differences() {
        for (seed, degree) in [(7u64, 1u32), (3, 0), (11, 3)] {
            let g = random_gaussians(300, degree, 0.15, seed).map(|x| x as f64);
            let cam = test_camera(48, 40);
            let pose = test_pose();
            let frame = PoseJacobianFrame::new(&g, &cam, &pose);
            let reference = render_f64(&g, &cam, &pose);
            let fd1 = central(&g, &cam, &pose, 1e-6);
            let fd2 = central(&g, &cam, &pose, 2e-6);
            let (mut err2, mut ref2, mut jumps) = (0.0, 0.0, 0);
            for py in 0..cam.height {
                for px in 0..cam.width {
                    let pix = (py * cam.width + px) as usize;
                    let pj = frame.pixel(px, py).unwrap();
                    assert!((pj.alpha - reference.alpha[pix]).abs() < 1e-12);
                    let smooth = (0..6).all(|k| {
                        (0..3).all(|ch| {
                            let (a, b) = (fd1[k][3 * pix + ch], fd2[k][3 * pix + ch]);
                            (a - b).abs() <= 1e-4 * (1.0 + a.abs())
                        })
                    });
                    if !smooth {
                        jumps += 1;
                        continue;
                    }
                    for ch in 0..3 {
                        assert!((pj.colour[ch] - reference.colour[3 * pix + ch]).abs() < 1e-12);
                        for (k, fdk) in fd1.iter().enumerate() {
                            let fd = fdk[3 * pix + ch];
                            err2 += (pj.d_colour[ch][k] - fd).powi(2);
                            ref2 += fd * fd;
                        }
                    }
                }
            }
            let rel = (err2 / ref2).sqrt();
            assert!(ref2 > 1.0, "scene must have pose signal");
            assert!(jumps * 100 < cam.pixels(), "{jumps} discontinuous pixels");
            assert!(rel < 1e-4, "seed {seed}: relative error {rel}");
        }
    }
}
