//! The one conversion between map Gaussians and the renderer's flat parameter layout, both
//! ways: the mapper uploads its window with it (f32) and the photometric update reads the map
//! snapshot with it (f64, for the CPU reference).

use super::params::Gaussian;
use super::GaussianError;
use crate::render::{GaussianSet, Gaussians};

/// The six groups of a flat parameter vector of `n` Gaussians, in storage order.
fn groups_mut<T>(data: &mut [T], n: usize, sh_degree: u32) -> [&mut [T]; 6] {
    let mut rest = data;
    crate::render::group_widths(sh_degree).map(|w| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(w * n);
        rest = tail;
        head
    })
}

/// Converts window Gaussians to the renderer's flat layout in one pass over the window (each
/// Gaussian read once, its values sent to the six group runs).
pub fn to_render(gs: &[Gaussian], sh_degree: u32) -> Result<Gaussians, GaussianError> {
    to_render_into(gs, sh_degree, Vec::new())
}

/// [`to_render`] in any float type the renderer takes, into the allocation `buf` (e.g. the
/// previous window's data): refilling the same memory avoids faulting in megabytes of fresh
/// pages per map frame.
pub fn to_render_into<T: Copy + Default + From<f32>>(
    gs: &[Gaussian],
    sh_degree: u32,
    mut buf: Vec<T>,
) -> Result<GaussianSet<T>, GaussianError> {
    let n = gs.len();
    // Checks the degree before the layout is computed from it.
    GaussianSet::<T>::zeros(0, sh_degree)?;
    let k = crate::render::sh_coeffs(sh_degree);
    let per: usize = crate::render::group_widths(sh_degree).iter().sum();
    buf.clear();
    buf.resize(per * n, T::default());
    let [mean, scale, rot, opacity, dc, rest] = groups_mut(&mut buf, n, sh_degree);
    let put = |dst: &mut [T], src: &[f32]| {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = T::from(*s);
        }
    };
    for (i, g) in gs.iter().enumerate() {
        put(&mut mean[3 * i..3 * i + 3], &g.mean);
        put(&mut scale[3 * i..3 * i + 3], &g.log_scale);
        put(&mut rot[4 * i..4 * i + 4], &g.rotation);
        opacity[i] = T::from(g.opacity_logit);
        put(&mut dc[3 * i..3 * i + 3], &g.sh[0]);
        let r = 3 * (k - 1) * i;
        put(&mut rest[r..r + 3 * (k - 1)], g.sh[1..k].as_flattened());
    }
    Ok(GaussianSet::from_data(n, sh_degree, buf)?)
}

/// Copies the renderer's parameters back into window Gaussians (same count and order), in one
/// pass over the window.
pub fn from_render(src: &Gaussians, gs: &mut [Gaussian]) -> Result<(), GaussianError> {
    if src.len() != gs.len() {
        return Err(GaussianError::Render(format!(
            "renderer holds {} gaussians, window {}",
            src.len(),
            gs.len()
        )));
    }
    let k = crate::render::sh_coeffs(src.sh_degree());
    let [mean, scale, rot, opacity, dc, rest] = crate::render::GROUPS.map(|g| src.group(g));
    for (i, g) in gs.iter_mut().enumerate() {
        g.mean.copy_from_slice(&mean[3 * i..3 * i + 3]);
        g.log_scale.copy_from_slice(&scale[3 * i..3 * i + 3]);
        g.rotation.copy_from_slice(&rot[4 * i..4 * i + 4]);
        g.opacity_logit = opacity[i];
        g.sh[0].copy_from_slice(&dc[3 * i..3 * i + 3]);
        let r = 3 * (k - 1) * i;
        for (j, c) in g.sh[1..k].iter_mut().enumerate() {
            c.copy_from_slice(&rest[r + 3 * j..r + 3 * j + 3]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Group;

    /// Every value lands where the per-Gaussian accessors of the set look for it, in f32 and
    /// f64.
    #[test]
    fn layout_matches_per_gaussian_accessors() {
        for deg in [0u32, 1, 3] {
            let gs: Vec<Gaussian> = (0..7)
                .map(|i| {
                    let f = |j: usize| (i * 100 + j) as f32 * 0.25 - 3.0;
                    Gaussian {
                        mean: [f(0), f(1), f(2)],
                        log_scale: [f(3), f(4), f(5)],
                        rotation: [f(6), f(7), f(8), f(9)],
                        opacity_logit: f(10),
                        sh: std::array::from_fn(|kk| std::array::from_fn(|c| f(11 + 3 * kk + c))),
                    }
                })
                .collect();
            let wide = to_render_into(&gs, deg, vec![7.0f64; 5]).unwrap();
            let narrow = to_render(&gs, deg).unwrap();
            let k = crate::render::sh_coeffs(deg);
            assert_eq!((wide.len(), wide.sh_degree()), (7, deg));
            for (i, g) in gs.iter().enumerate() {
                let same = |grp: Group, want: &[f32]| {
                    assert_eq!(narrow.get(grp, i), want, "{grp:?} {i}");
                    let got = wide.get(grp, i);
                    assert_eq!(got.len(), want.len(), "{grp:?}");
                    for (a, b) in got.iter().zip(want) {
                        assert_eq!(*a, f64::from(*b), "{grp:?} {i}");
                    }
                };
                same(Group::Mean, &g.mean);
                same(Group::LogScale, &g.log_scale);
                same(Group::Rotation, &g.rotation);
                same(Group::Opacity, &[g.opacity_logit]);
                same(Group::ShDc, &g.sh[0]);
                same(Group::ShRest, g.sh[1..k].as_flattened());
            }
        }
        assert!(to_render(&[], 4).is_err(), "SH degree above 3");
    }

    #[test]
    fn render_layout_round_trips_and_puts_each_value_in_its_group() {
        for deg in [0, 1, 3] {
            let k = crate::render::sh_coeffs(deg);
            // Every value distinct: slot, field and component.
            let gs: Vec<Gaussian> = (0..5)
                .map(|i| {
                    let v = |f: usize, c: usize| (1000 * i + 10 * f + c) as f32;
                    let mut g = Gaussian {
                        mean: [v(0, 0), v(0, 1), v(0, 2)],
                        log_scale: [v(1, 0), v(1, 1), v(1, 2)],
                        rotation: [v(2, 0), v(2, 1), v(2, 2), v(2, 3)],
                        opacity_logit: v(3, 0),
                        ..Default::default()
                    };
                    for (j, c) in g.sh.iter_mut().enumerate().take(k) {
                        *c = [v(4 + j, 0), v(4 + j, 1), v(4 + j, 2)];
                    }
                    g
                })
                .collect();
            let r = to_render(&gs, deg).unwrap();
            for (i, g) in gs.iter().enumerate() {
                assert_eq!(r.get(Group::Mean, i), &g.mean);
                assert_eq!(r.get(Group::LogScale, i), &g.log_scale);
                assert_eq!(r.get(Group::Rotation, i), &g.rotation);
                assert_eq!(r.get(Group::Opacity, i), &[g.opacity_logit]);
                assert_eq!(r.get(Group::ShDc, i), &g.sh[0]);
                assert_eq!(r.get(Group::ShRest, i), g.sh[1..k].concat());
            }
            let mut back = vec![Gaussian::default(); gs.len()];
            from_render(&r, &mut back).unwrap();
            assert_eq!(back, gs, "degree {deg}");
            assert!(from_render(&r, &mut back[1..]).is_err());
        }
    }
}
