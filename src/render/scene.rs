//! Random test and benchmark scenes (seeded, reproducible).

use nalgebra::{Isometry3, Point3, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{sh_coeffs, Camera, Gaussians, Group};

/// `n` random Gaussians in a box in front of a camera at the origin looking along +z
/// (world = camera frame for `identity` poses): depths 2..6 m, lateral spread so most project
/// into the view, scales ~`scale` m, random rotations, opacity 0.3..0.9, SH of `sh_degree`.
pub fn random_gaussians(n: usize, sh_degree: u32, scale: f32, seed: u64) -> Gaussians {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = Gaussians::zeros(n, sh_degree).expect("degree <= 3");
    let k = sh_coeffs(sh_degree);
    for i in 0..n {
        let z: f32 = rng.gen_range(2.0..6.0);
        let x: f32 = rng.gen_range(-0.45..0.45) * z;
        let y: f32 = rng.gen_range(-0.35..0.35) * z;
        g.get_mut(Group::Mean, i).copy_from_slice(&[x, y, z]);
        let ls: [f32; 3] = std::array::from_fn(|_| (scale * rng.gen_range(0.5f32..1.5)).ln());
        g.get_mut(Group::LogScale, i).copy_from_slice(&ls);
        let q: [f32; 4] = std::array::from_fn(|_| rng.gen_range(-1.0f32..1.0));
        g.get_mut(Group::Rotation, i).copy_from_slice(&q);
        let o: f32 = rng.gen_range(0.3f32..0.9);
        g.get_mut(Group::Opacity, i)[0] = (o / (1.0 - o)).ln();
        let dc: [f32; 3] = std::array::from_fn(|_| rng.gen_range(-1.2f32..1.2));
        g.get_mut(Group::ShDc, i).copy_from_slice(&dc);
        for v in g.get_mut(Group::ShRest, i).iter_mut() {
            *v = rng.gen_range(-0.15f32..0.15);
        }
        let _ = k;
    }
    g
}

/// A slightly rotated and shifted world-to-camera pose that still sees [`random_gaussians`].
pub fn test_pose() -> Isometry3<f64> {
    let eye = Point3::new(0.15, -0.1, -0.2);
    let target = Point3::new(0.05, 0.0, 4.0);
    // look_at_rh gives a view matrix with -z forward; build the optical frame directly instead.
    let fwd = (target - eye).normalize();
    let right = Vector3::new(0.0, 1.0, 0.05).cross(&fwd).normalize() * -1.0;
    let down = fwd.cross(&right);
    let r_wc = nalgebra::Matrix3::from_columns(&[right, down, fwd]);
    let rot = nalgebra::UnitQuaternion::from_matrix(&r_wc);
    let t_wc = Isometry3::from_parts(eye.coords.into(), rot);
    t_wc.inverse()
}

/// A small camera for tests.
pub fn test_camera(width: u32, height: u32) -> Camera {
    Camera::new(width, height, 0.9 * width as f64, 0.9 * width as f64)
}
