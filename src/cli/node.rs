//! `gs_livo node`: the ROS 2 node (built with `--features ros2` for r2r, `--features dds` for
//! the DDS transport that needs no ROS installation).
//!
//! Started by `ros2 run gs_livo gs_livo node --ros-args --params-file config/<rig>.yaml` or the
//! launch files; under r2r, rcl reads the `--ros-args` part from the process arguments itself,
//! under DDS gs_livo reads the same arguments ([`gs_livo::ros::ros_args`]).

use gs_livo::pipeline::{Mode, PipelineOptions};

/// How the node talks to ROS 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// rcl through r2r: needs a sourced ROS 2 installation (feature `ros2`).
    R2r,
    /// A pure-Rust DDS participant on the ROS 2 wire format (feature `dds`).
    Dds,
}

impl Default for TransportKind {
    fn default() -> Self {
        if cfg!(feature = "ros2") {
            Self::R2r
        } else {
            Self::Dds
        }
    }
}

/// Arguments of `gs_livo node`.
#[derive(clap::Args)]
pub struct Args {
    /// lio: no Gaussian map; livo: with the map and the photometric update.
    #[arg(long, value_enum, default_value = "livo")]
    pub mode: Mode,
    /// r2r (a ROS 2 installation) or dds (none needed; domain from ROS_DOMAIN_ID).
    #[arg(long, value_enum, default_value_t)]
    pub transport: TransportKind,
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
    let outcome = match a.transport {
        #[cfg(feature = "ros2")]
        TransportKind::R2r => gs_livo::ros::node::run(pipeline, stop)?,
        #[cfg(feature = "dds")]
        TransportKind::Dds => {
            let args = gs_livo::ros::ros_args::parse(&a.ros_args)?;
            gs_livo::ros::dds::run(&args, pipeline, stop)?
        }
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "this gs_livo was built without the {other:?} transport: rebuild with \
             `--features {}`",
            if other == TransportKind::R2r {
                "ros2"
            } else {
                "dds"
            }
        ),
    };
    if let Some(Err(e)) = outcome.final_save {
        anyhow::bail!("final save: {e}");
    }
    Ok(())
}
