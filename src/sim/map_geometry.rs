//! Where a map put its Gaussians, judged against the simulator's true surfaces: the share of
//! Gaussians (and of their opacity) farther than a threshold from every surface. Floaters in
//! free space and geometry that drifted off the walls both show up here, whatever they render.

use nalgebra::Vector3;

use super::scene::Scene;
use crate::gaussian::Gaussian;

/// Distances of a map's Gaussian centres from the nearest true surface.
#[derive(Debug, Clone, PartialEq)]
pub struct OffSurface {
    pub gaussians: usize,
    /// Share of Gaussians more than 10 cm from every surface.
    pub share_over_10cm: f64,
    /// Share more than 50 cm away (free-space floaters rather than thick walls).
    pub share_over_50cm: f64,
    /// Share of the total opacity held by Gaussians more than 10 cm away: what a viewer sees.
    pub opacity_share_over_10cm: f64,
    pub median_m: f64,
}

impl OffSurface {
    /// Measures `gaussians` against `scene` (`None` for an empty map).
    pub fn measure(scene: &Scene, gaussians: &[Gaussian]) -> Option<Self> {
        if gaussians.is_empty() {
            return None;
        }
        let mut dist: Vec<f64> = Vec::with_capacity(gaussians.len());
        let (mut over10, mut over50, mut alpha, mut alpha_over10) = (0usize, 0usize, 0.0, 0.0);
        for g in gaussians {
            let p = Vector3::from(g.mean.map(f64::from));
            let d = scene.surface_distance(&p);
            let a = 1.0 / (1.0 + (-f64::from(g.opacity_logit)).exp());
            alpha += a;
            if d > 0.1 {
                over10 += 1;
                alpha_over10 += a;
            }
            over50 += usize::from(d > 0.5);
            dist.push(d);
        }
        let n = gaussians.len();
        let mid = n / 2;
        let median = *dist.select_nth_unstable_by(mid, f64::total_cmp).1;
        Some(Self {
            gaussians: n,
            share_over_10cm: over10 as f64 / n as f64,
            share_over_50cm: over50 as f64 / n as f64,
            opacity_share_over_10cm: if alpha > 0.0 {
                alpha_over10 / alpha
            } else {
                0.0
            },
            median_m: median,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{:.2} % of {} Gaussians > 10 cm off the true surfaces ({:.2} % of the opacity), {:.2} % > 50 cm, median {:.1} mm",
            100.0 * self.share_over_10cm,
            self.gaussians,
            100.0 * self.opacity_share_over_10cm,
            100.0 * self.share_over_50cm,
            1000.0 * self.median_m
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(p: [f32; 3], opacity_logit: f32) -> Gaussian {
        Gaussian {
            mean: p,
            opacity_logit,
            ..Default::default()
        }
    }

    #[test]
    fn counts_floaters_and_weighs_them_by_opacity() {
        let room = Scene::room();
        // The room's floor is z = 0: three on it, one 20 cm above, one 1 m above.
        let map = [
            at([0.0, 0.0, 0.0], 0.0),
            at([0.5, 0.0, 0.01], 0.0),
            at([-0.5, 0.2, 0.0], 0.0),
            at([0.0, 0.0, 0.2], 0.0),
            at([0.0, 0.5, 1.0], 4.0),
        ];
        let m = OffSurface::measure(&room, &map).unwrap();
        assert_eq!(m.gaussians, 5);
        assert!((m.share_over_10cm - 0.4).abs() < 1e-12, "{m:?}");
        assert!((m.share_over_50cm - 0.2).abs() < 1e-12, "{m:?}");
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let want = (0.5 + sig(4.0)) / (4.0 * 0.5 + sig(4.0));
        assert!((m.opacity_share_over_10cm - want).abs() < 1e-9, "{m:?}");
        assert!((m.median_m - 0.01).abs() < 1e-6, "{m:?}");
        assert!(OffSurface::measure(&room, &[]).is_none());
    }
}
