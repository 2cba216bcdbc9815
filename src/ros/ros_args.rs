//! The ROS 2 command-line shape (`--ros-args --params-file F -p key:=value -r from:=to`) read
//! by gs_livo itself, for transports without rcl (DDS): the node starts with the same command
//! line as under `ros2 run`, and parameters land in the same [`ParamMap`] r2r would give.

use std::path::PathBuf;

use crate::config::{apply_overrides, parse_params, ConfigError, ParamMap};

/// What the command line asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RosArgs {
    /// Parameter files in order (later files win).
    pub params_files: Vec<PathBuf>,
    /// `-p key:=value`, as `key=value` overrides applied after the files.
    pub params: Vec<String>,
    /// Arguments that were skipped with a warning (unknown, or remaps we do not apply).
    pub ignored: Vec<String>,
}

/// Errors of the command line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RosArgsError {
    #[error("ROS arguments: `{0}` needs a value")]
    MissingValue(String),
    #[error("ROS arguments: `{0}` is not of the form name:=value")]
    NotAssignment(String),
}

fn assignment(flag: &str, v: Option<&String>) -> Result<(String, String), RosArgsError> {
    let v = v.ok_or_else(|| RosArgsError::MissingValue(flag.into()))?;
    let (k, val) = v
        .split_once(":=")
        .ok_or_else(|| RosArgsError::NotAssignment(v.clone()))?;
    if k.is_empty() {
        return Err(RosArgsError::NotAssignment(v.clone()));
    }
    Ok((k.to_string(), val.to_string()))
}

/// Parses the arguments after the subcommand. ROS options count only inside `--ros-args`
/// (until `--` or the next `--ros-args`), as rcl reads them; anything else is warned about
/// and skipped, never fatal except a flag without its value.
pub fn parse(args: &[String]) -> Result<RosArgs, RosArgsError> {
    let mut out = RosArgs::default();
    let mut in_ros = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ros-args" => in_ros = true,
            "--" => in_ros = false,
            _ if !in_ros => out.ignored.push(a.clone()),
            "--params-file" => {
                let f = it
                    .next()
                    .ok_or_else(|| RosArgsError::MissingValue(a.clone()))?;
                out.params_files.push(PathBuf::from(f));
            }
            "-p" | "--param" => {
                let (k, v) = assignment(a, it.next())?;
                out.params.push(format!("{k}={v}"));
            }
            "-r" | "--remap" => {
                let (k, v) = assignment(a, it.next())?;
                out.ignored.push(format!("{a} {k}:={v}"));
            }
            "--log-level" | "--enclave" | "-e" | "--log-config-file" => {
                let v = it.next().cloned().unwrap_or_default();
                out.ignored.push(format!("{a} {v}"));
            }
            _ => out.ignored.push(a.clone()),
        }
    }
    for i in &out.ignored {
        if i.contains("__node:=") || i.contains("__ns:=") {
            tracing::warn!(
                "`{i}`: the DDS transport runs as /{} in the root namespace; renaming is not \
                 supported (remap topics in the parameter file instead)",
                crate::config::NODE_NAME
            );
        } else {
            tracing::warn!("ROS argument `{i}` is not supported by this transport: skipped");
        }
    }
    Ok(out)
}

impl RosArgs {
    /// The parameters: every file's entry for the node (or `/**`), then the `-p` overrides.
    pub fn load(&self) -> Result<ParamMap, ConfigError> {
        let mut params = ParamMap::new();
        for f in &self.params_files {
            let text = std::fs::read_to_string(f).map_err(|source| ConfigError::Io {
                file: f.clone(),
                source,
            })?;
            params.extend(parse_params(&text, &f.display().to_string())?);
        }
        apply_overrides(&mut params, &self.params)?;
        Ok(params)
    }
}

/// `use_sim_time` from the parameters (a bool; absent: false).
pub fn use_sim_time(params: &ParamMap) -> bool {
    params
        .get("use_sim_time")
        .and_then(serde_yaml::Value::as_bool)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn reads_files_params_and_skips_the_rest() {
        let a = parse(&args(
            "stray --ros-args --params-file a.yaml -p node.save_dir:=/tmp/x \
             --param use_sim_time:=true -r __node:=other --log-level debug --params-file b.yaml \
             --weird -- -p not:=ros",
        ))
        .unwrap();
        assert_eq!(
            a.params_files,
            vec![PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]
        );
        assert_eq!(a.params, vec!["node.save_dir=/tmp/x", "use_sim_time=true"]);
        assert_eq!(
            a.ignored,
            vec![
                "stray",
                "-r __node:=other",
                "--log-level debug",
                "--weird",
                "-p",
                "not:=ros"
            ]
        );
    }

    #[test]
    fn malformed_flags_are_errors() {
        assert_eq!(
            parse(&args("--ros-args --params-file")),
            Err(RosArgsError::MissingValue("--params-file".into()))
        );
        assert_eq!(
            parse(&args("--ros-args -p key=value")),
            Err(RosArgsError::NotAssignment("key=value".into()))
        );
        assert_eq!(
            parse(&args("--ros-args -p :=3")),
            Err(RosArgsError::NotAssignment(":=3".into()))
        );
    }

    #[test]
    fn later_files_and_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(
            &a,
            "/**:\n  ros__parameters:\n    topics:\n      imu: /a\n      lidar: /la\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "gs_livo:\n  ros__parameters:\n    use_sim_time: true\n    topics:\n      imu: /b\n",
        )
        .unwrap();
        let mut r = RosArgs {
            params_files: vec![a, b],
            params: vec!["topics.lidar=/p".into()],
            ignored: vec![],
        };
        let p = r.load().unwrap();
        assert_eq!(p["topics.imu"], serde_yaml::Value::from("/b"));
        assert_eq!(p["topics.lidar"], serde_yaml::Value::from("/p"));
        assert!(use_sim_time(&p));
        r.params_files.push(dir.path().join("missing.yaml"));
        assert!(r.load().unwrap_err().to_string().contains("missing.yaml"));
    }
}
