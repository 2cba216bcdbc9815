//! One MCAP storage file, memory-mapped: topics from the summary and a lazy message stream in
//! log-time order (indexed files) or file order (files without a chunk index).

use super::error::BagError;
use super::reader::{RawMessage, TopicInfo};
use mcap::sans_io::indexed_reader::{
    IndexedReadEvent, IndexedReader, IndexedReaderOptions, ReadOrder,
};
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
    channels: HashMap<u16, (Arc<str>, Arc<str>)>,
    topics: Vec<TopicInfo>,
}

fn channel_entry(c: &mcap::Channel) -> (Arc<str>, Arc<str>) {
    let ty = c.schema.as_ref().map_or("", |s| s.name.as_str());
    (Arc::from(c.topic.as_str()), Arc::from(ty))
}

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
            let stream =
                mcap::MessageStream::new(&self.map).map_err(|e| BagError::mcap(&self.path, e))?;
            for m in stream {
                let m = m.map_err(|e| BagError::mcap(&self.path, e))?;
                self.channels
                    .entry(m.channel.id)
                    .or_insert_with(|| channel_entry(&m.channel));
                *counts.entry(m.channel.id).or_default() += 1;
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
        Ok(())
    }

    /// Messages of the given topics (all when empty), lazily.
    pub fn messages<'a>(
        &'a self,
        topics: &[&str],
    ) -> Result<Box<dyn Iterator<Item = Result<RawMessage, BagError>> + 'a>, BagError> {
        let wanted: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        if let (true, Some(summary)) = (self.indexed(), &self.summary) {
            let mut opts = IndexedReaderOptions::new().with_order(ReadOrder::LogTime);
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
            let stream =
                mcap::MessageStream::new(&self.map).map_err(|e| BagError::mcap(&self.path, e))?;
            let path = self.path.clone();
            Ok(Box::new(stream.filter_map(move |m| match m {
                Err(e) => Some(Err(BagError::mcap(&path, e))),
                Ok(m) if wanted.is_empty() || wanted.iter().any(|t| *t == m.channel.topic) => {
                    let (topic, ty) = channel_entry(&m.channel);
                    Some(Ok(RawMessage {
                        topic: topic.to_string(),
                        type_name: ty.to_string(),
                        log_time: m.log_time,
                        data: m.data.into_owned(),
                    }))
                }
                Ok(_) => None,
            })))
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
