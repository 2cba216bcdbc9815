//! One MCAP storage file, memory-mapped: topics from the summary and a lazy message stream in
//! log-time order (files with a chunk index) or file order (files without one, e.g. a
//! recording cut short).
//!
//! Damage costs only what it destroys: a file without its footer is read record by record up
//! to its last complete record; a chunk that fails its CRC or decompression is skipped whole
//! (its record length says where the next record starts) and reading goes on; a zero-filled
//! tail ends the file. Every skip is counted by cause in the file's [`DamageLog`].

use super::error::BagError;
use super::reader::{RawMessage, TopicInfo};
use super::recovery::{DamageLog, FileDamage, FileEnd, SkipCause};
use mcap::records::{op, ChunkIndex, Record};
use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions};
use mcap::McapError;
use memmap2::Mmap;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// A record starts with its opcode (1 byte) and body length (u64).
const RECORD_HEAD: usize = 1 + 8;

/// A memory-mapped MCAP file with its channel table.
pub struct McapFile {
    map: Mmap,
    summary: Option<mcap::Summary>,
    /// The footer (and summary, if any) parsed: the recording was closed properly.
    closed: bool,
    /// channel id -> (topic, type name)
    channels: ChannelMap,
    topics: Vec<TopicInfo>,
    damage: DamageLog,
}

fn channel_entry(c: &mcap::Channel) -> (Arc<str>, Arc<str>) {
    let ty = c.schema.as_ref().map_or("", |s| s.name.as_str());
    (Arc::from(c.topic.as_str()), Arc::from(ty))
}

type ChannelMap = HashMap<u16, (Arc<str>, Arc<str>)>;

/// A message as read, before it becomes a [`RawMessage`]: unchunked messages borrow the map.
struct Msg<'a> {
    channel: u16,
    log_time: u64,
    data: Cow<'a, [u8]>,
}

impl McapFile {
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let file = std::fs::File::open(path).map_err(|e| BagError::io(path, e))?;
        // SAFETY: the map is read-only; a bag modified while we read it yields garbage bytes,
        // which every decoder treats as untrusted input.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| BagError::io(path, e))?;
        if !map.starts_with(mcap::MAGIC) && !cut_in_magic(&map[..map.len().min(64)]) {
            return Err(BagError::Unsupported {
                path: path.into(),
                msg: "not an MCAP file (bad magic bytes)".into(),
            });
        }
        let (summary, closed) = match mcap::Summary::read(&map) {
            Ok(s) => (s, true),
            Err(e) => {
                tracing::warn!(
                    "{}: no usable summary/footer ({e}); reading the file record by record",
                    path.display()
                );
                (None, false)
            }
        };
        let mut f = Self {
            damage: DamageLog::new(path, map.len() as u64),
            map,
            summary,
            closed,
            channels: HashMap::new(),
            topics: Vec::new(),
        };
        f.index();
        Ok(f)
    }

    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// The damage found so far (all of it once every message has been read).
    pub fn damage(&self) -> FileDamage {
        self.damage.report()
    }

    /// Largest record (or decompressed chunk) we accept: corrupt length fields must not make
    /// the reader allocate without bound.
    fn record_limit(&self) -> usize {
        (self.map.len().saturating_mul(64)).clamp(64 << 20, 4 << 30)
    }

    fn indexed(&self) -> bool {
        self.summary
            .as_ref()
            .is_some_and(|s| !s.chunk_indexes.is_empty())
    }

    /// Builds the channel table and per-topic counts (from statistics, else one scan, which
    /// also finds the damage of a file without a footer).
    fn index(&mut self) {
        let mut counts: BTreeMap<u16, u64> = BTreeMap::new();
        if let Some(s) = &self.summary {
            for (id, c) in &s.channels {
                self.channels.insert(*id, channel_entry(c));
            }
        }
        match self.summary.as_ref().and_then(|s| s.stats.as_ref()) {
            Some(st) => counts = st.channel_message_counts.clone(),
            None => {
                let mut scan = Walker::new(self, Vec::new());
                while let Some(m) = scan.next_message() {
                    *counts.entry(m.channel).or_default() += 1;
                }
                let found = scan.channels;
                self.channels.extend(found);
            }
        }
        let mut by_topic: BTreeMap<(Arc<str>, Arc<str>), u64> = BTreeMap::new();
        for (id, (topic, ty)) in &self.channels {
            *by_topic.entry((topic.clone(), ty.clone())).or_default() +=
                counts.get(id).copied().unwrap_or(0);
        }
        self.topics = by_topic
            .into_iter()
            .map(|((name, ty), count)| TopicInfo {
                name: name.to_string(),
                type_name: ty.to_string(),
                count,
            })
            .collect();
    }

    /// Messages of the given topics (all when empty), lazily. Damage never ends the stream: it
    /// is skipped and counted (see [`Self::damage`]).
    pub fn messages<'a>(
        &'a self,
        topics: &[&str],
    ) -> Result<Box<dyn Iterator<Item = Result<RawMessage, BagError>> + 'a>, BagError> {
        let wanted: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        if let (true, Some(summary)) = (self.indexed(), &self.summary) {
            Ok(Box::new(IndexedIter::new(self, summary, &wanted)))
        } else {
            let mut walker = Walker::new(self, wanted);
            Ok(Box::new(std::iter::from_fn(move || {
                let m = walker.next_message()?;
                let data = m.data.into_owned();
                Some(Ok(raw(&walker.channels, m.channel, m.log_time, data)))
            })))
        }
    }

    /// The records inside a whole chunk record (`record`: opcode, length and body, at file
    /// offset `at`), or `None` when the chunk is damaged (counted): all or nothing, since its
    /// CRC is only checked at its end.
    fn chunk_records<'m>(&self, at: u64, record: &'m [u8]) -> Option<Vec<Record<'m>>> {
        let skip = |cause, e: &dyn std::fmt::Display| {
            self.damage.skip(at, 0, cause, e);
            None
        };
        let (header, data) = match mcap::parse_record(op::CHUNK, &record[RECORD_HEAD..]) {
            Ok(Record::Chunk {
                header,
                data: Cow::Borrowed(data),
            }) => (header, data),
            Ok(_) => return skip(SkipCause::ChunkMalformed, &"not a chunk"),
            Err(e) => return skip(SkipCause::ChunkMalformed, &e),
        };
        if header.uncompressed_size > self.record_limit() as u64 {
            let why = format!("{} bytes uncompressed", header.uncompressed_size);
            return skip(SkipCause::ChunkMalformed, &why);
        }
        if header.compression.is_empty() {
            return match uncompressed_records(
                header.uncompressed_size,
                header.uncompressed_crc,
                data,
            ) {
                Ok(records) => Some(records),
                Err((cause, why)) => skip(cause, &why),
            };
        }
        // No record inside can be longer than the chunk's stated sizes: a corrupt inner length
        // is an error, not an allocation.
        let limit = header.uncompressed_size.max(header.compressed_size) as usize + 64;
        let opts = LinearReaderOptions::default()
            .with_skip_start_magic(true)
            .with_skip_end_magic(true)
            .with_validate_chunk_crcs(true)
            .with_record_length_limit(limit);
        let mut reader = LinearReader::new_with_options(opts);
        let mut src = record;
        let mut out = Vec::new();
        while let Some(event) = reader.next_event() {
            match event {
                Ok(LinearReadEvent::ReadRequest(n)) => {
                    let k = n.min(src.len());
                    reader.insert(k).copy_from_slice(&src[..k]);
                    reader.notify_read(k);
                    src = &src[k..];
                }
                Ok(LinearReadEvent::Record { opcode, data }) => {
                    match mcap::parse_record(opcode, data) {
                        Ok(r) => out.push(r.into_owned()),
                        Err(e) => return skip(SkipCause::ChunkMalformed, &e),
                    }
                }
                Err(e) => return skip(chunk_cause(&e), &e),
            }
        }
        Some(out)
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `head` (a file's first bytes) is an MCAP recording that died within its magic bytes: a
/// prefix of the magic, then nothing or only zeros (a crash before the data was flushed).
pub fn cut_in_magic(head: &[u8]) -> bool {
    let n = common_prefix(head, mcap::MAGIC);
    n < mcap::MAGIC.len() && head[n..].iter().all(|&b| b == 0)
}

/// The records of an uncompressed chunk, parsed where they lie (no copy), after its CRC.
fn uncompressed_records(
    size: u64,
    crc: u32,
    data: &[u8],
) -> Result<Vec<Record<'_>>, (SkipCause, String)> {
    if data.len() as u64 != size {
        let why = format!("{} bytes of records, {size} stated", data.len());
        return Err((SkipCause::ChunkMalformed, why));
    }
    let calculated = crc32fast::hash(data);
    if crc != 0 && calculated != crc {
        let why = format!("CRC {calculated:#010x}, {crc:#010x} stored");
        return Err((SkipCause::ChunkCrcMismatch, why));
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let malformed = |why: String| (SkipCause::ChunkMalformed, why);
        let Some((head, tail)) = rest.split_first_chunk::<RECORD_HEAD>() else {
            return Err(malformed(format!("{} stray bytes at its end", rest.len())));
        };
        let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
        let body_len = usize::try_from(len).unwrap_or(usize::MAX);
        if body_len > tail.len() {
            return Err(malformed(format!(
                "record of {len} bytes, {} left",
                tail.len()
            )));
        }
        let (body, next) = tail.split_at(body_len);
        out.push(mcap::parse_record(head[0], body).map_err(|e| malformed(e.to_string()))?);
        rest = next;
    }
    Ok(out)
}

/// A message of a known channel as the reader returns it.
fn raw(channels: &ChannelMap, channel: u16, log_time: u64, data: Vec<u8>) -> RawMessage {
    let (topic, ty) = channels
        .get(&channel)
        .map_or(("", ""), |(t, y)| (&**t, &**y));
    RawMessage {
        topic: topic.to_string(),
        type_name: ty.to_string(),
        log_time,
        data,
    }
}

fn chunk_cause(e: &McapError) -> SkipCause {
    match e {
        McapError::BadChunkCrc { .. } => SkipCause::ChunkCrcMismatch,
        McapError::DecompressionError(_)
        | McapError::Io(_)
        | McapError::UnexpectedEoc
        | McapError::UnexpectedEof
        | McapError::BadChunkLength { .. } => SkipCause::ChunkDecompression,
        McapError::UnsupportedCompression(_) => SkipCause::ChunkUnsupportedCompression,
        _ => SkipCause::ChunkMalformed,
    }
}

/// A message of a loaded chunk waiting for its turn in log-time order (ties: load order).
struct Queued {
    log_time: u64,
    seq: u64,
    channel: u16,
    data: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.log_time, self.seq) == (o.log_time, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.log_time, self.seq).cmp(&(o.log_time, o.seq))
    }
}

/// Log-time order through the summary's chunk index: chunks load in order of their first
/// message time, and a queued message is given once no unloaded chunk can hold an earlier one.
struct IndexedIter<'a> {
    file: &'a McapFile,
    chunks: Vec<&'a ChunkIndex>,
    next: usize,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    /// Channels to read; `None`: all.
    wanted: Option<HashSet<u16>>,
}

impl<'a> IndexedIter<'a> {
    fn new(file: &'a McapFile, summary: &'a mcap::Summary, topics: &[String]) -> Self {
        let wanted: Option<HashSet<u16>> = (!topics.is_empty()).then(|| {
            file.channels
                .iter()
                .filter(|(_, (t, _))| topics.iter().any(|w| **w == **t))
                .map(|(id, _)| *id)
                .collect()
        });
        // A chunk whose message index lists none of the wanted channels need not be read.
        let mut chunks: Vec<&ChunkIndex> = summary
            .chunk_indexes
            .iter()
            .filter(|c| match &wanted {
                Some(w) if !c.message_index_offsets.is_empty() => {
                    c.message_index_offsets.keys().any(|id| w.contains(id))
                }
                _ => true,
            })
            .collect();
        chunks.sort_by_key(|c| (c.message_start_time, c.chunk_start_offset));
        Self {
            file,
            chunks,
            next: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            wanted,
        }
    }

    /// Queues the wanted messages of one chunk (a damaged chunk is skipped and counted).
    fn load(&mut self, c: &ChunkIndex) {
        let at = c.chunk_start_offset;
        let map = &self.file.map[..];
        let record = usize::try_from(at).ok().and_then(|a| {
            let head = map.get(a..a.checked_add(RECORD_HEAD)?)?;
            let len = usize::try_from(u64::from_le_bytes(head[1..].try_into().ok()?)).ok()?;
            Some((
                head[0],
                map.get(a..a.checked_add(RECORD_HEAD)?.checked_add(len)?)?,
            ))
        });
        let record = match record {
            Some((op::CHUNK, record)) => record,
            Some(_) => {
                return self.file.damage.skip(
                    at,
                    0,
                    SkipCause::ChunkMalformed,
                    &"no chunk record there",
                )
            }
            None => {
                return self.file.damage.skip(
                    at,
                    0,
                    SkipCause::ChunkOutOfBounds,
                    &"past the end of the file",
                )
            }
        };
        let Some(records) = self.file.chunk_records(at, record) else {
            return;
        };
        for (i, r) in records.into_iter().enumerate() {
            let Record::Message { header, data } = r else {
                continue;
            };
            let ch = header.channel_id;
            if !self.file.channels.contains_key(&ch) {
                let why = format!("channel {ch}");
                self.file
                    .damage
                    .skip(at, i as u32 + 1, SkipCause::UnknownChannel, &why);
                continue;
            }
            self.file.damage.message(header.log_time);
            if self.wanted.as_ref().is_some_and(|w| !w.contains(&ch)) {
                continue;
            }
            self.queue.push(Reverse(Queued {
                log_time: header.log_time,
                seq: self.seq,
                channel: ch,
                data: data.into_owned(),
            }));
            self.seq += 1;
        }
    }
}

impl Iterator for IndexedIter<'_> {
    type Item = Result<RawMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let next_start = self.chunks.get(self.next).map(|c| c.message_start_time);
            if let Some(Reverse(top)) = self.queue.peek() {
                if next_start.is_none_or(|s| top.log_time <= s) {
                    let Reverse(q) = self.queue.pop()?;
                    return Some(Ok(raw(&self.file.channels, q.channel, q.log_time, q.data)));
                }
            }
            let c = *self.chunks.get(self.next)?;
            self.next += 1;
            self.load(c);
        }
    }
}

/// File-order reading, record by record, for files without a chunk index (e.g. a recording
/// cut short). It stops at the first record that is incomplete or cannot be a record, and
/// records there where the readable part of the file ends.
struct Walker<'a> {
    file: &'a McapFile,
    pos: usize,
    schemas: HashMap<u16, Arc<str>>,
    channels: ChannelMap,
    wanted: Vec<String>,
    /// Messages of the chunk being read.
    pending: VecDeque<Msg<'a>>,
    done: bool,
}

impl<'a> Walker<'a> {
    fn new(file: &'a McapFile, wanted: Vec<String>) -> Self {
        Self {
            file,
            pos: mcap::MAGIC.len(),
            schemas: HashMap::new(),
            channels: file.channels.clone(),
            wanted,
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// The next message (topic filter applied).
    fn next_message(&mut self) -> Option<Msg<'a>> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Some(m);
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }

    /// Stops reading; `end`: how the readable part ends (at `self.pos`), if not properly.
    fn finish(&mut self, end: Option<FileEnd>) {
        self.done = true;
        if let Some(kind) = end {
            self.file.damage.end(kind, self.pos as u64);
        }
    }

    /// Reads the record at `pos`.
    fn step(&mut self) {
        let file: &'a McapFile = self.file;
        let map: &'a [u8] = &file.map;
        if !map.starts_with(mcap::MAGIC) {
            // Cut (or zero-filled) within the magic bytes: nothing to read.
            self.pos = 0;
            let zeros = map.len() > common_prefix(map, mcap::MAGIC);
            let end = if zeros {
                FileEnd::ZeroFilled
            } else {
                FileEnd::Truncated
            };
            return self.finish(Some(end));
        }
        let rest = &map[self.pos.min(map.len())..];
        if rest.is_empty() {
            return self.finish(Some(FileEnd::NoFooter));
        }
        if rest.iter().all(|&b| b == 0) {
            return self.finish(Some(FileEnd::ZeroFilled));
        }
        if rest.len() < RECORD_HEAD {
            return self.finish(Some(FileEnd::Truncated));
        }
        let opcode = rest[0];
        let len = u64::from_le_bytes(rest[1..RECORD_HEAD].try_into().expect("8 bytes"));
        if opcode == 0 {
            return self.finish(Some(FileEnd::Garbage));
        }
        let body_len = usize::try_from(len).unwrap_or(usize::MAX);
        let Some(record) = rest.get(..RECORD_HEAD.saturating_add(body_len)) else {
            if opcode == op::CHUNK {
                let why = format!("{len} bytes stated, {} present", rest.len() - RECORD_HEAD);
                self.file
                    .damage
                    .skip(self.pos as u64, 0, SkipCause::IncompleteChunk, &why);
            }
            return self.finish(Some(FileEnd::Truncated));
        };
        let at = self.pos as u64;
        let body = &record[RECORD_HEAD..];
        self.pos += RECORD_HEAD + body_len;
        match opcode {
            // The data section ends; the summary follows (if it were readable, the file
            // would have been read through its index).
            op::DATA_END | op::FOOTER => {
                let end = (!self.file.closed).then_some(FileEnd::NoFooter);
                self.finish(end);
            }
            op::CHUNK => {
                for (i, r) in self
                    .file
                    .chunk_records(at, record)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    self.record(r, at, i as u32 + 1);
                }
            }
            op::SCHEMA | op::CHANNEL | op::MESSAGE => match mcap::parse_record(opcode, body) {
                Ok(r) => self.record(r, at, 0),
                Err(e) => self.file.damage.skip(at, 0, SkipCause::MalformedRecord, &e),
            },
            // Header, indexes, attachments, metadata: nothing a message stream needs.
            _ => {}
        }
    }

    fn record(&mut self, r: Record<'a>, at: u64, index: u32) {
        match r {
            Record::Schema { header, .. } => {
                self.schemas
                    .insert(header.id, Arc::from(header.name.as_str()));
            }
            Record::Channel(c) => {
                let ty = self
                    .schemas
                    .get(&c.schema_id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""));
                self.channels
                    .insert(c.id, (Arc::from(c.topic.as_str()), ty));
            }
            Record::Message { header, data } => {
                let Some((topic, _)) = self.channels.get(&header.channel_id) else {
                    let why = format!("channel {}", header.channel_id);
                    self.file
                        .damage
                        .skip(at, index, SkipCause::UnknownChannel, &why);
                    return;
                };
                self.file.damage.message(header.log_time);
                if !self.wanted.is_empty() && !self.wanted.iter().any(|t| **t == **topic) {
                    return;
                }
                self.pending.push_back(Msg {
                    channel: header.channel_id,
                    log_time: header.log_time,
                    data,
                });
            }
            _ => {}
        }
    }
}
