//! Real spherical harmonics up to degree 3 (the 3DGS basis and signs) and their gradients
//! with respect to the (unit) direction. Mirrored in shaders/common.glsl.

pub const C0: f64 = 0.282_094_791_773_878_14;
const C1: f64 = 0.488_602_511_902_919_9;
const C2: [f64; 5] = [
    1.092_548_430_592_079_2,
    -1.092_548_430_592_079_2,
    0.315_391_565_252_520_05,
    -1.092_548_430_592_079_2,
    0.546_274_215_296_039_6,
];
const C3: [f64; 7] = [
    -0.590_043_589_926_643_5,
    2.890_611_442_640_554,
    -0.457_045_799_464_465_8,
    0.373_176_332_590_115_4,
    -0.457_045_799_464_465_8,
    1.445_305_721_320_277,
    -0.590_043_589_926_643_5,
];

/// Basis values `y[k]` and gradients `dy[k] = d y_k / d(x, y, z)` for the first `k_count`
/// functions at direction `d` (treated as a free 3-vector; normalise before).
pub fn basis(d: [f64; 3], k_count: usize, y: &mut [f64; 16], dy: &mut [[f64; 3]; 16]) {
    let [x, yy, z] = d;
    let (xx, y2, zz) = (x * x, yy * yy, z * z);
    y[0] = C0;
    dy[0] = [0.0; 3];
    if k_count > 1 {
        y[1] = -C1 * yy;
        dy[1] = [0.0, -C1, 0.0];
        y[2] = C1 * z;
        dy[2] = [0.0, 0.0, C1];
        y[3] = -C1 * x;
        dy[3] = [-C1, 0.0, 0.0];
    }
    if k_count > 4 {
        y[4] = C2[0] * x * yy;
        dy[4] = [C2[0] * yy, C2[0] * x, 0.0];
        y[5] = C2[1] * yy * z;
        dy[5] = [0.0, C2[1] * z, C2[1] * yy];
        y[6] = C2[2] * (2.0 * zz - xx - y2);
        dy[6] = [-2.0 * C2[2] * x, -2.0 * C2[2] * yy, 4.0 * C2[2] * z];
        y[7] = C2[3] * x * z;
        dy[7] = [C2[3] * z, 0.0, C2[3] * x];
        y[8] = C2[4] * (xx - y2);
        dy[8] = [2.0 * C2[4] * x, -2.0 * C2[4] * yy, 0.0];
    }
    if k_count > 9 {
        y[9] = C3[0] * yy * (3.0 * xx - y2);
        dy[9] = [C3[0] * 6.0 * x * yy, C3[0] * (3.0 * xx - 3.0 * y2), 0.0];
        y[10] = C3[1] * x * yy * z;
        dy[10] = [C3[1] * yy * z, C3[1] * x * z, C3[1] * x * yy];
        y[11] = C3[2] * yy * (4.0 * zz - xx - y2);
        dy[11] = [
            C3[2] * (-2.0 * x * yy),
            C3[2] * (4.0 * zz - xx - 3.0 * y2),
            C3[2] * 8.0 * yy * z,
        ];
        y[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * y2);
        dy[12] = [
            C3[3] * (-6.0 * x * z),
            C3[3] * (-6.0 * yy * z),
            C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * y2),
        ];
        y[13] = C3[4] * x * (4.0 * zz - xx - y2);
        dy[13] = [
            C3[4] * (4.0 * zz - 3.0 * xx - y2),
            C3[4] * (-2.0 * x * yy),
            C3[4] * 8.0 * x * z,
        ];
        y[14] = C3[5] * z * (xx - y2);
        dy[14] = [
            C3[5] * 2.0 * x * z,
            C3[5] * (-2.0 * yy * z),
            C3[5] * (xx - y2),
        ];
        y[15] = C3[6] * x * (xx - 3.0 * y2);
        dy[15] = [C3[6] * (3.0 * xx - 3.0 * y2), C3[6] * (-6.0 * x * yy), 0.0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_gradient_matches_finite_differences() {
        let d = [0.3, -0.5, 0.81];
        let (mut y, mut dy) = ([0.0; 16], [[0.0; 3]; 16]);
        basis(d, 16, &mut y, &mut dy);
        let h = 1e-6;
        for a in 0..3 {
            let (mut p, mut m) = (d, d);
            p[a] += h;
            m[a] -= h;
            let (mut yp, mut ym, mut t) = ([0.0; 16], [0.0; 16], [[0.0; 3]; 16]);
            basis(p, 16, &mut yp, &mut t);
            basis(m, 16, &mut ym, &mut t);
            for k in 0..16 {
                let fd = (yp[k] - ym[k]) / (2.0 * h);
                assert!(
                    (fd - dy[k][a]).abs() < 1e-7,
                    "k {k} axis {a}: {fd} vs {}",
                    dy[k][a]
                );
            }
        }
    }

    #[test]
    fn basis_is_orthonormal_on_the_sphere() {
        // Monte-Carlo-free check: Fibonacci sphere quadrature of y_j y_k * 4pi / N ~ delta_jk.
        let n = 20000;
        let mut gram = [[0.0; 16]; 16];
        let (mut y, mut dy) = ([0.0; 16], [[0.0; 3]; 16]);
        for i in 0..n {
            let z = 1.0 - 2.0 * (i as f64 + 0.5) / n as f64;
            let r = (1.0 - z * z).sqrt();
            let phi = i as f64 * std::f64::consts::PI * (3.0 - 5f64.sqrt());
            basis([r * phi.cos(), r * phi.sin(), z], 16, &mut y, &mut dy);
            for j in 0..16 {
                for k in 0..16 {
                    gram[j][k] += y[j] * y[k] * 4.0 * std::f64::consts::PI / n as f64;
                }
            }
        }
        for (j, row) in gram.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                let want = if j == k { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-3, "gram[{j}][{k}] = {v}");
            }
        }
    }
}
