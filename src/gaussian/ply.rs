//! Gaussians as a standard 3DGS PLY file, so common splat viewers open our maps.
//!
//! Layout (binary_little_endian, one `vertex` element, all `float`): `x y z nx ny nz f_dc_0..2
//! f_rest_0..(3*(K-1)-1) opacity scale_0..2 rot_0..3` where K = (degree+1)^2 coefficients per
//! channel; `f_rest` is channel-major (all of red's higher coefficients, then green's, then
//! blue's), opacity is a logit, scales are logs, rot is (w, x, y, z). Normals are the disc
//! normals (3DGS writes zeros; viewers ignore them) and are not read back.

use std::io::{BufRead, Read, Write};

use super::params::{sh_coeff_count, Gaussian};

#[derive(Debug, thiserror::Error)]
pub enum PlyError {
    #[error("ply i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("ply header: {0}")]
    Header(String),
    #[error("ply body truncated: expected {expected} vertices, got {got}")]
    Truncated { expected: usize, got: usize },
}

/// Property names in file order for an SH degree.
pub fn property_names(sh_degree: u32) -> Vec<String> {
    let mut v: Vec<String> = [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rest = 3 * (sh_coeff_count(sh_degree) - 1);
    v.extend((0..rest).map(|i| format!("f_rest_{i}")));
    v.push("opacity".into());
    v.extend((0..3).map(|i| format!("scale_{i}")));
    v.extend((0..4).map(|i| format!("rot_{i}")));
    v
}

/// Header comment naming how many of the last vertices are the background shell (see
/// `shell`): viewers draw them, [`read_ply_parts`] tells them apart from the map.
const SHELL_COMMENT: &str = "gs_livo_background_shell";

/// Writes `gaussians` with SH coefficients up to `sh_degree` (0..=3).
pub fn write_ply<'a, W: Write>(
    out: W,
    gaussians: impl ExactSizeIterator<Item = &'a Gaussian>,
    sh_degree: u32,
) -> Result<(), PlyError> {
    write_ply_with_shell(out, gaussians, sh_degree, 0)
}

/// [`write_ply`] where the last `shell` Gaussians are the background shell (named in a header
/// comment, which viewers ignore).
pub fn write_ply_with_shell<'a, W: Write>(
    out: W,
    gaussians: impl ExactSizeIterator<Item = &'a Gaussian>,
    sh_degree: u32,
    shell: usize,
) -> Result<(), PlyError> {
    let sh_degree = sh_degree.min(3);
    let mut out = std::io::BufWriter::new(out);
    let names = property_names(sh_degree);
    let mut header = String::from("ply\nformat binary_little_endian 1.0\n");
    if shell > 0 {
        header.push_str(&format!("comment {SHELL_COMMENT} {shell}\n"));
    }
    header.push_str(&format!("element vertex {}\n", gaussians.len()));
    for n in &names {
        header.push_str("property float ");
        header.push_str(n);
        header.push('\n');
    }
    header.push_str("end_header\n");
    out.write_all(header.as_bytes())?;
    let k = sh_coeff_count(sh_degree);
    let mut row: Vec<f32> = Vec::with_capacity(names.len());
    for g in gaussians {
        row.clear();
        row.extend_from_slice(&g.mean);
        row.extend_from_slice(&g.normal());
        row.extend_from_slice(&g.sh[0]);
        for c in 0..3 {
            row.extend((1..k).map(|i| g.sh[i][c]));
        }
        row.push(g.opacity_logit);
        row.extend_from_slice(&g.log_scale);
        row.extend_from_slice(&g.rotation);
        for v in &row {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Reads a 3DGS PLY; returns the Gaussians (a background shell included, as a viewer draws
/// it) and the SH degree found. Properties may come in any order; unknown float properties and
/// elements after `vertex` are ignored.
pub fn read_ply<R: Read>(input: R) -> Result<(Vec<Gaussian>, u32), PlyError> {
    read_ply_parts(input).map(|(g, d, _)| (g, d))
}

/// [`read_ply`], and how many of the last Gaussians are the background shell (0 without one).
pub fn read_ply_parts<R: Read>(input: R) -> Result<(Vec<Gaussian>, u32, usize), PlyError> {
    let mut r = std::io::BufReader::new(input);
    let mut line = String::new();
    let mut next_line = |r: &mut std::io::BufReader<R>| -> Result<String, PlyError> {
        line.clear();
        let n = r.by_ref().take(4096).read_line(&mut line)?;
        if n == 0 {
            return Err(PlyError::Header("unexpected end of file".into()));
        }
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    if next_line(&mut r)? != "ply" {
        return Err(PlyError::Header("missing `ply` magic".into()));
    }
    let mut count: Option<usize> = None;
    let mut props: Vec<String> = Vec::new();
    let mut in_vertex = false;
    let mut format_ok = false;
    let mut shell = 0usize;
    for _ in 0..10_000 {
        let l = next_line(&mut r)?;
        let parts: Vec<&str> = l.split_whitespace().collect();
        match parts.as_slice() {
            ["format", "binary_little_endian", "1.0"] => format_ok = true,
            ["format", f, ..] => {
                return Err(PlyError::Header(format!(
                    "format `{f}` unsupported (binary_little_endian only)"
                )))
            }
            ["comment", SHELL_COMMENT, n] => {
                shell = n
                    .parse()
                    .map_err(|_| PlyError::Header(format!("bad shell count `{n}`")))?;
            }
            ["comment", ..] | ["obj_info", ..] => {}
            ["element", "vertex", n] => {
                if count.is_some() {
                    return Err(PlyError::Header("two vertex elements".into()));
                }
                count = Some(
                    n.parse()
                        .map_err(|_| PlyError::Header(format!("bad vertex count `{n}`")))?,
                );
                in_vertex = true;
            }
            ["element", ..] => {
                if count.is_none() {
                    return Err(PlyError::Header(
                        "an element before `vertex` is not supported".into(),
                    ));
                }
                in_vertex = false;
            }
            ["property", ty, name] if in_vertex => {
                if *ty != "float" && *ty != "float32" {
                    return Err(PlyError::Header(format!(
                        "property `{name}` has type `{ty}`; only float is supported"
                    )));
                }
                props.push(name.to_string());
            }
            ["property", ..] => {}
            ["end_header"] => {
                let (gs, degree) = read_body(&mut r, format_ok, count, &props)?;
                if shell > gs.len() {
                    return Err(PlyError::Header(format!(
                        "{shell} shell vertices of {}",
                        gs.len()
                    )));
                }
                return Ok((gs, degree, shell));
            }
            _ => return Err(PlyError::Header(format!("unexpected line `{l}`"))),
        }
    }
    Err(PlyError::Header("header too long".into()))
}

fn read_body<R: Read>(
    r: &mut R,
    format_ok: bool,
    count: Option<usize>,
    props: &[String],
) -> Result<(Vec<Gaussian>, u32), PlyError> {
    if !format_ok {
        return Err(PlyError::Header("no `format` line".into()));
    }
    let count = count.ok_or_else(|| PlyError::Header("no vertex element".into()))?;
    let find = |name: &str| {
        props
            .iter()
            .position(|p| p == name)
            .ok_or_else(|| PlyError::Header(format!("missing property `{name}`")))
    };
    let rest = props.iter().filter(|p| p.starts_with("f_rest_")).count();
    let degree = match rest {
        0 => 0,
        9 => 1,
        24 => 2,
        45 => 3,
        n => {
            return Err(PlyError::Header(format!(
                "{n} f_rest properties: not an SH degree 0..3 layout"
            )))
        }
    };
    let k = sh_coeff_count(degree);
    let idx = |names: &[&str]| names.iter().map(|n| find(n)).collect::<Result<Vec<_>, _>>();
    let mean = idx(&["x", "y", "z"])?;
    let dc = idx(&["f_dc_0", "f_dc_1", "f_dc_2"])?;
    let rest_idx: Vec<usize> = (0..rest)
        .map(|i| find(&format!("f_rest_{i}")))
        .collect::<Result<_, _>>()?;
    let opacity = find("opacity")?;
    let scale = idx(&["scale_0", "scale_1", "scale_2"])?;
    let rot = idx(&["rot_0", "rot_1", "rot_2", "rot_3"])?;
    let stride = props.len() * 4;
    let mut buf = vec![0u8; stride];
    // Do not trust the header's count for the allocation.
    let mut out = Vec::with_capacity(count.min(1 << 20));
    let mut vals = vec![0f32; props.len()];
    for got in 0..count {
        if let Err(e) = r.read_exact(&mut buf) {
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                PlyError::Truncated {
                    expected: count,
                    got,
                }
            } else {
                e.into()
            });
        }
        for (v, b) in vals.iter_mut().zip(buf.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let mut g = Gaussian {
            mean: [vals[mean[0]], vals[mean[1]], vals[mean[2]]],
            log_scale: [vals[scale[0]], vals[scale[1]], vals[scale[2]]],
            rotation: [vals[rot[0]], vals[rot[1]], vals[rot[2]], vals[rot[3]]],
            opacity_logit: vals[opacity],
            ..Default::default()
        };
        g.sh[0] = [vals[dc[0]], vals[dc[1]], vals[dc[2]]];
        for c in 0..3 {
            for i in 1..k {
                g.sh[i][c] = vals[rest_idx[c * (k - 1) + (i - 1)]];
            }
        }
        out.push(g);
    }
    Ok((out, degree))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_3dgs() {
        let n = property_names(3);
        assert_eq!(n.len(), 62);
        assert_eq!(n[9], "f_rest_0");
        assert_eq!(n[53], "f_rest_44");
        assert_eq!(n[54], "opacity");
        assert_eq!(&n[58..], ["rot_0", "rot_1", "rot_2", "rot_3"]);
        assert_eq!(property_names(0).len(), 17);
    }

    #[test]
    fn rejects_bad_headers_and_truncation() {
        for bad in [
            &b"plx\n"[..],
            b"ply\nformat ascii 1.0\nend_header\n",
            b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty double x\nend_header\n",
            b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nend_header\n",
            b"ply\nformat binary_little_endian 1.0\nelement vertex 18446744073709551615\n",
        ] {
            assert!(read_ply(bad).is_err());
        }
        let g = Gaussian::default();
        let mut bytes = Vec::new();
        write_ply(&mut bytes, [g, g].iter(), 1).unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(
            read_ply(&bytes[..]),
            Err(PlyError::Truncated {
                expected: 2,
                got: 1
            })
        ));
    }

    /// The background shell's count travels in a header comment: a plain reader (a viewer)
    /// gets every Gaussian, [`read_ply_parts`] says how many of the last are the shell, and a
    /// count larger than the file is an error.
    #[test]
    fn shell_count_round_trips_in_a_comment() {
        let gs: Vec<Gaussian> = (0..5)
            .map(|i| Gaussian {
                mean: [i as f32, 0.0, 0.0],
                ..Default::default()
            })
            .collect();
        let mut bytes = Vec::new();
        write_ply_with_shell(&mut bytes, gs.iter(), 0, 2).unwrap();
        let (all, _) = read_ply(&bytes[..]).unwrap();
        assert_eq!(all.len(), 5);
        let (all, _, shell) = read_ply_parts(&bytes[..]).unwrap();
        assert_eq!((all.len(), shell, all[3].mean[0]), (5, 2, 3.0));
        let mut plain = Vec::new();
        write_ply(&mut plain, gs.iter(), 0).unwrap();
        assert_eq!(read_ply_parts(&plain[..]).unwrap().2, 0);
        // The same file claiming 9 shell vertices of 5 (one byte changed in place).
        let tag = format!("{SHELL_COMMENT} 2");
        let at = bytes
            .windows(tag.len())
            .position(|w| w == tag.as_bytes())
            .unwrap();
        bytes[at + tag.len() - 1] = b'9';
        assert!(matches!(
            read_ply_parts(&bytes[..]),
            Err(PlyError::Header(m)) if m.contains("9 shell")
        ));
    }
}
