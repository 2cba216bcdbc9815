#!/usr/bin/env python3
"""Write a rosbag2 MCAP with the `rosbags` package that spans several chunks (rosbags closes a
chunk after 1 MiB): IMU messages and CompressedImage messages of varying size, every message
at its own log time. Used by tests/bag_recovery.rs to cut a bag gs_livo did not write.

Usage: bag_write_chunked.py OUT_DIR
"""
import sys
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


def main():
    out = Path(sys.argv[1])
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Imu, Vec3, Quat = T["sensor_msgs/msg/Imu"], T["geometry_msgs/msg/Vector3"], T["geometry_msgs/msg/Quaternion"]
    Img = T["sensor_msgs/msg/CompressedImage"]
    rng = np.random.default_rng(11)
    with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c_imu = w.add_connection("/imu", "sensor_msgs/msg/Imu", typestore=ts)
        c_img = w.add_connection("/image/compressed", "sensor_msgs/msg/CompressedImage", typestore=ts)
        for k in range(240):
            t = 1_700_000_000_000_000_000 + k * 5_000_000
            hdr = Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id="imu")
            cov = np.zeros(9)
            imu = Imu(header=hdr, orientation=Quat(x=0.0, y=0.0, z=0.0, w=1.0),
                      orientation_covariance=cov,
                      angular_velocity=Vec3(x=0.01 * k, y=0.0, z=0.0), angular_velocity_covariance=cov,
                      linear_acceleration=Vec3(x=0.0, y=0.0, z=9.81), linear_acceleration_covariance=cov)
            w.write(c_imu, t, ts.serialize_cdr(imu, "sensor_msgs/msg/Imu"))
            if k % 4 == 0:
                data = rng.integers(0, 256, size=20_000 + 397 * k, dtype=np.uint8)
                img = Img(header=hdr, format="jpeg", data=data)
                w.write(c_img, t + 1, ts.serialize_cdr(img, "sensor_msgs/msg/CompressedImage"))


if __name__ == "__main__":
    main()
