//! Typed configuration read from ROS 2 parameter files.
//!
//! The file layout is the one `ros2 run --ros-args --params-file` takes:
//! `<node>: { ros__parameters: { ... } }`, where nested maps are dotted parameter names. The
//! offline CLI and the node read the same files. Every section is a plain struct with defaults;
//! an unknown key or a bad value is an error that names the dotted key and the file.
//!
//! Sections owned by a module (e.g. `lio`, `lidar_map`, `render`) are defined in that module and
//! only collected here, so each room keeps its own knobs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::sensors::rig::{Camera, Extrinsics, Imu, TimeOffset, Transform};

/// The node name written into parameter files we generate.
pub const NODE_NAME: &str = "gs_livo";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not valid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: {message}")]
    Layout { file: String, message: String },
    #[error("{file}: key `{key}`: {message}")]
    Key {
        file: String,
        key: String,
        message: String,
    },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
}

/// `topics.*`: where the sensor data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    /// sensor_msgs/PointCloud2 or livox_ros_driver2/CustomMsg.
    pub lidar: String,
    /// sensor_msgs/Imu.
    pub imu: String,
    /// sensor_msgs/Image or sensor_msgs/CompressedImage.
    pub image: String,
    /// Optional nav_msgs/Odometry ground truth, used only for evaluation.
    pub ground_truth: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            lidar: "/points".into(),
            imu: "/imu".into(),
            image: "/image".into(),
            ground_truth: "/ground_truth/odom".into(),
        }
    }
}

/// `frames.*`: REP-105 frame names used for outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Frames {
    pub map: String,
    pub odom: String,
    pub base_link: String,
    pub lidar: String,
    pub camera: String,
}

impl Default for Frames {
    fn default() -> Self {
        Self {
            map: "map".into(),
            odom: "odom".into(),
            base_link: "base_link".into(),
            lidar: "lidar".into(),
            camera: "camera".into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub topics: Topics,
    pub extrinsics: Extrinsics,
    pub camera: Camera,
    pub imu: Imu,
    pub time_offset: TimeOffset,
    pub frames: Frames,
    pub lidar: crate::estimator::LidarConfig,
    pub lio: crate::estimator::LioConfig,
    pub lidar_map: crate::lidar_map::VoxelMapConfig,
    pub render: crate::render::RenderConfig,
    pub gaussian: crate::gaussian::GaussianConfig,
    pub visual: crate::estimator::VisualConfig,
}

/// Flat view of a parameter file: dotted name -> YAML value.
pub type ParamMap = BTreeMap<String, serde_yaml::Value>;

impl Config {
    /// Reads a ROS 2 parameter file and applies `key=value` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text, &path.display().to_string(), overrides)
    }

    /// Parses parameter-file text; `origin` names the file in errors.
    pub fn from_yaml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let mut params = parse_params(text, origin)?;
        apply_overrides(&mut params, overrides)?;
        Self::from_params(&params, origin)
    }

    /// Builds the typed config from flat parameters.
    pub fn from_params(params: &ParamMap, origin: &str) -> Result<Self, ConfigError> {
        let tree = unflatten(params).map_err(|message| ConfigError::Layout {
            file: origin.into(),
            message,
        })?;
        let json = serde_json::to_value(&tree).map_err(|e| ConfigError::Layout {
            file: origin.into(),
            message: e.to_string(),
        })?;
        let cfg: Config = serde_path_to_error::deserialize(json).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().to_string();
            ConfigError::Key {
                file: origin.into(),
                key,
                message,
            }
        })?;
        cfg.validate().map_err(|(key, message)| ConfigError::Key {
            file: origin.into(),
            key,
            message,
        })?;
        Ok(cfg)
    }

    /// Checks value ranges that types alone cannot express; returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.camera.validate()?;
        self.imu.validate()?;
        self.time_offset.validate()
    }

    /// The sections the LiDAR-inertial odometry reads.
    pub fn lio_setup(&self) -> crate::estimator::LioSetup {
        crate::estimator::LioSetup {
            lidar: self.lidar.clone(),
            lio: self.lio.clone(),
            lidar_map: self.lidar_map.clone(),
            imu: self.imu.clone(),
            imu_t_lidar: self.extrinsics.imu_T_lidar.0,
        }
    }

    /// The ingest corrections of the rig (accelerometer unit, clock offsets).
    pub fn sensor_corrections(&self) -> crate::sensors::measurement::SensorCorrections {
        crate::sensors::measurement::SensorCorrections::new(&self.imu, &self.time_offset)
    }

    /// Writes this config as a ROS 2 parameter file for node `NODE_NAME`.
    pub fn to_yaml(&self) -> String {
        let mut inner = serde_yaml::Mapping::new();
        inner.insert(
            "ros__parameters".into(),
            serde_yaml::to_value(self).expect("config serialises"),
        );
        let mut outer = serde_yaml::Mapping::new();
        outer.insert(NODE_NAME.into(), serde_yaml::Value::Mapping(inner));
        serde_yaml::to_string(&outer).expect("yaml serialises")
    }
}

/// Extracts the `ros__parameters` of the node from parameter-file text and flattens it.
///
/// Accepts a single node entry (any name, including the `/**` wildcard), or several of which
/// one is `gs_livo` or `/**`.
pub fn parse_params(text: &str, origin: &str) -> Result<ParamMap, ConfigError> {
    let root: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
        file: origin.into(),
        message: e.to_string(),
    })?;
    let layout = |message: &str| ConfigError::Layout {
        file: origin.into(),
        message: message.into(),
    };
    let serde_yaml::Value::Mapping(nodes) = root else {
        return Err(layout(
            "expected `<node>: { ros__parameters: {...} }` at the top level",
        ));
    };
    let node = if nodes.len() == 1 {
        nodes.values().next()
    } else {
        [NODE_NAME, "/**", "/gs_livo"]
            .iter()
            .find_map(|k| nodes.get(serde_yaml::Value::from(*k)))
    }
    .ok_or_else(|| layout("several node entries and none is `gs_livo` or `/**`"))?;
    let params = node
        .get("ros__parameters")
        .ok_or_else(|| layout("the node entry has no `ros__parameters` map"))?;
    let mut out = ParamMap::new();
    flatten("", params, &mut out).map_err(|m| layout(&m))?;
    Ok(out)
}

fn flatten(prefix: &str, v: &serde_yaml::Value, out: &mut ParamMap) -> Result<(), String> {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let k = match k {
                    serde_yaml::Value::String(s) => s.clone(),
                    other => return Err(format!("parameter names must be strings, got {other:?}")),
                };
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        other => {
            if prefix.is_empty() {
                return Err("`ros__parameters` must be a map".into());
            }
            out.insert(prefix.to_string(), other.clone());
            Ok(())
        }
    }
}

fn unflatten(params: &ParamMap) -> Result<serde_yaml::Value, String> {
    let mut root = serde_yaml::Mapping::new();
    for (key, value) in params {
        let parts: Vec<&str> = key.split('.').collect();
        let mut node = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let k = serde_yaml::Value::from(*part);
            if i + 1 == parts.len() {
                node.insert(k, value.clone());
            } else {
                let entry = node
                    .entry(k)
                    .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
                node = entry.as_mapping_mut().ok_or_else(|| {
                    format!("`{}` is both a value and a group", parts[..=i].join("."))
                })?;
            }
        }
    }
    Ok(serde_yaml::Value::Mapping(root))
}

/// Applies `key=value` overrides; the value is parsed as YAML (`1.5`, `true`, `[1, 2]`, `text`).
pub fn apply_overrides(params: &mut ParamMap, overrides: &[String]) -> Result<(), ConfigError> {
    for arg in overrides {
        let (key, value) = arg.split_once('=').ok_or_else(|| ConfigError::Override {
            arg: arg.clone(),
            message: "expected key=value".into(),
        })?;
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::Override {
                arg: arg.clone(),
                message: "empty key".into(),
            });
        }
        let value: serde_yaml::Value =
            serde_yaml::from_str(value).map_err(|e| ConfigError::Override {
                arg: arg.clone(),
                message: e.to_string(),
            })?;
        // A group override (`a.b=` on `a.b.c`) would be ambiguous: replace leaves only.
        params.retain(|k, _| !k.starts_with(&format!("{key}.")));
        params.insert(key.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
gs_livo:
  ros__parameters:
    topics:
      lidar: /livox/lidar
      imu: /livox/imu
    extrinsics.imu_T_lidar: [0.1, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0]
    camera:
      width: 1280
      distortion: [0.1, -0.2, 0.0, 0.0, 0.01]
    imu:
      gravity: 9.80665
"#;

    #[test]
    fn parses_nested_and_dotted_keys() {
        let c = Config::from_yaml_str(SAMPLE, "sample.yaml", &[]).unwrap();
        assert_eq!(c.topics.lidar, "/livox/lidar");
        assert_eq!(c.topics.image, Topics::default().image);
        assert_eq!(c.camera.width, 1280);
        assert!((c.extrinsics.imu_T_lidar.0.translation.vector.x - 0.1).abs() < 1e-12);
        assert_eq!(c.imu.gravity, 9.80665);
    }

    #[test]
    fn overrides_apply() {
        let c = Config::from_yaml_str(
            SAMPLE,
            "sample.yaml",
            &["camera.fx=500.5".into(), "topics.imu=/imu/data".into()],
        )
        .unwrap();
        assert_eq!(c.camera.fx, 500.5);
        assert_eq!(c.topics.imu, "/imu/data");
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let err = Config::from_yaml_str(SAMPLE, "rig.yaml", &["camera.fz=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("rig.yaml"), "{err}");
        assert!(err.contains("camera"), "{err}");
        assert!(err.contains("fz"), "{err}");
    }

    #[test]
    fn bad_value_names_key() {
        let err = Config::from_yaml_str(SAMPLE, "rig.yaml", &["camera.width=-3".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("camera.width"), "{err}");
        let err = Config::from_yaml_str(
            SAMPLE,
            "rig.yaml",
            &["extrinsics.imu_T_camera=[0,0,0,0,0,0,2]".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("extrinsics.imu_T_camera"), "{err}");
        assert!(err.contains("unit norm"), "{err}");
        let err = Config::from_yaml_str(SAMPLE, "rig.yaml", &["camera.fx=0".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("camera.fx"), "{err}");
    }

    #[test]
    fn round_trips_through_yaml() {
        let mut c = Config::default();
        c.camera.fx = 321.5;
        c.extrinsics.imu_T_camera =
            Transform::from_array([0.1, 0.2, 0.3, 0.5, -0.5, 0.5, -0.5]).unwrap();
        let back = Config::from_yaml_str(&c.to_yaml(), "generated", &[]).unwrap();
        assert_eq!(back.camera, c.camera);
        let d = back.extrinsics.imu_T_camera.0.inverse() * c.extrinsics.imu_T_camera.0;
        assert!(d.translation.vector.norm() < 1e-12 && d.rotation.angle() < 1e-12);
    }

    #[test]
    fn rejects_bad_layout() {
        assert!(Config::from_yaml_str("a: 1", "x.yaml", &[]).is_err());
        assert!(Config::from_yaml_str("[1, 2]", "x.yaml", &[]).is_err());
        assert!(Config::from_yaml_str("n: {ros__parameters: 3}", "x.yaml", &[]).is_err());
    }
}
