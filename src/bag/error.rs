//! Errors of the bag module: message decoding and bag file access.

use std::path::PathBuf;

/// A message could not be decoded (bad CDR, bad layout, unsupported encoding).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DecodeError {
    #[error("message truncated: need {need} bytes at offset {at}, only {have} left")]
    Truncated { need: usize, at: usize, have: usize },
    #[error("bad CDR encapsulation header {0:#04x} {1:#04x} (expected CDR_LE or CDR_BE)")]
    BadEncapsulation(u8, u8),
    #[error("string is not valid UTF-8 or lacks its NUL terminator at offset {0}")]
    BadString(usize),
    #[error("sequence length {len} at offset {at} exceeds the {have} bytes left")]
    LengthTooLarge { len: u64, at: usize, have: usize },
    #[error("point cloud: {0}")]
    PointCloud(String),
    #[error("image: {0}")]
    Image(String),
    #[error("unsupported image encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("message type {found:?} where {expected:?} was expected")]
    WrongType { expected: String, found: String },
}

/// A bag could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: MCAP: {source}")]
    Mcap {
        path: PathBuf,
        #[source]
        source: mcap::McapError,
    },
    #[error("{path}: sqlite3: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: metadata.yaml: {msg}")]
    Metadata { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Unsupported { path: PathBuf, msg: String },
    #[error("topic {topic:?}: {msg}")]
    Topic { topic: String, msg: String },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl BagError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn mcap(path: impl Into<PathBuf>, source: mcap::McapError) -> Self {
        Self::Mcap {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn sqlite(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        Self::Sqlite {
            path: path.into(),
            source,
        }
    }
}
