//! Conversion from ROS wire messages to the internal sensor types (and back for images).

use super::error::DecodeError;
use super::msgs::{self, point_field as pf};
use crate::sensors::{stamp_to_secs, ImuSample, PointCloud};
use nalgebra::Vector3;

/// Byte size of a `PointField` datatype.
fn datatype_size(dt: u8) -> Option<usize> {
    match dt {
        pf::INT8 | pf::UINT8 => Some(1),
        pf::INT16 | pf::UINT16 => Some(2),
        pf::INT32 | pf::UINT32 | pf::FLOAT32 => Some(4),
        pf::FLOAT64 => Some(8),
        _ => None,
    }
}

/// Reads one scalar field of a point record as f64, in either byte order.
#[derive(Clone, Copy)]
struct FieldReader {
    offset: usize,
    datatype: u8,
    big: bool,
}

impl FieldReader {
    #[inline(always)]
    fn bytes<const N: usize>(&self, p: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&p[self.offset..self.offset + N]);
        if self.big {
            a.reverse();
        }
        a
    }

    #[inline(always)]
    fn read(&self, p: &[u8]) -> f64 {
        match self.datatype {
            pf::INT8 => p[self.offset] as i8 as f64,
            pf::UINT8 => p[self.offset] as f64,
            pf::INT16 => i16::from_le_bytes(self.bytes(p)) as f64,
            pf::UINT16 => u16::from_le_bytes(self.bytes(p)) as f64,
            pf::INT32 => i32::from_le_bytes(self.bytes(p)) as f64,
            pf::UINT32 => u32::from_le_bytes(self.bytes(p)) as f64,
            pf::FLOAT32 => f32::from_le_bytes(self.bytes(p)) as f64,
            _ => f64::from_le_bytes(self.bytes(p)),
        }
    }

    fn is_le_f32(&self) -> bool {
        self.datatype == pf::FLOAT32 && !self.big
    }
}

/// How a time field's raw value maps to seconds relative to the header stamp.
#[derive(Clone, Copy)]
struct TimeMap {
    /// Multiply the raw value by this to get seconds.
    scale: f64,
}

fn find_field<'a>(msg: &'a msgs::PointCloud2, names: &[&str]) -> Option<&'a msgs::PointField> {
    names
        .iter()
        .find_map(|n| msg.fields.iter().find(|f| f.name == *n))
}

fn field_reader(msg: &msgs::PointCloud2, f: &msgs::PointField) -> Result<FieldReader, DecodeError> {
    let size = datatype_size(f.datatype).ok_or_else(|| {
        DecodeError::PointCloud(format!(
            "field {:?} has unknown datatype {}",
            f.name, f.datatype
        ))
    })?;
    if f.offset as usize + size > msg.point_step as usize {
        return Err(DecodeError::PointCloud(format!(
            "field {:?} (offset {}, {} bytes) does not fit in point_step {}",
            f.name, f.offset, size, msg.point_step
        )));
    }
    Ok(FieldReader {
        offset: f.offset as usize,
        datatype: f.datatype,
        big: msg.is_bigendian,
    })
}

/// Decodes a `sensor_msgs/PointCloud2` into the internal structure-of-arrays cloud.
///
/// Needs x, y, z; takes `intensity` (or `reflectivity`) and a per-point time (`t`/`offset_time`
/// in ns, `time`/`timestamp` in s, absolute stamps made relative to the header). Points with a
/// non-finite coordinate are dropped and counted in `skipped_non_finite`.
pub fn pointcloud_from_msg(msg: &msgs::PointCloud2) -> Result<PointCloud, DecodeError> {
    let need = |n: &str| {
        find_field(msg, &[n]).ok_or_else(|| {
            DecodeError::PointCloud(format!("no {n:?} field (cloud has {})", field_names(msg)))
        })
    };
    let (fx, fy, fz) = (need("x")?, need("y")?, need("z")?);
    let step = msg.point_step as usize;
    let (w, h) = (msg.width as usize, msg.height as usize);
    if step == 0 {
        if w * h == 0 {
            return Ok(PointCloud::with_capacity(
                msg.header.stamp,
                &msg.header.frame_id,
                0,
                false,
            ));
        }
        return Err(DecodeError::PointCloud("point_step is 0".into()));
    }
    let row_step = if msg.row_step == 0 && h <= 1 {
        w * step
    } else {
        msg.row_step as usize
    };
    let row_bytes = w
        .checked_mul(step)
        .filter(|&b| b <= row_step)
        .ok_or_else(|| {
            DecodeError::PointCloud(format!(
                "row_step {row_step} < width {w} * point_step {step}"
            ))
        })?;
    let needed = if h == 0 {
        0
    } else {
        (h - 1).saturating_mul(row_step).saturating_add(row_bytes)
    };
    if msg.data.len() < needed {
        return Err(DecodeError::PointCloud(format!(
            "data has {} bytes, layout needs {needed}",
            msg.data.len()
        )));
    }
    let (rx, ry, rz) = (
        field_reader(msg, fx)?,
        field_reader(msg, fy)?,
        field_reader(msg, fz)?,
    );
    let ri = find_field(msg, &["intensity", "reflectivity", "i"])
        .map(|f| field_reader(msg, f))
        .transpose()?;
    let tf = find_field(msg, &["t", "offset_time", "time", "timestamp"]);
    let rt = tf.map(|f| field_reader(msg, f)).transpose()?;
    let stamp_s = stamp_to_secs(msg.header.stamp);

    let fast = rx.is_le_f32() && ry.is_le_f32() && rz.is_le_f32();
    // The fast path sizes its own columns.
    let mut cloud = PointCloud::with_capacity(
        msg.header.stamp,
        &msg.header.frame_id,
        if fast { 0 } else { w * h },
        rt.is_some(),
    );
    let time_map = match (tf, rt) {
        (Some(f), Some(r)) => Some(time_map(
            f,
            r,
            &msg.data[..needed],
            (step, row_step, w),
            stamp_s,
        )),
        _ => None,
    };
    if fast {
        let rows = (0..h).map(|row| &msg.data[row * row_step..row * row_step + row_bytes]);
        decode_le_f32(
            rows,
            w * h,
            step,
            [rx.offset, ry.offset, rz.offset],
            ri,
            rt.zip(time_map),
            &mut cloud,
        );
        return Ok(cloud);
    }
    for row in 0..h {
        let rd = &msg.data[row * row_step..row * row_step + row_bytes];
        for p in rd.chunks_exact(step) {
            let xyz = [rx.read(p) as f32, ry.read(p) as f32, rz.read(p) as f32];
            push_point(&mut cloud, p, xyz, ri, rt, time_map, stamp_s);
        }
    }
    Ok(cloud)
}

/// The common layout (x, y, z little-endian f32; any intensity and time field), decoded into
/// pre-sized columns: every point is written, and the write index advances only past finite
/// ones, so the loop has no per-point allocation check and no branch on finiteness. `cloud` is
/// fresh and empty; `cap` is the number of points in `rows`.
#[allow(clippy::too_many_arguments)]
fn decode_le_f32<'a>(
    rows: impl Iterator<Item = &'a [u8]>,
    cap: usize,
    step: usize,
    off: [usize; 3],
    ri: Option<FieldReader>,
    time: Option<(FieldReader, (TimeMap, f64))>,
    cloud: &mut PointCloud,
) {
    debug_assert!(cloud.is_empty(), "decodes into a fresh cloud");
    let f = |p: &[u8], o: usize| f32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]]);
    let mut x = vec![0f32; cap];
    let mut y = vec![0f32; cap];
    let mut z = vec![0f32; cap];
    let mut inten = vec![0f32; cap];
    let mut t = vec![0f32; if time.is_some() { cap } else { 0 }];
    let mut k = 0usize;
    let mut total = 0usize;
    for rd in rows {
        for p in rd.chunks_exact(step) {
            total += 1;
            if k >= cap {
                break;
            }
            let (px, py, pz) = (f(p, off[0]), f(p, off[1]), f(p, off[2]));
            x[k] = px;
            y[k] = py;
            z[k] = pz;
            if let Some(r) = ri {
                inten[k] = r.read(p) as f32;
            }
            if let Some((r, (m, sub))) = time {
                t[k] = (r.read(p) * m.scale - sub) as f32;
            }
            k += (px.is_finite() & py.is_finite() & pz.is_finite()) as usize;
        }
    }
    cloud.skipped_non_finite += total - k;
    for v in [&mut x, &mut y, &mut z, &mut inten, &mut t] {
        v.truncate(k);
    }
    cloud.x = x;
    cloud.y = y;
    cloud.z = z;
    cloud.intensity = inten;
    if cloud.time.is_some() {
        cloud.time = Some(t);
    }
}

#[inline(always)]
fn push_point(
    cloud: &mut PointCloud,
    p: &[u8],
    xyz: [f32; 3],
    ri: Option<FieldReader>,
    rt: Option<FieldReader>,
    tm: Option<(TimeMap, f64)>,
    _stamp_s: f64,
) {
    if !(xyz[0].is_finite() && xyz[1].is_finite() && xyz[2].is_finite()) {
        cloud.skipped_non_finite += 1;
        return;
    }
    let i = ri.map_or(0.0, |r| r.read(p) as f32);
    let t = match (rt, tm) {
        (Some(r), Some((m, sub))) => (r.read(p) * m.scale - sub) as f32,
        _ => 0.0,
    };
    cloud.push(xyz, i, t);
}

/// How a per-point time field maps to seconds relative to the header stamp.
///
/// Integer fields are nanoseconds (Ouster `t`, Livox `offset_time`, Velodyne/Hesai drivers that
/// use integers). Float fields carry no unit, so the unit is inferred from the values of the whole
/// scan (sampled), not from one point: absolute stamps are told apart by magnitude (seconds since
/// 1970 are > 1e6 and spread little, nanoseconds > 1e12), and relative times by their spread across the scan (one
/// sweep lasts 1 ms to 1 s: a spread above 1e7 is nanoseconds, above 2 microseconds, else seconds).
fn time_map(
    f: &msgs::PointField,
    r: FieldReader,
    data: &[u8],
    (step, row_step, width): (usize, usize, usize),
    stamp_s: f64,
) -> (TimeMap, f64) {
    let is_float = matches!(f.datatype, pf::FLOAT32 | pf::FLOAT64);
    let width = width.max(1);
    let rows = data.len().div_ceil(row_step.max(1));
    let n = rows * width;
    let stride = (n / 256).max(1);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let sample = (0..n).step_by(stride).chain(n.checked_sub(1));
    for i in sample {
        let at = (i / width) * row_step + (i % width) * step;
        let Some(p) = data.get(at..at + step) else {
            continue;
        };
        let v = r.read(p);
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return (TimeMap { scale: 1e-9 }, 0.0);
    }
    let magnitude = lo.abs().max(hi.abs());
    let scale = if !is_float || f.name == "t" || f.name == "offset_time" || magnitude > 1e12 {
        1e-9
    } else if lo > 1e6 && hi - lo < 1e3 {
        1.0
    } else if hi - lo > 1e7 {
        1e-9
    } else if hi - lo > 2.0 {
        1e-6
    } else {
        1.0
    };
    // Relative scan times never exceed hours; a value past ~11 days is an absolute stamp.
    let sub = if lo * scale > 1e6 { stamp_s } else { 0.0 };
    if scale != 1e-9 || is_float {
        tracing::debug!(field = %f.name, scale, absolute = sub != 0.0, "per-point time unit");
    }
    (TimeMap { scale }, sub)
}

fn field_names(msg: &msgs::PointCloud2) -> String {
    let v: Vec<&str> = msg.fields.iter().map(|f| f.name.as_str()).collect();
    format!("[{}]", v.join(", "))
}

/// Converts a Livox CustomMsg; point times are relative to the header stamp.
pub fn pointcloud_from_livox(msg: &msgs::LivoxCustomMsg) -> PointCloud {
    let stamp = msg.header.stamp;
    let base = (msg.timebase as i128 - stamp as i128) as f64 * 1e-9;
    let mut c = PointCloud::with_capacity(stamp, &msg.header.frame_id, msg.points.len(), true);
    for p in &msg.points {
        if !(p.x.is_finite() && p.y.is_finite() && p.z.is_finite()) {
            c.skipped_non_finite += 1;
            continue;
        }
        let t = base + p.offset_time as f64 * 1e-9;
        c.push([p.x, p.y, p.z], p.reflectivity as f32, t as f32);
    }
    c
}

/// Converts a `sensor_msgs/Imu` (angular velocity and linear acceleration).
pub fn imu_from_msg(msg: &msgs::Imu) -> ImuSample {
    let v = |a: [f64; 3]| Vector3::new(a[0], a[1], a[2]);
    ImuSample {
        stamp: msg.header.stamp,
        gyro: v(msg.angular_velocity),
        accel: v(msg.linear_acceleration),
    }
}

pub use super::image_conv::{image_from_compressed, image_from_msg, image_to_msg};
