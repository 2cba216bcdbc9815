"""Replay a rosbag2 recording through the gs_livo node on simulated time.

    ros2 launch gs_livo replay.launch.py bag:=/data/run1 config:=/path/to/rig.yaml rate:=1.0

Starts the node (and RViz) with use_sim_time, then `ros2 bag play --clock` on the bag
(folder with metadata.yaml, or a bare .mcap/.db3 file). Shuts everything down when the bag ends,
which makes the node save its map and trajectory.
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    IncludeLaunchDescription,
    RegisterEventHandler,
    TimerAction,
)
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare("gs_livo")
    bag = LaunchConfiguration("bag")
    rate = LaunchConfiguration("rate")
    start_delay = LaunchConfiguration("start_delay")
    shutdown_at_end = LaunchConfiguration("shutdown_at_end")

    args = [
        DeclareLaunchArgument("bag", description="rosbag2 folder or .mcap/.db3 file"),
        DeclareLaunchArgument(
            "config",
            default_value=PathJoinSubstitution([share, "config", "livox_mid360.yaml"]),
            description="ROS 2 parameter file of the rig that recorded the bag",
        ),
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("rviz", default_value="true"),
        DeclareLaunchArgument("save_dir", default_value="gs_livo_output"),
        DeclareLaunchArgument("log_level", default_value="info"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument(
            "start_delay",
            default_value="2.0",
            description="seconds to let the node subscribe before playback starts",
        ),
        DeclareLaunchArgument(
            "shutdown_at_end",
            default_value="true",
            description="stop the node (and save) when playback ends",
        ),
    ]

    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "gs_livo.launch.py"])),
        launch_arguments={
            "config": LaunchConfiguration("config"),
            "namespace": LaunchConfiguration("namespace"),
            "rviz": LaunchConfiguration("rviz"),
            "save_dir": LaunchConfiguration("save_dir"),
            "log_level": LaunchConfiguration("log_level"),
            "use_sim_time": "true",
        }.items(),
    )
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", bag, "--clock", "--rate", rate],
        output="screen",
    )
    stop_at_end = RegisterEventHandler(
        OnProcessExit(
            target_action=play,
            on_exit=[EmitEvent(event=Shutdown(reason="bag playback finished"))],
        ),
        condition=IfCondition(shutdown_at_end),
    )
    return LaunchDescription(
        args + [node, stop_at_end, TimerAction(period=start_delay, actions=[play])]
    )
