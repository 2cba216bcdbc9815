"""A ROS 2 peer on Cyclone DDS, without ROS: the ROS 2 message types declared here with their
DDS names, a bag played onto the wire at its recorded rate, the node's outputs received.

  dds_peer.py play BAG_MCAP OUT_JSON --save-at S --save-dir DIR [--lidar T --imu T]
      Decodes every LiDAR/IMU message of the bag with Cyclone's deserializer (the types below),
      publishes them at the recorded rate with /clock, sends a save request S seconds in,
      and records what the node publishes (odometry, /tf, /tf_static, diagnostics), decoded
      by Cyclone, into OUT_JSON.
  dds_peer.py flood OUT_JSON --seconds S --points N --imu-hz H --lidar-hz L
      Publishes synthetic N-point clouds and IMU as fast as asked for S seconds (throughput).

The domain comes from ROS_DOMAIN_ID, the network setup from CYCLONEDDS_URI.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int32, sequence, uint8, uint32
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time
    frame_id: str


@dataclass
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str


@dataclass
class Clock(IdlStruct, typename="rosgraph_msgs::msg::dds_::Clock_"):
    clock: Time


@dataclass
class PointField(IdlStruct, typename="sensor_msgs::msg::dds_::PointField_"):
    name: str
    offset: uint32
    datatype: uint8
    count: uint32


@dataclass
class PointCloud2(IdlStruct, typename="sensor_msgs::msg::dds_::PointCloud2_"):
    header: Header
    height: uint32
    width: uint32
    fields: sequence[PointField]
    is_bigendian: bool
    point_step: uint32
    row_step: uint32
    data: sequence[uint8]
    is_dense: bool


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64
    y: float64
    z: float64
    w: float64


@dataclass
class Imu(IdlStruct, typename="sensor_msgs::msg::dds_::Imu_"):
    header: Header
    orientation: Quaternion
    orientation_covariance: array[float64, 9]
    angular_velocity: Vector3
    angular_velocity_covariance: array[float64, 9]
    linear_acceleration: Vector3
    linear_acceleration_covariance: array[float64, 9]


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point
    orientation: Quaternion


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose
    covariance: array[float64, 36]


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3
    angular: Vector3


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist
    covariance: array[float64, 36]


@dataclass
class Odometry(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    header: Header
    child_frame_id: str
    pose: PoseWithCovariance
    twist: TwistWithCovariance


@dataclass
class Transform(IdlStruct, typename="geometry_msgs::msg::dds_::Transform_"):
    translation: Vector3
    rotation: Quaternion


@dataclass
class TransformStamped(IdlStruct, typename="geometry_msgs::msg::dds_::TransformStamped_"):
    header: Header
    child_frame_id: str
    transform: Transform


@dataclass
class TFMessage(IdlStruct, typename="tf2_msgs::msg::dds_::TFMessage_"):
    transforms: sequence[TransformStamped]


@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    key: str
    value: str


@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    level: uint8
    name: str
    message: str
    hardware_id: str
    values: sequence[KeyValue]


@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    header: Header
    status: sequence[DiagnosticStatus]


TYPES = {
    "sensor_msgs/msg/PointCloud2": PointCloud2,
    "sensor_msgs/msg/Imu": Imu,
}

# ROS 2 profiles: sensor data best effort; outputs reliable; /tf_static transient local.
SENSOR = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(400))
RELIABLE = Qos(Policy.Reliability.Reliable(1_000_000_000), Policy.History.KeepLast(100))
LATCHED = Qos(
    Policy.Reliability.Reliable(1_000_000_000),
    Policy.Durability.TransientLocal,
    Policy.History.KeepLast(1),
)


def ns(t):
    return t.sec * 1_000_000_000 + t.nanosec


def to_time(stamp):
    return Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)


def rt(name):
    return "rt" + name


def wait_matched(things, what, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(matched(x) for x in things):
            return
        time.sleep(0.05)
    sys.exit(f"dds_peer: discovery failed: no match for {what} within {timeout} s")


def matched(x):
    if isinstance(x, DataWriter):
        return x.get_matched_subscriptions() != []
    return x.get_matched_publications() != []


class Outputs:
    """The node's outputs, decoded by Cyclone as they arrive."""

    def __init__(self, dp):
        self.odometry = DataReader(dp, Topic(dp, rt("/odometry"), Odometry), qos=RELIABLE)
        self.tf = DataReader(dp, Topic(dp, rt("/tf"), TFMessage), qos=RELIABLE)
        self.tf_static = DataReader(dp, Topic(dp, rt("/tf_static"), TFMessage), qos=LATCHED)
        self.diag = DataReader(dp, Topic(dp, rt("/diagnostics"), DiagnosticArray), qos=RELIABLE)
        self.got = {"odometry": [], "tf": [], "tf_static": [], "diagnostics": []}

    def readers(self):
        return [self.odometry, self.tf, self.tf_static, self.diag]

    def poll(self):
        now = time.time_ns()
        n = 0
        for m in self.odometry.take(N=1000):
            p, q = m.pose.pose.position, m.pose.pose.orientation
            self.got["odometry"].append({
                "stamp": ns(m.header.stamp), "frame": m.header.frame_id,
                "child": m.child_frame_id, "p": [p.x, p.y, p.z], "q": [q.x, q.y, q.z, q.w],
                "received_wall": now,
            })
            n += 1
        for key, r in (("tf", self.tf), ("tf_static", self.tf_static)):
            for m in r.take(N=1000):
                self.got[key].append([
                    [t.header.frame_id, t.child_frame_id, ns(t.header.stamp)] for t in m.transforms
                ])
        for m in self.diag.take(N=100):
            self.got["diagnostics"].append({
                "stamp": ns(m.header.stamp),
                "status": [{"name": s.name, "level": int(s.level),
                            "values": {kv.key: kv.value for kv in s.values}} for s in m.status],
            })
        return n


def read_bag(path, topics):
    from mcap.reader import make_reader

    out = []
    with open(path, "rb") as f:
        for schema, channel, message in make_reader(f).iter_messages(topics=topics):
            ty = TYPES[schema.name]
            # Cyclone's own deserializer reads the bag's CDR (header included).
            out.append((message.log_time, channel.topic, ty.deserialize(message.data),
                        schema.name))
    return out


def play(a, dp):
    messages = read_bag(a.bag, [a.lidar, a.imu])
    writers = {
        a.lidar: DataWriter(dp, Topic(dp, rt(a.lidar), PointCloud2), qos=SENSOR),
        a.imu: DataWriter(dp, Topic(dp, rt(a.imu), Imu), qos=SENSOR),
    }
    clock = DataWriter(dp, Topic(dp, rt("/clock"), Clock), qos=SENSOR)
    save = DataWriter(dp, Topic(dp, rt("/gs_livo/save"), String), qos=RELIABLE)
    out = Outputs(dp)
    wait_matched(list(writers.values()) + [save, clock] + out.readers(), "the node's endpoints")
    time.sleep(0.5)  # the node's readers see our writers too
    t0, w0 = messages[0][0], time.monotonic()
    scans, saved = [], False
    for log_time, topic, msg, ty in messages:
        due = (log_time - t0) / 1e9
        while True:
            late = due - (time.monotonic() - w0)
            if late <= 0:
                break
            out.poll()
            time.sleep(min(late, 0.002))
        if not saved and due >= a.save_at:
            save.write(String(data=a.save_dir))
            saved = True
        clock.write(Clock(clock=to_time(log_time)))
        writers[topic].write(msg)
        if ty.endswith("PointCloud2"):
            scans.append({"stamp": ns(msg.header.stamp), "sent_wall": time.time_ns(),
                          "points": msg.width * msg.height})
    # The tail: until no odometry came for 3 s.
    quiet = time.monotonic()
    while time.monotonic() - quiet < 3.0:
        if out.poll():
            quiet = time.monotonic()
        time.sleep(0.01)
    out.got["scans"] = scans
    out.got["imu"] = sum(1 for m in messages if m[1] == a.imu)
    return out.got


def flood(a, dp):
    lidar = DataWriter(dp, Topic(dp, rt(a.lidar), PointCloud2), qos=SENSOR)
    imu = DataWriter(dp, Topic(dp, rt(a.imu), Imu), qos=SENSOR)
    wait_matched([lidar, imu], "the node's sensor readers")
    time.sleep(0.5)
    fields = [PointField(name=n, offset=4 * i, datatype=7, count=1)
              for i, n in enumerate(["x", "y", "z", "intensity"])]
    data = bytes(range(256)) * (a.points * 16 // 256 + 1)
    cloud = PointCloud2(header=Header(stamp=Time(0, 0), frame_id="lidar"), height=1,
                        width=a.points, fields=fields, is_bigendian=False, point_step=16,
                        row_step=16 * a.points, data=list(data[: 16 * a.points]), is_dense=True)
    zero = Vector3(0.0, 0.0, 0.0)
    sent = {"lidar": 0, "imu": 0}
    w0 = time.monotonic()
    next_l, next_i = 0.0, 0.0
    while (t := time.monotonic() - w0) < a.seconds:
        stamp = to_time(int(t * 1e9) + 1)
        if t >= next_i:
            imu.write(Imu(Header(stamp, "imu"), Quaternion(0.0, 0.0, 0.0, 1.0), [0.0] * 9, zero,
                          [0.0] * 9, Vector3(0.0, 0.0, 9.81), [0.0] * 9))
            sent["imu"] += 1
            next_i += 1.0 / a.imu_hz
        if t >= next_l:
            cloud.header.stamp = stamp
            lidar.write(cloud)
            sent["lidar"] += 1
            next_l += 1.0 / a.lidar_hz
        time.sleep(0.0002)
    sent["seconds"] = time.monotonic() - w0
    return sent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["play", "flood"])
    ap.add_argument("bag", nargs="?")
    ap.add_argument("out")
    ap.add_argument("--save-at", type=float, default=3.0)
    ap.add_argument("--save-dir", default="")
    ap.add_argument("--lidar", default="/lidar/points")
    ap.add_argument("--imu", default="/imu/data")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--points", type=int, default=16384)
    ap.add_argument("--imu-hz", type=float, default=200.0)
    ap.add_argument("--lidar-hz", type=float, default=10.0)
    a = ap.parse_args()
    dp = DomainParticipant(int(os.environ.get("ROS_DOMAIN_ID", "0")))
    got = play(a, dp) if a.mode == "play" else flood(a, dp)
    with open(a.out, "w") as f:
        json.dump(got, f)


if __name__ == "__main__":
    main()
