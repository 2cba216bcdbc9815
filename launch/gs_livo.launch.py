"""Start the gs_livo node on live sensors, optionally with RViz.

    ros2 launch gs_livo gs_livo.launch.py config:=/path/to/rig.yaml rviz:=true namespace:=robot1

The parameter file is the same one the offline CLI reads (`gs_livo run --config ...`).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare("gs_livo")
    config = LaunchConfiguration("config")
    namespace = LaunchConfiguration("namespace")
    rviz = LaunchConfiguration("rviz")
    rviz_config = LaunchConfiguration("rviz_config")
    use_sim_time = LaunchConfiguration("use_sim_time")
    save_dir = LaunchConfiguration("save_dir")
    log_level = LaunchConfiguration("log_level")

    args = [
        DeclareLaunchArgument(
            "config",
            default_value=PathJoinSubstitution([share, "config", "livox_mid360.yaml"]),
            description="ROS 2 parameter file of the sensor rig (see config/)",
        ),
        DeclareLaunchArgument(
            "namespace", default_value="", description="namespace of the node and its topics"
        ),
        DeclareLaunchArgument("rviz", default_value="true", description="start RViz"),
        DeclareLaunchArgument(
            "rviz_config",
            default_value=PathJoinSubstitution([share, "rviz", "gs_livo.rviz"]),
            description="RViz configuration",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            description="follow /clock (true with `ros2 bag play --clock`)",
        ),
        DeclareLaunchArgument(
            "save_dir",
            default_value="gs_livo_output",
            description="folder for the map (PLY) and trajectory (TUM) on save and shutdown",
        ),
        DeclareLaunchArgument(
            "log_level", default_value="info", description="RUST_LOG filter of the node"
        ),
    ]

    sim_time = ParameterValue(use_sim_time, value_type=bool)
    node = Node(
        package="gs_livo",
        executable="gs_livo",
        name="gs_livo",
        namespace=namespace,
        arguments=["node"],
        parameters=[config, {"use_sim_time": sim_time, "node.save_dir": save_dir}],
        additional_env={"RUST_LOG": log_level},
        output="screen",
        emulate_tty=True,
        # The node saves map and trajectory on SIGINT; give it time before SIGTERM.
        sigterm_timeout="60",
    )
    rviz_node = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=namespace,
        arguments=["-d", rviz_config],
        parameters=[{"use_sim_time": sim_time}],
        condition=IfCondition(rviz),
        output="log",
    )
    return LaunchDescription(args + [node, rviz_node])
