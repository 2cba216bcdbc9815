//! The node core through the replay transport on a simulated bag: what a ROS user receives
//! (the messages in `published.mcap`, the saved files), at real time and in bursts, and the
//! faults a robot produces (IMU gap, backlog overflow, save floods, a wrong LiDAR type, a
//! failing pipeline): each counted or reported, no hang, no panic, an error where it failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gs_livo::bag::{msgs, BagReader, BagWriter, RosMessage};
use gs_livo::eval::{evaluate, tum::read_tum, EvalOptions};
use gs_livo::pipeline::{Mode, PipelineOptions};
use gs_livo::ros::core::{NodeError, NodeSetup};
use gs_livo::ros::params::load_node_file;
use gs_livo::ros::replay::{replay_bag, ReplayError, ReplayOptions, ReplayOutcome};
use gs_livo::ros::transport::SaveRequest;
use gs_livo::sim::{self, SimConfig};

/// A 6 s room sequence (static start, then moving), simulated once per test process.
fn sequence() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = SimConfig::new("room");
        cfg.duration = 6.0;
        let seq = sim::simulate(&cfg).expect("simulate");
        sim::write_sequence(&dir.path().join("seq"), &seq).expect("write");
        dir
    })
    .path()
}

fn bag() -> PathBuf {
    sequence().join("seq/bag")
}

/// The rig of the sequence with a light, fast mapper; `extra` overrides on top.
fn setup(extra: &[&str]) -> NodeSetup {
    let mut sets: Vec<String> = [
        "render.backend=fast",
        "gaussian.iterations=2",
        "gaussian.downsample=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sets.extend(extra.iter().map(|s| s.to_string()));
    let (config, params) = load_node_file(&sequence().join("seq/config.yaml"), &sets).unwrap();
    NodeSetup {
        config,
        params,
        // LiDAR-inertial odometry with the Gaussian map built beside it: the odometry is then
        // the same computation as offline, whatever the mapper manages at this speed.
        pipeline: PipelineOptions {
            mode: Mode::Lio,
            mapping: true,
            ..Default::default()
        },
    }
}

fn replay(setup: NodeSetup, out: &Path, rate: f64) -> Result<ReplayOutcome, ReplayError> {
    let mut setup = setup;
    setup.params.save_dir = out.display().to_string();
    let options = ReplayOptions {
        rate,
        record_dir: Some(out.to_path_buf()),
        ..Default::default()
    };
    std::fs::create_dir_all(out).unwrap();
    replay_bag(&bag(), setup, options, Arc::new(AtomicBool::new(false)))
}

/// Messages of a recorded bag by topic, CDR bytes with their log times.
fn published(path: &Path) -> BTreeMap<String, Vec<(u64, Vec<u8>)>> {
    let r = BagReader::open(path).unwrap();
    let mut out: BTreeMap<String, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for m in r.messages(&[]).unwrap() {
        let m = m.unwrap();
        out.entry(m.topic).or_default().push((m.log_time, m.data));
    }
    out
}

fn scans_in_bag() -> usize {
    let r = BagReader::open(&bag()).unwrap();
    r.topics()
        .iter()
        .find(|t| t.type_name.ends_with("PointCloud2"))
        .unwrap()
        .count as usize
}

fn ate(traj: &Path) -> f64 {
    let gt = read_tum(&sequence().join("seq/ground_truth.tum")).unwrap();
    let est = read_tum(traj).unwrap();
    evaluate(&gt, &est, &EvalOptions::default())
        .unwrap()
        .ate
        .rmse
}

/// At real time: every scan published as odometry with TF, IMU odometry at the IMU rate, the
/// static TF tree, a save during the run readable, the final outputs complete, and the
/// trajectory as accurate as the offline run's.
#[test]
fn real_time_replay_publishes_saves_and_matches_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live");
    let mid = tmp.path().join("mid");
    let mut setup = setup(&[]);
    setup.params.save_dir = out.display().to_string();
    let options = ReplayOptions {
        rate: 1.0,
        record_dir: Some(out.clone()),
        ..Default::default()
    };
    std::fs::create_dir_all(&out).unwrap();
    let mut t = gs_livo::ros::replay::ReplayTransport::open(&bag(), options).unwrap();
    let saves = t.save_handle();
    let (answer_tx, answer) = crossbeam::channel::bounded(1);
    let mid2 = mid.clone();
    let requester = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(4));
        saves
            .send(SaveRequest {
                dir: Some(mid2.display().to_string()),
                reply: Box::new(move |r| answer_tx.send(r).unwrap()),
            })
            .unwrap();
    });
    let stop = Arc::new(AtomicBool::new(false));
    let outcome = gs_livo::ros::core::run_node(&mut t, setup, stop).expect("node");
    let file = t.finish().unwrap().expect("published.mcap");
    requester.join().unwrap();
    let s = &outcome.summary;
    eprintln!(
        "latency median {:.1} p95 {:.1} max {:.1} ms; mapped {} skipped {}",
        s.odometry.latency_ms.median_ms,
        s.odometry.latency_ms.p95_ms,
        s.odometry.latency_ms.max_ms,
        s.mapped_frames,
        s.mapper_frames_skipped
    );

    // The save during the run.
    let mid_reply = answer
        .recv_timeout(Duration::from_secs(30))
        .expect("answer");
    assert!(mid_reply.is_ok(), "{mid_reply:?}");
    let f = std::fs::File::open(mid.join("map.ply")).unwrap();
    let (gaussians, _) = gs_livo::gaussian::read_ply(std::io::BufReader::new(f)).unwrap();
    assert!(!gaussians.is_empty(), "the mid-run map has Gaussians");
    // The map folder saved while running loads (LiDAR map from the estimator, Gaussians and
    // keyframes from the mapper).
    let mid_map = gs_livo::session::SessionMap::load(&mid.join("map")).expect("mid-run map");
    assert!(mid_map.lidar_roots.len() > 20 && mid_map.gaussian_count() > 0);
    let mid_poses = read_tum(&mid.join("trajectory.tum")).unwrap();
    assert!(mid_poses.len() >= 10, "{}", mid_poses.len());

    // Odometry: one per scan the filter estimated, and each also on /tf.
    let p = published(&file);
    let odo = &p["/odometry"];
    assert_eq!(s.odometry.published, odo.len());
    assert_eq!(s.pipeline.frames as usize, odo.len(), "no odometry dropped");
    let scans = scans_in_bag();
    // The filter initialises on the static start before its first estimate.
    assert!(
        odo.len() + 20 >= scans && odo.len() <= scans,
        "{} of {scans}",
        odo.len()
    );
    let tf: Vec<msgs::TfMessage> = p["/tf"]
        .iter()
        .map(|(_, d)| msgs::TfMessage::decode_cdr(d).unwrap())
        .collect();
    assert_eq!(tf.len(), odo.len());
    assert!(tf.iter().all(|m| m.transforms[0].header.frame_id == "odom"
        && m.transforms[0].child_frame_id == "base_link"));
    let stat = msgs::TfMessage::decode_cdr(&p["/tf_static"][0].1).unwrap();
    let mut edges: Vec<(String, String)> = stat
        .transforms
        .iter()
        .map(|t| (t.header.frame_id.clone(), t.child_frame_id.clone()))
        .collect();
    edges.sort();
    let want = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        edges,
        vec![
            want("base_link", "camera"),
            want("base_link", "lidar"),
            want("map", "odom")
        ]
    );
    let first = msgs::Odometry::decode_cdr(&odo[0].1).unwrap();
    assert_eq!(
        (
            first.header.frame_id.as_str(),
            first.child_frame_id.as_str()
        ),
        ("odom", "base_link")
    );
    // Latency as the recorder saw it: log time (replay clock) minus the header stamp.
    for (log, d) in odo {
        let m = msgs::Odometry::decode_cdr(d).unwrap();
        assert!(*log >= m.header.stamp, "published before its scan ended");
    }

    // IMU-rate odometry at the IMU's rate (sensor time), within 5 %.
    let imu_rate = {
        let r = BagReader::open(&bag()).unwrap();
        let imu = r
            .topics()
            .iter()
            .find(|t| t.type_name.ends_with("/Imu"))
            .unwrap()
            .count;
        imu as f64 / 6.0
    };
    let got = s.odometry.imu_rate_hz.expect("IMU odometry published");
    assert!(
        (got / imu_rate - 1.0).abs() < 0.05,
        "{got} Hz vs {imu_rate} Hz"
    );
    assert_eq!(
        p["/odometry/imu"].len() as u64,
        s.odometry.imu_rate_published
    );

    // Registered scans carry the cloud's intensity; diagnostics were published.
    let cloud = msgs::PointCloud2::decode_cdr(&p["/cloud_registered"][5].1).unwrap();
    let intensity: Vec<f32> = cloud
        .data
        .chunks_exact(16)
        .map(|c| f32::from_le_bytes(c[12..16].try_into().unwrap()))
        .collect();
    assert!(
        intensity.iter().any(|&i| i != 0.0),
        "intensity passed through"
    );
    let diag = msgs::DiagnosticArray::decode_cdr(&p["/diagnostics"][0].1).unwrap();
    assert!(diag.status.iter().any(|st| st.name.contains("odometry")));

    // Final outputs: the whole trajectory, the maps and the summary.
    let traj = read_tum(&out.join("trajectory.tum")).unwrap();
    assert_eq!(traj.len(), odo.len(), "the trajectory holds every pose");
    for f in ["map.ply", "lidar_map.ply", "summary.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert!(s.mapped_frames > 0 && s.lidar_map_points > 1000);

    // The same odometry offline (LIO without mapping: identical estimator input).
    let off = tmp.path().join("offline");
    let cfg = setup_config_for_offline();
    gs_livo::pipeline::run_offline(
        &bag(),
        &cfg,
        &off,
        &PipelineOptions {
            mode: Mode::Lio,
            mapping: false,
            ..Default::default()
        },
        Default::default(),
        None,
        Arc::new(AtomicBool::new(false)),
        |_| {},
    )
    .unwrap();
    let (live_ate, offline_ate) = (
        ate(&out.join("trajectory.tum")),
        ate(&off.join("trajectory.tum")),
    );
    eprintln!("ATE live {live_ate:.5} m, offline {offline_ate:.5} m");
    // The live decoder may hand the synchroniser IMU and scans in another interleaving than
    // the bag's order, which moves no sample: the estimates agree to well under a millimetre.
    assert!(
        (live_ate - offline_ate).abs() < 5e-4,
        "live {live_ate} vs offline {offline_ate}"
    );
}

fn setup_config_for_offline() -> gs_livo::config::Config {
    setup(&[]).config
}

/// Everything at once (a burst of every scan): odometry for every scan all the same, the
/// mapper skipping what it cannot keep up with (counted), all outputs written.
#[test]
fn burst_replay_keeps_every_odometry_and_counts_mapper_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let r = replay(setup(&[]), tmp.path(), 0.0).expect("replay");
    let s = &r.node.summary;
    assert_eq!(s.status, "finished");
    assert_eq!(s.odometry.published, s.pipeline.frames as usize);
    assert!(s.odometry.published + 20 >= scans_in_bag());
    let drops = s.imu.dropped_backlog + s.lidar.dropped_backlog + s.lidar.dropped_pipeline_full;
    assert_eq!(drops, 0, "a 6 s bag fits the queues");
    assert_eq!(
        s.mapped_frames + s.mapper_frames_skipped,
        s.pipeline.frames,
        "every frame is mapped or counted as skipped"
    );
    let traj = read_tum(&tmp.path().join("trajectory.tum")).unwrap();
    assert_eq!(traj.len(), s.odometry.published);
}

/// A 300 ms IMU gap mid-run, and a backlog limit too small for a burst: counted, no panic.
#[test]
fn imu_gap_and_backlog_overflow_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    // The bag without IMU between 3.0 s and 3.3 s.
    let gap_bag = tmp.path().join("gap");
    {
        let r = BagReader::open(&bag()).unwrap();
        let types: BTreeMap<String, String> = r
            .topics()
            .iter()
            .map(|t| (t.name.clone(), t.type_name.clone()))
            .collect();
        let mut w = BagWriter::create(&gap_bag).unwrap();
        let mut t0 = None;
        for m in r.messages(&[]).unwrap() {
            let m = m.unwrap();
            let t = m.log_time - *t0.get_or_insert(m.log_time);
            let ty = types[&m.topic].as_str();
            if ty.ends_with("/Imu") && (3_000_000_000..3_300_000_000).contains(&t) {
                continue;
            }
            let (name, def): (&'static str, &'static str) = match ty {
                "sensor_msgs/msg/Imu" => (msgs::Imu::TYPE_NAME, msgs::Imu::DEFINITION),
                "sensor_msgs/msg/PointCloud2" => {
                    (msgs::PointCloud2::TYPE_NAME, msgs::PointCloud2::DEFINITION)
                }
                "sensor_msgs/msg/Image" => (msgs::Image::TYPE_NAME, msgs::Image::DEFINITION),
                "nav_msgs/msg/Odometry" => (msgs::Odometry::TYPE_NAME, msgs::Odometry::DEFINITION),
                other => panic!("unexpected type {other}"),
            };
            w.write_cdr(&m.topic, name, def, m.log_time, m.log_time, &m.data)
                .unwrap();
        }
        w.finish().unwrap();
    }
    let mut s = setup(&[]);
    s.params.save_dir = tmp.path().join("gap_out").display().to_string();
    let r = replay_bag(
        &gap_bag,
        s,
        ReplayOptions {
            rate: 0.0,
            ..Default::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
    .expect("a gap is not fatal");
    let s = &r.node.summary;
    assert!(s.pipeline.sync.imu_gaps >= 1, "{:?}", s.pipeline.sync);
    assert!(s.odometry.published > 20);

    // A backlog of at most 1 MiB cannot hold a burst of every scan: the drops are counted.
    let r = replay(
        setup(&["node.queue_bytes=1048576"]),
        &tmp.path().join("small"),
        0.0,
    )
    .expect("replay");
    let s = &r.node.summary;
    let received = s.lidar.received + s.camera.received;
    let dropped = s.lidar.dropped_backlog + s.camera.dropped_backlog;
    assert!(dropped > 0, "{:?} {:?}", s.lidar, s.camera);
    assert_eq!(
        s.lidar.forwarded + s.lidar.dropped_backlog + s.lidar.decode_errors,
        s.lidar.received
    );
    assert!(received as usize >= scans_in_bag());
}

/// A save request every 10 ms: each answered, the queue never blocks the node.
#[test]
fn a_flood_of_save_requests_is_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let mut setup = setup(&[]);
    setup.params.save_dir = tmp.path().join("out").display().to_string();
    let options = ReplayOptions {
        rate: 3.0,
        ..Default::default()
    };
    let mut t = gs_livo::ros::replay::ReplayTransport::open(&bag(), options).unwrap();
    let saves = t.save_handle();
    let (answers_tx, answers) = crossbeam::channel::unbounded();
    let root = tmp.path().to_path_buf();
    let flood = std::thread::spawn(move || {
        for i in 0..150 {
            let a = answers_tx.clone();
            let req = SaveRequest {
                dir: Some(root.join(format!("s{}", i % 4)).display().to_string()),
                reply: Box::new(move |r| {
                    let _ = a.send(r.is_ok());
                }),
            };
            if saves.send(req).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let outcome =
        gs_livo::ros::core::run_node(&mut t, setup, Arc::new(AtomicBool::new(false))).unwrap();
    flood.join().unwrap();
    let answered: Vec<bool> = answers.try_iter().collect();
    let c = outcome.summary.saves;
    assert_eq!(
        c.requested as usize,
        answered.len(),
        "every request answered"
    );
    assert_eq!(c.completed + c.failed + c.refused_busy, c.requested);
    assert!(c.completed >= 1 && c.refused_busy >= 1, "{c:?}");
    assert!(outcome.summary.odometry.published + 20 >= scans_in_bag());
}

/// A LiDAR type that does not match the topic, and a pipeline that cannot start: clear errors.
#[test]
fn wrong_lidar_type_and_pipeline_failure_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = replay(
        setup(&["node.lidar_type=livox_ros_driver2/msg/CustomMsg"]),
        &tmp.path().join("a"),
        0.0,
    )
    .err()
    .expect("a mismatched type is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("PointCloud2") && msg.contains("CustomMsg"),
        "{msg}"
    );

    let err = replay(
        setup(&["render.backend=vulkan", "render.device=no-such-gpu"]),
        &tmp.path().join("b"),
        0.0,
    )
    .err()
    .expect("a pipeline that fails is an error");
    assert!(
        matches!(err, ReplayError::Node(NodeError::Pipeline(_))),
        "{err}"
    );

    // Through the binary: a non-zero exit.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .args(["replay"])
        .arg(bag())
        .arg("--config")
        .arg(sequence().join("seq/config.yaml"))
        .arg("--out")
        .arg(tmp.path().join("c"))
        .args([
            "--rate",
            "0",
            "--set",
            "node.lidar_type=livox_ros_driver2/msg/CustomMsg",
        ])
        .status()
        .unwrap();
    assert!(!status.success());
}

/// SIGINT/SIGTERM mid-run: the node finishes its backlog, writes every output with every
/// published pose, and ends within its shutdown bound (`node.shutdown_timeout`, plus the final
/// save; the bound is checked with a wide margin, this is not a speed test).
#[test]
fn a_stop_mid_run_saves_everything_within_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let mut setup = setup(&["node.shutdown_timeout=2.0"]);
    setup.params.save_dir = tmp.path().display().to_string();
    let options = ReplayOptions {
        rate: 1.0,
        ..Default::default()
    };
    let mut t = gs_livo::ros::replay::ReplayTransport::open(&bag(), options).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped_at = Arc::new(std::sync::Mutex::new(None));
    let signal = {
        let (stop, at) = (stop.clone(), stopped_at.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            *at.lock().unwrap() = Some(std::time::Instant::now());
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let outcome = gs_livo::ros::core::run_node(&mut t, setup, stop).unwrap();
    let shutdown = stopped_at.lock().unwrap().unwrap().elapsed();
    signal.join().unwrap();
    let s = &outcome.summary;
    assert_eq!(s.status, "interrupted");
    assert!(outcome.final_save.as_ref().unwrap().is_ok());
    let traj = read_tum(&tmp.path().join("trajectory.tum")).unwrap();
    assert_eq!(
        traj.len(),
        s.odometry.published,
        "every published pose saved"
    );
    assert!(s.odometry.published >= 10 && s.odometry.published + 15 < scans_in_bag());
    assert!(tmp.path().join("map.ply").exists());
    assert!(shutdown < Duration::from_secs(20), "{shutdown:?}");
}

/// A second room sequence that starts 2 m from the first's start and turned 31 degrees,
/// simulated once per test process.
fn second_sequence() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = SimConfig::new("room");
        cfg.duration = 5.0;
        cfg.seed = 250;
        let seq = sim::simulate(&cfg).expect("simulate");
        sim::write_sequence(&dir.path().join("seq"), &seq).expect("write");
        dir
    })
    .path()
}

/// The diagnostics statuses named `name`, in publication order: (level, message).
fn statuses(p: &BTreeMap<String, Vec<(u64, Vec<u8>)>>, name: &str) -> Vec<(u8, String)> {
    p.get("/diagnostics")
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .flat_map(|(_, cdr)| msgs::DiagnosticArray::decode_cdr(cdr).unwrap().status)
        .filter(|s| s.name == name)
        .map(|s| (s.level, s.message))
        .collect()
}

/// Whether a `/tf_static` message holds `map -> odom`.
fn has_map_to_odom(cdr: &[u8]) -> bool {
    msgs::TfMessage::decode_cdr(cdr)
        .unwrap()
        .transforms
        .iter()
        .any(|t| t.header.frame_id == "map" && t.child_frame_id == "odom")
}

/// Issue 23 through the node: the node's map folder (saved at shutdown) loads with `map.load`
/// into a node replaying another sequence of the room; until a relocalisation is accepted it
/// publishes no odometry and no `map -> odom`, and its diagnostics say so with the reason;
/// then it tracks in the first session's frame (ATE without alignment under 2 cm), publishes
/// `map -> odom`, and its own save (localise: the same LiDAR map) loads again. A pose hint
/// (`/initialpose`) is taken and searched around.
#[test]
fn a_node_relocalises_in_a_saved_map_before_publishing_in_its_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let r = replay(setup(&[]), &first, 0.0).expect("first session");
    let saved = r.node.final_save.expect("final save").expect("saved");
    assert!(saved.contains("map"), "{saved}");
    let map_a = gs_livo::session::SessionMap::load(&first.join("map")).expect("map folder loads");
    assert!(map_a.lidar_roots.len() > 50 && map_a.gaussian_count() > 1000);

    let second = tmp.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let load = format!("map.load={}", first.join("map").display());
    let mut s = setup(&[&load, "map.mode=localise", "node.diagnostics_period=0.05"]);
    s.params.save_dir = second.display().to_string();
    let bag_b = second_sequence().join("seq/bag");
    let options = ReplayOptions {
        rate: 2.0,
        record_dir: Some(second.clone()),
        ..Default::default()
    };
    let mut t = gs_livo::ros::replay::ReplayTransport::open(&bag_b, options).unwrap();
    // A hint at the true start (in A's map frame), given as rviz gives it: z = 0.
    let gt_a = read_tum(&sequence().join("seq/ground_truth.tum")).unwrap();
    let map_t_world = gs_livo::session::level_frame(&gt_a[0].pose).inverse();
    let gt_b: Vec<_> = read_tum(&second_sequence().join("seq/ground_truth.tum"))
        .unwrap()
        .into_iter()
        .map(|mut p| {
            p.pose = map_t_world * p.pose;
            p
        })
        .collect();
    let mut start = gt_b[0].pose;
    start.translation.vector.z = 0.0;
    let mut covariance = [0.0; 36];
    covariance[0] = 0.25;
    covariance[7] = 0.25;
    covariance[35] = 0.07;
    let hint = msgs::PoseWithCovarianceStamped {
        header: msgs::Header {
            stamp: 0,
            frame_id: "map".into(),
        },
        pose: msgs::pose_msg(&start),
        covariance,
    };
    t.inject_handle()
        .send(("/initialpose".into(), hint.encode_cdr()))
        .unwrap();
    let outcome = gs_livo::ros::core::run_node(&mut t, s, Arc::new(AtomicBool::new(false)))
        .expect("node with a loaded map");
    let file = t.finish().unwrap().expect("published.mcap");
    let summary = &outcome.summary;
    let reloc = summary.pipeline.lio.relocalisation.clone().expect("status");
    assert!(!reloc.pending, "{reloc:?}");
    assert_eq!(reloc.hints, 1, "{reloc:?}");
    let at = reloc.accepted_at_scan.expect("relocalised");
    assert!(
        at <= summary.pipeline.lio.scans_before_init + 3,
        "{reloc:?}"
    );

    let p = published(&file);
    // Nothing in the map frame before acceptance: the first /tf_static lacks map -> odom, a
    // later one has it; odometry only for scans after acceptance.
    let tf = &p["/tf_static"];
    assert!(
        !has_map_to_odom(&tf[0].1),
        "map -> odom before relocalising"
    );
    assert!(
        has_map_to_odom(&tf.last().unwrap().1),
        "no map -> odom after"
    );
    let odo = p.get("/odometry").map_or(0, |v| v.len());
    assert_eq!(odo, summary.odometry.published);
    assert!(odo > 0 && summary.pipeline.frames as usize == odo);
    let diag = statuses(&p, "gs_livo: localisation");
    let before = diag
        .iter()
        .position(|(l, m)| *l == 1 && m.contains("not localised"));
    let after = diag
        .iter()
        .position(|(l, m)| *l == 0 && m.contains("relocalised"));
    assert!(
        matches!((before, after), (Some(b), Some(a)) if b < a),
        "{diag:?}"
    );

    // Tracked in the first session's frame, with no alignment.
    let est = read_tum(&second.join("trajectory.tum")).unwrap();
    let opts = EvalOptions {
        align: gs_livo::eval::Align::None,
        max_diff: 0.01,
        ..Default::default()
    };
    let e = evaluate(&gt_b, &est, &opts).unwrap();
    assert!(e.matched > 20 && e.ate.rmse < 0.02, "ATE {} m", e.ate.rmse);

    // The node's own save loads, and localise mode left the LiDAR map as loaded.
    let map_b = gs_livo::session::SessionMap::load(&second.join("map")).expect("loads");
    assert!(map_b.lidar_roots == map_a.lidar_roots);
}

/// The save a ROS user calls (`ros2 param set /gs_livo map.save_to DIR`), through the same
/// parameter event the r2r transport hands the core: the folder gets the trajectory and a map
/// folder that loads; an empty value saves nothing; another parameter is not a save.
#[test]
fn setting_map_save_to_saves_into_that_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let mut setup = setup(&[]);
    setup.params.save_dir = tmp.path().join("default").display().to_string();
    setup.params.save_on_shutdown = false;
    let options = ReplayOptions {
        rate: 2.0,
        ..Default::default()
    };
    let mut t = gs_livo::ros::replay::ReplayTransport::open(&bag(), options).unwrap();
    let params = t.parameter_handle();
    let target = tmp.path().join("by_param");
    let dir = target.display().to_string();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let set = |n: &str, v: &str| params.send((n.into(), Some(v.into()))).unwrap();
        set(gs_livo::ros::params::SAVE_TO_PARAM, "");
        set("node.save_dir", "/elsewhere");
        set(gs_livo::ros::params::SAVE_TO_PARAM, &dir);
    });
    let outcome =
        gs_livo::ros::core::run_node(&mut t, setup, Arc::new(AtomicBool::new(false))).unwrap();
    setter.join().unwrap();
    let c = outcome.summary.saves;
    assert_eq!((c.requested, c.completed), (1, 1), "{c:?}");
    let map = gs_livo::session::SessionMap::load(&target.join("map")).expect("map folder loads");
    assert!(map.lidar_roots.len() > 20, "{}", map.lidar_roots.len());
    assert!(read_tum(&target.join("trajectory.tum")).unwrap().len() >= 5);
    assert!(
        !tmp.path().join("default").exists(),
        "saved only where asked"
    );
    assert!(!Path::new("/elsewhere").exists());
}
