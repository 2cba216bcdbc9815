//! rosbag2 reading and writing without ROS: MCAP and sqlite3 storage, CDR message codecs.

pub mod msgs;
