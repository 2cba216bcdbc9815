//! `BagWriter`: a rosbag2 MCAP folder (ros2 profile, `cdr` messages, `ros2msg` schemas) that
//! `ros2 bag`, Foxglove and the Python `rosbags`/`mcap` readers open.

use super::codec::RosMessage;
use super::error::BagError;
use super::metadata::{self, TopicEntry};
use crate::sensors::Stamp;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// QoS rosbag2 records for a reliable, volatile publisher (what `ros2 bag play` re-offers).
pub(crate) const QOS_V8: &str = "- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n  avoid_ros_namespace_conventions: false";

/// Options of the MCAP file (compression trades CPU for size).
#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub compression: Option<mcap::Compression>,
    pub chunk_size: u64,
    /// Compression level (0: the codec's default, zstd 3).
    pub level: u32,
    /// zstd worker threads (`Some(0)`: compress on the writing thread; `None`: the mcap
    /// crate's default, one per physical core).
    pub threads: Option<u32>,
    /// Group messages into chunks (indexed, compressible). Without chunks every message is a
    /// record of its own, as recorders that flush each message write them.
    pub chunked: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            compression: Some(mcap::Compression::Zstd),
            chunk_size: 4 << 20,
            level: 0,
            threads: None,
            chunked: true,
        }
    }
}

impl WriterOptions {
    /// For files written while the pipeline runs (a run's `results.mcap`): zstd at level 1 on
    /// the writing thread. The default (level 3, a worker thread per core) took 4 % of the CPU
    /// samples of `gs_livo run` on the simulated room (it writes every registered scan), on
    /// workers competing with the mapper for the 2 cores; level 1 on the outputs thread took
    /// half that, for a file 6 % larger that the same readers open.
    pub fn streaming() -> Self {
        Self {
            level: 1,
            threads: Some(0),
            ..Self::default()
        }
    }
}

struct Topic {
    channel: u16,
    type_name: &'static str,
    count: u64,
    seq: u32,
}

/// Writes a rosbag2 MCAP folder: `<dir>/metadata.yaml` + `<dir>/<dirname>_0.mcap`.
pub struct BagWriter {
    dir: PathBuf,
    file_name: String,
    mcap: mcap::Writer<BufWriter<File>>,
    schemas: HashMap<&'static str, u16>,
    topics: BTreeMap<String, Topic>,
    start: Stamp,
    end: Stamp,
}

impl BagWriter {
    /// Creates the folder (and parents); an existing bag in it is overwritten.
    pub fn create(dir: &Path) -> Result<Self, BagError> {
        Self::create_with(dir, WriterOptions::default())
    }

    pub fn create_with(dir: &Path, opts: WriterOptions) -> Result<Self, BagError> {
        std::fs::create_dir_all(dir).map_err(|e| BagError::io(dir, e))?;
        let stem = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "bag".into());
        let file_name = format!("{stem}_0.mcap");
        let path = dir.join(&file_name);
        let file = File::create(&path).map_err(|e| BagError::io(&path, e))?;
        let mut options = mcap::WriteOptions::new()
            .profile("ros2")
            .library(concat!("gs_livo ", env!("CARGO_PKG_VERSION")))
            .compression(opts.compression)
            .compression_level(opts.level)
            .chunk_size(Some(opts.chunk_size))
            .use_chunks(opts.chunked);
        if let Some(n) = opts.threads {
            options = options.compression_threads(n);
        }
        let mcap = options
            .create(BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| BagError::mcap(&path, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file_name,
            mcap,
            schemas: HashMap::new(),
            topics: BTreeMap::new(),
            start: Stamp::MAX,
            end: 0,
        })
    }

    fn mcap_path(&self) -> PathBuf {
        self.dir.join(&self.file_name)
    }

    /// Appends one message; a topic keeps the type of its first message.
    pub fn write<M: RosMessage>(
        &mut self,
        topic: &str,
        log_time: Stamp,
        msg: &M,
    ) -> Result<(), BagError> {
        let data = msg.encode_cdr();
        self.write_raw::<M>(topic, log_time, &data)
    }

    /// Appends already-encoded CDR bytes of type `M`.
    pub fn write_raw<M: RosMessage>(
        &mut self,
        topic: &str,
        log_time: Stamp,
        cdr: &[u8],
    ) -> Result<(), BagError> {
        self.write_cdr(topic, M::TYPE_NAME, M::DEFINITION, log_time, log_time, cdr)
    }

    /// Appends CDR bytes of a type given by name and ros2msg definition, with a publish time
    /// apart from the log time (a recorder of a running node: log time on the node's clock,
    /// publish time on the wall clock).
    pub fn write_cdr(
        &mut self,
        topic: &str,
        type_name: &'static str,
        definition: &'static str,
        log_time: Stamp,
        publish_time: Stamp,
        cdr: &[u8],
    ) -> Result<(), BagError> {
        if !self.topics.contains_key(topic) {
            self.add_topic(topic, type_name, definition)?;
        }
        let path = self.mcap_path();
        let t = self.topics.get_mut(topic).expect("topic added above");
        if t.type_name != type_name {
            return Err(BagError::Topic {
                topic: topic.into(),
                msg: format!("written as {} before, now {type_name}", t.type_name),
            });
        }
        let header = mcap::records::MessageHeader {
            channel_id: t.channel,
            sequence: t.seq,
            log_time,
            publish_time,
        };
        t.seq = t.seq.wrapping_add(1);
        t.count += 1;
        self.start = self.start.min(log_time);
        self.end = self.end.max(log_time);
        self.mcap
            .write_to_known_channel(&header, cdr)
            .map_err(|e| BagError::mcap(path, e))
    }

    fn add_topic(
        &mut self,
        topic: &str,
        type_name: &'static str,
        def: &'static str,
    ) -> Result<(), BagError> {
        let path = self.mcap_path();
        let schema = match self.schemas.get(type_name) {
            Some(&id) => id,
            None => {
                let id = self
                    .mcap
                    .add_schema(type_name, "ros2msg", def.as_bytes())
                    .map_err(|e| BagError::mcap(&path, e))?;
                self.schemas.insert(type_name, id);
                id
            }
        };
        let meta = BTreeMap::from([("offered_qos_profiles".to_string(), QOS_V8.to_string())]);
        let channel = self
            .mcap
            .add_channel(schema, topic, "cdr", &meta)
            .map_err(|e| BagError::mcap(&path, e))?;
        self.topics.insert(
            topic.to_string(),
            Topic {
                channel,
                type_name,
                count: 0,
                seq: 0,
            },
        );
        Ok(())
    }

    /// Finishes the MCAP file (summary, indexes) and writes metadata.yaml.
    pub fn finish(mut self) -> Result<(), BagError> {
        let path = self.mcap_path();
        self.mcap.finish().map_err(|e| BagError::mcap(&path, e))?;
        let start = if self.start == Stamp::MAX {
            0
        } else {
            self.start
        };
        let entries: Vec<TopicEntry> = self
            .topics
            .iter()
            .map(|(name, t)| TopicEntry {
                name,
                type_name: t.type_name,
                count: t.count,
                qos: QOS_V8,
            })
            .collect();
        let yaml = metadata::render(&self.file_name, start, self.end.max(start), &entries);
        let meta = self.dir.join("metadata.yaml");
        std::fs::write(&meta, yaml).map_err(|e| BagError::io(&meta, e))
    }
}
