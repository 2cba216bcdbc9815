//! The global map's Gaussian values, packed: each holds only the spherical-harmonics
//! coefficients of the configured degree (a degree-1 map needs 23 floats per Gaussian where the
//! full [`Gaussian`] has 59), so the map costs memory for what it can render.

use super::params::{sh_coeff_count, Gaussian};

/// Floats before the SH coefficients: mean, log-scale, rotation, opacity logit.
const HEAD: usize = 3 + 3 + 4 + 1;

/// A vector of Gaussians indexed by id, `HEAD + 3 * sh_coeff_count(degree)` floats each.
#[derive(Debug, Clone)]
pub(crate) struct PackedStore {
    coeffs: usize,
    stride: usize,
    data: Vec<f32>,
}

impl PackedStore {
    pub fn new(sh_degree: u32) -> Self {
        let coeffs = sh_coeff_count(sh_degree.min(3));
        Self {
            coeffs,
            stride: HEAD + 3 * coeffs,
            data: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.stride
    }

    /// The Gaussian at `id` (coefficients above the degree are zero).
    pub fn get(&self, id: u32) -> Gaussian {
        let s = &self.data[id as usize * self.stride..(id as usize + 1) * self.stride];
        let mut g = Gaussian {
            mean: [s[0], s[1], s[2]],
            log_scale: [s[3], s[4], s[5]],
            rotation: [s[6], s[7], s[8], s[9]],
            opacity_logit: s[10],
            ..Default::default()
        };
        for (k, c) in g.sh.iter_mut().take(self.coeffs).enumerate() {
            c.copy_from_slice(&s[HEAD + 3 * k..HEAD + 3 * k + 3]);
        }
        g
    }

    /// The mean alone (cheaper than [`Self::get`]).
    pub fn mean(&self, id: u32) -> [f32; 3] {
        let i = id as usize * self.stride;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Overwrites `id` with `g`, dropping its coefficients above the degree.
    pub fn set(&mut self, id: u32, g: &Gaussian) {
        let stride = self.stride;
        let coeffs = self.coeffs;
        let s = &mut self.data[id as usize * stride..(id as usize + 1) * stride];
        Self::write(s, coeffs, g);
    }

    /// Appends `g`; returns its id.
    pub fn push(&mut self, g: &Gaussian) -> u32 {
        let id = self.len();
        self.data.resize(self.data.len() + self.stride, 0.0);
        self.set(id as u32, g);
        id as u32
    }

    /// Bytes held (capacity).
    pub fn memory_bytes(&self) -> usize {
        self.data.capacity() * std::mem::size_of::<f32>()
    }

    fn write(s: &mut [f32], coeffs: usize, g: &Gaussian) {
        s[0..3].copy_from_slice(&g.mean);
        s[3..6].copy_from_slice(&g.log_scale);
        s[6..10].copy_from_slice(&g.rotation);
        s[10] = g.opacity_logit;
        for (k, c) in g.sh.iter().take(coeffs).enumerate() {
            s[HEAD + 3 * k..HEAD + 3 * k + 3].copy_from_slice(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: f32) -> Gaussian {
        let mut g = Gaussian {
            mean: [seed, seed + 1.0, seed + 2.0],
            log_scale: [-1.0, -2.0, -3.0 * seed],
            rotation: [0.5, -0.5, 0.25, seed],
            opacity_logit: 1.5 * seed,
            ..Default::default()
        };
        for (k, c) in g.sh.iter_mut().enumerate() {
            *c = [k as f32 + seed, -(k as f32), 0.5 * k as f32];
        }
        g
    }

    #[test]
    fn round_trips_up_to_the_degree_and_zeroes_the_rest() {
        for degree in 0..=3 {
            let mut s = PackedStore::new(degree);
            let ids: Vec<u32> = (0..5).map(|i| s.push(&sample(i as f32))).collect();
            assert_eq!(ids, vec![0, 1, 2, 3, 4]);
            s.set(2, &sample(7.0));
            let k = sh_coeff_count(degree);
            for (id, seed) in [(0u32, 0.0f32), (2, 7.0), (4, 4.0)] {
                let want = sample(seed);
                let got = s.get(id);
                assert_eq!(got.mean, want.mean);
                assert_eq!(s.mean(id), want.mean);
                assert_eq!(got.log_scale, want.log_scale);
                assert_eq!(got.rotation, want.rotation);
                assert_eq!(got.opacity_logit, want.opacity_logit);
                assert_eq!(got.sh[..k], want.sh[..k], "degree {degree}");
                assert!(got.sh[k..].iter().flatten().all(|&v| v == 0.0));
            }
            assert!(s.memory_bytes() >= 5 * (11 + 3 * k) * 4);
        }
    }
}
