//! PointCloud2 layouts, time fields, image encodings, Livox, and big-endian CDR.
#![allow(clippy::type_complexity, clippy::needless_range_loop)]

use gs_livo::bag::{convert, msgs, DecodeError, RosMessage};
use msgs::point_field as pf;
use msgs::*;

const STAMP: u64 = 1_700_000_000_500_000_000;

/// One field to write: name, datatype, value per point index.
type Gen = (&'static str, u8, fn(usize) -> f64);

fn put(buf: &mut [u8], dt: u8, v: f64, big: bool) {
    let b: Vec<u8> = match dt {
        pf::INT8 => vec![v as i8 as u8],
        pf::UINT8 => vec![v as u8],
        pf::INT16 => (v as i16).to_le_bytes().to_vec(),
        pf::UINT16 => (v as u16).to_le_bytes().to_vec(),
        pf::INT32 => (v as i32).to_le_bytes().to_vec(),
        pf::UINT32 => (v as u32).to_le_bytes().to_vec(),
        pf::FLOAT32 => (v as f32).to_le_bytes().to_vec(),
        _ => v.to_le_bytes().to_vec(),
    };
    let mut b = b;
    if big {
        b.reverse();
    }
    buf[..b.len()].copy_from_slice(&b);
}

fn size(dt: u8) -> u32 {
    match dt {
        pf::INT8 | pf::UINT8 => 1,
        pf::INT16 | pf::UINT16 => 2,
        pf::FLOAT64 => 8,
        _ => 4,
    }
}

/// Builds a cloud with the fields in the given order, `pad` bytes after each, 2 rows.
fn cloud(fields: &[Gen], n: usize, pad: u32, big: bool) -> PointCloud2 {
    let mut off = 0;
    let mut pfs = Vec::new();
    for (name, dt, _) in fields {
        pfs.push(PointField {
            name: name.to_string(),
            offset: off,
            datatype: *dt,
            count: 1,
        });
        off += size(*dt) + pad;
    }
    let step = off as usize;
    let width = n / 2;
    let row_step = width * step + 3; // padded rows
    let mut data = vec![0u8; row_step * 2];
    for i in 0..n {
        let (r, c) = (i / width, i % width);
        let base = r * row_step + c * step;
        for (k, (_, dt, g)) in fields.iter().enumerate() {
            let o = base + pfs[k].offset as usize;
            put(&mut data[o..], *dt, g(i), big);
        }
    }
    PointCloud2 {
        header: Header {
            stamp: STAMP,
            frame_id: "l".into(),
        },
        height: 2,
        width: width as u32,
        fields: pfs,
        is_bigendian: big,
        point_step: step as u32,
        row_step: row_step as u32,
        data,
        is_dense: false,
    }
}

fn xv(i: usize) -> f64 {
    i as f64 * 0.5 - 3.0
}
fn yv(i: usize) -> f64 {
    10.0 - i as f64
}
fn zv(i: usize) -> f64 {
    (i % 7) as f64
}

#[test]
fn pointcloud_any_layout_order_types_and_endianness() {
    let orders: [&[Gen]; 4] = [
        &[
            ("x", pf::FLOAT32, xv),
            ("y", pf::FLOAT32, yv),
            ("z", pf::FLOAT32, zv),
            ("intensity", pf::FLOAT32, zv),
        ],
        &[
            ("intensity", pf::UINT16, zv),
            ("z", pf::FLOAT64, zv),
            ("y", pf::FLOAT64, yv),
            ("x", pf::FLOAT64, xv),
        ],
        &[
            ("reflectivity", pf::UINT8, zv),
            ("x", pf::INT32, |i| i as f64 - 3.0),
            ("y", pf::INT16, yv),
            ("z", pf::INT8, zv),
        ],
        &[
            ("z", pf::UINT32, zv),
            ("x", pf::FLOAT32, xv),
            ("y", pf::FLOAT32, yv),
        ],
    ];
    for (k, fields) in orders.iter().enumerate() {
        for big in [false, true] {
            for pad in [0, 3] {
                let msg = cloud(fields, 20, pad, big);
                let c = convert::pointcloud_from_msg(&msg).unwrap();
                assert_eq!(c.len(), 20, "case {k}");
                let xf = fields.iter().find(|f| f.0 == "x").unwrap().2;
                for i in 0..20 {
                    assert_eq!(c.x[i] as f64, xf(i), "case {k} big {big} pad {pad} i {i}");
                    assert_eq!(c.y[i] as f64, yv(i));
                    assert_eq!(c.z[i] as f64, zv(i));
                    let has_i = fields
                        .iter()
                        .any(|f| f.0 == "intensity" || f.0 == "reflectivity");
                    assert_eq!(c.intensity[i] as f64, if has_i { zv(i) } else { 0.0 });
                }
                assert!(c.time.is_none());
                // And through CDR (the message encoder writes LE CDR; the payload keeps its order).
                let back = PointCloud2::decode_cdr(&msg.encode_cdr()).unwrap();
                assert_eq!(back, msg);
            }
        }
    }
}

#[test]
fn pointcloud_time_fields() {
    let xyz: [Gen; 3] = [
        ("x", pf::FLOAT32, xv),
        ("y", pf::FLOAT32, yv),
        ("z", pf::FLOAT32, zv),
    ];
    let cases: [(Gen, fn(usize) -> f64); 7] = [
        (("t", pf::UINT32, |i| i as f64 * 1e6), |i| i as f64 * 1e-3),
        (("offset_time", pf::UINT32, |i| i as f64 * 2e6), |i| {
            i as f64 * 2e-3
        }),
        (("time", pf::FLOAT32, |i| i as f64 * 1e-3 - 0.01), |i| {
            i as f64 * 1e-3 - 0.01
        }),
        // Relative nanoseconds as float, starting at 0 (the first point alone looks like seconds).
        (("time", pf::FLOAT32, |i| i as f64 * 1e7), |i| {
            i as f64 * 1e-2
        }),
        // Relative microseconds as float64.
        (("timestamp", pf::FLOAT64, |i| i as f64 * 1e4), |i| {
            i as f64 * 1e-2
        }),
        // Absolute seconds (Hesai): made relative to the header stamp.
        (
            ("timestamp", pf::FLOAT64, |i| {
                1_700_000_000.5 + i as f64 * 1e-3
            }),
            |i| i as f64 * 1e-3,
        ),
        // Absolute nanoseconds as f64 (Livox PointCloud2).
        (
            ("timestamp", pf::FLOAT64, |i| {
                1.7000000005e18 + i as f64 * 1e6
            }),
            |i| i as f64 * 1e-3,
        ),
    ];
    for (tf, want) in cases {
        let mut fields = xyz.to_vec();
        fields.push(tf);
        let c = convert::pointcloud_from_msg(&cloud(&fields, 10, 0, false)).unwrap();
        let t = c.time.as_ref().expect("time");
        for i in 0..10 {
            assert!(
                (t[i] as f64 - want(i)).abs() < 2e-6,
                "{}: {} vs {}",
                tf.0,
                t[i],
                want(i)
            );
        }
    }
}

#[test]
fn pointcloud_non_finite_skipped_and_missing_xyz_is_error() {
    let fields: [Gen; 3] = [
        ("x", pf::FLOAT32, |i| {
            if i % 3 == 0 {
                f64::NAN
            } else {
                i as f64
            }
        }),
        (
            "y",
            pf::FLOAT32,
            |i| if i == 4 { f64::INFINITY } else { 1.0 },
        ),
        ("z", pf::FLOAT32, zv),
    ];
    let c = convert::pointcloud_from_msg(&cloud(&fields, 12, 0, false)).unwrap();
    assert_eq!(c.skipped_non_finite, 5); // 0,3,6,9 NaN x; 4 inf y
    assert_eq!(c.len(), 7);
    assert!(c.x.iter().chain(&c.y).all(|v| v.is_finite()));
    let no_z: [Gen; 2] = [("x", pf::FLOAT32, xv), ("y", pf::FLOAT32, yv)];
    let err = convert::pointcloud_from_msg(&cloud(&no_z, 4, 0, false)).unwrap_err();
    assert!(
        matches!(&err, DecodeError::PointCloud(m) if m.contains("\"z\"")),
        "{err}"
    );
    // Data shorter than the layout.
    let mut m = cloud(&fields, 12, 0, false);
    m.data.truncate(m.data.len() - 10);
    assert!(convert::pointcloud_from_msg(&m).is_err());
    // Field past point_step.
    let mut m = cloud(&fields, 12, 0, false);
    m.fields[2].offset = 10;
    assert!(convert::pointcloud_from_msg(&m).is_err());
}

fn image(enc: &str, w: u32, h: u32, bpp: u32, data: Vec<u8>) -> msgs::Image {
    msgs::Image {
        header: Header::default(),
        height: h,
        width: w,
        encoding: enc.into(),
        is_bigendian: 0,
        step: w * bpp + 2,
        data,
    }
}

#[test]
fn image_encodings() {
    let (w, h) = (4u32, 3u32);
    let rgb: Vec<[u8; 3]> = (0..w * h)
        .map(|i| [i as u8 * 10, 100 + i as u8, 255 - i as u8])
        .collect();
    let pack = |bpp: u32, f: &dyn Fn([u8; 3]) -> Vec<u8>| {
        let mut d = Vec::new();
        for y in 0..h {
            for x in 0..w {
                d.extend(f(rgb[(y * w + x) as usize]));
            }
            d.extend([0, 0]);
        }
        let _ = bpp;
        d
    };
    let want: Vec<u8> = rgb.iter().flatten().copied().collect();
    let cases: [(&str, u32, &dyn Fn([u8; 3]) -> Vec<u8>); 4] = [
        ("rgb8", 3, &|p| p.to_vec()),
        ("bgr8", 3, &|p| vec![p[2], p[1], p[0]]),
        ("rgba8", 4, &|p| vec![p[0], p[1], p[2], 7]),
        ("bgra8", 4, &|p| vec![p[2], p[1], p[0], 7]),
    ];
    for (enc, bpp, f) in cases {
        let img = convert::image_from_msg(&image(enc, w, h, bpp, pack(bpp, f))).unwrap();
        assert_eq!(img.rgb, want, "{enc}");
    }
    let mono = convert::image_from_msg(&image("mono8", w, h, 1, pack(1, &|p| vec![p[0]]))).unwrap();
    assert_eq!(mono.pixel(2, 1), [60, 60, 60]);
    let m16 = convert::image_from_msg(&image(
        "mono16",
        w,
        h,
        2,
        pack(2, &|p| (p[0] as u16 * 256 + 17).to_le_bytes().to_vec()),
    ))
    .unwrap();
    assert_eq!(m16.pixel(3, 2), [110, 110, 110]);
    // Bayer of a uniform colour demosaics to that colour everywhere.
    for (enc, pat) in [
        ("bayer_rggb8", [0, 1, 1, 2]),
        ("bayer_bggr8", [2, 1, 1, 0]),
        ("bayer_grbg8", [1, 0, 2, 1]),
        ("bayer_gbrg8", [1, 2, 0, 1]),
    ] {
        let col = [200u8, 120, 40];
        let mut d = Vec::new();
        for y in 0..h {
            for x in 0..w {
                d.push(col[pat[((y % 2) * 2 + x % 2) as usize]]);
            }
            d.extend([0, 0]);
        }
        let img = convert::image_from_msg(&image(enc, w, h, 1, d)).unwrap();
        assert!(img.rgb.chunks(3).all(|p| p == col), "{enc}");
    }
    assert!(matches!(
        convert::image_from_msg(&image("yuv422", w, h, 2, vec![0; 100])),
        Err(DecodeError::UnsupportedEncoding(_))
    ));
    assert!(convert::image_from_msg(&image("rgb8", w, h, 3, vec![0; 10])).is_err());
}

#[test]
fn compressed_png_and_jpeg_decode() {
    let mut src = gs_livo::sensors::Image::new(5, 8, 6);
    for (i, v) in src.rgb.iter_mut().enumerate() {
        *v = (i * 37 % 251) as u8;
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(8, 6, src.rgb.clone())
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let msg = CompressedImage {
        header: Header {
            stamp: 5,
            frame_id: "c".into(),
        },
        format: "png".into(),
        data: png,
    };
    let img = convert::image_from_compressed(&msg).unwrap();
    assert_eq!((img.width, img.height, img.stamp), (8, 6, 5));
    assert_eq!(img.rgb, src.rgb);
    // JPEG of a flat colour decodes close to it.
    let flat = [90u8, 160, 30].repeat(16 * 16);
    let mut jpg = Vec::new();
    image::RgbImage::from_raw(16, 16, flat.clone())
        .unwrap()
        .write_to(
            &mut std::io::Cursor::new(&mut jpg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let img = convert::image_from_compressed(&CompressedImage {
        format: "rgb8; jpeg compressed bgr8".into(),
        data: jpg,
        ..msg.clone()
    })
    .unwrap();
    assert!(img.rgb.iter().zip(&flat).all(|(a, b)| a.abs_diff(*b) <= 4));
    assert!(convert::image_from_compressed(&CompressedImage {
        data: vec![1, 2, 3],
        ..msg
    })
    .is_err());
    // image_to_msg -> image_from_msg is the identity.
    assert_eq!(
        convert::image_from_msg(&convert::image_to_msg(&src))
            .unwrap()
            .rgb,
        src.rgb
    );
}

#[test]
fn livox_points_relative_times() {
    let msg = LivoxCustomMsg {
        header: Header {
            stamp: STAMP,
            frame_id: "livox".into(),
        },
        timebase: STAMP + 1_000_000,
        point_num: 3,
        lidar_id: 0,
        rsvd: [0; 3],
        points: vec![
            LivoxPoint {
                offset_time: 0,
                x: 1.0,
                y: 2.0,
                z: 3.0,
                reflectivity: 9,
                tag: 0,
                line: 0,
            },
            LivoxPoint {
                offset_time: 5_000_000,
                x: f32::NAN,
                y: 0.0,
                z: 0.0,
                reflectivity: 0,
                tag: 0,
                line: 0,
            },
            LivoxPoint {
                offset_time: 50_000_000,
                x: 4.0,
                y: 5.0,
                z: 6.0,
                reflectivity: 90,
                tag: 0,
                line: 1,
            },
        ],
    };
    let c = convert::pointcloud_from_livox(&msg);
    assert_eq!(c.len(), 2);
    assert_eq!(c.skipped_non_finite, 1);
    let t = c.time.unwrap();
    assert!((t[0] - 0.001).abs() < 1e-7 && (t[1] - 0.051).abs() < 1e-7);
    assert_eq!(c.intensity, vec![9.0, 90.0]);
}

/// Big-endian CDR, written by hand: header (time, frame) + Pose.
#[test]
fn big_endian_cdr_decodes() {
    let mut b = vec![0u8, 0, 0, 0];
    b.extend(12i32.to_be_bytes());
    b.extend(345u32.to_be_bytes());
    b.extend(4u32.to_be_bytes());
    b.extend(b"map\0");
    // 16 bytes of payload so far: aligned for f64.
    for v in [1.0f64, 2.0, 3.0, 0.0, 0.0, 0.6, 0.8] {
        b.extend(v.to_be_bytes());
    }
    let p = msgs::PoseStamped::decode_cdr(&b).unwrap();
    assert_eq!(p.header.stamp, 12_000_000_345);
    assert_eq!(p.header.frame_id, "map");
    assert_eq!(p.pose.position, [1.0, 2.0, 3.0]);
    assert_eq!(p.pose.orientation, [0.0, 0.0, 0.6, 0.8]);
    // The same message little-endian from our encoder.
    assert_eq!(msgs::PoseStamped::decode_cdr(&p.encode_cdr()).unwrap(), p);
}
