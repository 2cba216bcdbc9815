//! One MCAP storage file, memory-mapped: topics from the summary and a lazy message stream in
//! log-time order (indexed files) or file order (files without a chunk index).

use super::error::BagError;
use super::reader::{RawMessage, TopicInfo};
use mcap::records::Record;
use mcap::sans_io::indexed_reader::{
    IndexedReadEvent, IndexedReader, IndexedReaderOptions, ReadOrder,
};
use mcap::sans_io::{LinearReadEvent, LinearReader, LinearReaderOptions};
use memmap2::Mmap;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A memory-mapped MCAP file with its channel table.
pub struct McapFile {
    path: PathBuf,
    map: Mmap,
    summary: Option<mcap::Summary>,
    /// channel id -> (topic, type name)
    channels: ChannelMap,
    topics: Vec<TopicInfo>,
}

fn channel_entry(c: &mcap::Channel) -> (Arc<str>, Arc<str>) {
    let ty = c.schema.as_ref().map_or("", |s| s.name.as_str());
    (Arc::from(c.topic.as_str()), Arc::from(ty))
}

type ChannelMap = HashMap<u16, (Arc<str>, Arc<str>)>;

impl McapFile {
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let file = std::fs::File::open(path).map_err(|e| BagError::io(path, e))?;
        // SAFETY: the map is read-only; a bag modified while we read it yields garbage bytes,
        // which every decoder treats as untrusted input.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| BagError::io(path, e))?;
        let summary = match mcap::Summary::read(&map) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "{}: no usable summary ({e}); scanning the file",
                    path.display()
                );
                None
            }
        };
        let mut f = Self {
            path: path.to_path_buf(),
            map,
            summary,
            channels: HashMap::new(),
            topics: Vec::new(),
        };
        f.index()?;
        Ok(f)
    }

    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
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

    /// Builds the channel table and per-topic counts (from statistics, else one scan).
    fn index(&mut self) -> Result<(), BagError> {
        let mut counts: BTreeMap<u16, u64> = BTreeMap::new();
        let stats = self.summary.as_ref().and_then(|s| s.stats.clone());
        if let (Some(s), Some(st)) = (&self.summary, &stats) {
            for (id, c) in &s.channels {
                self.channels.insert(*id, channel_entry(c));
            }
            counts = st.channel_message_counts.clone();
        } else {
            let mut scan = LinearIter::new(self, Vec::new());
            while let Some(m) = scan.next_message() {
                let (id, _) = m?;
                *counts.entry(id).or_default() += 1;
            }
            self.channels = scan.channels;
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
        Ok(())
    }

    /// Messages of the given topics (all when empty), lazily.
    pub fn messages<'a>(
        &'a self,
        topics: &[&str],
    ) -> Result<Box<dyn Iterator<Item = Result<RawMessage, BagError>> + 'a>, BagError> {
        let wanted: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        if let (true, Some(summary)) = (self.indexed(), &self.summary) {
            let mut opts = IndexedReaderOptions::new()
                .with_order(ReadOrder::LogTime)
                .with_record_length_limit(self.record_limit());
            if !wanted.is_empty() {
                opts = opts.include_topics(wanted);
            }
            let reader = IndexedReader::new_with_options(summary, opts)
                .map_err(|e| BagError::mcap(&self.path, e))?;
            Ok(Box::new(IndexedIter {
                file: self,
                reader,
                done: false,
            }))
        } else {
            Ok(Box::new(LinearIter::new(self, wanted)))
        }
    }
}

struct IndexedIter<'a> {
    file: &'a McapFile,
    reader: IndexedReader,
    done: bool,
}

impl Iterator for IndexedIter<'_> {
    type Item = Result<RawMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let (offset, length) = match self.reader.next_event()? {
                Err(e) => {
                    self.done = true;
                    return Some(Err(BagError::mcap(&self.file.path, e)));
                }
                Ok(IndexedReadEvent::Message { header, data }) => {
                    let Some((topic, ty)) = self.file.channels.get(&header.channel_id) else {
                        self.done = true;
                        return Some(Err(BagError::Unsupported {
                            path: self.file.path.clone(),
                            msg: format!("message on unknown channel {}", header.channel_id),
                        }));
                    };
                    return Some(Ok(RawMessage {
                        topic: topic.to_string(),
                        type_name: ty.to_string(),
                        log_time: header.log_time,
                        data: data.to_vec(),
                    }));
                }
                Ok(IndexedReadEvent::ReadChunkRequest { offset, length }) => (offset, length),
            };
            let chunk = usize::try_from(offset)
                .ok()
                .and_then(|o| self.file.map.get(o..o.checked_add(length)?));
            let Some(chunk) = chunk else {
                self.done = true;
                return Some(Err(BagError::Unsupported {
                    path: self.file.path.clone(),
                    msg: format!("chunk at {offset} (+{length}) lies past the end of the file"),
                }));
            };
            if let Err(e) = self.reader.insert_chunk_record_data(offset, chunk) {
                self.done = true;
                return Some(Err(BagError::mcap(&self.file.path, e)));
            }
        }
    }
}

/// File-order reading of files without a chunk index (e.g. a recording cut short), through the
/// sans-io linear reader so that record lengths are bounded.
struct LinearIter<'a> {
    file: &'a McapFile,
    reader: LinearReader,
    pos: usize,
    schemas: HashMap<u16, Arc<str>>,
    channels: ChannelMap,
    wanted: Vec<String>,
    done: bool,
}

impl<'a> LinearIter<'a> {
    fn new(file: &'a McapFile, wanted: Vec<String>) -> Self {
        let opts = LinearReaderOptions::default().with_record_length_limit(file.record_limit());
        Self {
            file,
            reader: LinearReader::new_with_options(opts),
            pos: 0,
            schemas: HashMap::new(),
            channels: HashMap::new(),
            wanted,
            done: false,
        }
    }

    fn fail(&mut self, e: mcap::McapError) -> Option<Result<(u16, RawMessage), BagError>> {
        self.done = true;
        Some(Err(BagError::mcap(&self.file.path, e)))
    }

    /// The next message with its channel id (topic filter applied).
    fn next_message(&mut self) -> Option<Result<(u16, RawMessage), BagError>> {
        while !self.done {
            let (opcode, data) = match self.reader.next_event()? {
                Err(e) => return self.fail(e),
                Ok(LinearReadEvent::ReadRequest(n)) => {
                    let src = &self.file.map[self.pos.min(self.file.map.len())..];
                    let k = n.min(src.len());
                    self.reader.insert(k).copy_from_slice(&src[..k]);
                    self.reader.notify_read(k);
                    self.pos += k;
                    continue;
                }
                Ok(LinearReadEvent::Record { opcode, data }) => (opcode, data),
            };
            let record = match mcap::parse_record(opcode, data) {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            };
            match record {
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
                    let Some((topic, ty)) = self.channels.get(&header.channel_id) else {
                        self.done = true;
                        return Some(Err(BagError::Unsupported {
                            path: self.file.path.clone(),
                            msg: format!("message on unknown channel {}", header.channel_id),
                        }));
                    };
                    if !self.wanted.is_empty() && !self.wanted.iter().any(|t| **t == **topic) {
                        continue;
                    }
                    let raw = RawMessage {
                        topic: topic.to_string(),
                        type_name: ty.to_string(),
                        log_time: header.log_time,
                        data: data.into_owned(),
                    };
                    return Some(Ok((header.channel_id, raw)));
                }
                _ => {}
            }
        }
        None
    }
}

impl Iterator for LinearIter<'_> {
    type Item = Result<RawMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().map(|r| r.map(|(_, m)| m))
    }
}
