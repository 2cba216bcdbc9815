//! ros2msg definition texts, with dependent types appended the way rosbag2 writes MCAP schemas
//! (a line of 80 `=` then `MSG: pkg/Type`), so readers without ROS can rebuild the types.

macro_rules! sep {
    ($name:literal) => {
        concat!(
            "\n================================================================================\nMSG: ",
            $name,
            "\n"
        )
    };
}

macro_rules! time {
    () => {
        concat!(
            sep!("builtin_interfaces/Time"),
            "int32 sec\nuint32 nanosec\n"
        )
    };
}
macro_rules! header {
    () => {
        concat!(
            sep!("std_msgs/Header"),
            "builtin_interfaces/Time stamp\nstring frame_id\n",
            time!()
        )
    };
}
macro_rules! vector3 {
    () => {
        concat!(
            sep!("geometry_msgs/Vector3"),
            "float64 x\nfloat64 y\nfloat64 z\n"
        )
    };
}
macro_rules! point {
    () => {
        concat!(
            sep!("geometry_msgs/Point"),
            "float64 x\nfloat64 y\nfloat64 z\n"
        )
    };
}
macro_rules! quaternion {
    () => {
        concat!(
            sep!("geometry_msgs/Quaternion"),
            "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n"
        )
    };
}
macro_rules! pose {
    () => {
        concat!(
            sep!("geometry_msgs/Pose"),
            "geometry_msgs/Point position\ngeometry_msgs/Quaternion orientation\n",
            point!(),
            quaternion!()
        )
    };
}
macro_rules! pose_cov {
    () => {
        concat!(
            sep!("geometry_msgs/PoseWithCovariance"),
            "geometry_msgs/Pose pose\nfloat64[36] covariance\n",
            pose!()
        )
    };
}

pub const POINT_CLOUD2: &str = concat!(
    "std_msgs/Header header\nuint32 height\nuint32 width\nsensor_msgs/PointField[] fields\n",
    "bool is_bigendian\nuint32 point_step\nuint32 row_step\nuint8[] data\nbool is_dense\n",
    header!(),
    sep!("sensor_msgs/PointField"),
    "uint8 INT8 = 1\nuint8 UINT8 = 2\nuint8 INT16 = 3\nuint8 UINT16 = 4\nuint8 INT32 = 5\n",
    "uint8 UINT32 = 6\nuint8 FLOAT32 = 7\nuint8 FLOAT64 = 8\n",
    "string name\nuint32 offset\nuint8 datatype\nuint32 count\n"
);

pub const IMU: &str = concat!(
    "std_msgs/Header header\ngeometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance\n",
    "geometry_msgs/Vector3 angular_velocity\nfloat64[9] angular_velocity_covariance\n",
    "geometry_msgs/Vector3 linear_acceleration\nfloat64[9] linear_acceleration_covariance\n",
    header!(),
    quaternion!(),
    vector3!()
);

pub const IMAGE: &str = concat!(
    "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\n",
    "uint32 step\nuint8[] data\n",
    header!()
);

pub const COMPRESSED_IMAGE: &str = concat!(
    "std_msgs/Header header\nstring format\nuint8[] data\n",
    header!()
);

pub const ODOMETRY: &str = concat!(
    "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\n",
    "geometry_msgs/TwistWithCovariance twist\n",
    header!(),
    pose_cov!(),
    sep!("geometry_msgs/TwistWithCovariance"),
    "geometry_msgs/Twist twist\nfloat64[36] covariance\n",
    sep!("geometry_msgs/Twist"),
    "geometry_msgs/Vector3 linear\ngeometry_msgs/Vector3 angular\n",
    vector3!()
);

pub const POSE_STAMPED: &str = concat!(
    "std_msgs/Header header\ngeometry_msgs/Pose pose\n",
    header!(),
    pose!()
);

pub const POSE_WITH_COVARIANCE_STAMPED: &str = concat!(
    "std_msgs/Header header\ngeometry_msgs/PoseWithCovariance pose\n",
    header!(),
    pose_cov!()
);

pub const PATH: &str = concat!(
    "std_msgs/Header header\ngeometry_msgs/PoseStamped[] poses\n",
    header!(),
    sep!("geometry_msgs/PoseStamped"),
    "std_msgs/Header header\ngeometry_msgs/Pose pose\n",
    pose!()
);

pub const TF_MESSAGE: &str = concat!(
    "geometry_msgs/TransformStamped[] transforms\n",
    sep!("geometry_msgs/TransformStamped"),
    "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/Transform transform\n",
    header!(),
    sep!("geometry_msgs/Transform"),
    "geometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation\n",
    vector3!(),
    quaternion!()
);

pub const LIVOX_CUSTOM_MSG: &str = concat!(
    "std_msgs/Header header\nuint64 timebase\nuint32 point_num\nuint8 lidar_id\nuint8[3] rsvd\n",
    "livox_ros_driver2/CustomPoint[] points\n",
    header!(),
    sep!("livox_ros_driver2/CustomPoint"),
    "uint32 offset_time\nfloat32 x\nfloat32 y\nfloat32 z\nuint8 reflectivity\nuint8 tag\nuint8 line\n"
);

pub const DIAGNOSTIC_ARRAY: &str = concat!(
    "std_msgs/Header header\ndiagnostic_msgs/DiagnosticStatus[] status\n",
    header!(),
    sep!("diagnostic_msgs/DiagnosticStatus"),
    "byte OK=0\nbyte WARN=1\nbyte ERROR=2\nbyte STALE=3\nbyte level\nstring name\nstring message\n",
    "string hardware_id\ndiagnostic_msgs/KeyValue[] values\n",
    sep!("diagnostic_msgs/KeyValue"),
    "string key\nstring value\n"
);

pub const STRING: &str = "string data\n";
