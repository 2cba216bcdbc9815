//! Round trips against the independent Python `rosbags` implementation: bags gs_livo writes are
//! read by `rosbags` with equal values, and bags `rosbags` writes (mcap and sqlite3) are read by
//! gs_livo with equal values.

mod common;

use common::*;
use gs_livo::bag::{
    convert, decode_as, decode_sensor_message, msgs, BagReader, BagWriter, RosMessage,
    SensorMessage,
};
use msgs::*;

fn header(stamp: u64, frame: &str) -> Header {
    Header {
        stamp,
        frame_id: frame.into(),
    }
}

fn sample_cloud(k: u64) -> PointCloud2 {
    let n = 40 + k as usize;
    let mut data = Vec::new();
    for i in 0..n {
        let v = i as f32 * 0.25 - 3.0 + k as f32;
        for x in [v, -v * 0.5, 1.0 + v * v * 0.01, (i * 3) as f32] {
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.extend_from_slice(&((i as u32) * 2500).to_le_bytes());
    }
    let field = |name: &str, offset, datatype| PointField {
        name: name.into(),
        offset,
        datatype,
        count: 1,
    };
    PointCloud2 {
        header: header(1_700_000_000_000_000_000 + k * 100_000_000, "lidar"),
        height: 1,
        width: n as u32,
        fields: vec![
            field("x", 0, point_field::FLOAT32),
            field("y", 4, point_field::FLOAT32),
            field("z", 8, point_field::FLOAT32),
            field("intensity", 12, point_field::FLOAT32),
            field("t", 16, point_field::UINT32),
        ],
        is_bigendian: false,
        point_step: 20,
        row_step: 20 * n as u32,
        data,
        is_dense: true,
    }
}

fn cov(seed: f64) -> [f64; 36] {
    std::array::from_fn(|i| seed + i as f64 * 0.5)
}

fn pose(s: f64) -> Pose {
    Pose {
        position: [s, -s * 2.0, 0.5 * s],
        orientation: [0.0, 0.0, (s * 0.1).sin(), (s * 0.1).cos()],
    }
}

#[test]
fn gs_livo_bag_read_by_rosbags() {
    let dir = tempfile::tempdir().unwrap();
    let bag_dir = dir.path().join("out_bag");
    let t0 = 1_700_000_000_000_000_000u64;
    let mut w = BagWriter::create(&bag_dir).unwrap();
    let clouds: Vec<_> = (0..2).map(sample_cloud).collect();
    let imu = Imu {
        header: header(t0 + 5, "imu"),
        orientation: [0.1, 0.2, 0.3, 0.9],
        orientation_covariance: std::array::from_fn(|i| i as f64),
        angular_velocity: [0.01, -0.02, 0.03],
        angular_velocity_covariance: [1e-4; 9],
        linear_acceleration: [0.1, 0.2, 9.81],
        linear_acceleration_covariance: [2e-3; 9],
    };
    let image = Image {
        header: header(t0 + 7, "camera"),
        height: 2,
        width: 3,
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: 9,
        data: (0..18).collect(),
    };
    let cimg = CompressedImage {
        header: header(t0 + 8, "camera"),
        format: "jpeg".into(),
        data: vec![0xff, 0xd8, 1, 2, 3],
    };
    let odom = Odometry {
        header: header(t0 + 9, "map"),
        child_frame_id: "base_link".into(),
        pose: pose(1.5),
        pose_covariance: cov(0.1),
        twist: Twist {
            linear: [1.0, 2.0, 3.0],
            angular: [0.1, 0.2, 0.3],
        },
        twist_covariance: cov(7.0),
    };
    let ps = PoseStamped {
        header: header(t0 + 10, "map"),
        pose: pose(2.0),
    };
    let pwc = PoseWithCovarianceStamped {
        header: header(t0 + 11, "map"),
        pose: pose(3.0),
        covariance: cov(-1.0),
    };
    let path = Path {
        header: header(t0 + 12, "map"),
        poses: vec![
            ps.clone(),
            PoseStamped {
                header: header(t0 + 13, "map"),
                pose: pose(4.0),
            },
        ],
    };
    let tf = TfMessage {
        transforms: vec![TransformStamped {
            header: header(t0 + 14, "map"),
            child_frame_id: "odom".into(),
            translation: [1.0, 2.0, 3.0],
            rotation: [0.0, 0.0, 0.0, 1.0],
        }],
    };
    let livox = LivoxCustomMsg {
        header: header(t0 + 15, "livox"),
        timebase: t0 + 15,
        point_num: 2,
        lidar_id: 1,
        rsvd: [0; 3],
        points: vec![
            LivoxPoint {
                offset_time: 0,
                x: 1.0,
                y: 2.0,
                z: 3.0,
                reflectivity: 10,
                tag: 0x10,
                line: 1,
            },
            LivoxPoint {
                offset_time: 100_000,
                x: -1.0,
                y: 0.5,
                z: 0.25,
                reflectivity: 200,
                tag: 0,
                line: 3,
            },
        ],
    };
    w.write("/points", t0, &clouds[0]).unwrap();
    w.write("/imu", t0 + 5, &imu).unwrap();
    w.write("/image", t0 + 7, &image).unwrap();
    w.write("/image/compressed", t0 + 8, &cimg).unwrap();
    w.write("/odom", t0 + 9, &odom).unwrap();
    w.write("/pose", t0 + 10, &ps).unwrap();
    w.write("/amcl_pose", t0 + 11, &pwc).unwrap();
    w.write("/path", t0 + 12, &path).unwrap();
    w.write("/tf", t0 + 14, &tf).unwrap();
    w.write("/livox/lidar", t0 + 15, &livox).unwrap();
    w.write("/points", t0 + 100_000_000, &clouds[1]).unwrap();
    w.finish().unwrap();

    // gs_livo reads its own bag back exactly.
    let bag = BagReader::open(&bag_dir).unwrap();
    assert_eq!(bag.topics().iter().map(|t| t.count).sum::<u64>(), 11);
    let all: Vec<_> = bag
        .messages(&[])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(decode_as::<PointCloud2>(&all[0]).unwrap(), clouds[0]);
    assert_eq!(decode_as::<Imu>(&all[1]).unwrap(), imu);
    assert_eq!(decode_as::<Image>(&all[2]).unwrap(), image);
    assert_eq!(decode_as::<CompressedImage>(&all[3]).unwrap(), cimg);
    assert_eq!(decode_as::<Odometry>(&all[4]).unwrap(), odom);
    assert_eq!(decode_as::<PoseStamped>(&all[5]).unwrap(), ps);
    assert_eq!(
        decode_as::<PoseWithCovarianceStamped>(&all[6]).unwrap(),
        pwc
    );
    assert_eq!(decode_as::<Path>(&all[7]).unwrap(), path);
    assert_eq!(decode_as::<TfMessage>(&all[8]).unwrap(), tf);
    assert_eq!(decode_as::<LivoxCustomMsg>(&all[9]).unwrap(), livox);
    assert_eq!(decode_as::<PointCloud2>(&all[10]).unwrap(), clouds[1]);

    if !python_rosbags_available("gs_livo_bag_read_by_rosbags") {
        return;
    }
    let got = json_lines(&run_python("bag_dump.py", &[&bag_dir]));
    assert_eq!(got.len(), 11);
    let by_topic = |t: &str| got.iter().filter(|v| v["topic"] == t).collect::<Vec<_>>();
    // Point clouds: layout and bytes.
    for (v, c) in by_topic("/points").iter().zip(&clouds) {
        let m = &v["msg"];
        assert_eq!(u(&v["log_time"]), c.header.stamp);
        assert_eq!(stamp(&m["header"]["stamp"]), c.header.stamp);
        assert_eq!(u(&m["width"]), c.width as u64);
        assert_eq!(u(&m["point_step"]), 20);
        assert_eq!(b64(&m["data"]), c.data);
        let names: Vec<&str> = m["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["x", "y", "z", "intensity", "t"]);
        assert_eq!(u(&m["fields"][4]["datatype"]), 6);
        assert_eq!(u(&m["fields"][3]["offset"]), 12);
    }
    let m = &by_topic("/imu")[0]["msg"];
    assert_eq!(stamp(&m["header"]["stamp"]), imu.header.stamp);
    assert_eq!(f(&m["angular_velocity"]["z"]), 0.03);
    assert_eq!(f(&m["linear_acceleration"]["z"]), 9.81);
    assert_eq!(f(&m["orientation"]["w"]), 0.9);
    assert_eq!(f(&m["orientation_covariance"][8]), 8.0);
    let m = &by_topic("/image")[0]["msg"];
    assert_eq!((u(&m["width"]), u(&m["height"]), u(&m["step"])), (3, 2, 9));
    assert_eq!(m["encoding"], "rgb8");
    assert_eq!(b64(&m["data"]), image.data);
    let m = &by_topic("/image/compressed")[0]["msg"];
    assert_eq!(m["format"], "jpeg");
    assert_eq!(b64(&m["data"]), cimg.data);
    let m = &by_topic("/odom")[0]["msg"];
    assert_eq!(m["child_frame_id"], "base_link");
    assert_eq!(f(&m["pose"]["pose"]["position"]["y"]), -3.0);
    assert_eq!(f(&m["pose"]["covariance"][35]), 0.1 + 17.5);
    assert_eq!(f(&m["twist"]["twist"]["angular"]["z"]), 0.3);
    assert_eq!(f(&m["twist"]["covariance"][1]), 7.5);
    let m = &by_topic("/pose")[0]["msg"];
    assert_eq!(f(&m["pose"]["orientation"]["z"]), (0.2f64).sin());
    let m = &by_topic("/amcl_pose")[0]["msg"];
    assert_eq!(f(&m["pose"]["covariance"][0]), -1.0);
    assert_eq!(f(&m["pose"]["pose"]["position"]["x"]), 3.0);
    let m = &by_topic("/path")[0]["msg"];
    assert_eq!(m["poses"].as_array().unwrap().len(), 2);
    assert_eq!(stamp(&m["poses"][1]["header"]["stamp"]), t0 + 13);
    assert_eq!(f(&m["poses"][1]["pose"]["position"]["x"]), 4.0);
    let m = &by_topic("/tf")[0]["msg"];
    assert_eq!(m["transforms"][0]["child_frame_id"], "odom");
    assert_eq!(f(&m["transforms"][0]["transform"]["translation"]["z"]), 3.0);
    let v = &by_topic("/livox/lidar")[0];
    assert_eq!(v["type"], "livox_ros_driver2/msg/CustomMsg");
    let m = &v["msg"];
    assert_eq!(u(&m["timebase"]), t0 + 15);
    assert_eq!(u(&m["points"][1]["offset_time"]), 100_000);
    assert_eq!(f(&m["points"][1]["z"]), 0.25);
    assert_eq!(u(&m["points"][1]["reflectivity"]), 200);
    assert_eq!(u(&m["points"][1]["line"]), 3);
}

#[test]
fn rosbags_bags_read_by_gs_livo() {
    if !python_rosbags_available("rosbags_bags_read_by_gs_livo") {
        return;
    }
    // rosbag2's zstd compression, per file and per message, on both storages.
    let cases = [
        ("mcap", "none"),
        ("sqlite3", "none"),
        ("mcap", "file"),
        ("sqlite3", "file"),
        ("mcap", "message"),
        ("sqlite3", "message"),
    ];
    for (storage, compression) in cases {
        let dir = tempfile::tempdir().unwrap();
        let bag_dir = dir.path().join(format!("rb_{storage}_{compression}"));
        let want = json_lines(&run_python(
            "bag_write_rosbags.py",
            &[
                &bag_dir,
                std::path::Path::new(storage),
                std::path::Path::new(compression),
            ],
        ));
        let bag = BagReader::open(&bag_dir).unwrap();
        let counts: Vec<(String, u64)> = bag
            .topics()
            .iter()
            .map(|t| (t.name.clone(), t.count))
            .collect();
        assert_eq!(
            counts,
            [
                ("/image", 3),
                ("/image/compressed", 3),
                ("/imu", 6),
                ("/points", 3)
            ]
            .map(|(a, b)| (a.to_string(), b))
        );
        let mut got: Vec<_> = bag
            .messages(&[])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        got.sort_by_key(|m| m.log_time);
        assert_eq!(got.len(), want.len(), "{storage} {compression}");
        let mut want_sorted = want.clone();
        want_sorted.sort_by_key(|v| u(&v["log_time"]));
        for (g, w) in got.iter().zip(&want_sorted) {
            assert_eq!(
                g.topic,
                w["topic"].as_str().unwrap(),
                "{storage} {compression}"
            );
            assert_eq!(g.log_time, u(&w["log_time"]));
            match decode_sensor_message(g).unwrap() {
                SensorMessage::Cloud(c) => {
                    assert_eq!(c.stamp, u(&w["stamp"]));
                    let xs: Vec<f32> = w["x"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| f(v) as f32)
                        .collect();
                    assert_eq!(c.x, xs);
                    let zs: Vec<f32> = w["z"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| f(v) as f32)
                        .collect();
                    assert_eq!(c.z, zs);
                    let is: Vec<f32> = w["intensity"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| f(v) as f32)
                        .collect();
                    assert_eq!(c.intensity, is);
                    let ts = c.time.as_ref().expect("time field");
                    for (a, b) in ts.iter().zip(w["t"].as_array().unwrap()) {
                        assert!((*a as f64 - f(b) * 1e-9).abs() < 1e-9);
                    }
                }
                SensorMessage::Imu(s) => {
                    assert_eq!(s.stamp, u(&w["stamp"]));
                    for i in 0..3 {
                        assert_eq!(s.gyro[i], f(&w["gyro"][i]));
                        assert_eq!(s.accel[i], f(&w["accel"][i]));
                    }
                }
                SensorMessage::Image(img) => {
                    assert_eq!(
                        (img.width as u64, img.height as u64),
                        (u(&w["w"]), u(&w["h"]))
                    );
                    assert_eq!(img.stamp, u(&w["stamp"]));
                    assert_eq!(
                        img.rgb,
                        decode_b64(w["rgb"].as_str().unwrap()),
                        "{} {storage}",
                        g.topic
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The decoded cloud round-trips through the public conversion too.
        let pc = got.iter().find(|m| m.topic == "/points").unwrap();
        let c = convert::pointcloud_from_msg(&PointCloud2::decode_cdr(&pc.data).unwrap()).unwrap();
        assert_eq!(c.skipped_non_finite, 0);
    }
}
