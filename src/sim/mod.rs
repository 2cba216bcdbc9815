//! Synthetic LiDAR-camera-IMU sequences with exact ground truth, written as rosbag2.
