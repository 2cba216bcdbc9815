#!/usr/bin/env python3
"""Dump a rosbag2 (folder or bare .mcap/.db3) as JSON lines with the `rosbags` package.

Floats are written as repr() strings so the comparison is bit-exact.
Used by tests/bag_python_roundtrip.rs: gs_livo writes a bag, this script reads it back with an
independent implementation, and the Rust test compares field by field.
Types missing from the typestore (e.g. Livox CustomMsg) are registered from the bag's schemas.
"""
import base64
import json
import sys
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore


def to_jsonable(v):
    if hasattr(v, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(v, k)) for k in v.__dataclass_fields__ if k != "__msgtype__"}
    if hasattr(v, "dtype"):  # numpy array
        if v.dtype.name == "uint8":
            return {"b64": base64.b64encode(v.tobytes()).decode()}
        return [to_jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if isinstance(v, float):
        return repr(v)  # exact: JSON number parsers may round the last bit
    return v


def main():
    path = Path(sys.argv[1])
    store = get_typestore(Stores.ROS2_HUMBLE)
    with AnyReader([path], default_typestore=store) as reader:
        for c in reader.connections:
            if c.msgtype not in store.types and c.msgdef.data:
                store.register(get_types_from_msg(c.msgdef.data, c.msgtype))
        for conn, t, raw in reader.messages():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            print(json.dumps({"topic": conn.topic, "type": conn.msgtype, "log_time": t, "msg": to_jsonable(msg)}))


if __name__ == "__main__":
    main()
