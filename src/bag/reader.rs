//! `BagReader`: a rosbag2 folder (metadata.yaml + .mcap/.db3 files) or a bare .mcap/.db3 file,
//! with messages of chosen topics merged across files in log-time order.

use super::error::BagError;
use super::mcap_io::McapFile;
use super::metadata::{self, Compression};
use super::recovery::{BagDamage, FileDamage};
use super::sqlite_io::SqliteFile;
use crate::sensors::Stamp;
use std::path::{Path, PathBuf};

/// A topic in the bag, with its message count over all files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub type_name: String,
    pub count: u64,
}

/// A serialized message as stored (CDR bytes with encapsulation header).
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub topic: String,
    pub type_name: String,
    pub log_time: Stamp,
    pub data: Vec<u8>,
}

enum Storage {
    Mcap(McapFile),
    Sqlite(SqliteFile),
}

impl Storage {
    fn open(path: &Path) -> Result<Self, BagError> {
        let mut magic = [0u8; 16];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| BagError::io(path, e))?;
            let n = f.read(&mut magic).map_err(|e| BagError::io(path, e))?;
            // MCAP by its magic, or a .mcap recording that died within its first bytes (an
            // empty MCAP, not an error).
            let cut_mcap = path.extension().is_some_and(|e| e == "mcap")
                && super::mcap_io::cut_in_magic(&magic[..n]);
            if magic.starts_with(b"\x89MCAP") || cut_mcap {
                return Ok(Self::Mcap(McapFile::open(path)?));
            }
            if n < magic.len() {
                return Err(BagError::Unsupported {
                    path: path.into(),
                    msg: format!("file too short ({n} bytes) to be a bag"),
                });
            }
        }
        if magic.starts_with(b"\x89MCAP") {
            Ok(Self::Mcap(McapFile::open(path)?))
        } else if magic.starts_with(b"SQLite format 3\0") {
            Ok(Self::Sqlite(SqliteFile::open(path)?))
        } else {
            Err(BagError::Unsupported {
                path: path.into(),
                msg: "neither MCAP nor sqlite3 (bad magic bytes)".into(),
            })
        }
    }

    fn topics(&self) -> &[TopicInfo] {
        match self {
            Self::Mcap(f) => f.topics(),
            Self::Sqlite(f) => f.topics(),
        }
    }

    fn messages<'a>(&'a self, topics: &[&str]) -> Result<MsgIter<'a>, BagError> {
        match self {
            Self::Mcap(f) => f.messages(topics),
            Self::Sqlite(f) => f.messages(topics),
        }
    }

    fn damage(&self) -> FileDamage {
        match self {
            Self::Mcap(f) => f.damage(),
            Self::Sqlite(f) => f.damage(),
        }
    }
}

type MsgIter<'a> = Box<dyn Iterator<Item = Result<RawMessage, BagError>> + 'a>;

/// Reads a rosbag2 recording without ROS.
pub struct BagReader {
    path: PathBuf,
    files: Vec<Storage>,
    topics: Vec<TopicInfo>,
    /// Message-mode compression: every message's bytes are a zstd frame.
    compressed_messages: bool,
    /// What the folder's metadata.yaml got wrong (files' own damage is added on request).
    folder_damage: BagDamage,
    /// Decompressed copies of file-mode compressed storage files, removed on drop.
    _scratch: Option<Box<tempfile::TempDir>>,
}

/// Largest decompressed message accepted (a corrupt frame must not exhaust memory).
const MAX_MESSAGE_BYTES: u64 = 1 << 30;

impl BagReader {
    /// Opens a bag folder (with or without metadata.yaml) or a bare .mcap / .db3 file.
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let (paths, compression, folder_damage) = storage_paths(path)?;
        let scratch = match compression {
            Compression::File => Some(Box::new(
                tempfile::tempdir().map_err(|e| BagError::io(path, e))?,
            )),
            _ => None,
        };
        let files = paths
            .iter()
            .map(|p| match &scratch {
                Some(dir) => Storage::open(&decompress_file(p, dir.path())?),
                None => Storage::open(p),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut topics: Vec<TopicInfo> = Vec::new();
        for t in files.iter().flat_map(|f| f.topics()) {
            match topics.iter_mut().find(|x| x.name == t.name) {
                Some(x) if x.type_name == t.type_name => x.count += t.count,
                Some(x) => {
                    return Err(BagError::Topic {
                        topic: t.name.clone(),
                        msg: format!("has two types: {} and {}", x.type_name, t.type_name),
                    })
                }
                None => topics.push(t.clone()),
            }
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            path: path.to_path_buf(),
            files,
            topics,
            compressed_messages: compression == Compression::Message,
            folder_damage,
            _scratch: scratch,
        })
    }

    /// The damage found so far: truncated or corrupt files, skips by cause, files missing.
    /// Complete once every message has been read (a file without a footer is scanned when
    /// opened; a corrupt chunk in an indexed file is found when it is read).
    pub fn damage(&self) -> BagDamage {
        let mut d = self.folder_damage.clone();
        for f in &self.files {
            d.add(f.damage());
        }
        d
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Topics over all files, sorted by name.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// Messages of `topics` (all topics when empty) in log-time order across files, streamed.
    pub fn messages(
        &self,
        topics: &[&str],
    ) -> Result<impl Iterator<Item = Result<RawMessage, BagError>> + '_, BagError> {
        for t in topics {
            if !self.topics.iter().any(|x| x.name == *t) {
                tracing::warn!("{}: topic {t} is not in the bag", self.path.display());
            }
        }
        let iters = self
            .files
            .iter()
            .map(|f| {
                let it = f.messages(topics)?;
                Ok(if self.compressed_messages {
                    Box::new(it.map(|m| m.and_then(decompress_message))) as MsgIter
                } else {
                    it
                })
            })
            .collect::<Result<Vec<_>, BagError>>()?;
        Ok(Merge {
            heads: iters.iter().map(|_| None).collect(),
            iters,
            started: false,
            pending: Default::default(),
        })
    }
}

/// Replaces a message's zstd frame by its decompressed bytes.
fn decompress_message(mut m: RawMessage) -> Result<RawMessage, BagError> {
    use std::io::Read;
    let bad = |msg: String| BagError::Topic {
        topic: m.topic.clone(),
        msg: format!("message at {} ns: {msg}", m.log_time),
    };
    let dec =
        zstd::stream::read::Decoder::new(&m.data[..]).map_err(|e| bad(format!("zstd: {e}")))?;
    let mut out = Vec::with_capacity(m.data.len() * 4);
    dec.take(MAX_MESSAGE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("zstd: {e}")))?;
    if out.len() as u64 > MAX_MESSAGE_BYTES {
        return Err(bad(format!(
            "decompresses to more than {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    m.data = out;
    Ok(m)
}

/// Decompresses a file-mode storage file (`x.mcap.zstd`) into `dir` (`x.mcap`).
fn decompress_file(path: &Path, dir: &Path) -> Result<PathBuf, BagError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let inner = name.strip_suffix(".zstd").unwrap_or(&name);
    let dest = dir.join(inner);
    let src = std::fs::File::open(path).map_err(|e| BagError::io(path, e))?;
    let mut dst = std::fs::File::create(&dest).map_err(|e| BagError::io(&dest, e))?;
    let mut dec = zstd::stream::read::Decoder::new(src).map_err(|e| BagError::io(path, e))?;
    if let Err(e) = std::io::copy(&mut dec, &mut dst) {
        // A compressed file cut short: what decompressed is read like any truncated file.
        tracing::warn!(
            "{}: zstd decompression stopped ({e}); reading what it gave",
            path.display()
        );
    }
    tracing::info!("{}: decompressed into {}", path.display(), dest.display());
    Ok(dest)
}

/// The storage files of a bag path, in recording order, how they are compressed, and what
/// the folder's metadata.yaml got wrong (missing, unreadable, naming absent files).
fn storage_paths(path: &Path) -> Result<(Vec<PathBuf>, Compression, BagDamage), BagError> {
    let mut damage = BagDamage::default();
    if !path.is_dir() {
        if !path.exists() {
            return Err(BagError::io(path, std::io::ErrorKind::NotFound.into()));
        }
        let zst = path.extension().is_some_and(|e| e == "zstd");
        let c = if zst {
            Compression::File
        } else {
            Compression::None
        };
        return Ok((vec![path.to_path_buf()], c, damage));
    }
    let meta = path.join("metadata.yaml");
    let info = if meta.exists() {
        metadata::read(&meta)?
    } else {
        None
    };
    // Without a usable file list (no metadata.yaml, one cut short, or one naming no files),
    // the storage files in the folder are read.
    if let Some(info) = info.filter(|i| !i.relative_file_paths.is_empty()) {
        let (files, missing): (Vec<PathBuf>, Vec<PathBuf>) = info
            .relative_file_paths
            .iter()
            .map(|p| path.join(Path::new(p).file_name().unwrap_or_default()))
            .partition(|f| f.exists());
        for m in &missing {
            tracing::warn!(
                "{}: metadata.yaml names {}, which is missing; reading the files present",
                path.display(),
                m.display()
            );
            damage.missing_files.push(m.display().to_string());
        }
        if !files.is_empty() {
            return Ok((files, info.compression(), damage));
        }
    }
    if damage.missing_files.is_empty() {
        tracing::warn!(
            "{}: no usable metadata.yaml; reading the .mcap/.db3 files in the folder",
            path.display()
        );
        damage.metadata_missing = true;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| BagError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mcap" || e == "db3"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(BagError::Unsupported {
            path: path.into(),
            msg: "folder has no usable metadata.yaml and no .mcap/.db3 files".into(),
        });
    }
    Ok((files, Compression::None, damage))
}

/// K-way merge of per-file streams by log time (ties keep file order).
struct Merge<'a> {
    iters: Vec<MsgIter<'a>>,
    heads: Vec<Option<RawMessage>>,
    started: bool,
    /// Errors met while refilling, reported before the next message.
    pending: std::collections::VecDeque<BagError>,
}

impl Iterator for Merge<'_> {
    type Item = Result<RawMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            for i in 0..self.iters.len() {
                self.refill(i);
            }
        }
        if let Some(e) = self.pending.pop_front() {
            return Some(Err(e));
        }
        let best = (0..self.heads.len())
            .filter(|&i| self.heads[i].is_some())
            .min_by_key(|&i| self.heads[i].as_ref().map(|m| m.log_time))?;
        let msg = self.heads[best].take();
        self.refill(best);
        msg.map(Ok)
    }
}

impl Merge<'_> {
    /// Takes file `i`'s next message; a bad message is reported and skipped, not the end of
    /// the file (a storage that keeps failing is abandoned after a run of errors).
    fn refill(&mut self, i: usize) {
        const MAX_ERRORS_IN_A_ROW: usize = 1000;
        for _ in 0..MAX_ERRORS_IN_A_ROW {
            match self.iters[i].next() {
                Some(Ok(m)) => {
                    self.heads[i] = Some(m);
                    return;
                }
                Some(Err(e)) => self.pending.push_back(e),
                None => return,
            }
        }
        tracing::error!(
            "bag file {i}: {MAX_ERRORS_IN_A_ROW} bad messages in a row; skipping the rest of it"
        );
    }
}
