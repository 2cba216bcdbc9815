//! config/synthetic.yaml is the rig `gs_livo sim` simulates (so `gs_livo run` on a simulated
//! bag with the shipped file uses the true extrinsics, intrinsics and noise densities).

use gs_livo::config::Config;

#[test]
fn shipped_synthetic_rig_matches_the_simulator() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/synthetic.yaml");
    let shipped = Config::load(&path, &[]).unwrap();
    let rig = gs_livo::sim::default_rig();
    assert_eq!(shipped.topics, rig.topics);
    assert_eq!(shipped.camera, rig.camera);
    assert_eq!(shipped.imu, rig.imu);
    for (a, b) in [
        (
            shipped.extrinsics.imu_T_lidar.0,
            rig.extrinsics.imu_T_lidar.0,
        ),
        (
            shipped.extrinsics.imu_T_camera.0,
            rig.extrinsics.imu_T_camera.0,
        ),
    ] {
        let d = a.inverse() * b;
        assert!(d.translation.vector.norm() < 1e-12 && d.rotation.angle() < 1e-12);
    }
    // Not the identity: the estimator must apply the extrinsics.
    assert!(rig.extrinsics.imu_T_lidar.0.translation.vector.norm() > 0.05);
    assert!(rig.extrinsics.imu_T_camera.0.rotation.angle() > 1.0);
}
