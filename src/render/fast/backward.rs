//! Backward pass of one tile: splats back to front from the last contributor of any pixel,
//! recovering each pixel's transmittance by division (as 3DGS does), with the same 16-lane rows
//! as the forward pass. Per-splat sums go to the calling thread's own accumulator, so threads
//! never share a write.

use super::forward::{lanes, AMAX, AMIN};
use super::tile::{exp_neg, TilePix, TileSplats, PIX, W, XS};

/// Sums per splat: colour r, g, b, depth, opacity, then with `P = d loss / d power`:
/// `sum P dx, P dy, P dx^2, P dx dy, P dy^2` (`dx = mean - pixel`), see [`screen_grad`].
pub type Acc = [f32; 10];

/// Per-pixel state of the reverse traversal plus the tile's output gradients.
pub struct BwdState {
    t: [f32; PIX],
    /// Blended value behind the current splat: colour r, g, b, depth, alpha.
    acc: [[f32; PIX]; 5],
    last_a: [f32; PIX],
    last_f: [[f32; PIX]; 4],
    /// d loss / d (colour r, g, b, depth, alpha) of the tile's pixels (zero outside the image).
    pub dl: [[f32; PIX]; 5],
}

impl Default for BwdState {
    fn default() -> Self {
        Self {
            t: [0.0; PIX],
            acc: [[0.0; PIX]; 5],
            last_a: [0.0; PIX],
            last_f: [[0.0; PIX]; 4],
            dl: [[0.0; PIX]; 5],
        }
    }
}

/// Adds the tile's contribution to every splat's sums in `acc` (indexed by depth rank).
pub fn backward_tile(s: &TileSplats, px: &TilePix, st: &mut BwdState, acc: &mut [Acc]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { backward_tile_avx2(s, px, st, acc) };
    }
    backward_tile_impl(s, px, st, acc)
}

/// The same code compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn backward_tile_avx2(s: &TileSplats, px: &TilePix, st: &mut BwdState, acc: &mut [Acc]) {
    backward_tile_impl(s, px, st, acc)
}

#[inline(always)]
fn backward_tile_impl(s: &TileSplats, px: &TilePix, st: &mut BwdState, acc: &mut [Acc]) {
    let Some(&jmax) = px.last.iter().max() else {
        return;
    };
    if jmax < 0 {
        return;
    }
    // Last contributor per row: a splat behind it cannot touch the row.
    let mut row_last = [-1i32; W];
    for (y, rl) in row_last.iter_mut().enumerate() {
        *rl = px.last[y * W..y * W + W]
            .iter()
            .copied()
            .max()
            .unwrap_or(-1);
    }
    st.t = px.t;
    st.acc = [[0.0; PIX]; 5];
    st.last_a = [0.0; PIX];
    st.last_f = [[0.0; PIX]; 4];
    for j in (0..=jmax as usize).rev() {
        let g = [s.mx[j], 0.0, s.ca[j], s.cb[j], s.cc[j], s.op[j]];
        let f = [s.f[0][j], s.f[1][j], s.f[2][j], s.f[3][j]];
        let mut sums = [[0.0f32; W]; 10];
        #[allow(clippy::needless_range_loop)] // y also indexes the tile rows
        for y in s.y0[j] as usize..s.y1[j] as usize {
            if row_last[y] < j as i32 {
                continue;
            }
            let mut g = g;
            g[1] = s.my[j] - y as f32;
            row(g, f, j as i32, y * W, px, st, &mut sums);
        }
        let a = &mut acc[s.rank[j] as usize];
        for (k, lane) in sums.iter().enumerate() {
            a[k] += lane.iter().sum::<f32>();
        }
    }
}

#[inline(always)]
fn row(
    g: [f32; 6],
    f: [f32; 4],
    j: i32,
    o: usize,
    px: &TilePix,
    st: &mut BwdState,
    sums: &mut [[f32; W]; 10],
) {
    let [mx, dy, ca, cb, cc, op] = g;
    let r = o..o + W;
    let last: &[i32; W] = px.last[r.clone()].try_into().expect("row");
    let t = lanes(&mut st.t[r.clone()]);
    let la = lanes(&mut st.last_a[r.clone()]);
    let [a0, a1, a2, a3, a4] = &mut st.acc;
    let (a0, a1, a2, a3, a4) = (
        lanes(&mut a0[r.clone()]),
        lanes(&mut a1[r.clone()]),
        lanes(&mut a2[r.clone()]),
        lanes(&mut a3[r.clone()]),
        lanes(&mut a4[r.clone()]),
    );
    let [l0, l1, l2, l3] = &mut st.last_f;
    let (l0, l1, l2, l3) = (
        lanes(&mut l0[r.clone()]),
        lanes(&mut l1[r.clone()]),
        lanes(&mut l2[r.clone()]),
        lanes(&mut l3[r.clone()]),
    );
    let dl: [&[f32; W]; 5] = std::array::from_fn(|c| st.dl[c][r.clone()].try_into().expect("row"));
    for x in 0..W {
        let dx = mx - XS[x];
        let power = -0.5 * (ca * dx * dx + cc * dy * dy) - cb * dx * dy;
        let gauss = exp_neg(power);
        let raw = op * gauss;
        let a = raw.min(AMAX);
        let ok = (power <= 0.0) & (a >= AMIN) & (j <= last[x]);
        let ti = t[x] / (1.0 - a);
        let pa = la[x];
        let q = 1.0 - pa;
        let b0 = pa * l0[x] + q * a0[x];
        let b1 = pa * l1[x] + q * a1[x];
        let b2 = pa * l2[x] + q * a2[x];
        let b3 = pa * l3[x] + q * a3[x];
        let b4 = pa + q * a4[x];
        let dl_da = ((f[0] - b0) * dl[0][x]
            + (f[1] - b1) * dl[1][x]
            + (f[2] - b2) * dl[2][x]
            + (f[3] - b3) * dl[3][x]
            + (1.0 - b4) * dl[4][x])
            * ti;
        // Selects rather than a branch, so the row loop stays vectorisable.
        let keep = |new: f32, old: f32| if ok { new } else { old };
        a0[x] = keep(b0, a0[x]);
        a1[x] = keep(b1, a1[x]);
        a2[x] = keep(b2, a2[x]);
        a3[x] = keep(b3, a3[x]);
        a4[x] = keep(b4, a4[x]);
        la[x] = keep(a, la[x]);
        l0[x] = keep(f[0], l0[x]);
        l1[x] = keep(f[1], l1[x]);
        l2[x] = keep(f[2], l2[x]);
        l3[x] = keep(f[3], l3[x]);
        t[x] = keep(ti, t[x]);
        let w = if ok { a * ti } else { 0.0 };
        sums[0][x] += w * dl[0][x];
        sums[1][x] += w * dl[1][x];
        sums[2][x] += w * dl[2][x];
        sums[3][x] += w * dl[3][x];
        let dq = if ok & (raw <= AMAX) { dl_da } else { 0.0 };
        sums[4][x] += gauss * dq;
        let p = gauss * op * dq;
        sums[5][x] += p * dx;
        sums[6][x] += p * dy;
        sums[7][x] += p * dx * dx;
        sums[8][x] += p * dx * dy;
        sums[9][x] += p * dy * dy;
    }
}

/// Screen-space gradient of a splat with conic `(a, b, c)` from its summed accumulator.
pub fn screen_grad(s: &Acc, conic: [f32; 3]) -> super::project::ScreenGrad {
    let v = s.map(|x| x as f64);
    let [ca, cb, cc] = conic.map(|x| x as f64);
    super::project::ScreenGrad {
        mean: [-(ca * v[5] + cb * v[6]), -(cc * v[6] + cb * v[5])],
        conic: [-0.5 * v[7], -v[8], -0.5 * v[9]],
        opacity: v[4],
        colour: [v[0], v[1], v[2]],
        depth: v[3],
    }
}
