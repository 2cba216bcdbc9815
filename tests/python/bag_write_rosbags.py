#!/usr/bin/env python3
"""Write a rosbag2 with the `rosbags` package (PointCloud2, Imu, Image, CompressedImage).

Usage: bag_write_rosbags.py OUT_DIR mcap|sqlite3 [none|file|message]
Prints the written values as JSON lines, so tests/bag_python_roundtrip.rs can check that
gs_livo reads the same values from a bag it did not write.
"""
import base64
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


def png_rgb(width, height, rgb):
    """A minimal PNG (8-bit RGB, no filter) so the test needs no imaging package."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def exact(values):
    """Floats as repr() strings, so the Rust side compares bit-exactly."""
    return [repr(float(x)) for x in values]


def main():
    out, storage = Path(sys.argv[1]), sys.argv[2]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    PF = T["sensor_msgs/msg/PointField"]
    rng = np.random.default_rng(7)
    emitted = []
    compression = sys.argv[3] if len(sys.argv) > 3 else "none"
    writer = Writer(out, version=9, storage_plugin=plugin)
    if compression != "none":
        mode = CompressionMode.FILE if compression == "file" else CompressionMode.MESSAGE
        writer.set_compression(mode, CompressionFormat.ZSTD)
    with writer as w:
        c_pc = w.add_connection("/points", "sensor_msgs/msg/PointCloud2", typestore=ts)
        c_imu = w.add_connection("/imu", "sensor_msgs/msg/Imu", typestore=ts)
        c_img = w.add_connection("/image", "sensor_msgs/msg/Image", typestore=ts)
        c_cmp = w.add_connection("/image/compressed", "sensor_msgs/msg/CompressedImage", typestore=ts)
        for k in range(3):
            t0 = 1_700_000_000_000_000_000 + k * 100_000_000
            hdr = Header(stamp=Time(sec=t0 // 10**9, nanosec=t0 % 10**9), frame_id="lidar")
            # Ouster-like layout: x y z (f32), pad, intensity f32 @16, t u32 @20, ring u16 @24; step 32.
            n = 50 + k
            pts = np.zeros(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("pad", "<f4"),
                                     ("intensity", "<f4"), ("t", "<u4"), ("ring", "<u2"), ("pad2", "<u2"), ("pad3", "<u4")])
            pts["x"], pts["y"], pts["z"] = rng.normal(size=(3, n)).astype("<f4")
            pts["intensity"] = rng.uniform(0, 100, n).astype("<f4")
            pts["t"] = np.arange(n, dtype="<u4") * 1000
            pts["ring"] = np.arange(n) % 16
            fields = [PF(name="x", offset=0, datatype=7, count=1), PF(name="y", offset=4, datatype=7, count=1),
                      PF(name="z", offset=8, datatype=7, count=1), PF(name="intensity", offset=16, datatype=7, count=1),
                      PF(name="t", offset=20, datatype=6, count=1), PF(name="ring", offset=24, datatype=4, count=1)]
            data = np.frombuffer(pts.tobytes(), dtype=np.uint8)
            msg = T["sensor_msgs/msg/PointCloud2"](header=hdr, height=1, width=n, fields=fields, is_bigendian=False,
                                                   point_step=32, row_step=32 * n, data=data, is_dense=True)
            w.write(c_pc, t0, ts.serialize_cdr(msg, msg.__msgtype__))
            emitted.append({"topic": "/points", "log_time": t0, "stamp": t0, "x": exact(pts["x"]), "y": exact(pts["y"]),
                            "z": exact(pts["z"]), "intensity": exact(pts["intensity"]), "t": pts["t"].tolist()})
            for j in range(2):
                ti = t0 + j * 5_000_000
                ih = Header(stamp=Time(sec=ti // 10**9, nanosec=ti % 10**9), frame_id="imu")
                V3, Q = T["geometry_msgs/msg/Vector3"], T["geometry_msgs/msg/Quaternion"]
                g, a = rng.normal(size=3), rng.normal(size=3) + [0, 0, 9.81]
                imu = T["sensor_msgs/msg/Imu"](header=ih, orientation=Q(x=0.0, y=0.0, z=0.0, w=1.0),
                                               orientation_covariance=np.zeros(9), angular_velocity=V3(x=g[0], y=g[1], z=g[2]),
                                               angular_velocity_covariance=np.zeros(9),
                                               linear_acceleration=V3(x=a[0], y=a[1], z=a[2]),
                                               linear_acceleration_covariance=np.zeros(9))
                w.write(c_imu, ti, ts.serialize_cdr(imu, imu.__msgtype__))
                emitted.append({"topic": "/imu", "log_time": ti, "stamp": ti, "gyro": exact(g), "accel": exact(a)})
            wd, ht = 6, 4
            rgb = rng.integers(0, 256, size=wd * ht * 3, dtype=np.uint8)
            bgr = rgb.reshape(-1, 3)[:, ::-1].reshape(-1)
            ch = Header(stamp=hdr.stamp, frame_id="camera")
            img = T["sensor_msgs/msg/Image"](header=ch, height=ht, width=wd, encoding="bgr8", is_bigendian=0,
                                             step=wd * 3, data=bgr.copy())
            w.write(c_img, t0 + 1, ts.serialize_cdr(img, img.__msgtype__))
            png = png_rgb(wd, ht, rgb.tobytes())
            cimg = T["sensor_msgs/msg/CompressedImage"](header=ch, format="png", data=np.frombuffer(png, dtype=np.uint8))
            w.write(c_cmp, t0 + 2, ts.serialize_cdr(cimg, cimg.__msgtype__))
            enc = base64.b64encode(rgb.tobytes()).decode()
            emitted.append({"topic": "/image", "log_time": t0 + 1, "stamp": t0, "w": wd, "h": ht, "rgb": enc})
            emitted.append({"topic": "/image/compressed", "log_time": t0 + 2, "stamp": t0, "w": wd, "h": ht, "rgb": enc})
    for e in emitted:
        print(json.dumps(e))


if __name__ == "__main__":
    main()
