//! The exported PLY round-trips exactly and its header is the 3DGS layout.

use gs_livo::gaussian::{read_ply, write_ply, Gaussian, GaussianConfig, GaussianMap};
use rand::{Rng, SeedableRng};

fn random_gaussian(rng: &mut impl Rng) -> Gaussian {
    let mut g = Gaussian {
        mean: [
            rng.gen_range(-50.0..50.0),
            rng.gen_range(-50.0..50.0),
            rng.gen_range(-2.0..5.0),
        ],
        log_scale: [
            rng.gen_range(-6.0..0.0),
            rng.gen_range(-6.0..0.0),
            rng.gen_range(-8.0..-2.0),
        ],
        rotation: [rng.gen(), rng.gen(), rng.gen(), rng.gen()],
        opacity_logit: rng.gen_range(-5.0..5.0),
        ..Default::default()
    };
    for k in 0..16 {
        for c in 0..3 {
            g.sh[k][c] = rng.gen_range(-2.0..2.0);
        }
    }
    g
}

fn header_of(bytes: &[u8]) -> String {
    let end = bytes
        .windows(11)
        .position(|w| w == b"end_header\n")
        .expect("end_header")
        + 11;
    String::from_utf8(bytes[..end].to_vec()).unwrap()
}

#[test]
fn header_matches_3dgs_layout() {
    let g = Gaussian::default();
    let mut bytes = Vec::new();
    write_ply(&mut bytes, [g; 3].iter(), 3).unwrap();
    let mut want = String::from("ply\nformat binary_little_endian 1.0\nelement vertex 3\n");
    for n in [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ] {
        want += &format!("property float {n}\n");
    }
    for i in 0..45 {
        want += &format!("property float f_rest_{i}\n");
    }
    want += "property float opacity\n";
    for i in 0..3 {
        want += &format!("property float scale_{i}\n");
    }
    for i in 0..4 {
        want += &format!("property float rot_{i}\n");
    }
    want += "end_header\n";
    assert_eq!(header_of(&bytes), want);
    assert_eq!(bytes.len(), want.len() + 3 * 62 * 4);
}

#[test]
fn f_rest_is_channel_major_and_dc_first() {
    // One Gaussian with sh[k][c] = 100 k + c: the body must list f_rest as red's k = 1..15,
    // then green's, then blue's.
    let mut g = Gaussian::default();
    for k in 0..16 {
        for c in 0..3 {
            g.sh[k][c] = (100 * k + c) as f32;
        }
    }
    g.mean = [1.0, 2.0, 3.0];
    g.opacity_logit = -7.0;
    g.log_scale = [-1.0, -2.0, -3.0];
    g.rotation = [0.5, 0.6, 0.7, 0.8];
    let mut bytes = Vec::new();
    write_ply(&mut bytes, [g].iter(), 3).unwrap();
    let body = &bytes[header_of(&bytes).len()..];
    let v: Vec<f32> = body
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(&v[0..3], &[1.0, 2.0, 3.0]);
    assert_eq!(&v[6..9], &[0.0, 1.0, 2.0]);
    assert_eq!(v[9], 100.0); // f_rest_0 = red, k = 1
    assert_eq!(v[9 + 14], 1500.0); // f_rest_14 = red, k = 15
    assert_eq!(v[9 + 15], 101.0); // f_rest_15 = green, k = 1
    assert_eq!(v[9 + 44], 1502.0); // f_rest_44 = blue, k = 15
    assert_eq!(v[54], -7.0);
    assert_eq!(&v[55..58], &[-1.0, -2.0, -3.0]);
    assert_eq!(&v[58..62], &[0.5, 0.6, 0.7, 0.8]);
}

#[test]
fn map_round_trips_bit_exactly_through_a_file() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let cfg = GaussianConfig {
        sh_degree: 3,
        ..Default::default()
    };
    let mut map = GaussianMap::new(cfg.clone()).unwrap();
    let gs: Vec<Gaussian> = (0..2000).map(|_| random_gaussian(&mut rng)).collect();
    for g in &gs {
        map.insert_unchecked(*g, true).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ply");
    let b = dir.path().join("b.ply");
    map.save_ply(&a).unwrap();
    let back = GaussianMap::load_ply(&a, cfg).unwrap();
    assert_eq!(back.len(), gs.len());
    for ((_, got), want) in back.iter().zip(&gs) {
        // Bitwise, not approximately.
        let bits = |g: &Gaussian| {
            let mut v: Vec<u32> = g.mean.iter().map(|x| x.to_bits()).collect();
            v.extend(g.log_scale.iter().map(|x| x.to_bits()));
            v.extend(g.rotation.iter().map(|x| x.to_bits()));
            v.push(g.opacity_logit.to_bits());
            v.extend(g.sh.iter().flatten().map(|x| x.to_bits()));
            v
        };
        assert_eq!(bits(&got), bits(want));
    }
    back.save_ply(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    back.check_invariants().unwrap();
}

#[test]
fn lower_degrees_drop_only_unused_coefficients() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for degree in 0..=3u32 {
        let mut gs: Vec<Gaussian> = (0..50).map(|_| random_gaussian(&mut rng)).collect();
        let k = ((degree + 1) * (degree + 1)) as usize;
        for g in &mut gs {
            for row in g.sh.iter_mut().skip(k) {
                *row = [0.0; 3];
            }
        }
        let mut bytes = Vec::new();
        write_ply(&mut bytes, gs.iter(), degree).unwrap();
        let (back, d) = read_ply(&bytes[..]).unwrap();
        assert_eq!(d, degree);
        assert_eq!(back, gs);
    }
}
