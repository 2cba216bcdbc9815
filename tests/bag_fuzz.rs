//! Property tests: truncated, bit-flipped and random bytes into every decoder and both bag
//! readers give errors (or valid values), never panics or huge allocations.

use gs_livo::bag::{
    convert, decode_sensor_message, msgs, BagReader, BagWriter, RawMessage, RosMessage,
};
use proptest::prelude::*;

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let h = msgs::Header {
        stamp: 1_000_000_123,
        frame_id: "frame".into(),
    };
    let cloud = msgs::PointCloud2 {
        header: h.clone(),
        height: 1,
        width: 2,
        fields: ["x", "y", "z", "t"]
            .iter()
            .enumerate()
            .map(|(i, n)| msgs::PointField {
                name: n.to_string(),
                offset: 4 * i as u32,
                datatype: if i == 3 { 6 } else { 7 },
                count: 1,
            })
            .collect(),
        is_bigendian: false,
        point_step: 16,
        row_step: 32,
        data: (0..32).collect(),
        is_dense: true,
    };
    let img = msgs::Image {
        header: h.clone(),
        height: 2,
        width: 2,
        encoding: "bgr8".into(),
        is_bigendian: 0,
        step: 6,
        data: vec![1; 12],
    };
    let livox = msgs::LivoxCustomMsg {
        header: h.clone(),
        timebase: 5,
        point_num: 1,
        lidar_id: 0,
        rsvd: [0; 3],
        points: vec![msgs::LivoxPoint {
            offset_time: 1,
            x: 1.0,
            y: 2.0,
            z: 3.0,
            reflectivity: 1,
            tag: 0,
            line: 0,
        }],
    };
    let ps = msgs::PoseStamped {
        header: h.clone(),
        pose: msgs::Pose::default(),
    };
    vec![
        (msgs::PointCloud2::TYPE_NAME, cloud.encode_cdr()),
        (
            msgs::Imu::TYPE_NAME,
            msgs::Imu {
                header: h.clone(),
                ..Default::default()
            }
            .encode_cdr(),
        ),
        (msgs::Image::TYPE_NAME, img.encode_cdr()),
        (
            msgs::CompressedImage::TYPE_NAME,
            msgs::CompressedImage {
                header: h.clone(),
                format: "png".into(),
                data: vec![0x89, b'P', b'N', b'G'],
            }
            .encode_cdr(),
        ),
        ("livox_ros_driver/msg/CustomMsg", livox.encode_cdr()),
        (msgs::PoseStamped::TYPE_NAME, ps.encode_cdr()),
        (
            msgs::Path::TYPE_NAME,
            msgs::Path {
                header: h.clone(),
                poses: vec![ps.clone(), ps],
            }
            .encode_cdr(),
        ),
        (
            msgs::TfMessage::TYPE_NAME,
            msgs::TfMessage {
                transforms: vec![msgs::TransformStamped::default()],
            }
            .encode_cdr(),
        ),
    ]
}

/// Every decoder on the bytes: must return, never panic.
fn decode_all(type_name: &str, data: &[u8]) {
    let raw = RawMessage {
        topic: "/t".into(),
        type_name: type_name.into(),
        log_time: 0,
        data: data.to_vec(),
    };
    let _ = decode_sensor_message(&raw);
    let _ = msgs::PointCloud2::decode_cdr(data).map(|m| convert::pointcloud_from_msg(&m));
    let _ = msgs::Imu::decode_cdr(data);
    let _ = msgs::Image::decode_cdr(data).map(|m| convert::image_from_msg(&m));
    let _ = msgs::CompressedImage::decode_cdr(data).map(|m| convert::image_from_compressed(&m));
    let _ = msgs::Odometry::decode_cdr(data);
    let _ = msgs::PoseStamped::decode_cdr(data);
    let _ = msgs::PoseWithCovarianceStamped::decode_cdr(data);
    let _ = msgs::Path::decode_cdr(data);
    let _ = msgs::TfMessage::decode_cdr(data);
    let _ = msgs::LivoxCustomMsg::decode_cdr(data).map(|m| convert::pointcloud_from_livox(&m));
}

#[test]
fn truncations_of_valid_messages_are_errors() {
    for (ty, bytes) in samples() {
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            decode_all(ty, cut);
            // These messages end in data (not padding): any cut must be an error.
            let err = match ty {
                "sensor_msgs/msg/PointCloud2" => msgs::PointCloud2::decode_cdr(cut).is_err(),
                "sensor_msgs/msg/Imu" => msgs::Imu::decode_cdr(cut).is_err(),
                "nav_msgs/msg/Path" => msgs::Path::decode_cdr(cut).is_err(),
                "tf2_msgs/msg/TFMessage" => msgs::TfMessage::decode_cdr(cut).is_err(),
                "geometry_msgs/msg/PoseStamped" => msgs::PoseStamped::decode_cdr(cut).is_err(),
                _ => true,
            };
            assert!(err, "{ty} cut at {n} of {} decoded", bytes.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn bit_flips_never_panic(which in 0usize..8, flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..8)) {
        let (ty, mut bytes) = samples().swap_remove(which);
        for (pos, bit) in flips {
            let i = pos % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        decode_all(ty, &bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), le in any::<bool>()) {
        let mut b = bytes;
        if b.len() >= 2 { b[0] = 0; b[1] = le as u8; }
        for (ty, _) in samples() {
            decode_all(ty, &b);
        }
    }

    /// Huge length prefixes are rejected before allocating.
    #[test]
    fn huge_lengths_are_errors(len in 1_000_000u32..u32::MAX) {
        let mut b = vec![0u8, 1, 0, 0];
        b.extend(len.to_le_bytes());
        b.extend([0u8; 64]);
        prop_assert!(msgs::TfMessage::decode_cdr(&b).is_err());
        let mut c = vec![0u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c.extend(len.to_le_bytes());
        c.extend([0u8; 64]);
        prop_assert!(msgs::CompressedImage::decode_cdr(&c).is_err());
    }
}

fn small_bag(dir: &std::path::Path) -> Vec<u8> {
    let mut w = BagWriter::create(dir).unwrap();
    for (i, (_, _)) in samples().iter().enumerate() {
        let m = msgs::PoseStamped {
            header: msgs::Header {
                stamp: i as u64,
                frame_id: "f".into(),
            },
            pose: msgs::Pose::default(),
        };
        w.write("/pose", i as u64 * 1000, &m).unwrap();
    }
    w.finish().unwrap();
    let f = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "mcap"))
        .unwrap();
    std::fs::read(f).unwrap()
}

fn read_everything(path: &std::path::Path) {
    if let Ok(bag) = BagReader::open(path) {
        if let Ok(it) = bag.messages(&[]) {
            for m in it.take(10_000) {
                if let Ok(m) = m {
                    decode_all(&m.type_name, &m.data);
                }
            }
        }
    }
}

#[test]
fn corrupted_bags_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = small_bag(&dir.path().join("b"));
    let db3 = std::fs::read(gs_livo::testdata::dir().join("tf_example/tf_example.db3")).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    for (ext, base) in [("mcap", good), ("db3", db3)] {
        let path = dir.path().join(format!("x.{ext}"));
        // Truncations at a spread of lengths.
        for k in 0..24 {
            let n = base.len() * k / 24;
            std::fs::write(&path, &base[..n]).unwrap();
            read_everything(&path);
        }
        let strat = proptest::collection::vec((any::<usize>(), 0u8..8), 1..16);
        runner
            .run(&strat, |flips| {
                let mut b = base.clone();
                for (pos, bit) in flips {
                    let i = pos % b.len();
                    b[i] ^= 1 << bit;
                }
                std::fs::write(&path, &b).unwrap();
                read_everything(&path);
                Ok(())
            })
            .unwrap();
    }
}
