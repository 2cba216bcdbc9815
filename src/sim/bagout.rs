//! Writes the sequence's messages into a rosbag2 MCAP folder.

use std::path::Path;

use super::sequence::SimSequence;
use super::SimError;

/// Writes `/points`, `/imu`, `/image` (or `/image/compressed`) and `/ground_truth/odom`.
pub fn write_bag(_dir: &Path, _seq: &SimSequence) -> Result<(), SimError> {
    Err(SimError::Encode(
        "the rosbag2 writer (crate::bag::BagWriter) is not merged into this build yet".into(),
    ))
}
