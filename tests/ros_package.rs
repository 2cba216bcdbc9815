//! The colcon package around the node: package.xml declares every ROS interface package the
//! node's code uses, the build type colcon-ros-cargo expects, and the launch files refer to
//! files that are installed.

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Names between `<tag>` and `</tag>`.
fn tag_values(xml: &str, tag: &str) -> BTreeSet<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(|v| v.trim().to_string())
        .collect()
}

/// `r2r::<pkg>` paths in the node's sources that name an interface package (`*_msgs`, ...).
fn interface_packages_used() -> BTreeSet<String> {
    // The node moves serialized bytes; its message types are the codecs' `TYPE_NAME`s
    // (`pkg/msg/Type`). Livox's CustomMsg is optional (only where the driver is built).
    let codec = read("src/bag/codec.rs");
    let mut used = BTreeSet::new();
    for chunk in codec.split("const TYPE_NAME: &'static str = \"").skip(1) {
        let pkg = chunk.split('/').next().unwrap().to_string();
        if !pkg.starts_with("livox") {
            used.insert(pkg);
        }
    }
    used
}

#[test]
fn package_xml_is_format_3_ament_cargo_with_the_used_interfaces() {
    let xml = read("package.xml");
    assert!(xml.contains("<package format=\"3\">"));
    assert_eq!(
        tag_values(&xml, "build_type"),
        BTreeSet::from(["ament_cargo".to_string()])
    );
    assert_eq!(
        tag_values(&xml, "name"),
        BTreeSet::from(["gs_livo".to_string()])
    );
    let cargo = read("Cargo.toml");
    let version = tag_values(&xml, "version");
    let v = version.iter().next().unwrap();
    assert!(
        cargo.contains(&format!("version = \"{v}\"")),
        "package.xml version {v} matches Cargo.toml"
    );

    let depends = tag_values(&xml, "depend");
    let used = interface_packages_used();
    for pkg in [
        "sensor_msgs",
        "nav_msgs",
        "tf2_msgs",
        "diagnostic_msgs",
        "std_msgs",
    ] {
        assert!(used.contains(pkg), "scan found {used:?}");
    }
    for pkg in &used {
        assert!(
            depends.contains(pkg),
            "the node uses {pkg} messages but package.xml has no <depend>{pkg}</depend>"
        );
    }
    // use_sim_time needs rosgraph_msgs (the /clock subscription inside r2r).
    assert!(depends.contains("rosgraph_msgs"));
    let exec = tag_values(&xml, "exec_depend");
    for pkg in ["launch", "launch_ros", "ros2bag", "rviz2"] {
        assert!(exec.contains(pkg), "launch files need {pkg}");
    }
}

#[test]
fn launch_files_use_installed_files() {
    let cargo = read("Cargo.toml");
    let share_line = cargo
        .lines()
        .find(|l| l.starts_with("install_to_share"))
        .expect("[package.metadata.ros] install_to_share in Cargo.toml");
    for dir in ["launch", "config", "rviz"] {
        assert!(share_line.contains(&format!("\"{dir}\"")), "{share_line}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let live = read("launch/gs_livo.launch.py");
    assert!(
        live.contains("\"livox_mid360.yaml\"") && root.join("config/livox_mid360.yaml").exists()
    );
    assert!(live.contains("\"gs_livo.rviz\"") && root.join("rviz/gs_livo.rviz").exists());
    assert!(live.contains("executable=\"gs_livo\"") && live.contains("arguments=[\"node\"]"));
    let replay = read("launch/replay.launch.py");
    assert!(
        replay.contains("\"gs_livo.launch.py\"") && root.join("launch/gs_livo.launch.py").exists()
    );
    assert!(replay.contains("\"--clock\""));
    // RViz shows the topics the node publishes.
    let rviz = read("rviz/gs_livo.rviz");
    let node = read("src/ros/publish.rs");
    for topic in [
        "odometry",
        "path",
        "cloud_registered",
        "map/points",
        "render/image",
    ] {
        assert!(
            rviz.contains(&format!("Value: {topic}\n")),
            "rviz shows {topic}"
        );
        assert!(
            node.contains(&format!("\"{topic}\"")),
            "node publishes {topic}"
        );
    }
}
