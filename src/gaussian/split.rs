//! Scale-aware refinement: a Gaussian whose footprint in the current view is much wider than a
//! map cell would be at this range (its surface was first mapped from afar) is replaced by
//! smaller children inside it, so that a close view can show detail the coarse disc blurs.
//!
//! The error-gated refine (see `refine`) adds finer Gaussians *below* the coarse ones, and
//! their colours then compensate each other; a split replaces the coarse one instead. Children
//! take the parent's rotation, colour (all SH bands) and opacity, and sit on a 2x2 lattice at
//! 0.4 standard deviations along its two largest axes with half its scale there: composited,
//! they cover the parent's core (within about 0.1 of its opacity where it is at least half its
//! peak; at half a standard deviation the lattice's centre thins to 0.82 of a 0.95 peak), so
//! the view renders about as before the split and the optimisation sharpens from there. Their
//! integrated opacity (opacity x area) equals the parent's; the tails beyond the core shrink.

use nalgebra::{Isometry3, Point3, Quaternion, UnitQuaternion, Vector3};

use super::params::Gaussian;
use crate::render::Camera;

/// Settings of one frame's split pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SplitParams {
    /// Focal length of the full-resolution camera (px): footprints are counted in its pixels,
    /// as `GaussianConfig::leaf_pixels` is.
    pub focal: f64,
    /// Split a Gaussian whose largest standard deviation projects wider than this (px).
    pub min_footprint_px: f64,
    /// No child's largest standard deviation may fall below this (m).
    pub min_scale: f32,
    /// Most Gaussians split per pass (the widest footprints first).
    pub max_splits: usize,
    /// Gaussians more transparent than this are left alone: haze split is more haze.
    pub min_opacity: f32,
}

/// Indices into `gaussians` to split for the view at `t_cw` through `cam` (any resolution:
/// only the image bounds are used): centre in front of the camera and inside the image,
/// opaque enough, footprint above `min_footprint_px`, children not below `min_scale`, and
/// `wanted(centre)` (e.g. the view's error there). Widest footprint first, at most
/// `max_splits`.
pub(crate) fn split_candidates(
    gaussians: &[Gaussian],
    cam: &Camera,
    t_cw: &Isometry3<f64>,
    p: &SplitParams,
    mut wanted: impl FnMut(&[f64; 3]) -> bool,
) -> Vec<usize> {
    let (w, h) = (f64::from(cam.width), f64::from(cam.height));
    let mut found: Vec<(f64, usize)> = Vec::new();
    for (i, g) in gaussians.iter().enumerate() {
        let s = g.max_scale();
        let above_floor = 0.5 * s >= p.min_scale;
        if !above_floor || g.opacity() < p.min_opacity {
            continue;
        }
        let m = [
            f64::from(g.mean[0]),
            f64::from(g.mean[1]),
            f64::from(g.mean[2]),
        ];
        let pc = t_cw * Point3::new(m[0], m[1], m[2]);
        if !(pc.z > cam.near && pc.z < cam.far) {
            continue;
        }
        let footprint = p.focal * f64::from(s) / pc.z;
        if footprint <= p.min_footprint_px {
            continue;
        }
        let u = cam.fx * pc.x / pc.z + cam.cx;
        let v = cam.fy * pc.y / pc.z + cam.cy;
        let in_image = u >= -0.5 && v >= -0.5 && u < w - 0.5 && v < h - 0.5;
        if !in_image || !wanted(&m) {
            continue;
        }
        found.push((footprint, i));
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    found.truncate(p.max_splits);
    found.into_iter().map(|(_, i)| i).collect()
}

/// Children's offset from the parent's centre along each split axis, in its standard
/// deviations (see the module's note on coverage).
const OFFSET: f32 = 0.4;

/// The children replacing `g`: four on a 2x2 lattice over its two largest axes, or two along
/// the largest when halving the second would go below `min_scale` (a needle). Offsets of
/// [`OFFSET`] standard deviations, half the scale along each split axis, the third axis no thicker than
/// the new in-plane scale; rotation, opacity and colour kept.
pub(crate) fn split_children(g: &Gaussian, min_scale: f32) -> Vec<Gaussian> {
    let mut axes = [0usize, 1, 2];
    axes.sort_by(|&a, &b| g.log_scale[b].total_cmp(&g.log_scale[a]));
    let [a, b, c] = axes;
    let half = std::f32::consts::LN_2;
    let [w, x, y, z] = g.rotation;
    let q = UnitQuaternion::from_quaternion(Quaternion::new(w, x, y, z));
    let axis = |k: usize, sd: f32| q * Vector3::ith(k, sd);
    let (sa, sb) = (g.log_scale[a].exp(), g.log_scale[b].exp());
    let both = 0.5 * sb >= min_scale;
    let offsets: Vec<Vector3<f32>> = if both {
        let (da, db) = (axis(a, OFFSET * sa), axis(b, OFFSET * sb));
        vec![da + db, da - db, -da + db, -da - db]
    } else {
        let da = axis(a, OFFSET * sa);
        vec![da, -da]
    };
    let mut log_scale = g.log_scale;
    log_scale[a] -= half;
    if both {
        log_scale[b] -= half;
    }
    let in_plane = log_scale[a].min(log_scale[b]);
    log_scale[c] = log_scale[c].min(in_plane);
    offsets
        .into_iter()
        .map(|o| Gaussian {
            mean: [g.mean[0] + o.x, g.mean[1] + o.y, g.mean[2] + o.z],
            log_scale,
            ..*g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::params::{opacity_to_logit, rotation_from_normal};

    /// Opacity of `g` at world point `x` (3DGS alpha: opacity times the unnormalised density).
    fn alpha_at(g: &Gaussian, x: Vector3<f32>) -> f32 {
        let [w, qx, qy, qz] = g.rotation;
        let q = UnitQuaternion::from_quaternion(Quaternion::new(w, qx, qy, qz));
        let d = q.inverse() * (x - Vector3::from(g.mean));
        let m2: f32 = (0..3).map(|k| (d[k] / g.log_scale[k].exp()).powi(2)).sum();
        g.opacity() * (-0.5 * m2).exp()
    }

    /// Composited opacity of a set of Gaussians at `x` (front-to-back, order-free).
    fn union_alpha(gs: &[Gaussian], x: Vector3<f32>) -> f32 {
        1.0 - gs.iter().map(|g| 1.0 - alpha_at(g, x)).product::<f32>()
    }

    /// A 3 cm disc on a tilted wall, opaque, coloured with a degree-1 band.
    fn disc() -> Gaussian {
        let mut g = Gaussian {
            mean: [0.3, -0.2, 1.0],
            log_scale: [0.03f32.ln(), 0.03f32.ln(), 0.003f32.ln()],
            rotation: rotation_from_normal([0.2, -0.3, -1.0]),
            opacity_logit: opacity_to_logit(0.95),
            ..Default::default()
        };
        g.set_base_colour([0.8, 0.3, 0.1]);
        g.sh[1] = [0.05, -0.02, 0.01];
        g
    }

    /// Four children inside the parent, half its in-plane scale, no thicker, same colour and
    /// opacity, integrated opacity kept; their union covers the parent's disc (no less than
    /// 0.12 below its opacity wherever the parent is at least half its peak: children all at
    /// the centre, or a whole sd out, leave holes) and spills nothing beyond 2 sd.
    #[test]
    fn children_cover_the_parent_with_smaller_discs() {
        let g = disc();
        let kids = split_children(&g, 0.001);
        assert_eq!(kids.len(), 4);
        let n = Vector3::from(g.normal());
        let centre = Vector3::from(g.mean);
        let s = 0.03f32;
        for k in &kids {
            let d = Vector3::from(k.mean) - centre;
            assert!(d.dot(&n).abs() < 1e-6, "in the parent's plane: {d:?}");
            assert!(d.norm() <= s * 0.75 && d.norm() > 0.3 * s, "{}", d.norm());
            assert!((k.max_scale() - 0.5 * s).abs() < 1e-6);
            assert!(k
                .log_scale
                .iter()
                .any(|&l| (l - 0.003f32.ln()).abs() < 1e-6));
            assert_eq!(k.sh, g.sh);
            assert_eq!(k.opacity_logit, g.opacity_logit);
            assert_eq!(k.rotation, g.rotation);
        }
        let area = |g: &Gaussian| {
            let mut l = g.log_scale;
            l.sort_by(f32::total_cmp);
            g.opacity() * (l[1] + l[2]).exp()
        };
        let total: f32 = kids.iter().map(area).sum();
        assert!((total - area(&g)).abs() < 1e-3 * area(&g), "{total}");
        // Sample the parent's plane on a grid out to 2 sd.
        let [w, x, y, z] = g.rotation;
        let q = UnitQuaternion::from_quaternion(Quaternion::new(w, x, y, z));
        let (e0, e1) = (q * Vector3::x(), q * Vector3::y());
        let (mut core, mut tail) = (0, 0);
        for i in -30..=30 {
            for j in -30..=30 {
                let (u, v) = (i as f32 * 0.1, j as f32 * 0.1);
                let p = centre + e0 * (u * s) + e1 * (v * s);
                let (parent, union) = (alpha_at(&g, p), union_alpha(&kids, p));
                if parent >= 0.5 * g.opacity() {
                    core += 1;
                    assert!(
                        union >= parent - 0.12,
                        "hole at ({u}, {v}) sd: parent {parent}, children {union}"
                    );
                } else if u * u + v * v >= 4.0 {
                    tail += 1;
                    assert!(
                        union <= parent + 0.01,
                        "spill at ({u}, {v}) sd: parent {parent}, children {union}"
                    );
                }
            }
        }
        assert!(core > 300 && tail > 1000, "{core} {tail}");
    }

    /// A needle (second axis already at the floor) splits in two along its length only; a
    /// Gaussian whose children would fall below the floor is never a candidate.
    #[test]
    fn needles_split_in_two_and_small_ones_not_at_all() {
        let mut g = disc();
        g.log_scale = [0.04f32.ln(), 0.006f32.ln(), 0.002f32.ln()];
        let kids = split_children(&g, 0.005);
        assert_eq!(kids.len(), 2);
        for k in &kids {
            assert!((k.log_scale[0].exp() - 0.02).abs() < 1e-6);
            assert!((k.log_scale[1].exp() - 0.006).abs() < 1e-6);
        }
        let cam = Camera::new(100, 100, 100.0, 100.0);
        let p = SplitParams {
            focal: 100.0,
            min_footprint_px: 0.1,
            min_scale: 0.021,
            max_splits: 10,
            min_opacity: 0.1,
        };
        let mut at = g;
        at.mean = [0.0, 0.0, 1.0];
        assert!(split_candidates(&[at], &cam, &Isometry3::identity(), &p, |_| true).is_empty());
    }

    /// A 3 cm disc at 0.5 m through a 400 px focal length projects 24 px wide: split at a
    /// 16 px threshold; at 2 m (6 px) it is not, nor behind the camera, outside the image, too
    /// transparent, or where the gate says no. Widest first, at most `max_splits`.
    #[test]
    fn only_large_footprints_in_the_view_are_split() {
        let cam = Camera::new(64, 48, 40.0, 40.0);
        let p = SplitParams {
            focal: 400.0,
            min_footprint_px: 16.0,
            min_scale: 0.005,
            max_splits: 3,
            min_opacity: 0.1,
        };
        let at = |x: f32, z: f32| Gaussian {
            mean: [x, 0.0, z],
            ..disc()
        };
        let near = at(0.0, 0.5);
        let nearer = at(0.01, 0.4);
        let far = at(0.0, 2.0);
        let behind = at(0.0, -0.5);
        let outside = at(2.0, 0.5);
        let mut faint = at(0.0, 0.5);
        faint.opacity_logit = opacity_to_logit(0.05);
        let gs = [near, far, behind, outside, faint, nearer];
        let id = Isometry3::identity();
        assert_eq!(split_candidates(&gs, &cam, &id, &p, |_| true), vec![5, 0]);
        assert_eq!(
            split_candidates(&gs, &cam, &id, &p, |m| m[0] > 0.005),
            vec![5]
        );
        let one = SplitParams { max_splits: 1, ..p };
        assert_eq!(split_candidates(&gs, &cam, &id, &one, |_| true), vec![5]);
        let small = SplitParams {
            min_footprint_px: 40.0,
            ..p
        };
        assert!(split_candidates(&gs, &cam, &id, &small, |_| true).is_empty());
    }
}
