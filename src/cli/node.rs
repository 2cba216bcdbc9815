//! `gs_livo node`: the ROS 2 node (built with `--features ros2`).
//!
//! Started by `ros2 run gs_livo gs_livo node --ros-args --params-file config/<rig>.yaml` or the
//! launch files; rcl reads the `--ros-args` part from the process arguments itself.

/// Arguments of `gs_livo node`.
#[derive(clap::Args)]
pub struct Args {
    /// ROS arguments (`--ros-args --params-file FILE -p key:=value -r from:=to ...`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ROS_ARGS"
    )]
    pub ros_args: Vec<String>,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    gs_livo::ros::node::run(|config| {
        Box::new(gs_livo::pipeline::live::PipelineBackend::new(
            config.clone(),
            gs_livo::pipeline::PipelineOptions::default(),
        ))
    })?;
    Ok(())
}
