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
    // The estimator pipeline plugs in here through `gs_livo::ros::outputs::Backend` once it
    // exists; until then the node forwards and counts sensor data without estimating.
    tracing::warn!("no estimator pipeline linked yet: the node checks sensor input only");
    let backend = Box::new(gs_livo::ros::passive::PassiveBackend);
    gs_livo::ros::node::run(backend)?;
    Ok(())
}
