//! Reading real rosbag2 recordings we did not write: an MCAP by libmcap and a sqlite3 bag.
//! Counts and values are those the Python `mcap`/`rosbags` readers report for these files;
//! with python3 + rosbags available, every message is also compared with `rosbags`.

mod common;

use common::*;
use gs_livo::bag::{decode_as, msgs, BagReader};

fn assert_topics(bag: &BagReader, want: &[(&str, &str, u64)]) {
    let got: Vec<(String, String, u64)> = bag
        .topics()
        .iter()
        .map(|t| (t.name.clone(), t.type_name.clone(), t.count))
        .collect();
    let mut want: Vec<(String, String, u64)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn nav2_mcap_topics_counts_and_first_values() {
    let bag = BagReader::open(&data_dir().join("nav2_turtlebot.mcap")).unwrap();
    assert_topics(
        &bag,
        &[
            ("/odom", "nav_msgs/msg/Odometry", 2639),
            ("/tf", "tf2_msgs/msg/TFMessage", 5422),
            ("/tf_static", "tf2_msgs/msg/TFMessage", 1),
            (
                "/amcl_pose",
                "geometry_msgs/msg/PoseWithCovarianceStamped",
                135,
            ),
        ],
    );
    let all: Vec<_> = bag
        .messages(&[])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 8197);
    assert!(
        all.windows(2).all(|w| w[0].log_time <= w[1].log_time),
        "not in time order"
    );
    assert_eq!(all[0].log_time, 1_778_234_353_382_747_000);
    assert_eq!(all.last().unwrap().log_time, 1_778_234_450_738_043_000);
    let odom: msgs::Odometry = decode_as(&all[0]).unwrap();
    assert_eq!(odom.header.stamp, 928_800_000_000);
    assert_eq!(
        (odom.header.frame_id.as_str(), odom.child_frame_id.as_str()),
        ("odom", "base_link")
    );
    assert_eq!(
        odom.pose.position,
        [-2.8019166340612314, 1.0977901491292252, 0.0]
    );
    assert_eq!(
        odom.pose.orientation[2..],
        [0.08457359616958599, -0.9964172353140746]
    );
    let odom_only: Vec<_> = bag
        .messages(&["/odom"])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(odom_only.len(), 2639);
    assert!(odom_only.iter().all(|m| m.topic == "/odom"));
    for m in &all {
        match m.type_name.as_str() {
            "nav_msgs/msg/Odometry" => drop(decode_as::<msgs::Odometry>(m).unwrap()),
            "tf2_msgs/msg/TFMessage" => drop(decode_as::<msgs::TfMessage>(m).unwrap()),
            _ => drop(decode_as::<msgs::PoseWithCovarianceStamped>(m).unwrap()),
        }
    }
}

#[test]
fn tf_example_sqlite_topics_counts_and_first_values() {
    let bag = BagReader::open(&data_dir().join("tf_example")).unwrap();
    assert_topics(
        &bag,
        &[
            ("/tf", "tf2_msgs/msg/TFMessage", 517),
            ("/tf_static", "tf2_msgs/msg/TFMessage", 1),
        ],
    );
    let all: Vec<_> = bag
        .messages(&[])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 518);
    assert!(all.windows(2).all(|w| w[0].log_time <= w[1].log_time));
    assert_eq!(all[0].topic, "/tf_static");
    assert_eq!(all[0].log_time, 1_714_741_164_111_822_142);
    let st: msgs::TfMessage = decode_as(&all[0]).unwrap();
    assert_eq!(st.transforms.len(), 1);
    assert_eq!(st.transforms[0].header.stamp, 1_714_740_908_048_476_938);
    assert_eq!(st.transforms[0].header.frame_id, "base_footprint");
    assert_eq!(st.transforms[0].child_frame_id, "base_link");
    assert_eq!(st.transforms[0].rotation, [0.0, 0.0, 0.0, 1.0]);
    let tf: msgs::TfMessage = decode_as(&all[1]).unwrap();
    assert_eq!(all[1].log_time, 1_714_741_164_196_592_603);
    assert_eq!(
        tf.transforms[0].translation,
        [1.1603796887148006, -2.942426888388735, 0.0]
    );
    assert_eq!(
        tf.transforms[0].rotation[2..],
        [0.6808039454578293, 0.7324656905610344]
    );
    // The .db3 file alone reads the same.
    let bare = BagReader::open(&data_dir().join("tf_example/tf_example.db3")).unwrap();
    assert_eq!(bare.messages(&["/tf"]).unwrap().count(), 517);
}

/// Every message of both real bags equals what `rosbags` decodes.
#[test]
fn real_bags_match_rosbags_message_by_message() {
    if !python_rosbags_available("real_bags_match_rosbags_message_by_message") {
        return;
    }
    for name in ["nav2_turtlebot.mcap", "tf_example"] {
        let path = data_dir().join(name);
        let want = json_lines(&run_python("bag_dump.py", &[&path]));
        let bag = BagReader::open(&path).unwrap();
        let got: Vec<_> = bag
            .messages(&[])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.topic, w["topic"].as_str().unwrap());
            assert_eq!(g.log_time, u(&w["log_time"]));
            let m = &w["msg"];
            match g.type_name.as_str() {
                "tf2_msgs/msg/TFMessage" => {
                    let tf: msgs::TfMessage = decode_as(g).unwrap();
                    let wt = m["transforms"].as_array().unwrap();
                    assert_eq!(tf.transforms.len(), wt.len());
                    for (a, b) in tf.transforms.iter().zip(wt) {
                        assert_eq!(a.header.stamp, stamp(&b["header"]["stamp"]));
                        assert_eq!(a.child_frame_id, b["child_frame_id"].as_str().unwrap());
                        let tr = &b["transform"]["translation"];
                        assert_eq!(a.translation, [f(&tr["x"]), f(&tr["y"]), f(&tr["z"])]);
                        let q = &b["transform"]["rotation"];
                        assert_eq!(a.rotation, [f(&q["x"]), f(&q["y"]), f(&q["z"]), f(&q["w"])]);
                    }
                }
                "nav_msgs/msg/Odometry" => {
                    let o: msgs::Odometry = decode_as(g).unwrap();
                    assert_eq!(o.header.stamp, stamp(&m["header"]["stamp"]));
                    let p = &m["pose"]["pose"]["position"];
                    assert_eq!(o.pose.position, [f(&p["x"]), f(&p["y"]), f(&p["z"])]);
                    let tw = &m["twist"]["twist"]["linear"];
                    assert_eq!(o.twist.linear, [f(&tw["x"]), f(&tw["y"]), f(&tw["z"])]);
                    let cov: Vec<f64> = m["pose"]["covariance"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(f)
                        .collect();
                    assert_eq!(o.pose_covariance.to_vec(), cov);
                }
                "geometry_msgs/msg/PoseWithCovarianceStamped" => {
                    let o: msgs::PoseWithCovarianceStamped = decode_as(g).unwrap();
                    assert_eq!(o.header.frame_id, m["header"]["frame_id"].as_str().unwrap());
                    let q = &m["pose"]["pose"]["orientation"];
                    assert_eq!(
                        o.pose.orientation,
                        [f(&q["x"]), f(&q["y"]), f(&q["z"]), f(&q["w"])]
                    );
                    let cov: Vec<f64> = m["pose"]["covariance"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(f)
                        .collect();
                    assert_eq!(o.covariance.to_vec(), cov);
                }
                t => panic!("unexpected type {t}"),
            }
        }
    }
}
