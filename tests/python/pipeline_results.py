#!/usr/bin/env python3
"""Read a run's results.mcap with two independent readers and print a JSON digest.

The `mcap` package checks the container (profile, channels, schemas, message counts); the
`rosbags` package deserialises every message from CDR. Used by tests/pipeline_e2e.rs.
"""
import json
import sys
from pathlib import Path

from mcap.reader import make_reader
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore


def main():
    path = Path(sys.argv[1])
    out = {"mcap": {}, "topics": {}}
    with open(path, "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
        out["mcap"]["profile"] = header.profile
        channels = summary.channels
        schemas = summary.schemas
        out["mcap"]["channels"] = {
            c.topic: {
                "encoding": c.message_encoding,
                "schema": schemas[c.schema_id].name,
                "schema_encoding": schemas[c.schema_id].encoding,
                "count": summary.statistics.channel_message_counts.get(cid, 0),
            }
            for cid, c in channels.items()
        }
    store = get_typestore(Stores.ROS2_HUMBLE)
    with AnyReader([path], default_typestore=store) as reader:
        for conn, t, raw in reader.messages():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            d = out["topics"].setdefault(conn.topic, {"type": conn.msgtype, "count": 0})
            d["count"] += 1
            if conn.msgtype == "tf2_msgs/msg/TFMessage":
                pairs = {(t.header.frame_id, t.child_frame_id) for t in msg.transforms}
                d["pairs"] = sorted(set(map(tuple, d.get("pairs", []))) | pairs)
                continue
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            if conn.msgtype == "nav_msgs/msg/Odometry":
                p = msg.pose.pose.position
                d.setdefault("positions", []).append([stamp, p.x, p.y, p.z])
                d["frame_id"] = msg.header.frame_id
            elif conn.msgtype == "nav_msgs/msg/Path":
                d["last_len"] = len(msg.poses)
            elif conn.msgtype == "sensor_msgs/msg/PointCloud2":
                d.setdefault("widths", []).append(int(msg.width))
                d["fields"] = [f.name for f in msg.fields]
                d["bytes_ok"] = d.get("bytes_ok", True) and (
                    len(msg.data) == msg.width * msg.height * msg.point_step
                )
            elif conn.msgtype == "sensor_msgs/msg/Image":
                d["size"] = [int(msg.width), int(msg.height), msg.encoding]
                d["bytes_ok"] = d.get("bytes_ok", True) and (len(msg.data) == msg.step * msg.height)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
