//! rosbag2 `metadata.yaml` (versions 4..9): the parts the reader needs, and the writer's output.

use super::error::BagError;
use crate::sensors::Stamp;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Root {
    rosbag2_bagfile_information: Info,
}

/// What the reader takes from metadata.yaml.
#[derive(Debug, Deserialize)]
pub struct Info {
    pub version: u32,
    #[serde(default)]
    pub storage_identifier: String,
    #[serde(default)]
    pub relative_file_paths: Vec<String>,
    #[serde(default)]
    pub compression_format: String,
    #[serde(default)]
    pub compression_mode: String,
}

/// How rosbag2 compressed a bag (always zstd; rosbag2 has no other compressor plugin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// Each storage file is a zstd stream (`NAME.mcap.zstd`, `NAME.db3.zstd`).
    File,
    /// Each message's serialized bytes are a zstd frame.
    Message,
}

impl Info {
    /// The compression the metadata declares (checked by [`read`]).
    pub fn compression(&self) -> Compression {
        match self.compression_mode.to_ascii_lowercase().as_str() {
            "file" => Compression::File,
            "message" => Compression::Message,
            _ => Compression::None,
        }
    }
}

/// Parses metadata.yaml; rejects versions and compressions this reader does not know.
/// `Ok(None)` (with a warning) when the file is not the YAML it should be: a recorder killed
/// while writing it leaves it cut short or empty, and the storage files are still readable.
pub fn read(path: &Path) -> Result<Option<Info>, BagError> {
    let err = |msg: String| BagError::Metadata {
        path: path.to_path_buf(),
        msg,
    };
    let parsed = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_yaml::from_slice::<Root>(&b).map_err(|e| e.to_string()));
    let root = match parsed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{}: unreadable ({e})", path.display());
            return Ok(None);
        }
    };
    let info = root.rosbag2_bagfile_information;
    if !(1..=9).contains(&info.version) {
        return Err(err(format!(
            "version {} not supported (1..9)",
            info.version
        )));
    }
    let mode = info.compression_mode.to_ascii_lowercase();
    if !matches!(mode.as_str(), "" | "none" | "file" | "message") {
        return Err(err(format!(
            "compression mode {:?} is not one of none, file, message",
            info.compression_mode
        )));
    }
    if matches!(mode.as_str(), "file" | "message")
        && !info.compression_format.eq_ignore_ascii_case("zstd")
    {
        return Err(err(format!(
            "compression format {:?} is not supported (only zstd); decompress with `ros2 bag convert`",
            info.compression_format
        )));
    }
    if !matches!(info.storage_identifier.as_str(), "" | "mcap" | "sqlite3") {
        tracing::warn!(
            "{}: storage {:?}; trying the files by their magic bytes",
            path.display(),
            info.storage_identifier
        );
    }
    Ok(Some(info))
}

/// One topic's line in the written metadata.
pub struct TopicEntry<'a> {
    pub name: &'a str,
    pub type_name: &'a str,
    pub count: u64,
    /// `offered_qos_profiles` as rosbag2 v8 serializes it (must equal the MCAP channel's).
    pub qos: &'a str,
}

fn yaml_str(s: &str) -> String {
    serde_yaml::to_string(s)
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// metadata.yaml text (version 8, as Jazzy and rosbags write it) for a single-file MCAP bag.
pub fn render(file: &str, start: Stamp, end: Stamp, topics: &[TopicEntry]) -> String {
    let count: u64 = topics.iter().map(|t| t.count).sum();
    let duration = end.saturating_sub(start);
    let mut s =
        String::from("rosbag2_bagfile_information:\n  version: 8\n  storage_identifier: mcap\n");
    s += &format!("  duration:\n    nanoseconds: {duration}\n");
    s += &format!("  starting_time:\n    nanoseconds_since_epoch: {start}\n");
    s += &format!("  message_count: {count}\n  topics_with_message_count:\n");
    for t in topics {
        s += &format!(
            "    - topic_metadata:\n        name: {}\n        type: {}\n        serialization_format: cdr\n        offered_qos_profiles: {}\n        type_description_hash: ''\n      message_count: {}\n",
            yaml_str(t.name),
            yaml_str(t.type_name),
            serde_json::to_string(t.qos).unwrap_or_default(),
            t.count
        );
    }
    if topics.is_empty() {
        s = s.replace(
            "topics_with_message_count:\n",
            "topics_with_message_count: []\n",
        );
    }
    s += "  compression_format: ''\n  compression_mode: ''\n";
    s += &format!("  relative_file_paths:\n    - {}\n", yaml_str(file));
    s += &format!(
        "  files:\n    - path: {}\n      starting_time:\n        nanoseconds_since_epoch: {start}\n      duration:\n        nanoseconds: {duration}\n      message_count: {count}\n",
        yaml_str(file)
    );
    s += "  custom_data: {}\n  ros_distro: gs_livo\n";
    s
}
