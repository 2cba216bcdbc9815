//! What a damaged recording cost: where each storage file's readable part ends, how many bytes
//! after it were unusable, and every skipped record or chunk counted by cause. Readers record
//! damage as they meet it (keyed by file offset, so reading a file twice counts nothing twice);
//! `info` prints the report and `run` writes it into `summary.json`.

use crate::sensors::Stamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// How a storage file's readable part ends when it does not end with its summary and footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileEnd {
    /// The last record is complete but the summary and footer were never written (a recorder
    /// killed exactly between two records).
    NoFooter,
    /// The file ends inside a record (power loss, a killed recorder, a full disk).
    Truncated,
    /// The file ends in zero bytes (a crash before the file system flushed the data).
    ZeroFilled,
    /// A record header that cannot be valid (bad opcode or length): nothing after it is read.
    Garbage,
}

/// Why a record, chunk or message was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCause {
    /// A chunk cut off by the end of the file.
    IncompleteChunk,
    /// A chunk whose records do not match the CRC the writer stored.
    ChunkCrcMismatch,
    /// A chunk whose compressed data does not decompress to its stated size.
    ChunkDecompression,
    /// A chunk compressed with a codec this reader lacks.
    ChunkUnsupportedCompression,
    /// A chunk with a malformed header or records, or larger than the reader accepts.
    ChunkMalformed,
    /// A chunk the summary points to that lies outside the file.
    ChunkOutOfBounds,
    /// A record outside chunks that does not parse.
    MalformedRecord,
    /// A message on a channel whose definition was lost (in a skipped chunk).
    UnknownChannel,
    /// sqlite3: a query failed part-way (a corrupt database page); the rest of the file.
    SqliteReadError,
}

impl SkipCause {
    pub fn name(self) -> &'static str {
        match self {
            Self::IncompleteChunk => "incomplete_chunk",
            Self::ChunkCrcMismatch => "chunk_crc_mismatch",
            Self::ChunkDecompression => "chunk_decompression",
            Self::ChunkUnsupportedCompression => "chunk_unsupported_compression",
            Self::ChunkMalformed => "chunk_malformed",
            Self::ChunkOutOfBounds => "chunk_out_of_bounds",
            Self::MalformedRecord => "malformed_record",
            Self::UnknownChannel => "unknown_channel",
            Self::SqliteReadError => "sqlite_read_error",
        }
    }
}

/// The damage of one storage file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileDamage {
    pub path: String,
    pub file_bytes: u64,
    /// How the readable part ends; `None` when the file ends properly.
    pub end: Option<FileEnd>,
    /// Byte offset where the readable part of the file ends.
    pub readable_bytes: u64,
    /// Bytes after the readable part that held nothing usable.
    pub unusable_bytes: u64,
    /// Log time of the last message read from this file.
    pub last_message_time: Option<Stamp>,
    /// Skipped records, chunks and messages by cause (see [`SkipCause::name`]).
    pub skipped: BTreeMap<String, u64>,
    /// Leftover sqlite3 `-wal`/`-journal` files that were applied to a copy before reading.
    pub leftover_journals: Vec<String>,
}

impl FileDamage {
    pub fn is_empty(&self) -> bool {
        self.end.is_none() && self.skipped.is_empty() && self.leftover_journals.is_empty()
    }
}

/// The damage of a whole bag: its damaged files and what its metadata.yaml got wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BagDamage {
    /// Some storage file ends early (no footer, truncated, zero-filled or garbage).
    pub truncated: bool,
    /// Damaged storage files only.
    pub files: Vec<FileDamage>,
    /// Files metadata.yaml names that are not there (the present ones were read).
    pub missing_files: Vec<String>,
    /// The folder has no usable metadata.yaml (missing or unreadable): its files were found by
    /// their extension.
    pub metadata_missing: bool,
    /// Unusable bytes over all files.
    pub unusable_bytes: u64,
    /// Skipped records, chunks and messages over all files, by cause.
    pub skipped: BTreeMap<String, u64>,
}

impl BagDamage {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.missing_files.is_empty() && !self.metadata_missing
    }

    /// Adds one file's damage (ignored when it has none).
    pub fn add(&mut self, f: FileDamage) {
        if f.is_empty() {
            return;
        }
        self.truncated |= f.end.is_some();
        self.unusable_bytes += f.unusable_bytes;
        for (k, n) in &f.skipped {
            *self.skipped.entry(k.clone()).or_default() += n;
        }
        self.files.push(f);
    }

    /// One line per finding, for logs and `info`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.metadata_missing {
            out.push("no usable metadata.yaml: read the storage files found in the folder".into());
        }
        for m in &self.missing_files {
            out.push(format!("{m}: named by metadata.yaml but missing"));
        }
        for f in &self.files {
            if let Some(end) = f.end {
                let what = match end {
                    FileEnd::NoFooter => "no summary/footer (recording not closed)",
                    FileEnd::Truncated => "truncated inside a record",
                    FileEnd::ZeroFilled => "ends in zero bytes",
                    FileEnd::Garbage => "unreadable record header",
                };
                let last = f
                    .last_message_time
                    .map_or("none".to_string(), |t| format!("{t} ns"));
                out.push(format!(
                    "{}: {what}: readable up to byte {} of {}, {} bytes unusable, last message at {last}",
                    f.path, f.readable_bytes, f.file_bytes, f.unusable_bytes
                ));
            }
            for j in &f.leftover_journals {
                out.push(format!(
                    "{}: leftover {j} applied to a copy before reading",
                    f.path
                ));
            }
            if !f.skipped.is_empty() {
                let s: Vec<String> = f.skipped.iter().map(|(k, n)| format!("{k} {n}")).collect();
                out.push(format!("{}: skipped: {}", f.path, s.join(", ")));
            }
        }
        out
    }
}

/// Where a skip happened: the record's file offset and, inside a chunk, the record's index.
type SkipKey = (u64, u32, SkipCause);

#[derive(Default)]
struct State {
    end: Option<(FileEnd, u64)>,
    last_message_time: Option<Stamp>,
    skips: BTreeSet<SkipKey>,
    journals: Vec<String>,
}

/// A storage file's damage as its readers find it (shared by every pass over the file).
#[derive(Default)]
pub(crate) struct DamageLog {
    path: String,
    file_bytes: u64,
    state: Mutex<State>,
}

impl DamageLog {
    pub fn new(path: &std::path::Path, file_bytes: u64) -> Self {
        Self {
            path: path.display().to_string(),
            file_bytes,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the readable part ends at `offset`, and warns the first time.
    pub fn end(&self, kind: FileEnd, offset: u64) {
        let mut s = self.state();
        if s.end.is_some() {
            return;
        }
        s.end = Some((kind, offset));
        let last = s
            .last_message_time
            .map_or("none".to_string(), |t| format!("{t} ns"));
        tracing::warn!(
            "{}: {kind:?}: readable up to byte {offset} of {}; {} bytes unusable; last complete message at {last}",
            self.path,
            self.file_bytes,
            self.file_bytes.saturating_sub(offset)
        );
    }

    /// Counts a skip at `(offset, index)`; the same place is counted (and logged) once.
    pub fn skip(&self, offset: u64, index: u32, cause: SkipCause, why: &dyn std::fmt::Display) {
        let mut s = self.state();
        let key = (offset, index, cause);
        // The first few are logged; all are counted.
        if s.skips.insert(key) && s.skips.len() <= 20 {
            tracing::warn!(
                "{}: {} at byte {offset} skipped: {why}",
                self.path,
                cause.name()
            );
        }
    }

    pub fn message(&self, t: Stamp) {
        let mut s = self.state();
        s.last_message_time = Some(s.last_message_time.map_or(t, |x| x.max(t)));
    }

    pub fn journal(&self, name: String) {
        self.state().journals.push(name);
    }

    pub fn report(&self) -> FileDamage {
        let s = self.state();
        let mut skipped = BTreeMap::new();
        for (_, _, c) in &s.skips {
            *skipped.entry(c.name().to_string()).or_default() += 1;
        }
        let (end, readable) = match s.end {
            Some((k, at)) => (Some(k), at),
            None => (None, self.file_bytes),
        };
        FileDamage {
            path: self.path.clone(),
            file_bytes: self.file_bytes,
            end,
            readable_bytes: readable,
            unusable_bytes: self.file_bytes.saturating_sub(readable),
            last_message_time: s.last_message_time,
            skipped,
            leftover_journals: s.journals.clone(),
        }
    }
}
