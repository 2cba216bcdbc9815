//! QoS profiles of the node's topics.

use r2r::QosProfile;

/// Sensor subscriptions: best effort (matches both best-effort drivers and reliable
/// publishers such as `ros2 bag play`), keep the last `depth`.
pub fn sensor(depth: usize) -> QosProfile {
    QosProfile::sensor_data().keep_last(depth)
}

/// Odometry, path, diagnostics: reliable, volatile.
pub fn outputs() -> QosProfile {
    QosProfile::default().keep_last(10)
}

/// Large, slowly refreshed outputs (map centres, rendered view): only the newest matters.
pub fn latest() -> QosProfile {
    QosProfile::default().keep_last(1)
}

/// `/tf`: reliable, deep enough for IMU-rate bursts.
pub fn tf() -> QosProfile {
    QosProfile::default().keep_last(100)
}

/// `/tf_static`: reliable and transient local, so late subscribers get the extrinsics.
pub fn tf_static() -> QosProfile {
    QosProfile::default().keep_last(1).transient_local()
}
