//! PointCloud2 messages laid out byte by byte as the ROS 2 drivers of the rigs in config/
//! publish them, decoded by `bag::convert::pointcloud_from_msg` (which the node and bag replay
//! share): coordinates, intensity and per-point time must come out right for each layout.

use gs_livo::bag::convert::pointcloud_from_msg;
use gs_livo::bag::msgs::{point_field as pf, Header, PointCloud2, PointField};
use gs_livo::sensors::Stamp;

/// A scan stamp of a realistic magnitude (2023-11-14), so absolute-time layouts are exercised
/// with the precision they have in the field.
const STAMP: Stamp = 1_700_000_000_123_456_789;

fn field(name: &str, offset: u32, datatype: u8) -> PointField {
    PointField {
        name: name.into(),
        offset,
        datatype,
        count: 1,
    }
}

/// Writes values at byte offsets of a point record; the rest is filled with 0xAB so a decoder
/// that reads padding shows garbage.
struct Record(Vec<u8>);

impl Record {
    fn new(step: usize) -> Self {
        Self(vec![0xAB; step])
    }
    fn f32(mut self, at: usize, v: f32) -> Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn f64(mut self, at: usize, v: f64) -> Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, at: usize, v: u32) -> Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u16(mut self, at: usize, v: u16) -> Self {
        self.0[at..at + 2].copy_from_slice(&v.to_le_bytes());
        self
    }
    fn u8(mut self, at: usize, v: u8) -> Self {
        self.0[at] = v;
        self
    }
}

fn cloud(
    frame: &str,
    fields: Vec<PointField>,
    step: u32,
    (height, width): (u32, u32),
    records: Vec<Record>,
) -> PointCloud2 {
    assert_eq!(records.len(), (height * width) as usize);
    let data: Vec<u8> = records.into_iter().flat_map(|r| r.0).collect();
    assert_eq!(data.len(), (step * height * width) as usize);
    PointCloud2 {
        header: Header {
            stamp: STAMP,
            frame_id: frame.into(),
        },
        height,
        width,
        fields,
        is_bigendian: false,
        point_step: step,
        row_step: step * width,
        data,
        is_dense: false,
    }
}

/// A point of a fixture: position, intensity and time in seconds after the header stamp.
type Pt = ([f32; 3], f32, f64);

fn points(n: usize) -> Vec<Pt> {
    (0..n)
        .map(|i| {
            let a = i as f32 * 0.7;
            (
                [5.0 * a.cos(), 5.0 * a.sin(), 0.1 * i as f32 - 0.3],
                i as f32 * 3.0,
                i as f64 * 0.1 / n as f64,
            )
        })
        .collect()
}

fn check(msg: &PointCloud2, expect: &[Pt], time_tol: f64) {
    let c = pointcloud_from_msg(msg).expect("decodes");
    assert_eq!(c.stamp, STAMP);
    assert_eq!(c.frame_id, msg.header.frame_id);
    assert_eq!(c.len(), expect.len());
    let t = c.time.as_ref().expect("per-point time");
    for (i, (p, intensity, time)) in expect.iter().enumerate() {
        assert_eq!([c.x[i], c.y[i], c.z[i]], *p, "point {i}");
        assert_eq!(c.intensity[i], *intensity, "intensity {i}");
        assert!(
            (t[i] as f64 - time).abs() < time_tol,
            "point {i}: time {} != {time}",
            t[i]
        );
    }
}

/// livox_ros_driver2, `xfer_format: 0`: packed LivoxPointXyzrtlt, point_step 26, `timestamp`
/// float64 in nanoseconds since the epoch; header stamp = first point.
#[test]
fn livox_ros_driver2_pointcloud2() {
    let pts = points(12);
    let records = pts
        .iter()
        .enumerate()
        .map(|(i, (p, it, t))| {
            Record::new(26)
                .f32(0, p[0])
                .f32(4, p[1])
                .f32(8, p[2])
                .f32(12, *it)
                .u8(16, 0x10) // tag
                .u8(17, (i % 6) as u8) // line
                .f64(18, STAMP as f64 + t * 1e9)
        })
        .collect();
    let fields = vec![
        field("x", 0, pf::FLOAT32),
        field("y", 4, pf::FLOAT32),
        field("z", 8, pf::FLOAT32),
        field("intensity", 12, pf::FLOAT32),
        field("tag", 16, pf::UINT8),
        field("line", 17, pf::UINT8),
        field("timestamp", 18, pf::FLOAT64),
    ];
    let msg = cloud("livox_frame", fields, 26, (1, 12), records);
    // f64 nanoseconds since the epoch resolve to 256 ns.
    check(&msg, &pts, 1e-6);
}

/// ouster-ros, `point_type: original`: 16-byte aligned PCL point, point_step 48, organised
/// (rows = beams), `t` uint32 nanoseconds after the header stamp (scan start).
#[test]
fn ouster_ros_original_point() {
    let (rows, cols) = (4u32, 5u32);
    let pts = points((rows * cols) as usize);
    let records = pts
        .iter()
        .enumerate()
        .map(|(i, (p, it, t))| {
            Record::new(48)
                .f32(0, p[0])
                .f32(4, p[1])
                .f32(8, p[2])
                .f32(16, *it)
                .u32(20, (t * 1e9).round() as u32)
                .u16(24, 1000 + i as u16) // reflectivity
                .u16(26, (i as u32 / cols) as u16) // ring
                .u16(28, 7) // ambient
                .u32(32, 5000) // range, mm
        })
        .collect();
    let fields = vec![
        field("x", 0, pf::FLOAT32),
        field("y", 4, pf::FLOAT32),
        field("z", 8, pf::FLOAT32),
        field("intensity", 16, pf::FLOAT32),
        field("t", 20, pf::UINT32),
        field("reflectivity", 24, pf::UINT16),
        field("ring", 26, pf::UINT16),
        field("ambient", 28, pf::UINT16),
        field("range", 32, pf::UINT32),
    ];
    let msg = cloud("os_lidar", fields, 48, (rows, cols), records);
    check(&msg, &pts, 1e-8);
}

/// velodyne_pointcloud (ROS 2) PointXYZIRT: packed, point_step 22, `time` float32 seconds
/// relative to the header stamp; organised clouds carry NaN for missing returns.
#[test]
fn velodyne_pointcloud_xyzirt() {
    let mut pts = points(10);
    let mut records: Vec<Record> = pts
        .iter()
        .enumerate()
        .map(|(i, (p, it, t))| {
            Record::new(22)
                .f32(0, p[0])
                .f32(4, p[1])
                .f32(8, p[2])
                .f32(12, *it)
                .u16(16, (i % 16) as u16)
                .f32(18, *t as f32)
        })
        .collect();
    // Two missing returns, which the decoder drops and counts.
    records[3] = Record::new(22)
        .f32(0, f32::NAN)
        .f32(4, f32::NAN)
        .f32(8, f32::NAN)
        .f32(12, 0.0)
        .u16(16, 3)
        .f32(18, 0.03);
    records[7] = Record::new(22)
        .f32(0, 1.0)
        .f32(4, f32::INFINITY)
        .f32(8, 0.0)
        .f32(12, 0.0)
        .u16(16, 7)
        .f32(18, 0.07);
    let fields = vec![
        field("x", 0, pf::FLOAT32),
        field("y", 4, pf::FLOAT32),
        field("z", 8, pf::FLOAT32),
        field("intensity", 12, pf::FLOAT32),
        field("ring", 16, pf::UINT16),
        field("time", 18, pf::FLOAT32),
    ];
    let msg = cloud("velodyne", fields, 22, (1, 10), records);
    let decoded = pointcloud_from_msg(&msg).unwrap();
    assert_eq!(decoded.skipped_non_finite, 2);
    pts.remove(7);
    pts.remove(3);
    check(&msg, &pts, 1e-7);
}

/// hesai_ros_driver (HesaiLidar_ROS_2.0): packed, point_step 26, `timestamp` float64 seconds
/// since the epoch.
#[test]
fn hesai_ros_driver_xyzirt() {
    let pts = points(32);
    let stamp_s = STAMP as f64 * 1e-9;
    let records = pts
        .iter()
        .enumerate()
        .map(|(i, (p, it, t))| {
            Record::new(26)
                .f32(0, p[0])
                .f32(4, p[1])
                .f32(8, p[2])
                .f32(12, *it)
                .u16(16, (i % 32) as u16)
                .f64(18, stamp_s + t)
        })
        .collect();
    let fields = vec![
        field("x", 0, pf::FLOAT32),
        field("y", 4, pf::FLOAT32),
        field("z", 8, pf::FLOAT32),
        field("intensity", 12, pf::FLOAT32),
        field("ring", 16, pf::UINT16),
        field("timestamp", 18, pf::FLOAT64),
    ];
    let msg = cloud("hesai_lidar", fields, 26, (1, 32), records);
    // f64 seconds since the epoch resolve to about 0.24 us.
    check(&msg, &pts, 1e-6);
}

/// The point steps above are those of the drivers' structs; a layout whose fields overrun the
/// point step is an error, not a silent misread.
#[test]
fn truncated_layout_is_an_error() {
    let records = vec![Record::new(22).f32(0, 1.0).f32(4, 2.0).f32(8, 3.0)];
    let fields = vec![
        field("x", 0, pf::FLOAT32),
        field("y", 4, pf::FLOAT32),
        field("z", 8, pf::FLOAT32),
        field("time", 20, pf::FLOAT32),
    ];
    let msg = cloud("velodyne", fields, 22, (1, 1), records);
    assert!(pointcloud_from_msg(&msg).is_err());
}
