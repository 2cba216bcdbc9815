//! Recordings as robots leave them: truncated at any byte, zero-filled tails, a corrupt chunk in
//! the middle, sqlite3 bags with leftover journals, a metadata.yaml missing or naming absent
//! files. The expected messages come from the intact file through the mcap crate's own reader
//! and the writer's chunk index (or a record walk written here), not from the reader under test.

mod common;

use gs_livo::bag::{msgs, BagDamage, BagReader, BagWriter, FileEnd, WriterOptions};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

type Msgs = Vec<(u64, Vec<u8>)>;

/// A bag written by gs_livo: IMU-like poses and images of varying size, unique log times.
fn project_bag(dir: &Path, opts: WriterOptions) -> Vec<u8> {
    let mut w = BagWriter::create_with(dir, opts).unwrap();
    for k in 0..120u64 {
        let header = msgs::Header {
            stamp: k,
            frame_id: "f".into(),
        };
        let t = 1_000_000 + k * 1000;
        if k % 3 == 0 {
            let data = (0..(k * 37 % 700) as usize).map(|i| (i * 7 + k as usize) as u8);
            let img = msgs::CompressedImage {
                header,
                format: "jpeg".into(),
                data: data.collect(),
            };
            w.write("/image", t, &img).unwrap();
        } else {
            let pose = msgs::Pose {
                position: [k as f64, 0.5, -1.0],
                ..Default::default()
            };
            w.write("/pose", t, &msgs::PoseStamped { header, pose })
                .unwrap();
        }
    }
    w.finish().unwrap();
    std::fs::read(mcap_in(dir)).unwrap()
}

fn mcap_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "mcap"))
        .unwrap()
}

/// Every message of an intact file (mcap crate's reader), sorted by log time.
fn all_messages(bytes: &[u8]) -> Msgs {
    let mut v: Msgs = mcap::MessageStream::new(bytes)
        .unwrap()
        .map(|m| {
            let m = m.unwrap();
            (m.log_time, m.data.into_owned())
        })
        .collect();
    v.sort();
    v
}

/// Units that are read whole or not at all: (end offset, log times they hold).
type Units = Vec<(usize, Vec<u64>)>;

/// Unchunked file: each top-level message record, by walking the record headers.
fn message_records(bytes: &[u8]) -> Units {
    let mut units = Vec::new();
    let mut pos = 8;
    while pos + 9 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[pos + 1..pos + 9].try_into().unwrap()) as usize;
        let end = pos + 9 + len;
        if bytes[pos] == 0x05 {
            let t = u64::from_le_bytes(bytes[pos + 15..pos + 23].try_into().unwrap());
            units.push((end, vec![t]));
        }
        if bytes[pos] == 0x0F {
            break;
        }
        pos = end;
    }
    units
}

/// Chunked file: each chunk from the writer's chunk index, with the messages in its time range.
fn chunks(bytes: &[u8], all: &Msgs) -> Units {
    let summary = mcap::Summary::read(bytes).unwrap().unwrap();
    assert!(summary.chunk_indexes.len() >= 3, "want several chunks");
    summary
        .chunk_indexes
        .iter()
        .map(|c| {
            let ts = all
                .iter()
                .map(|m| m.0)
                .filter(|t| (c.message_start_time..=c.message_end_time).contains(t))
                .collect();
            ((c.chunk_start_offset + c.chunk_length) as usize, ts)
        })
        .collect()
}

/// Messages of the units that end at or before `n` (and are not in `lost`).
fn expected(all: &Msgs, units: &Units, n: usize, lost: &[usize]) -> Msgs {
    let keep: Vec<u64> = units
        .iter()
        .enumerate()
        .filter(|(i, (end, _))| *end <= n && !lost.contains(i))
        .flat_map(|(_, (_, ts))| ts.iter().copied())
        .collect();
    all.iter()
        .filter(|m| keep.contains(&m.0))
        .cloned()
        .collect()
}

/// Reads `bytes` as a bare .mcap file: every message (sorted) and the damage. Never an error.
fn read(path: &Path, bytes: &[u8]) -> (Msgs, BagDamage) {
    std::fs::write(path, bytes).unwrap();
    let bag = BagReader::open(path).unwrap_or_else(|e| panic!("open: {e}"));
    let mut got: Msgs = bag
        .messages(&[])
        .unwrap()
        .map(|m| {
            let m = m.unwrap_or_else(|e| panic!("message error: {e}"));
            (m.log_time, m.data)
        })
        .collect();
    got.sort();
    (got, bag.damage())
}

/// A cut at `n`: exactly the expected messages; the damage says where the file ends.
fn check_cut(path: &Path, base: &[u8], all: &Msgs, units: &Units, n: usize) {
    let (got, damage) = read(path, &base[..n]);
    let want = expected(all, units, n, &[]);
    assert_eq!(got.len(), want.len(), "cut at {n} of {}", base.len());
    assert!(got == want, "cut at {n}: other messages");
    if n == base.len() {
        assert!(damage.is_empty(), "intact file: {damage:?}");
        return;
    }
    assert!(damage.truncated, "cut at {n}: {damage:?}");
    let f = &damage.files[0];
    assert_eq!(f.file_bytes, n as u64);
    assert!(f.readable_bytes <= n as u64);
    assert_eq!(f.unusable_bytes, n as u64 - f.readable_bytes);
    assert_eq!(f.last_message_time, want.last().map(|m| m.0), "cut at {n}");
    // A cut just after a complete unit loses nothing but the footer, and only the cut-off
    // bytes are unusable.
    if units.iter().any(|(end, _)| *end == n) {
        assert_eq!(f.end, Some(FileEnd::NoFooter), "cut at {n}");
        assert_eq!(f.unusable_bytes, 0);
    }
}

/// Cuts at every unit boundary (and one byte either side), at the first bytes, and at
/// `random` offsets drawn by proptest.
fn check_cuts(base: &[u8], all: &Msgs, units: &Units, random: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mcap");
    let mut cuts: Vec<usize> = (0..=20).collect();
    for (end, _) in units {
        cuts.extend([end - 1, *end, end + 1]);
    }
    cuts.push(base.len());
    for n in cuts.into_iter().filter(|&n| n <= base.len()) {
        check_cut(&path, base, all, units, n);
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: random,
        ..ProptestConfig::default()
    });
    runner
        .run(&(0..=base.len()), |n| {
            check_cut(&path, base, all, units, n);
            Ok(())
        })
        .unwrap();
}

fn opts(compression: Option<mcap::Compression>, chunked: bool) -> WriterOptions {
    WriterOptions {
        compression,
        chunk_size: 2048,
        chunked,
        ..Default::default()
    }
}

#[test]
fn unchunked_bag_cut_anywhere_gives_every_complete_record() {
    let dir = tempfile::tempdir().unwrap();
    let base = project_bag(&dir.path().join("b"), opts(None, false));
    let all = all_messages(&base);
    let units = message_records(&base);
    assert_eq!(units.len(), 120);
    assert_eq!(all.len(), 120);
    check_cuts(&base, &all, &units, 200);
}

#[test]
fn chunked_bags_cut_anywhere_give_every_complete_chunk() {
    for compression in [None, Some(mcap::Compression::Zstd)] {
        let dir = tempfile::tempdir().unwrap();
        let base = project_bag(&dir.path().join("b"), opts(compression, true));
        let all = all_messages(&base);
        let units = chunks(&base, &all);
        assert_eq!(units.iter().map(|u| u.1.len()).sum::<usize>(), 120);
        check_cuts(&base, &all, &units, 150);
    }
}

#[test]
fn rosbags_bag_cut_anywhere_gives_every_complete_chunk() {
    if !common::python_rosbags_available("rosbags_bag_cut_anywhere_gives_every_complete_chunk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rb");
    common::run_python("bag_write_chunked.py", &[&out]);
    let base = std::fs::read(mcap_in(&out)).unwrap();
    let all = all_messages(&base);
    assert_eq!(all.len(), 300);
    let units = chunks(&base, &all);
    check_cuts(&base, &all, &units, 40);
}

/// `n` extended over the bytes of `base` after it that are zero anyway.
fn same_prefix(base: &[u8], n: usize) -> usize {
    n + base[n..].iter().take_while(|&&b| b == 0).count()
}

#[test]
fn zero_filled_tails_give_every_complete_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.mcap");
    for compression in [None, Some(mcap::Compression::Zstd)] {
        let base = project_bag(&dir.path().join("b"), opts(compression, true));
        let all = all_messages(&base);
        let units = chunks(&base, &all);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 100,
            ..ProptestConfig::default()
        });
        runner
            .run(&(0..base.len(), 1usize..5000), |(n, zeros)| {
                // The file as a crash left it: its size grown, the data not flushed.
                let mut b = base[..n].to_vec();
                b.resize((n + zeros).min(base.len()), 0);
                let (got, damage) = read(&path, &b);
                let same = same_prefix(&base, n).min(b.len());
                let want = expected(&all, &units, same, &[]);
                prop_assert_eq!(got.len(), want.len(), "cut at {} + {} zeros", n, zeros);
                prop_assert!(got == want);
                prop_assert!(damage.truncated);
                let f = &damage.files[0];
                prop_assert_eq!(f.unusable_bytes, b.len() as u64 - f.readable_bytes);
                Ok(())
            })
            .unwrap();
    }
}

/// Offset and length of a chunk's compressed records (after its header fields).
fn chunk_data(base: &[u8], start: usize) -> (usize, usize) {
    let body = start + 9;
    let comp_len = u32::from_le_bytes(base[body + 28..body + 32].try_into().unwrap()) as usize;
    let size_at = body + 32 + comp_len;
    let size = u64::from_le_bytes(base[size_at..size_at + 8].try_into().unwrap()) as usize;
    (size_at + 8, size)
}

#[test]
fn a_corrupt_chunk_is_skipped_counted_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.mcap");
    for compression in [None, Some(mcap::Compression::Zstd)] {
        let base = project_bag(&dir.path().join("b"), opts(compression, true));
        let all = all_messages(&base);
        let units = chunks(&base, &all);
        let summary = mcap::Summary::read(&base).unwrap().unwrap();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 48,
            ..ProptestConfig::default()
        });
        let k_max = units.len() - 1;
        runner
            .run(
                &(1..k_max, any::<usize>(), 1u8..=255, any::<bool>()),
                |(k, at, x, cut)| {
                    let c = &summary.chunk_indexes[k];
                    let (data, len) = chunk_data(&base, c.chunk_start_offset as usize);
                    let mut b = base.clone();
                    b[data + at % len] ^= x;
                    // A flip in a zstd frame header field that does not change what it decodes to
                    // (e.g. the window size) damages nothing.
                    let harmless = compression.is_some()
                        && zstd::stream::decode_all(&b[data..data + len]).ok()
                            == zstd::stream::decode_all(&base[data..data + len]).ok();
                    // Intact footer (read through the index), or also cut after the chunk
                    // (read record by record).
                    let n = if cut {
                        (units[k].0 + b.len()) / 2
                    } else {
                        b.len()
                    };
                    let (got, damage) = read(&path, &b[..n]);
                    let lost = if harmless { vec![] } else { vec![k] };
                    let want = expected(&all, &units, n, &lost);
                    prop_assert_eq!(got.len(), want.len(), "chunk {} flipped at {}", k, at % len);
                    prop_assert!(got == want);
                    let chunk_skips: u64 = damage
                        .skipped
                        .iter()
                        .filter(|(cause, _)| cause.starts_with("chunk_"))
                        .map(|(_, n)| n)
                        .sum();
                    prop_assert_eq!(chunk_skips, lost.len() as u64, "{:?}", damage.skipped);
                    prop_assert_eq!(damage.truncated, cut);
                    Ok(())
                },
            )
            .unwrap();
    }
}

/// A rosbag2 sqlite3 database with `n` committed messages, left open (a recorder still running).
fn sqlite_bag(path: &Path, journal_mode: &str, n: i64) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", journal_mode).unwrap();
    c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    c.execute_batch(
        "CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, \
         serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL); \
         CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, \
         timestamp INTEGER NOT NULL, data BLOB NOT NULL); \
         INSERT INTO topics VALUES(1, '/pose', 'geometry_msgs/msg/PoseStamped', 'cdr', '');",
    )
    .unwrap();
    for k in 0..n {
        insert(&c, k);
    }
    c
}

fn insert(c: &rusqlite::Connection, k: i64) {
    c.execute(
        "INSERT INTO messages(topic_id, timestamp, data) VALUES(1, ?1, ?2)",
        rusqlite::params![1000 + k, vec![k as u8; 3000]],
    )
    .unwrap();
}

/// Copies the database and its journals as a crash would leave them.
fn crash_copy(src: &Path, dest_dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dest_dir).unwrap();
    for suffix in ["", "-wal", "-journal"] {
        let from = PathBuf::from(format!("{}{suffix}", src.display()));
        if from.exists() {
            let name = format!("x.db3{suffix}");
            std::fs::copy(&from, dest_dir.join(name)).unwrap();
        }
    }
    dest_dir.join("x.db3")
}

fn read_db(path: &Path) -> (Vec<u64>, BagDamage) {
    let bag = BagReader::open(path).unwrap_or_else(|e| panic!("open: {e}"));
    let t = bag
        .messages(&[])
        .unwrap()
        .map(|m| m.unwrap().log_time)
        .collect();
    (t, bag.damage())
}

#[test]
fn sqlite_with_leftover_wal_gives_its_committed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db3");
    let c = sqlite_bag(&live, "wal", 40);
    let db = crash_copy(&live, &dir.path().join("crash"));
    drop(c);
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let before = std::fs::read(&wal).unwrap();
    assert!(!before.is_empty(), "the test needs a non-empty -wal");
    let (t, damage) = read_db(&db);
    assert_eq!(t, (1000..1040).collect::<Vec<u64>>());
    assert_eq!(damage.files[0].leftover_journals, vec!["x.db3-wal"]);
    assert!(!damage.truncated);
    // The recording itself is untouched.
    assert_eq!(std::fs::read(&wal).unwrap(), before);
}

#[test]
fn sqlite_with_hot_journal_gives_the_committed_state() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db3");
    let c = sqlite_bag(&live, "delete", 30);
    // A transaction in progress whose pages already spilled into the database file.
    c.pragma_update(None, "cache_size", 2).unwrap();
    c.execute_batch("BEGIN").unwrap();
    for k in 30..200 {
        insert(&c, k);
    }
    let db = crash_copy(&live, &dir.path().join("crash"));
    drop(c);
    let journal = PathBuf::from(format!("{}-journal", db.display()));
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "the test needs a hot journal"
    );
    let db_bytes = std::fs::read(&db).unwrap();
    let (t, damage) = read_db(&db);
    assert_eq!(t, (1000..1030).collect::<Vec<u64>>());
    assert_eq!(damage.files[0].leftover_journals, vec!["x.db3-journal"]);
    assert_eq!(std::fs::read(&db).unwrap(), db_bytes);
}

#[test]
fn metadata_missing_or_naming_absent_files_reads_the_files_present() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("b");
    project_bag(&bag, opts(Some(mcap::Compression::Zstd), true));
    let meta = bag.join("metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let count = |bag: &Path| {
        let r = BagReader::open(bag).unwrap();
        let mut n = 0;
        for m in r.messages(&[]).unwrap() {
            m.unwrap();
            n += 1;
        }
        (n, r.damage())
    };
    let (n, damage) = count(&bag);
    assert_eq!(n, 120);
    assert!(damage.is_empty());

    // A split recording whose second file never made it to disk.
    let listed = text.replace(
        "  relative_file_paths:\n",
        "  relative_file_paths:\n    - b_1.mcap\n",
    );
    assert_ne!(listed, text);
    std::fs::write(&meta, &listed).unwrap();
    let (n, damage) = count(&bag);
    assert_eq!(n, 120);
    assert_eq!(damage.missing_files.len(), 1);
    assert!(damage.missing_files[0].ends_with("b_1.mcap"));

    // metadata.yaml cut short by the crash, then missing altogether.
    std::fs::write(&meta, &text[..text.len() / 3]).unwrap();
    let (n, damage) = count(&bag);
    assert_eq!(n, 120);
    assert!(damage.metadata_missing);
    std::fs::remove_file(&meta).unwrap();
    let (n, damage) = count(&bag);
    assert_eq!(n, 120);
    assert!(damage.metadata_missing && !damage.truncated);
}
