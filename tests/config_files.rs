//! Every shipped parameter file loads with `Config::load`, is valid for the ROS 2 parameter parser
//! (`--params-file`), and carries the topics, units and extrinsics of its rig.

use std::path::{Path, PathBuf};

use gs_livo::config::Config;
use nalgebra::{Point3, Vector3};

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn load(name: &str) -> Config {
    let path = config_dir().join(name);
    Config::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir())
        .expect("config/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// The real LiDAR rigs (issue 2 item 4); other files (e.g. the synthetic rig) are only loaded.
const REAL_RIGS: [&str; 5] = [
    "livox_avia.yaml",
    "livox_mid360.yaml",
    "ouster_os1_64.yaml",
    "velodyne_vlp16.yaml",
    "hesai_xt32.yaml",
];

fn real_rigs() -> Vec<PathBuf> {
    REAL_RIGS.iter().map(|r| config_dir().join(r)).collect()
}

#[test]
fn every_config_file_loads() {
    let files = yaml_files();
    for rig in REAL_RIGS {
        assert!(
            files.iter().any(|f| f.ends_with(rig)),
            "config/{rig} is missing"
        );
    }
    for f in &files {
        Config::load(f, &[]).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

/// rcl's YAML parameter parser rejects arrays that mix integers and doubles (`[0, 0.1]`) and
/// empty arrays (their type is unknown), although serde accepts both: check what ROS would.
fn check_ros_param_value(key: &str, v: &serde_yaml::Value, file: &Path) {
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let k = k
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: non-string key under {key}", file.display()));
                check_ros_param_value(&format!("{key}.{k}"), v, file);
            }
        }
        Value::Sequence(items) => {
            assert!(
                !items.is_empty(),
                "{}: `{key}` is an empty array, which ROS parameter files cannot type",
                file.display()
            );
            let kind = |v: &Value| match v {
                Value::Bool(_) => "bool",
                Value::Number(n) if n.is_f64() => "double",
                Value::Number(_) => "integer",
                Value::String(_) => "string",
                _ => "nested",
            };
            let first = kind(&items[0]);
            assert_ne!(first, "nested", "{}: `{key}` nests", file.display());
            for it in items {
                assert_eq!(
                    kind(it),
                    first,
                    "{}: `{key}` mixes {first} and {} entries; ROS rejects mixed arrays \
                     (write 0.0, not 0)",
                    file.display(),
                    kind(it)
                );
            }
        }
        Value::Null => panic!("{}: `{key}` has no value", file.display()),
        _ => {}
    }
}

#[test]
fn config_files_are_valid_ros_parameter_files() {
    for f in yaml_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let root: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let nodes = root.as_mapping().expect("top level is a map of nodes");
        assert_eq!(nodes.len(), 1, "{}: one node entry", f.display());
        let (name, node) = nodes.iter().next().unwrap();
        assert!(
            matches!(name.as_str(), Some("gs_livo" | "/**")),
            "{}: node entry `{name:?}` is neither gs_livo nor /**",
            f.display()
        );
        let params = node
            .get("ros__parameters")
            .unwrap_or_else(|| panic!("{}: no ros__parameters", f.display()));
        check_ros_param_value("", params, &f);
    }
}

#[test]
fn ros_array_check_catches_mixed_arrays() {
    let v: serde_yaml::Value = serde_yaml::from_str("a: [0, 0.5]").unwrap();
    let r = std::panic::catch_unwind(|| check_ros_param_value("", &v, Path::new("x.yaml")));
    assert!(r.is_err(), "a mixed int/double array must be rejected");
    let v: serde_yaml::Value = serde_yaml::from_str("a: {b: []}").unwrap();
    let r = std::panic::catch_unwind(|| check_ros_param_value("", &v, Path::new("x.yaml")));
    assert!(r.is_err(), "an empty array must be rejected");
}

fn assert_vec(a: Vector3<f64>, b: [f64; 3], tol: f64, what: &str) {
    assert!(
        (a - Vector3::from(b)).norm() < tol,
        "{what}: {a:?} is not {b:?}"
    );
}

/// Every shipped rig mounts the camera looking forward (IMU +x) with image rows going down
/// (camera +y = IMU -z), in the optical convention.
#[test]
fn cameras_look_forward_in_the_optical_convention() {
    for f in real_rigs() {
        let c = Config::load(&f, &[]).unwrap();
        let r = c.extrinsics.imu_T_camera.0.rotation;
        let name = f.display().to_string();
        assert_vec(
            r * Vector3::z(),
            [1.0, 0.0, 0.0],
            1e-9,
            &format!("{name} z"),
        );
        assert_vec(
            r * Vector3::y(),
            [0.0, 0.0, -1.0],
            1e-9,
            &format!("{name} y"),
        );
        assert_vec(
            r * Vector3::x(),
            [0.0, -1.0, 0.0],
            1e-9,
            &format!("{name} x"),
        );
        // Intrinsics put the principal point inside the image.
        assert!(
            c.camera.cx > 0.0 && c.camera.cx < c.camera.width as f64,
            "{name}"
        );
        assert!(
            c.camera.cy > 0.0 && c.camera.cy < c.camera.height as f64,
            "{name}"
        );
    }
}

#[test]
fn livox_rigs_use_the_driver_topics_and_accel_in_g() {
    for (file, lidar_in_imu) in [
        ("livox_avia.yaml", [0.04165, 0.02326, -0.0284]),
        ("livox_mid360.yaml", [-0.011, -0.02329, 0.04412]),
    ] {
        let c = load(file);
        assert_eq!(c.topics.lidar, "/livox/lidar", "{file}");
        assert_eq!(c.topics.imu, "/livox/imu", "{file}");
        assert_eq!(c.frames.lidar, "livox_frame", "{file}");
        // livox_ros_driver2 publishes acceleration in g.
        assert!((c.imu.accel_scale - 9.81).abs() < 0.01, "{file}");
        let t = c.extrinsics.imu_T_lidar.0;
        assert_vec(t.translation.vector, lidar_in_imu, 1e-9, file);
        assert!(t.rotation.angle() < 1e-12, "{file}: axes are parallel");
        // The IMU sits a few centimetres from the optical centre, as the manuals state.
        let d = t.translation.vector.norm();
        assert!(d > 0.03 && d < 0.06, "{file}: {d}");
    }
}

#[test]
fn ouster_extrinsics_follow_the_sensor_metadata() {
    let c = load("ouster_os1_64.yaml");
    assert_eq!(c.topics.lidar, "/ouster/points");
    assert_eq!(c.topics.imu, "/ouster/imu");
    assert_eq!(c.frames.lidar, "os_lidar");
    assert_eq!(c.imu.accel_scale, 1.0);
    let imu_t_lidar = c.extrinsics.imu_T_lidar.0;
    // os_lidar x points backwards (towards the connector), z up.
    assert_vec(
        imu_t_lidar.rotation * Vector3::x(),
        [-1.0, 0.0, 0.0],
        1e-9,
        "lidar x",
    );
    assert_vec(
        imu_t_lidar.rotation * Vector3::z(),
        [0.0, 0.0, 1.0],
        1e-9,
        "lidar z",
    );
    // The os_sensor origin, at (0, 0, -36.18) mm in os_lidar, lies at minus the IMU offset.
    let sensor_origin = imu_t_lidar * Point3::new(0.0, 0.0, -0.03618);
    assert_vec(
        sensor_origin.coords,
        [-0.006253, 0.011775, -0.007645],
        1e-9,
        "os_sensor origin in os_imu",
    );
    // Image over image_transport's compressed plugin.
    assert!(c.topics.image.ends_with("/compressed"));
}

#[test]
fn spinning_lidars_without_livox_use_their_driver_topics() {
    let v = load("velodyne_vlp16.yaml");
    assert_eq!(v.topics.lidar, "/velodyne_points");
    assert_eq!(v.frames.lidar, "velodyne");
    let h = load("hesai_xt32.yaml");
    assert_eq!(h.topics.lidar, "/lidar_points");
    assert_eq!(h.frames.lidar, "hesai_lidar");
    for c in [&v, &h] {
        assert_eq!(c.topics.imu, "/imu/data");
        assert_eq!(c.imu.accel_scale, 1.0);
        // External tactical-grade IMUs are quieter than the LiDAR-internal MEMS parts.
        assert!(c.imu.gyro_noise < load("ouster_os1_64.yaml").imu.gyro_noise);
    }
}

#[test]
fn noise_densities_are_in_plausible_mems_ranges() {
    for f in real_rigs() {
        let c = Config::load(&f, &[]).unwrap();
        let n = f.display();
        // rad/s/sqrt(Hz): from navigation grade (1e-5) to poor consumer MEMS (1e-2).
        assert!((1e-5..1e-2).contains(&c.imu.gyro_noise), "{n}");
        // m/s^2/sqrt(Hz)
        assert!((1e-4..5e-2).contains(&c.imu.accel_noise), "{n}");
        assert!(
            c.imu.gyro_bias_walk > 0.0 && c.imu.gyro_bias_walk < c.imu.gyro_noise,
            "{n}"
        );
        assert!(
            c.imu.accel_bias_walk > 0.0 && c.imu.accel_bias_walk < c.imu.accel_noise,
            "{n}"
        );
        assert!((c.imu.gravity - 9.81).abs() < 0.05, "{n}");
    }
}
