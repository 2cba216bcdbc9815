//! The map folder on disk: section files with headers and checksums, and the manifest that
//! lists them. Loading checks the manifest, then every file's size and CRC, then decodes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec::{Reader, Writer};
use super::sections::{
    read_gaussians, read_keyframes, read_lidar, read_rig, write_gaussians, write_keyframes,
    write_lidar, write_rig,
};
use super::{GaussianSection, MapFileError, SessionMap};

/// The manifest's format name.
pub const FORMAT: &str = "gs_livo map";
/// The version this build writes and reads; a change of any section's layout raises it.
/// Version 2 stores keyframe targets in 8 bits (version 1: f32, four times the bytes).
pub const VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"GSLVMAP\0";
/// magic, version, kind, payload length, CRC-32.
const HEADER: usize = 8 + 4 + 4 + 8 + 4;
const MANIFEST: &str = "manifest.json";

/// The section files, in writing order, with their kind numbers.
const SECTIONS: [(&str, u32); 4] = [
    ("rig.bin", 1),
    ("lidar_map.bin", 2),
    ("gaussians.bin", 3),
    ("keyframes.bin", 4),
];

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    file: String,
    bytes: u64,
    crc32: u32,
}

/// What the manifest says: checked against the files and against what they decode to.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    files: Vec<FileEntry>,
    lidar_roots: u64,
    gaussians: u64,
    keyframes: u64,
    anchors: u64,
}

impl Manifest {
    fn counts(map: &SessionMap) -> [u64; 4] {
        let g = map.gaussian.as_ref().map(|g| &g.state);
        [
            map.lidar_roots.len() as u64,
            g.map_or(0, |s| s.gaussians.len() as u64),
            g.map_or(0, |s| s.keyframes.len() as u64),
            g.map_or(0, |s| s.anchors.len() as u64),
        ]
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MapFileError + '_ {
    move |source| MapFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn framed(kind: u32, payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The encoded files of `map` (name, bytes).
fn encode(map: &SessionMap) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = Vec::new();
    let mut w = Writer::default();
    write_rig(
        &mut w,
        &map.source,
        &map.rig,
        &map.lidar_cfg,
        map.gaussian.as_ref(),
    );
    files.push((SECTIONS[0].0, framed(SECTIONS[0].1, w.0)));
    let mut w = Writer::default();
    write_lidar(&mut w, &map.lidar_roots);
    files.push((SECTIONS[1].0, framed(SECTIONS[1].1, w.0)));
    if let Some(g) = &map.gaussian {
        let mut w = Writer::default();
        write_gaussians(&mut w, g.sh_degree, &g.state.gaussians);
        files.push((SECTIONS[2].0, framed(SECTIONS[2].1, w.0)));
        let mut w = Writer::default();
        write_keyframes(&mut w, &g.state);
        files.push((SECTIONS[3].0, framed(SECTIONS[3].1, w.0)));
    }
    files
}

pub fn save(map: &SessionMap, dir: &Path) -> Result<(), MapFileError> {
    let files = encode(map);
    let [lidar_roots, gaussians, keyframes, anchors] = Manifest::counts(map);
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        files: files
            .iter()
            .map(|(name, bytes)| FileEntry {
                file: (*name).into(),
                bytes: bytes.len() as u64,
                crc32: crc32fast::hash(bytes),
            })
            .collect(),
        lidar_roots,
        gaussians,
        keyframes,
        anchors,
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "map".into());
    let tmp = dir.with_file_name(format!(".{name}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for (name, bytes) in &files {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(io(&p))?;
    }
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| MapFileError::Corrupt {
        path: tmp.join(MANIFEST),
        reason: e.to_string(),
    })? + "\n";
    let p = tmp.join(MANIFEST);
    std::fs::write(&p, text).map_err(io(&p))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))
}

/// The payload of section file `path` of `kind`, its header and checksum verified (the
/// manifest's size and CRC were checked already).
fn payload<'a>(path: &Path, kind: u32, bytes: &'a [u8]) -> Result<&'a [u8], MapFileError> {
    let corrupt = |reason: String| MapFileError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER {
        return Err(MapFileError::Truncated {
            path: path.to_path_buf(),
            expected: HEADER as u64,
            found: bytes.len() as u64,
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(MapFileError::NotAMap {
            path: path.to_path_buf(),
            reason: "bad magic".into(),
        });
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let version = u32_at(8);
    if version != VERSION {
        return Err(MapFileError::Version {
            path: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    if u32_at(12) != kind {
        return Err(corrupt(format!(
            "section kind {} where {kind} belongs",
            u32_at(12)
        )));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[16..24]);
    let len = u64::from_le_bytes(len);
    let body = &bytes[HEADER..];
    if len != body.len() as u64 {
        return Err(MapFileError::Truncated {
            path: path.to_path_buf(),
            expected: len + HEADER as u64,
            found: bytes.len() as u64,
        });
    }
    let (expected, found) = (u32_at(24), crc32fast::hash(body));
    if expected != found {
        return Err(MapFileError::Checksum {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    Ok(body)
}

fn read_manifest(dir: &Path) -> Result<Manifest, MapFileError> {
    let path = dir.join(MANIFEST);
    if !dir.is_dir() {
        return Err(MapFileError::NotAMap {
            path: dir.to_path_buf(),
            reason: "not a folder".into(),
        });
    }
    let text = std::fs::read(&path).map_err(io(&path))?;
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| MapFileError::NotAMap {
        path: path.clone(),
        reason: format!("manifest: {e}"),
    })?;
    // Written canonically: any other bytes (a cut, an edited space) mean damage.
    let canonical = serde_json::to_string_pretty(&m)
        .map(|t| t + "\n")
        .unwrap_or_default();
    if canonical.as_bytes() != text.as_slice() {
        return Err(MapFileError::Corrupt {
            path,
            reason: "manifest differs from its canonical form (edited or truncated)".into(),
        });
    }
    if m.format != FORMAT {
        return Err(MapFileError::NotAMap {
            path,
            reason: format!("format `{}`", m.format),
        });
    }
    if m.version != VERSION {
        return Err(MapFileError::Version {
            path,
            found: m.version,
            supported: VERSION,
        });
    }
    // Exactly the sections of a LiDAR-only map or of a full one, in order.
    let names: Vec<&str> = m.files.iter().map(|f| f.file.as_str()).collect();
    let full: Vec<&str> = SECTIONS.iter().map(|s| s.0).collect();
    if names != full && names != full[..2] {
        return Err(MapFileError::NotAMap {
            path,
            reason: format!("sections {names:?}"),
        });
    }
    Ok(m)
}

/// Reads every listed file, checking size and CRC against the manifest.
fn read_files(dir: &Path, m: &Manifest) -> Result<Vec<(PathBuf, Vec<u8>)>, MapFileError> {
    let mut out = Vec::new();
    for f in &m.files {
        let path = dir.join(&f.file);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if bytes.len() as u64 != f.bytes {
            if (bytes.len() as u64) < f.bytes {
                return Err(MapFileError::Truncated {
                    path,
                    expected: f.bytes,
                    found: bytes.len() as u64,
                });
            }
            return Err(MapFileError::Corrupt {
                path,
                reason: format!("{} bytes where {} were written", bytes.len(), f.bytes),
            });
        }
        let found = crc32fast::hash(&bytes);
        if found != f.crc32 {
            return Err(MapFileError::Checksum {
                path,
                expected: f.crc32,
                found,
            });
        }
        out.push((path, bytes));
    }
    Ok(out)
}

pub fn load(dir: &Path) -> Result<SessionMap, MapFileError> {
    let m = read_manifest(dir)?;
    let files = read_files(dir, &m)?;
    let decode_err = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| MapFileError::Corrupt { path, reason }
    };
    let section = |i: usize| -> Result<(&Path, &[u8]), MapFileError> {
        let (path, bytes) = &files[i];
        Ok((path.as_path(), payload(path, SECTIONS[i].1, bytes)?))
    };
    let (path, body) = section(0)?;
    let mut r = Reader::new(body);
    let rig = read_rig(&mut r).map_err(decode_err(path))?;
    r.finish().map_err(decode_err(path))?;
    let (path, body) = section(1)?;
    let mut r = Reader::new(body);
    let lidar_roots = read_lidar(&mut r).map_err(decode_err(path))?;
    r.finish().map_err(decode_err(path))?;
    let gaussian = match (rig.gaussian, files.len()) {
        (Some((root_size, levels, sh_degree)), 4) => {
            let (path, body) = section(2)?;
            let mut r = Reader::new(body);
            let gs = read_gaussians(&mut r, sh_degree).map_err(decode_err(path))?;
            r.finish().map_err(decode_err(path))?;
            let (path, body) = section(3)?;
            let mut r = Reader::new(body);
            let state = read_keyframes(&mut r, gs).map_err(decode_err(path))?;
            r.finish().map_err(decode_err(path))?;
            Some(GaussianSection {
                root_size,
                levels,
                sh_degree,
                state,
            })
        }
        (None, 2) => None,
        (g, n) => {
            return Err(MapFileError::Corrupt {
                path: dir.join(MANIFEST),
                reason: format!(
                    "{n} section files but rig.bin {} a Gaussian map",
                    if g.is_some() {
                        "announces"
                    } else {
                        "announces no"
                    }
                ),
            })
        }
    };
    let map = SessionMap {
        source: rig.source,
        rig: rig.rig,
        lidar_cfg: rig.lidar,
        lidar_roots,
        gaussian,
    };
    if Manifest::counts(&map) != [m.lidar_roots, m.gaussians, m.keyframes, m.anchors] {
        return Err(MapFileError::Corrupt {
            path: dir.join(MANIFEST),
            reason: "counts differ from the section files".into(),
        });
    }
    Ok(map)
}
