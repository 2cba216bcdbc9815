//! ROS 2 node (feature `ros2`): topics, TF, parameters.
