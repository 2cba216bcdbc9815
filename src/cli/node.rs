//! `gs_livo node`: the ROS 2 node (built with `--features ros2`).
//!
//! Started by `ros2 run gs_livo gs_livo node --ros-args --params-file config/<rig>.yaml` or the
//! launch files; rcl reads the `--ros-args` part from the process arguments itself.

use gs_livo::pipeline::{Mode, PipelineOptions};

/// Arguments of `gs_livo node`.
#[derive(clap::Args)]
pub struct Args {
    /// lio: no Gaussian map; livo: with the map and the photometric update.
    #[arg(long, value_enum, default_value = "livo")]
    pub mode: Mode,
    /// ROS arguments (`--ros-args --params-file FILE -p key:=value -r from:=to ...`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ROS_ARGS"
    )]
    pub ros_args: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    // SIGINT and SIGTERM (what `ros2 launch` sends): finish the backlog, save, exit.
    let stop = super::progress::stop_flag();
    let pipeline = PipelineOptions {
        mode: a.mode,
        mapping: a.mode != Mode::Lio,
        ..Default::default()
    };
    let outcome = gs_livo::ros::node::run(pipeline, stop)?;
    if let Some(Err(e)) = outcome.final_save {
        anyhow::bail!("final save: {e}");
    }
    Ok(())
}
