//! Backward pass of one tile: splats back to front from the last contributor of any pixel,
//! recovering each pixel's transmittance by division (as 3DGS does), with the same 16-lane rows
//! as the forward pass. Each splat's sums over the tile's pixels go to its own slot (one per
//! tile-list entry), so tiles can run on any thread and still add up in a fixed order.

use crate::render::cpu::project::ProjGrad;

use super::forward::{lanes, power_at, row_consts, AMAX, AMIN};
use super::tile::{exp_neg, Madd, Plain, Rec, TilePix, PIX, W, XS};

/// Sums per splat: colour r, g, b, depth, opacity, then with `P = d loss / d power`:
/// `sum P dx, P dy, P dx^2, P dx dy, P dy^2` (`dx = mean - pixel`), see [`screen_grad`].
pub type Acc = [f32; 10];

/// Per-pixel state of the reverse traversal plus the tile's output gradients.
pub struct BwdState {
    t: [f32; PIX],
    /// Normalised blend of what lies behind the current splat: colour r, g, b, depth, alpha.
    behind: [[f32; PIX]; 5],
    /// d loss / d (colour r, g, b, depth, alpha) of the tile's pixels (zero outside the image).
    pub dl: [[f32; PIX]; 5],
}

impl Default for BwdState {
    fn default() -> Self {
        Self {
            t: [0.0; PIX],
            behind: [[0.0; PIX]; 5],
            dl: [[0.0; PIX]; 5],
        }
    }
}

wide! {
    /// Writes into `out[j]` the sums of splat `s[j]` over the tile's pixels (zero for splats no
    /// pixel reached). `extra`: the depth and alpha rows of `st.dl` may be non-zero (without them
    /// a leaner loop runs). Must run the same copy as [`super::forward::raster_tile`] did (same
    /// dispatch), so both passes see the same alphas.
    pub fn backward_tile / backward_tile_on<M = super::tile::Fused | Plain>(
        s: &[Rec],
        px: &TilePix,
        st: &mut BwdState,
        extra: bool,
        out: &mut [Acc],
    ) {
        backward_tile_impl::<M>(s, px, st, extra, out)
    }
}

#[inline(always)]
fn backward_tile_impl<M: Madd>(
    s: &[Rec],
    px: &TilePix,
    st: &mut BwdState,
    extra: bool,
    out: &mut [Acc],
) {
    if extra {
        tile_pass::<M, true>(s, px, st, out)
    } else {
        tile_pass::<M, false>(s, px, st, out)
    }
}

#[inline(always)]
fn tile_pass<M: Madd, const EXTRA: bool>(
    s: &[Rec],
    px: &TilePix,
    st: &mut BwdState,
    out: &mut [Acc],
) {
    let jmax = px.last.iter().copied().max().unwrap_or(-1).max(-1);
    let n = s.len().min(out.len());
    let live = ((jmax + 1) as usize).min(n);
    for o in &mut out[live..] {
        *o = [0.0; 10];
    }
    if live == 0 {
        return;
    }
    st.t = px.t;
    st.behind = [[0.0; PIX]; 5];
    for j in (0..live).rev() {
        let sp = &s[j];
        if sp.rows == 0 {
            out[j] = [0.0; 10];
            continue;
        }
        let mut sums = [[0.0f32; W]; 10];
        for y in sp.y0 as usize..sp.y1 as usize {
            // A row the forward pass did not blend the splat into adds only zeros.
            if sp.rows & (1 << y) == 0 {
                continue;
            }
            let g = [sp.mx, sp.my - y as f32, sp.ca, sp.cb, sp.cc, sp.op];
            row::<M, EXTRA>(g, sp.f, j as i32, y * W, &px.last, st, &mut sums);
        }
        out[j] = reduce(&sums);
    }
}

/// Lane sums of the ten accumulators, as a fixed pairwise tree (vectorises, same bits on every
/// CPU).
#[inline(always)]
fn reduce(s: &[[f32; W]; 10]) -> Acc {
    let mut h8 = [[0.0f32; 8]; 10];
    for (h, v) in h8.iter_mut().zip(s) {
        for x in 0..8 {
            h[x] = v[x] + v[x + 8];
        }
    }
    let mut h4 = [[0.0f32; 4]; 10];
    for (h, v) in h4.iter_mut().zip(&h8) {
        for x in 0..4 {
            h[x] = v[x] + v[x + 4];
        }
    }
    std::array::from_fn(|k| (h4[k][0] + h4[k][2]) + (h4[k][1] + h4[k][3]))
}

#[inline(always)]
fn row<M: Madd, const EXTRA: bool>(
    g: [f32; 6],
    f: [f32; 4],
    j: i32,
    o: usize,
    last: &[i32; PIX],
    st: &mut BwdState,
    sums: &mut [[f32; W]; 10],
) {
    let [mx, dy, ca, cb, cc, op] = g;
    let r = o..o + W;
    let last: &[i32; W] = last[r.clone()].try_into().expect("row");
    let t = lanes(&mut st.t[r.clone()]);
    let [b0, b1, b2, b3, b4] = &mut st.behind;
    let (b0, b1, b2, b3, b4) = (
        lanes(&mut b0[r.clone()]),
        lanes(&mut b1[r.clone()]),
        lanes(&mut b2[r.clone()]),
        lanes(&mut b3[r.clone()]),
        lanes(&mut b4[r.clone()]),
    );
    let dl: [&[f32; W]; 5] = std::array::from_fn(|c| st.dl[c][r.clone()].try_into().expect("row"));
    let (ha, hc, bdy) = row_consts(ca, cb, cc, dy);
    for x in 0..W {
        let dx = mx - XS[x];
        let power = power_at::<M>(dx, ha, hc, bdy);
        let gauss = exp_neg::<M>(power);
        let raw = op * gauss;
        let a = raw.min(AMAX);
        let ok = (power <= 0.0) & (a >= AMIN) & (j <= last[x]);
        let ti = t[x] / (1.0 - a);
        let mut dl_da = M::madd(
            f[2] - b2[x],
            dl[2][x],
            M::madd(f[1] - b1[x], dl[1][x], (f[0] - b0[x]) * dl[0][x]),
        );
        if EXTRA {
            dl_da = M::madd(
                1.0 - b4[x],
                dl[4][x],
                M::madd(f[3] - b3[x], dl[3][x], dl_da),
            );
        }
        let dl_da = dl_da * ti;
        // Selects rather than a branch, so the row loop stays vectorisable.
        let q = 1.0 - a;
        let keep = |new: f32, old: f32| if ok { new } else { old };
        b0[x] = keep(M::madd(a, f[0], q * b0[x]), b0[x]);
        b1[x] = keep(M::madd(a, f[1], q * b1[x]), b1[x]);
        b2[x] = keep(M::madd(a, f[2], q * b2[x]), b2[x]);
        if EXTRA {
            b3[x] = keep(M::madd(a, f[3], q * b3[x]), b3[x]);
            b4[x] = keep(M::madd(q, b4[x], a), b4[x]);
        }
        t[x] = keep(ti, t[x]);
        let w = if ok { a * ti } else { 0.0 };
        sums[0][x] = M::madd(w, dl[0][x], sums[0][x]);
        sums[1][x] = M::madd(w, dl[1][x], sums[1][x]);
        sums[2][x] = M::madd(w, dl[2][x], sums[2][x]);
        if EXTRA {
            sums[3][x] = M::madd(w, dl[3][x], sums[3][x]);
        }
        let dq = if ok & (raw <= AMAX) { dl_da } else { 0.0 };
        sums[4][x] = M::madd(gauss, dq, sums[4][x]);
        let p = raw * dq;
        let (pdx, pdy) = (p * dx, p * dy);
        sums[5][x] += pdx;
        sums[6][x] += pdy;
        sums[7][x] = M::madd(pdx, dx, sums[7][x]);
        sums[8][x] = M::madd(pdx, dy, sums[8][x]);
        sums[9][x] = M::madd(pdy, dy, sums[9][x]);
    }
}

/// Screen-space gradient of a splat with conic `(a, b, c)` from its summed accumulator.
pub fn screen_grad(v: &[f64; 10], conic: [f32; 3]) -> ProjGrad {
    let [ca, cb, cc] = conic.map(|x| x as f64);
    ProjGrad {
        mean2d: [-(ca * v[5] + cb * v[6]), -(cc * v[6] + cb * v[5])],
        conic: [-0.5 * v[7], -v[8], -0.5 * v[9]],
        opacity: v[4],
        colour: [v[0], v[1], v[2]],
        depth: v[3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fast::forward::{raster_tile, raster_tile_on};
    use crate::simd::Isa;
    use rand::{Rng, SeedableRng};

    /// Random splats over a tile (some reaching outside it), front to back.
    fn random_recs(n: usize, seed: u64) -> Vec<Rec> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let (mx, my) = (rng.gen_range(-4.0..20.0), rng.gen_range(-4.0..20.0));
                let (sx, sy) = (rng.gen_range(0.8f32..5.0), rng.gen_range(0.8f32..5.0));
                let rho = rng.gen_range(-0.6f32..0.6);
                let det = sx * sx * sy * sy * (1.0 - rho * rho);
                let ext = 3.5 * sx.max(sy);
                Rec {
                    mx,
                    my,
                    ca: sy * sy / det,
                    cb: -rho * sx * sy / det,
                    cc: sx * sx / det,
                    op: rng.gen_range(0.05..0.99),
                    f: [
                        rng.gen_range(0.0..1.0),
                        rng.gen_range(0.0..1.0),
                        rng.gen_range(0.0..1.0),
                        rng.gen_range(1.0..5.0),
                    ],
                    y0: (my - ext).ceil().clamp(0.0, 16.0) as u8,
                    y1: ((my + ext).floor() + 1.0).clamp(0.0, 16.0) as u8,
                    rows: 0,
                }
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn rel(a: &[f32], b: &[f32]) -> f64 {
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        crate::render::verify::rel_l2(&f(a), &f(b))
    }

    type Bwd = fn(&[Rec], &TilePix, &mut BwdState, bool, &mut [Acc]);

    /// Backward sums of every splat, flattened, with the lean and the full loop (which must
    /// agree bit for bit: the lean one only drops terms that are zero).
    fn sums(bwd: Bwd, recs: &[Rec], px: &TilePix, dl: &[[f32; PIX]; 5]) -> Vec<f32> {
        let mut st = BwdState {
            dl: *dl,
            ..Default::default()
        };
        let mut outs = Vec::new();
        for extra in [false, true] {
            let mut o = vec![[f32::NAN; 10]; recs.len()];
            bwd(recs, px, &mut st, extra, &mut o);
            outs.push(o.iter().flatten().copied().collect::<Vec<_>>());
        }
        assert_eq!(bits(&outs[0]), bits(&outs[1]));
        outs.swap_remove(0)
    }

    /// The FMA code (AVX-512 and AVX2 give the same bits) against the portable code (close),
    /// forward and backward, on a crowded tile (early termination) and a partial one.
    #[test]
    fn cpu_variants_and_lean_path_agree() {
        let mut recs = random_recs(400, 3);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut dl = [[0.0f32; PIX]; 5];
        for v in dl.iter_mut().take(3).flatten() {
            *v = rng.gen_range(-1.0..1.0);
        }
        for (cols, rows) in [(16, 16), (7, 11)] {
            let (mut a, mut b) = (TilePix::default(), TilePix::default());
            let mut recs_p = recs.clone();
            raster_tile(&mut recs, &mut a, cols, rows);
            raster_tile_on(Isa::Base, &mut recs_p, &mut b, cols, rows);
            // Hidden splats (behind stopped pixels) are skipped by the backward pass.
            let skipped = recs.iter().filter(|r| r.rows == 0).count();
            assert!(skipped > 0 && skipped < recs.len(), "{skipped}");
            for ch in 0..4 {
                let e = rel(&a.out[ch], &b.out[ch]);
                assert!(e < 1e-5, "forward channel {ch}: {e}");
            }
            assert!(rel(&a.t, &b.t) < 1e-4);
            let covered = a.last.iter().filter(|&&l| l >= 0).count();
            assert!(2 * covered > cols * rows, "{covered}");
            let sd = sums(backward_tile, &recs, &a, &dl);
            let base: Bwd = |s, px, st, e, o| backward_tile_on(Isa::Base, s, px, st, e, o);
            let sp = sums(base, &recs_p, &b, &dl);
            let e = rel(&sd, &sp);
            assert!(e < 1e-4, "backward: {e}");
            let nonzero = sd.iter().filter(|&&x| x != 0.0).count();
            assert!(nonzero > 1000, "{nonzero}");
            if Isa::Avx512.fused_available() && Isa::Avx2.fused_available() {
                let mut c = TilePix::default();
                let mut recs_c = recs.clone();
                raster_tile_on(Isa::Avx2, &mut recs_c, &mut c, cols, rows);
                assert!(recs.iter().zip(&recs_c).all(|(x, y)| x.rows == y.rows));
                for ch in 0..4 {
                    assert_eq!(bits(&a.out[ch]), bits(&c.out[ch]));
                }
                assert_eq!(a.last, c.last);
                let avx2: Bwd = |s, px, st, e, o| backward_tile_on(Isa::Avx2, s, px, st, e, o);
                assert_eq!(bits(&sd), bits(&sums(avx2, &recs_c, &c, &dl)));
            }
        }
    }
}
