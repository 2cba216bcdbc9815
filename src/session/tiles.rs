//! `gaussians.bin` in tiles (format version 3), so a run can read the part of the map near the
//! robot and leave the rest on disk (see `gaussian::paging`).
//!
//! Layout: the section header (magic, version, kind, index length, CRC-32 of the index), the
//! index (SH degree, root voxels per tile edge, then per tile its key, byte offset, byte length,
//! Gaussian count and CRC-32, keys ascending), then the tiles back to back in index order, each
//! its Gaussian records. A tile holds whole root voxels: the Gaussians whose cell lies in root
//! voxel `k` are in tile `floor(k / tile_roots)`. Every byte after the header is covered by the
//! index's or one tile's checksum, so a damaged tile is named when it is read.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::codec::{Reader, Writer};
use super::files::{header, HEADER};
use super::sections::{read_record, record_bytes, write_record};
use super::MapFileError;
use crate::gaussian::paging::{TileKey, TileSource};
use crate::gaussian::GaussianRecord;

/// Edge of a tile (m), rounded to whole root voxels: a window of tens of metres holds a few
/// tiles per axis, and a tile of a dense indoor map stays a few MB.
pub const TILE_EDGE: f64 = 16.0;
/// Bytes of one index entry: key, offset, length, count, CRC.
const ENTRY: usize = 24 + 8 + 8 + 8 + 4;

/// Root voxels per tile edge for a map of `root_size` and tiles of about `edge` m.
pub fn tile_roots_for(root_size: f64, edge: f64) -> i64 {
    let t = (edge / root_size).round();
    if t.is_finite() {
        (t as i64).clamp(1, 1 << 20)
    } else {
        1
    }
}

/// One tile's place in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TileEntry {
    pub key: TileKey,
    pub offset: u64,
    pub bytes: u64,
    pub count: u64,
    pub crc: u32,
}

/// The index of a tiled `gaussians.bin`, checked against the file's length.
#[derive(Debug, Clone, PartialEq)]
pub struct TileIndex {
    pub sh_degree: u32,
    pub tile_roots: i64,
    pub tiles: Vec<TileEntry>,
}

impl TileIndex {
    /// Gaussians stored.
    pub fn count(&self) -> u64 {
        self.tiles.iter().map(|t| t.count).sum()
    }

    fn coeffs(&self) -> usize {
        crate::gaussian::sh_coeff_count(self.sh_degree.min(3))
    }
}

fn tile_error(path: &Path, key: TileKey, reason: String) -> MapFileError {
    MapFileError::Tile {
        path: path.to_path_buf(),
        tile: key,
        reason,
    }
}

/// The whole file for `records` (grouped by tile, keys ascending, each tile's records in the
/// order given, so a map loaded and saved again gives the same bytes). Written into one buffer
/// of the exact size, checksums patched in after: a save holds the map's bytes once.
pub fn encode(
    version: u32,
    kind: u32,
    sh_degree: u32,
    tile_roots: i64,
    records: &[GaussianRecord],
) -> Vec<u8> {
    let coeffs = crate::gaussian::sh_coeff_count(sh_degree.min(3));
    let rec = record_bytes(coeffs);
    // (tile, index): sorting keeps each tile's records in the order given.
    let mut order: Vec<(TileKey, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.root_key().map(|v| v.div_euclid(tile_roots)), i))
        .collect();
    order.sort_unstable();
    let mut groups: Vec<(TileKey, u64)> = Vec::new();
    for (key, _) in &order {
        match groups.last_mut() {
            Some((k, n)) if k == key => *n += 1,
            _ => groups.push((*key, 1)),
        }
    }
    let index_len = 4 + 8 + 8 + ENTRY * groups.len();
    let mut w = Writer(Vec::with_capacity(HEADER + index_len + rec * records.len()));
    w.0.resize(HEADER, 0);
    w.u32(sh_degree);
    w.u64(tile_roots as u64);
    w.len(groups.len());
    let mut offset = (HEADER + index_len) as u64;
    for (key, count) in &groups {
        key.iter().for_each(|&v| w.i64(v));
        w.u64(offset);
        w.u64(count * rec as u64);
        w.u64(*count);
        w.u32(0); // CRC, patched below
        offset += count * rec as u64;
    }
    debug_assert_eq!(w.0.len(), HEADER + index_len);
    order
        .iter()
        .for_each(|&(_, i)| write_record(&mut w, coeffs, &records[i]));
    let mut out = w.0;
    let mut start = HEADER + index_len;
    for (t, (_, count)) in groups.iter().enumerate() {
        let end = start + *count as usize * rec;
        let crc = crc32fast::hash(&out[start..end]).to_le_bytes();
        let at = HEADER + 20 + t * ENTRY + ENTRY - 4;
        out[at..at + 4].copy_from_slice(&crc);
        start = end;
    }
    let head = header(version, kind, &out[HEADER..HEADER + index_len]);
    out[..HEADER].copy_from_slice(&head[..HEADER]);
    out
}

/// Parses and checks the index (its checksum was verified): keys ascending, tiles back to back
/// from the end of the index to the end of the file (`file_len`), each a whole number of records.
pub fn parse_index(
    path: &Path,
    index: &[u8],
    file_len: u64,
    sh_degree: u32,
) -> Result<TileIndex, MapFileError> {
    let corrupt = |reason: String| MapFileError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut r = Reader::new(index);
    let stored = r.u32().map_err(corrupt)?;
    if stored != sh_degree {
        return Err(corrupt(format!(
            "SH degree {stored}, rig.bin says {sh_degree}"
        )));
    }
    let tile_roots = r.u64().map_err(corrupt)?;
    if !(1..=1 << 20).contains(&tile_roots) {
        return Err(corrupt(format!("{tile_roots} root voxels per tile")));
    }
    let n = r.len(ENTRY).map_err(corrupt)?;
    let mut out = TileIndex {
        sh_degree,
        tile_roots: tile_roots as i64,
        tiles: Vec::with_capacity(n),
    };
    let rec = record_bytes(out.coeffs()) as u64;
    let mut next = (HEADER + index.len()) as u64;
    for _ in 0..n {
        let read = |r: &mut Reader| -> Result<TileEntry, String> {
            Ok(TileEntry {
                key: [r.i64()?, r.i64()?, r.i64()?],
                offset: r.u64()?,
                bytes: r.u64()?,
                count: r.u64()?,
                crc: r.u32()?,
            })
        };
        let e = read(&mut r).map_err(corrupt)?;
        if out.tiles.last().is_some_and(|p| p.key >= e.key) {
            return Err(corrupt(format!("tile {:?} out of order", e.key)));
        }
        if e.offset != next || e.count.checked_mul(rec) != Some(e.bytes) || e.count == 0 {
            return Err(tile_error(
                path,
                e.key,
                format!(
                    "index says {} Gaussians in {} bytes at offset {} (expected offset {next})",
                    e.count, e.bytes, e.offset
                ),
            ));
        }
        next = e
            .offset
            .checked_add(e.bytes)
            .ok_or_else(|| corrupt("tile beyond any file length".into()))?;
        out.tiles.push(e);
    }
    r.finish().map_err(corrupt)?;
    if next != file_len {
        let e = if next > file_len {
            MapFileError::Truncated {
                path: path.to_path_buf(),
                expected: next,
                found: file_len,
            }
        } else {
            corrupt(format!("{} bytes after the last tile", file_len - next))
        };
        return Err(e);
    }
    Ok(out)
}

/// The records of tile `e` from its bytes: checksum, decoding, and every record in the tile.
pub fn decode_tile(
    path: &Path,
    index: &TileIndex,
    e: &TileEntry,
    bytes: &[u8],
) -> Result<Vec<GaussianRecord>, MapFileError> {
    let found = crc32fast::hash(bytes);
    if found != e.crc {
        return Err(tile_error(
            path,
            e.key,
            format!(
                "checksum mismatch (CRC-32 {found:08x}, written {:08x}): the tile is corrupted",
                e.crc
            ),
        ));
    }
    let mut r = Reader::new(bytes);
    let coeffs = index.coeffs();
    let mut out = Vec::with_capacity(e.count as usize);
    for _ in 0..e.count {
        let rec = read_record(&mut r, coeffs).map_err(|m| tile_error(path, e.key, m))?;
        let root = rec.root_key();
        if root.map(|v| v.div_euclid(index.tile_roots)) != e.key {
            return Err(tile_error(
                path,
                e.key,
                format!("holds a Gaussian of root voxel {root:?}, outside the tile"),
            ));
        }
        out.push(rec);
    }
    r.finish().map_err(|m| tile_error(path, e.key, m))?;
    Ok(out)
}

/// Every record of a tiled file held whole in memory, in tile order.
pub fn decode_all(
    path: &Path,
    index: &TileIndex,
    file: &[u8],
) -> Result<Vec<GaussianRecord>, MapFileError> {
    let mut out = Vec::with_capacity(index.count() as usize);
    for e in &index.tiles {
        let bytes = &file[e.offset as usize..(e.offset + e.bytes) as usize];
        out.extend(decode_tile(path, index, e, bytes)?);
    }
    Ok(out)
}

/// A tiled `gaussians.bin` read tile by tile from disk (the paged map's source).
pub struct TileReader {
    path: PathBuf,
    file: std::fs::File,
    index: TileIndex,
}

impl TileReader {
    /// Opens `path` with an index already checked (by [`verify_file`]).
    pub fn open(path: &Path, index: TileIndex) -> Result<Self, MapFileError> {
        let file = std::fs::File::open(path).map_err(|source| MapFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            index,
        })
    }

    /// The records of tile `e`, read and checked.
    pub fn read_entry(&mut self, e: &TileEntry) -> Result<Vec<GaussianRecord>, MapFileError> {
        let io = |source| MapFileError::Io {
            path: self.path.clone(),
            source,
        };
        let mut bytes = vec![0u8; e.bytes as usize];
        self.file.seek(SeekFrom::Start(e.offset)).map_err(io)?;
        self.file.read_exact(&mut bytes).map_err(|source| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                tile_error(&self.path, e.key, "the file ends inside the tile".into())
            } else {
                MapFileError::Io {
                    path: self.path.clone(),
                    source,
                }
            }
        })?;
        decode_tile(&self.path, &self.index, e, &bytes)
    }
}

impl TileSource for TileReader {
    fn tile_roots(&self) -> i64 {
        self.index.tile_roots
    }

    fn tiles(&self) -> Vec<TileKey> {
        self.index.tiles.iter().map(|t| t.key).collect()
    }

    fn read(&mut self, key: &TileKey) -> Result<Vec<GaussianRecord>, String> {
        let i = self
            .index
            .tiles
            .binary_search_by(|t| t.key.cmp(key))
            .map_err(|_| format!("no tile {key:?} in {}", self.path.display()))?;
        let e = self.index.tiles[i].clone();
        self.read_entry(&e).map_err(|e| e.to_string())
    }
}

/// Checks a tiled file on disk without holding it: its length, its header and index, every
/// tile (checksum and records, one tile in memory at a time) and the whole file's CRC-32
/// against the manifest's. Returns the index.
pub fn verify_file(
    path: &Path,
    version: u32,
    kind: u32,
    sh_degree: u32,
    expect_bytes: u64,
    expect_crc: u32,
) -> Result<TileIndex, MapFileError> {
    let io = |source| MapFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    super::files::check_len(path, len, expect_bytes)?;
    let mut head = vec![0u8; HEADER.min(len as usize)];
    file.read_exact(&mut head).map_err(io)?;
    let index_len = super::files::check_header(path, version, kind, &head, len)?;
    let mut index = vec![0u8; index_len];
    file.read_exact(&mut index).map_err(io)?;
    super::files::check_crc(path, &head, &index)?;
    let parsed = parse_index(path, &index, len, sh_degree)?;
    let mut whole = crc32fast::Hasher::new();
    whole.update(&head);
    whole.update(&index);
    let mut reader = TileReader {
        path: path.to_path_buf(),
        file,
        index: parsed,
    };
    for e in reader.index.tiles.clone() {
        let mut bytes = vec![0u8; e.bytes as usize];
        reader.file.read_exact(&mut bytes).map_err(io)?;
        whole.update(&bytes);
        decode_tile(path, &reader.index, &e, &bytes)?;
    }
    let found = whole.finalize();
    if found != expect_crc {
        return Err(MapFileError::Checksum {
            path: path.to_path_buf(),
            expected: expect_crc,
            found,
        });
    }
    Ok(reader.index)
}
