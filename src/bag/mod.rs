//! rosbag2 reading and writing without ROS: MCAP and sqlite3 storage, CDR message codecs.

pub mod cdr;
mod codec;
pub mod convert;
pub mod decode;
mod defs;
mod error;
mod image_conv;
mod mcap_io;
mod metadata;
pub mod msgs;
mod reader;
mod recovery;
mod sqlite_io;
mod writer;

pub use codec::RosMessage;
pub use decode::{decode_as, decode_sensor_message, SensorMessage};
pub use error::{BagError, DecodeError};
pub use reader::{BagReader, RawMessage, TopicInfo};
pub use recovery::{BagDamage, FileDamage, FileEnd, SkipCause};
pub use writer::{BagWriter, WriterOptions};
