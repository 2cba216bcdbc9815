//! Node parameters -> typed config.
//!
//! r2r hands the node its parameters (from `--params-file` and `-p`) as dotted names. Those of
//! the config sections go through [`Config::from_params`], exactly as the offline CLI reads a
//! file; the node's own knobs live under `node.*` ([`NodeParams`]); parameters that ROS itself
//! declares (`use_sim_time`, `qos_overrides.*`, ...) are left to ROS.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, ParamMap};

/// Parameter names ROS declares on every node; not part of our config.
const ROS_RESERVED: [&str; 2] = ["use_sim_time", "start_type_description_service"];
/// Prefixes of parameter groups ROS declares (QoS overrides of publishers/subscriptions).
const ROS_RESERVED_PREFIXES: [&str; 1] = ["qos_overrides."];
/// LiDAR message types the decoders read.
pub const LIDAR_TYPES: [&str; 3] = [
    "sensor_msgs/msg/PointCloud2",
    "livox_ros_driver2/msg/CustomMsg",
    "livox_ros_driver/msg/CustomMsg",
];
/// Prefix of the node's own parameters.
pub const NODE_PREFIX: &str = "node.";
/// Prefix of the loaded-map parameters.
pub const MAP_PREFIX: &str = "map.";
/// The save a ROS user calls: `ros2 param set /gs_livo map.save_to /folder` writes what the
/// `~/save` topic writes into that folder (r2r's generated bindings carry no `std_srvs`, so a
/// `Trigger` service cannot be offered there; a parameter set is answered by every ROS 2 tool).
pub const SAVE_TO_PARAM: &str = "map.save_to";

/// `map.*`: a saved map folder the node starts from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapParams {
    /// A map folder (a run's `map/`, or `map/` in a node's save folder); empty: none, the node
    /// builds its own map from its start pose.
    pub load: String,
    /// `extend` adds to the loaded map; `localise` keeps it frozen.
    pub mode: crate::pipeline::MapMode,
    /// Start at the map's origin (the mapping run's start) instead of relocalising.
    pub origin: bool,
    /// A save trigger ([`SAVE_TO_PARAM`]): set while running, the node saves into that folder;
    /// at start it is read and has no effect.
    pub save_to: String,
}

/// `node.*`: settings of the ROS node only (the offline CLI has no use for them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(non_snake_case)] // `base_T_imu` follows the config's `T_a_b` naming
pub struct NodeParams {
    /// Where the map (PLY) and trajectory (TUM) go when saving without an explicit folder.
    pub save_dir: String,
    /// Save map and trajectory when the node shuts down.
    pub save_on_shutdown: bool,
    /// Capacity of the channel from the decoder into the pipeline, and the most IMU messages
    /// waiting to be decoded; full queues drop (and count) the newest message rather than
    /// stalling the transport.
    pub queue_capacity: usize,
    /// Most bytes of LiDAR and camera messages waiting to be decoded (the backlog is bounded
    /// in bytes: a 4K image and a 16-point cloud are not the same load).
    pub queue_bytes: usize,
    /// Publish `odom -> base_link` on /tf.
    pub publish_tf: bool,
    /// Publish an identity `map -> odom` on /tf_static (off when AMCL or a localiser owns it).
    pub publish_map_to_odom: bool,
    /// Publish the sensor extrinsics `base_link -> {lidar, camera}` on /tf_static (off when a
    /// URDF through robot_state_publisher or the drivers publish them).
    pub publish_static_tf: bool,
    /// `[x, y, z, qx, qy, qz, qw]` mapping IMU points into the robot's base frame: odometry and
    /// TF are then of the base frame (REP 105). Absent: the IMU frame is `base_link`.
    pub base_T_imu: Option<Vec<f64>>,
    /// Seconds the node spends on its backlog after SIGINT/SIGTERM before dropping the rest
    /// (counted); the final save comes after it.
    pub shutdown_timeout: f64,
    /// The LiDAR message type: `auto` (what the topic's publisher advertises, else
    /// PointCloud2), `sensor_msgs/msg/PointCloud2`, `livox_ros_driver2/msg/CustomMsg` (the
    /// default of livox_ros_driver2's launch files) or `livox_ros_driver/msg/CustomMsg`.
    pub lidar_type: String,
    /// Publish the IMU-rate propagated odometry on `odometry/imu`.
    pub publish_imu_odometry: bool,
    /// Seconds between two publications of the Gaussian map centres (large message).
    pub map_publish_period: f64,
    /// At most this many map centres per publication (evenly subsampled).
    pub map_max_points: usize,
    /// At most this many poses in the published `path` (oldest dropped).
    pub path_max_poses: usize,
    /// Seconds between two diagnostic status messages.
    pub diagnostics_period: f64,
    /// Seconds to wait for the pipeline to write the map on a save request.
    pub save_timeout: f64,
    /// The `map.*` parameters (a group of their own, beside `node.*`).
    #[serde(skip)]
    pub map: MapParams,
}

impl Default for NodeParams {
    fn default() -> Self {
        Self {
            save_dir: "gs_livo_output".into(),
            save_on_shutdown: true,
            queue_capacity: 4096,
            queue_bytes: 256 << 20,
            publish_tf: true,
            publish_map_to_odom: true,
            publish_static_tf: true,
            base_T_imu: None,
            shutdown_timeout: 5.0,
            lidar_type: "auto".into(),
            publish_imu_odometry: true,
            map_publish_period: 2.0,
            map_max_points: 200_000,
            path_max_poses: 20_000,
            diagnostics_period: 1.0,
            save_timeout: 60.0,
            map: MapParams::default(),
        }
    }
}

impl NodeParams {
    fn validate(&self) -> Result<(), (String, String)> {
        let positive = [
            ("node.map_publish_period", self.map_publish_period),
            ("node.diagnostics_period", self.diagnostics_period),
            ("node.save_timeout", self.save_timeout),
            ("node.shutdown_timeout", self.shutdown_timeout),
        ];
        for (k, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err((k.into(), format!("must be positive seconds, got {v}")));
            }
        }
        if self.queue_capacity == 0 {
            return Err(("node.queue_capacity".into(), "must be at least 1".into()));
        }
        if self.queue_bytes < 1 << 20 {
            return Err(("node.queue_bytes".into(), "must be at least 1 MiB".into()));
        }
        self.imu_t_base()?;
        if self.lidar_type != "auto" && !LIDAR_TYPES.contains(&self.lidar_type.as_str()) {
            return Err((
                "node.lidar_type".into(),
                format!(
                    "must be auto or one of {}, got {}",
                    LIDAR_TYPES.join(", "),
                    self.lidar_type
                ),
            ));
        }
        Ok(())
    }

    /// `T_imu_base` from `base_T_imu` (identity when absent).
    pub fn imu_t_base(&self) -> Result<nalgebra::Isometry3<f64>, (String, String)> {
        let Some(v) = &self.base_T_imu else {
            return Ok(nalgebra::Isometry3::identity());
        };
        let key = || "node.base_T_imu".to_string();
        let a: [f64; 7] = v.as_slice().try_into().map_err(|_| {
            (
                key(),
                format!("needs 7 numbers [x, y, z, qx, qy, qz, qw], got {}", v.len()),
            )
        })?;
        let t = crate::config::Transform::from_array(a).map_err(|e| (key(), e))?;
        Ok(t.0.inverse())
    }
}

/// The top-level parameter groups gs_livo reads: the config's sections and `node`.
fn our_sections() -> Vec<String> {
    let mut v = vec![
        NODE_PREFIX.trim_end_matches('.').to_string(),
        MAP_PREFIX.trim_end_matches('.').to_string(),
    ];
    if let Ok(serde_yaml::Value::Mapping(m)) = serde_yaml::to_value(Config::default()) {
        v.extend(m.keys().filter_map(|k| k.as_str().map(str::to_string)));
    }
    v
}

/// Splits the node's parameters into the shared config and the node's own settings. Keys under
/// gs_livo's sections are strict (an unknown key is an error naming it); keys of other
/// top-level groups (other nodes' parameters in a shared `/**` file) are ignored with a warning.
///
/// `origin` names the parameter source in errors (e.g. `ROS parameters of /gs_livo`).
pub fn split_params(params: &ParamMap, origin: &str) -> Result<(Config, NodeParams), ConfigError> {
    let mut config_params = ParamMap::new();
    let mut node = serde_yaml::Mapping::new();
    let mut map = serde_yaml::Mapping::new();
    let ours = our_sections();
    let mut foreign = Vec::new();
    for (key, value) in params {
        if ROS_RESERVED.contains(&key.as_str())
            || ROS_RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            continue;
        }
        let section = key.split('.').next().unwrap_or_default();
        if !ours.iter().any(|s| s == section) {
            foreign.push(key.as_str());
            continue;
        }
        if let Some(name) = key.strip_prefix(NODE_PREFIX) {
            node.insert(name.into(), value.clone());
        } else if let Some(name) = key.strip_prefix(MAP_PREFIX) {
            map.insert(name.into(), value.clone());
        } else {
            config_params.insert(key.clone(), value.clone());
        }
    }
    if !foreign.is_empty() {
        tracing::warn!(
            "{origin}: ignoring {} parameters outside gs_livo's sections ({}): other nodes' keys \
             of a shared `/**` file; a misspelt section name of ours also lands here",
            foreign.len(),
            foreign.join(", ")
        );
    }
    let config = Config::from_params(&config_params, origin)?;
    let mut node: NodeParams = serde_path_to_error::deserialize(serde_yaml::Value::Mapping(node))
        .map_err(|e| ConfigError::Key {
        file: origin.into(),
        key: format!("{NODE_PREFIX}{}", e.path()),
        message: e.inner().to_string(),
    })?;
    node.map = serde_path_to_error::deserialize(serde_yaml::Value::Mapping(map)).map_err(|e| {
        ConfigError::Key {
            file: origin.into(),
            key: format!("{MAP_PREFIX}{}", e.path()),
            message: e.inner().to_string(),
        }
    })?;
    node.validate().map_err(|(key, message)| ConfigError::Key {
        file: origin.into(),
        key,
        message,
    })?;
    Ok((config, node))
}

/// Reads a parameter file (the node's entry, or `/**`) with `key=value` overrides into the
/// config and the node's settings, as the node reads the same keys from ROS.
pub fn load_node_file(
    path: &std::path::Path,
    overrides: &[String],
) -> Result<(Config, NodeParams), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let origin = path.display().to_string();
    let mut params = crate::config::parse_params(&text, &origin)?;
    crate::config::apply_overrides(&mut params, overrides)?;
    split_params(&params, &origin)
}

/// Converts r2r's parameter values into the YAML values the config parser takes.
#[cfg(feature = "ros2")]
pub fn param_map_from_r2r<'a>(
    params: impl IntoIterator<Item = (&'a String, &'a r2r::Parameter)>,
) -> ParamMap {
    params
        .into_iter()
        .filter_map(|(k, p)| param_value_to_yaml(&p.value).map(|v| (k.clone(), v)))
        .collect()
}

/// One r2r parameter value as YAML; `None` for a declared but unset parameter.
#[cfg(feature = "ros2")]
pub fn param_value_to_yaml(v: &r2r::ParameterValue) -> Option<serde_yaml::Value> {
    use r2r::ParameterValue as P;
    use serde_yaml::Value as Y;
    fn seq<T: Clone + Into<Y>>(v: &[T]) -> Y {
        Y::Sequence(v.iter().cloned().map(Into::into).collect())
    }
    Some(match v {
        P::NotSet => return None,
        P::Bool(b) => Y::Bool(*b),
        P::Integer(i) => Y::from(*i),
        P::Double(d) => Y::from(*d),
        P::String(s) => Y::String(s.clone()),
        P::BoolArray(a) => seq(a),
        P::ByteArray(a) => seq(a),
        P::IntegerArray(a) => seq(a),
        P::DoubleArray(a) => seq(a),
        P::StringArray(a) => seq(a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> ParamMap {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), serde_yaml::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn splits_config_node_and_ros_parameters() {
        let p = map(&[
            ("use_sim_time", "true"),
            ("qos_overrides./tf.publisher.depth", "100"),
            ("topics.lidar", "/ouster/points"),
            ("imu.accel_scale", "9.81"),
            (
                "extrinsics.imu_T_lidar",
                "[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]",
            ),
            ("node.save_dir", "/tmp/maps"),
            ("node.queue_capacity", "16"),
        ]);
        let (cfg, node) = split_params(&p, "ROS parameters of /gs_livo").unwrap();
        assert_eq!(cfg.topics.lidar, "/ouster/points");
        assert_eq!(cfg.imu.accel_scale, 9.81);
        assert!((cfg.extrinsics.imu_T_lidar.0.translation.vector.x - 0.1).abs() < 1e-12);
        assert_eq!(node.save_dir, "/tmp/maps");
        assert_eq!(node.queue_capacity, 16);
        assert_eq!(node.map_max_points, NodeParams::default().map_max_points);
        assert_eq!(node.map, MapParams::default());
    }

    /// `map.*` is a group of its own: read, typed, and strict.
    #[test]
    fn map_parameters_are_read_and_checked() {
        let p = map(&[("map.load", "/maps/a/map"), ("map.mode", "localise")]);
        let (_, node) = split_params(&p, "f").unwrap();
        assert_eq!(node.map.load, "/maps/a/map");
        assert_eq!(node.map.mode, crate::pipeline::MapMode::Localise);
        assert!(!node.map.origin);
        let err = split_params(&map(&[("map.mode", "explore")]), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("map.mode"), "{err}");
        let err = split_params(&map(&[("map.lod", "x")]), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lod"), "{err}");
    }

    #[test]
    fn other_nodes_keys_are_ignored_ours_stay_strict() {
        let p = map(&[
            ("robot_description", "'<robot/>'"),
            ("publish_frequency", "50.0"),
            ("topics.lidar", "/x"),
            ("node.base_T_imu", "[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]"),
        ]);
        let (cfg, node) = split_params(&p, "shared.yaml").unwrap();
        assert_eq!(cfg.topics.lidar, "/x");
        let t = node.imu_t_base().unwrap();
        assert!(
            (t.translation.vector.x + 0.1).abs() < 1e-12,
            "inverse of base_T_imu"
        );
        let err = split_params(&map(&[("topics.lidr", "/x")]), "shared.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lidr"), "{err}");
        let err = split_params(&map(&[("node.base_T_imu", "[0.1, 0.0]")]), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.base_T_imu"), "{err}");
    }

    #[test]
    fn errors_name_the_key_and_the_source() {
        let err = split_params(
            &map(&[("node.save_dri", "x")]),
            "ROS parameters of /gs_livo",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("save_dri") && err.contains("/gs_livo"),
            "{err}"
        );
        let err = split_params(&map(&[("node.map_publish_period", "0.0")]), "src")
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.map_publish_period"), "{err}");
        let err = split_params(&map(&[("node.queue_capacity", "-3")]), "src")
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.queue_capacity"), "{err}");
        let err = split_params(&map(&[("camera.fz", "1.0")]), "src")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fz"), "{err}");
    }

    /// Every shipped parameter file goes through the node's path as well as the CLI's.
    #[test]
    fn shipped_files_split_like_the_cli_loads_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let origin = path.display().to_string();
            let mut p = crate::config::parse_params(&text, &origin).unwrap();
            p.insert("use_sim_time".into(), serde_yaml::Value::Bool(true));
            let (cfg, _) = split_params(&p, &origin).unwrap();
            assert_eq!(cfg, Config::load(&path, &[]).unwrap(), "{origin}");
        }
    }

    #[cfg(feature = "ros2")]
    #[test]
    fn r2r_values_become_yaml() {
        use r2r::ParameterValue as P;
        assert_eq!(param_value_to_yaml(&P::NotSet), None);
        assert_eq!(
            param_value_to_yaml(&P::DoubleArray(vec![0.5, 1.0])),
            Some(serde_yaml::from_str("[0.5, 1.0]").unwrap())
        );
        assert_eq!(
            param_value_to_yaml(&P::Integer(1280)),
            Some(serde_yaml::Value::from(1280))
        );
    }
}
