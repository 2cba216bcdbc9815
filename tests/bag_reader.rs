//! Reader behaviour on bags we write: multi-file time order, topic filters, bare files, errors.

use gs_livo::bag::{decode_as, msgs, BagError, BagReader, BagWriter, WriterOptions};

fn pose(stamp: u64) -> msgs::PoseStamped {
    msgs::PoseStamped {
        header: msgs::Header {
            stamp,
            frame_id: "map".into(),
        },
        pose: msgs::Pose {
            position: [stamp as f64, 0.0, 0.0],
            orientation: [0.0, 0.0, 0.0, 1.0],
        },
    }
}

fn write(dir: &std::path::Path, times: &[u64], compression: Option<mcap::Compression>) {
    let mut w = BagWriter::create_with(
        dir,
        WriterOptions {
            compression,
            chunk_size: 256,
            ..Default::default()
        },
    )
    .unwrap();
    for &t in times {
        let topic = if t % 2 == 0 { "/even" } else { "/odd" };
        w.write(topic, t, &pose(t)).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn multi_file_folder_merges_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write(
        &a,
        &(0..100).map(|i| i * 3).collect::<Vec<_>>(),
        Some(mcap::Compression::Zstd),
    );
    write(
        &b,
        &(0..100).map(|i| i * 3 + 1).collect::<Vec<_>>(),
        Some(mcap::Compression::Lz4),
    );
    let merged = tmp.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    std::fs::copy(a.join("a_0.mcap"), merged.join("m_0.mcap")).unwrap();
    std::fs::copy(b.join("b_0.mcap"), merged.join("m_1.mcap")).unwrap();
    let bag = BagReader::open(&merged).unwrap();
    let counts: Vec<u64> = bag.topics().iter().map(|t| t.count).collect();
    assert_eq!(counts, vec![100, 100]);
    let all: Vec<_> = bag
        .messages(&[])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 200);
    let times: Vec<u64> = all.iter().map(|m| m.log_time).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    for m in &all {
        let p: msgs::PoseStamped = decode_as(m).unwrap();
        assert_eq!(p.header.stamp, m.log_time);
        assert_eq!(p.pose.position[0], m.log_time as f64);
    }
    let even: Vec<_> = bag
        .messages(&["/even"])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(even.len(), 100);
    assert!(even
        .iter()
        .all(|m| m.log_time % 2 == 0 && m.topic == "/even"));
    // Bare file and folder with metadata.yaml agree.
    assert_eq!(
        BagReader::open(&a.join("a_0.mcap"))
            .unwrap()
            .messages(&[])
            .unwrap()
            .count(),
        100
    );
    assert_eq!(
        BagReader::open(&a).unwrap().topics(),
        BagReader::open(&a.join("a_0.mcap")).unwrap().topics()
    );
    assert!(decode_as::<msgs::Imu>(&all[0]).is_err(), "type check");
}

#[test]
fn metadata_yaml_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("bag1");
    write(&d, &[5, 10, 11], None);
    let y: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(d.join("metadata.yaml")).unwrap()).unwrap();
    let i = &y["rosbag2_bagfile_information"];
    assert_eq!(i["storage_identifier"].as_str(), Some("mcap"));
    assert_eq!(i["message_count"].as_u64(), Some(3));
    assert_eq!(i["duration"]["nanoseconds"].as_u64(), Some(6));
    assert_eq!(
        i["starting_time"]["nanoseconds_since_epoch"].as_u64(),
        Some(5)
    );
    assert_eq!(i["relative_file_paths"][0].as_str(), Some("bag1_0.mcap"));
    assert_eq!(
        i["topics_with_message_count"][0]["message_count"].as_u64(),
        Some(1) // /even: 10; /odd: 5 and 11
    );
    assert_eq!(
        i["topics_with_message_count"][1]["message_count"].as_u64(),
        Some(2)
    );
    assert_eq!(
        i["topics_with_message_count"][0]["topic_metadata"]["type"].as_str(),
        Some("geometry_msgs/msg/PoseStamped")
    );
}

#[test]
fn clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        BagReader::open(&tmp.path().join("nope")),
        Err(BagError::Io { .. })
    ));
    let junk = tmp.path().join("junk.mcap");
    std::fs::write(&junk, b"not a bag at all, really not").unwrap();
    let e = BagReader::open(&junk).err().unwrap();
    assert!(e.to_string().contains("magic"), "{e}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(BagReader::open(&empty).is_err());
    // Same topic, different type.
    let d = tmp.path().join("t");
    let mut w = BagWriter::create(&d).unwrap();
    w.write("/x", 1, &pose(1)).unwrap();
    assert!(w.write("/x", 2, &msgs::TfMessage::default()).is_err());
}

/// rosbag2 compression that cannot be read gives an error naming the cause, and a corrupt
/// message-mode frame is an error item, not a panic.
#[test]
fn compression_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("bag");
    write(&d, &[1, 2, 3], None);
    let meta = d.join("metadata.yaml");
    let plain = std::fs::read_to_string(&meta).unwrap();
    let set = |format: &str, mode: &str| {
        let text = plain
            .replace(
                "compression_format: ''",
                &format!("compression_format: '{format}'"),
            )
            .replace(
                "compression_mode: ''",
                &format!("compression_mode: '{mode}'"),
            );
        assert_ne!(text, plain, "metadata has compression keys to edit");
        std::fs::write(&meta, text).unwrap();
    };
    set("bz2", "message");
    let e = BagReader::open(&d).err().expect("bz2 is refused");
    assert!(e.to_string().contains("only zstd"), "{e}");
    set("zstd", "sideways");
    let e = BagReader::open(&d).err().expect("unknown mode is refused");
    assert!(e.to_string().contains("sideways"), "{e}");
    // Plain messages declared as zstd frames: every message is an error, none panics.
    set("zstd", "message");
    let bag = BagReader::open(&d).unwrap();
    let got: Vec<_> = bag.messages(&[]).unwrap().collect();
    assert_eq!(got.len(), 3);
    for m in got {
        let e = m.expect_err("not a zstd frame");
        assert!(e.to_string().contains("zstd"), "{e}");
    }
}
