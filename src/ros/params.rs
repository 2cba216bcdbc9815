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
/// Prefix of the node's own parameters.
pub const NODE_PREFIX: &str = "node.";

/// `node.*`: settings of the ROS node only (the offline CLI has no use for them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeParams {
    /// Where the map (PLY) and trajectory (TUM) go when saving without an explicit folder.
    pub save_dir: String,
    /// Save map and trajectory when the node shuts down.
    pub save_on_shutdown: bool,
    /// Capacity of the channel from the subscriptions into the pipeline; a full channel drops
    /// (and counts) the newest message rather than stalling the ROS executor.
    pub queue_capacity: usize,
    /// Publish `odom -> base_link` (and `map -> odom`) on /tf.
    pub publish_tf: bool,
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
}

impl Default for NodeParams {
    fn default() -> Self {
        Self {
            save_dir: "gs_livo_output".into(),
            save_on_shutdown: true,
            queue_capacity: 4096,
            publish_tf: true,
            publish_imu_odometry: true,
            map_publish_period: 2.0,
            map_max_points: 200_000,
            path_max_poses: 20_000,
            diagnostics_period: 1.0,
            save_timeout: 60.0,
        }
    }
}

impl NodeParams {
    fn validate(&self) -> Result<(), (String, String)> {
        let positive = [
            ("node.map_publish_period", self.map_publish_period),
            ("node.diagnostics_period", self.diagnostics_period),
            ("node.save_timeout", self.save_timeout),
        ];
        for (k, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err((k.into(), format!("must be positive seconds, got {v}")));
            }
        }
        if self.queue_capacity == 0 {
            return Err(("node.queue_capacity".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Splits the node's parameters into the shared config and the node's own settings.
///
/// `origin` names the parameter source in errors (e.g. `ROS parameters of /gs_livo`).
pub fn split_params(params: &ParamMap, origin: &str) -> Result<(Config, NodeParams), ConfigError> {
    let mut config_params = ParamMap::new();
    let mut node = serde_yaml::Mapping::new();
    for (key, value) in params {
        if ROS_RESERVED.contains(&key.as_str())
            || ROS_RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            continue;
        }
        match key.strip_prefix(NODE_PREFIX) {
            Some(name) => {
                node.insert(name.into(), value.clone());
            }
            None => {
                config_params.insert(key.clone(), value.clone());
            }
        }
    }
    let config = Config::from_params(&config_params, origin)?;
    let node: NodeParams = serde_path_to_error::deserialize(serde_yaml::Value::Mapping(node))
        .map_err(|e| ConfigError::Key {
            file: origin.into(),
            key: format!("node.{}", e.path()),
            message: e.inner().to_string(),
        })?;
    node.validate().map_err(|(key, message)| ConfigError::Key {
        file: origin.into(),
        key,
        message,
    })?;
    Ok((config, node))
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
