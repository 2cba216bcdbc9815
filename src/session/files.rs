//! The map folder on disk: section files with headers and checksums, and the manifest that
//! lists them. Loading checks the manifest, then every file's size and CRC, then decodes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec::{Reader, Writer};
use super::sections::{
    read_gaussians, read_keyframes, read_lidar, read_rig, write_keyframes, write_lidar, write_rig,
};
use super::tiles;
use super::{GaussianSection, MapFileError, PagedGaussians, SessionMap};

/// The manifest's format name.
pub const FORMAT: &str = "gs_livo map";
/// The version this build writes; a change of any section's layout raises it. Version 3
/// stores the Gaussians in position tiles, each with its own checksum, behind an index
/// (`tiles`), so a run can page them; version 2 (one block of Gaussians) is still read.
/// Version 2 stores keyframe targets in 8 bits (version 1: f32, four times the bytes).
pub const VERSION: u32 = 3;
/// The oldest version this build reads.
pub const OLDEST: u32 = 2;
const MAGIC: &[u8; 8] = b"GSLVMAP\0";
/// magic, version, kind, payload length, CRC-32.
pub(super) const HEADER: usize = 8 + 4 + 4 + 8 + 4;
const GAUSSIANS: usize = 2;
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
            g.map_or(0, |s| s.gaussians.len() as u64)
                + map.paged.as_ref().map_or(0, |p| p.index.count()),
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

/// A section header: magic, `version`, `kind`, the length and CRC-32 of `payload`.
pub(super) fn header(version: u32, kind: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out
}

fn framed(version: u32, kind: u32, payload: Vec<u8>) -> Vec<u8> {
    let mut out = header(version, kind, &payload);
    out.extend_from_slice(&payload);
    out
}

/// The encoded files of `map` (name, bytes) in format `version` (3, or 2 for tests of
/// reading old maps), Gaussians in tiles of `tile_roots` root voxels per edge.
fn encode(
    map: &SessionMap,
    version: u32,
    tile_roots: i64,
) -> Result<Vec<(&'static str, Vec<u8>)>, MapFileError> {
    let framed = |kind, payload| framed(version, kind, payload);
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
        let kind = SECTIONS[2].1;
        let bytes = match (&map.paged, version) {
            // A paged map's tiles are the file it was opened from: the same bytes again.
            (Some(p), VERSION) if p.index.tile_roots == tile_roots => p.read_checked()?,
            (Some(p), _) => {
                let all = p.read_all()?;
                tiles::encode(version, kind, g.sh_degree, tile_roots, &all)
            }
            #[cfg(test)]
            (None, 2) => {
                let mut w = Writer::default();
                super::sections::write_gaussians(&mut w, g.sh_degree, &g.state.gaussians);
                framed(kind, w.0)
            }
            (None, _) => tiles::encode(version, kind, g.sh_degree, tile_roots, &g.state.gaussians),
        };
        files.push((SECTIONS[2].0, bytes));
        let mut w = Writer::default();
        write_keyframes(&mut w, &g.state);
        files.push((SECTIONS[3].0, framed(SECTIONS[3].1, w.0)));
    }
    Ok(files)
}

/// Saves `map` into `dir` in format `version` with tiles of about `tile_edge` m.
pub fn save(
    map: &SessionMap,
    dir: &Path,
    version: u32,
    tile_edge: f64,
) -> Result<(), MapFileError> {
    let tile_roots = map
        .gaussian
        .as_ref()
        .map_or(1, |g| tiles::tile_roots_for(g.root_size, tile_edge));
    let files = encode(map, version, tile_roots)?;
    let [lidar_roots, gaussians, keyframes, anchors] = Manifest::counts(map);
    let manifest = Manifest {
        format: FORMAT.into(),
        version,
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

/// Checks a section header `head` of a file of `file_len` bytes: magic, `version`, `kind`, and
/// a payload length that fits. Returns the payload length.
pub(super) fn check_header(
    path: &Path,
    version: u32,
    kind: u32,
    head: &[u8],
    file_len: u64,
) -> Result<usize, MapFileError> {
    if head.len() < HEADER {
        return Err(MapFileError::Truncated {
            path: path.to_path_buf(),
            expected: HEADER as u64,
            found: head.len() as u64,
        });
    }
    if &head[..8] != MAGIC {
        return Err(MapFileError::NotAMap {
            path: path.to_path_buf(),
            reason: "bad magic".into(),
        });
    }
    let u32_at = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
    let found = u32_at(8);
    if found != version {
        return Err(MapFileError::Version {
            path: path.to_path_buf(),
            found,
            supported: VERSION,
        });
    }
    if u32_at(12) != kind {
        return Err(MapFileError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("section kind {} where {kind} belongs", u32_at(12)),
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[16..24]);
    let len = u64::from_le_bytes(len);
    if len > file_len - HEADER as u64 {
        return Err(MapFileError::Truncated {
            path: path.to_path_buf(),
            expected: len.saturating_add(HEADER as u64),
            found: file_len,
        });
    }
    Ok(len as usize)
}

/// Checks `body` against the CRC-32 in header `head`.
pub(super) fn check_crc(path: &Path, head: &[u8], body: &[u8]) -> Result<(), MapFileError> {
    let expected = u32::from_le_bytes([head[24], head[25], head[26], head[27]]);
    let found = crc32fast::hash(body);
    if expected != found {
        return Err(MapFileError::Checksum {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    Ok(())
}

/// Checks a file's length against the manifest's.
pub(super) fn check_len(path: &Path, found: u64, expected: u64) -> Result<(), MapFileError> {
    if found < expected {
        return Err(MapFileError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    if found > expected {
        return Err(MapFileError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{found} bytes where {expected} were written"),
        });
    }
    Ok(())
}

/// The payload of section file `path` of `kind` (whole file in `bytes`), its header and
/// checksum verified.
fn payload<'a>(
    path: &Path,
    version: u32,
    kind: u32,
    bytes: &'a [u8],
) -> Result<&'a [u8], MapFileError> {
    let len = check_header(path, version, kind, bytes, bytes.len() as u64)?;
    let body = &bytes[HEADER..];
    if len != body.len() {
        return Err(MapFileError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{} bytes after the section's {len}", body.len() - len),
        });
    }
    check_crc(path, bytes, body)?;
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
    if !(OLDEST..=VERSION).contains(&m.version) {
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

/// Reads every listed file but `skip`, checking size and CRC against the manifest.
fn read_files(
    dir: &Path,
    m: &Manifest,
    skip: Option<usize>,
) -> Result<Vec<(PathBuf, Vec<u8>)>, MapFileError> {
    let mut out = Vec::new();
    for (i, f) in m.files.iter().enumerate() {
        let path = dir.join(&f.file);
        if skip == Some(i) {
            out.push((path, Vec::new()));
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        check_len(&path, bytes.len() as u64, f.bytes)?;
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

/// The Gaussians of a tiled (version 3) `gaussians.bin` held whole in `bytes`: header, index
/// and every tile checked (a damaged tile is named), then the whole file's CRC.
fn tiled_records(
    path: &Path,
    entry: &FileEntry,
    sh_degree: u32,
    bytes: &[u8],
) -> Result<Vec<crate::gaussian::GaussianRecord>, MapFileError> {
    check_len(path, bytes.len() as u64, entry.bytes)?;
    let len = check_header(
        path,
        VERSION,
        SECTIONS[GAUSSIANS].1,
        bytes,
        bytes.len() as u64,
    )?;
    let index = &bytes[HEADER..HEADER + len];
    check_crc(path, bytes, index)?;
    let index = tiles::parse_index(path, index, bytes.len() as u64, sh_degree)?;
    let records = tiles::decode_all(path, &index, bytes)?;
    let found = crc32fast::hash(bytes);
    if found != entry.crc32 {
        return Err(MapFileError::Checksum {
            path: path.to_path_buf(),
            expected: entry.crc32,
            found,
        });
    }
    Ok(records)
}

/// Loads folder `dir`; with `paged`, a version-3 map's Gaussians stay on disk (checked tile by
/// tile, one in memory at a time) and the map holds their index.
pub fn load(dir: &Path, paged: bool) -> Result<SessionMap, MapFileError> {
    let m = read_manifest(dir)?;
    let version = m.version;
    let tiled = version >= 3 && m.files.len() == SECTIONS.len();
    // Tiled Gaussians are checked tile by tile before the whole file's CRC, so the error names
    // a damaged tile; paged, they are not read whole at all.
    let files = read_files(dir, &m, tiled.then_some(GAUSSIANS))?;
    let decode_err = |path: &Path| {
        let path = path.to_path_buf();
        move |reason: String| MapFileError::Corrupt { path, reason }
    };
    let section = |i: usize| -> Result<(&Path, &[u8]), MapFileError> {
        let (path, bytes) = &files[i];
        Ok((
            path.as_path(),
            payload(path, version, SECTIONS[i].1, bytes)?,
        ))
    };
    let (path, body) = section(0)?;
    let mut r = Reader::new(body);
    let rig = read_rig(&mut r).map_err(decode_err(path))?;
    r.finish().map_err(decode_err(path))?;
    let (path, body) = section(1)?;
    let mut r = Reader::new(body);
    let lidar_roots = read_lidar(&mut r).map_err(decode_err(path))?;
    r.finish().map_err(decode_err(path))?;
    let mut paged_gaussians = None;
    let gaussian = match (rig.gaussian, files.len()) {
        (Some((root_size, levels, sh_degree)), 4) => {
            let path = files[GAUSSIANS].0.as_path();
            let entry = &m.files[GAUSSIANS];
            let gs = if !tiled {
                let (path, body) = section(GAUSSIANS)?;
                let mut r = Reader::new(body);
                let gs = read_gaussians(&mut r, sh_degree).map_err(decode_err(path))?;
                r.finish().map_err(decode_err(path))?;
                gs
            } else if paged {
                let index = tiles::verify_file(
                    path,
                    version,
                    SECTIONS[GAUSSIANS].1,
                    sh_degree,
                    entry.bytes,
                    entry.crc32,
                )?;
                paged_gaussians = Some(PagedGaussians {
                    path: path.to_path_buf(),
                    index,
                    crc32: entry.crc32,
                });
                Vec::new()
            } else {
                let bytes = std::fs::read(path).map_err(io(path))?;
                tiled_records(path, entry, sh_degree, &bytes)?
            };
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
        paged: paged_gaussians,
    };
    if Manifest::counts(&map) != [m.lidar_roots, m.gaussians, m.keyframes, m.anchors] {
        return Err(MapFileError::Corrupt {
            path: dir.join(MANIFEST),
            reason: "counts differ from the section files".into(),
        });
    }
    Ok(map)
}
