//! The rig: the camera (intrinsics, distortion), the IMU's noise, the extrinsics between the
//! sensors and the time offsets between their clocks. These are the `camera.*`, `imu.*`,
//! `extrinsics.*` and `time_offset.*` sections of a parameter file; they sit here, below every
//! module that uses them, and `config` only collects them.

use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rigid transform written as `[x, y, z, qx, qy, qz, qw]` in parameter files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform(pub Isometry3<f64>);

impl Default for Transform {
    fn default() -> Self {
        Self(Isometry3::identity())
    }
}

impl Transform {
    pub fn from_array(v: [f64; 7]) -> Result<Self, String> {
        if v.iter().any(|x| !x.is_finite()) {
            return Err("all seven entries must be finite".into());
        }
        let q = Quaternion::new(v[6], v[3], v[4], v[5]);
        let n = q.norm();
        if (n - 1.0).abs() > 1e-3 {
            return Err(format!(
                "quaternion [qx, qy, qz, qw] must have unit norm (has {n:.6})"
            ));
        }
        Ok(Self(Isometry3::from_parts(
            Translation3::new(v[0], v[1], v[2]),
            UnitQuaternion::from_quaternion(q),
        )))
    }

    pub fn to_array(&self) -> [f64; 7] {
        let t = self.0.translation.vector;
        let q = self.0.rotation.quaternion();
        [t.x, t.y, t.z, q.i, q.j, q.k, q.w]
    }
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<f64> = Vec::deserialize(d)?;
        let arr: [f64; 7] = v.try_into().map_err(|v: Vec<f64>| {
            serde::de::Error::custom(format!(
                "expected [x, y, z, qx, qy, qz, qw] (7 numbers), got {} numbers",
                v.len()
            ))
        })?;
        Transform::from_array(arr).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Transform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_array().serialize(s)
    }
}

/// `extrinsics.*`: sensor frames into the IMU (body) frame.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Extrinsics {
    pub imu_T_lidar: Transform,
    pub imu_T_camera: Transform,
}

/// `camera.*`: the camera of the rig, the one camera type of the crate: pinhole intrinsics with
/// optional radial-tangential distortion, and its projection into images (for colouring new
/// Gaussians and for view-frustum tests). Pixel convention as OpenCV: the centre of pixel
/// (i, j) is at (u, v) = (i, j). The rasteriser's undistorted view with clip planes is
/// `render::Camera`, made from this one by `gaussian::render_camera`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Camera {
    pub width: u32,
    pub height: u32,
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    /// `[k1, k2, p1, p2, k3]`; zeros mean none. Read from `[]` or five numbers; omitted on
    /// output when all zero, since ROS 2 rejects empty arrays in parameter files.
    #[serde(
        skip_serializing_if = "no_distortion",
        serialize_with = "write_distortion",
        deserialize_with = "read_distortion"
    )]
    pub distortion: [f64; 5],
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fx: 400.0,
            fy: 400.0,
            cx: 320.0,
            cy: 240.0,
            distortion: [0.0; 5],
        }
    }
}

/// Points closer than this to the camera plane are not projected (m).
pub const NEAR: f64 = 0.05;

impl Camera {
    /// Checks value ranges that types alone cannot express; returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        positive(&[("camera.fx", self.fx), ("camera.fy", self.fy)])?;
        if self.width == 0 || self.height == 0 {
            return Err(("camera.width".into(), "image size must be non-zero".into()));
        }
        Ok(())
    }

    /// The same camera at `1/factor` resolution (pixel centres stay consistent).
    pub fn downsampled(&self, factor: u32) -> Self {
        if factor <= 1 {
            return self.clone();
        }
        self.resized(self.width / factor, self.height / factor)
    }

    /// The same camera imaging `width` x `height` pixels over the same field of view: the
    /// image borders stay where they were, so each axis scales by its size ratio (pixel centres
    /// consistent with area resampling, see `resample`). Distortion acts on normalised
    /// coordinates and is unchanged.
    pub fn resized(&self, width: u32, height: u32) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let sx = f64::from(width) / f64::from(self.width.max(1));
        let sy = f64::from(height) / f64::from(self.height.max(1));
        Self {
            width,
            height,
            fx: self.fx * sx,
            fy: self.fy * sy,
            cx: (self.cx + 0.5) * sx - 0.5,
            cy: (self.cy + 0.5) * sy - 0.5,
            distortion: self.distortion,
        }
    }

    pub fn has_distortion(&self) -> bool {
        self.distortion.iter().any(|&v| v != 0.0)
    }

    /// Pixel of a point given in the camera optical frame; `None` behind the near plane.
    pub fn project_camera(&self, p: &Vector3<f64>) -> Option<[f64; 2]> {
        if p.z.is_nan() || p.z <= NEAR {
            return None;
        }
        let (x, y) = (p.x / p.z, p.y / p.z);
        let [k1, k2, p1, p2, k3] = self.distortion;
        let (xd, yd) = if self.has_distortion() {
            let r2 = x * x + y * y;
            // Far outside the field of view the polynomial folds back; refuse such points.
            if r2 > 4.0 {
                return None;
            }
            let radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
            (
                x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
                y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
            )
        } else {
            (x, y)
        };
        Some([self.fx * xd + self.cx, self.fy * yd + self.cy])
    }

    /// Pixel of a world point seen from `camera_t_world`, when inside the image.
    pub fn project_world(
        &self,
        camera_t_world: &Isometry3<f64>,
        p: &Vector3<f64>,
    ) -> Option<[f64; 2]> {
        let pc = camera_t_world * Point3::from(*p);
        let uv = self.project_camera(&pc.coords)?;
        let inside = uv[0] >= 0.0
            && uv[1] >= 0.0
            && uv[0] <= f64::from(self.width) - 1.0
            && uv[1] <= f64::from(self.height) - 1.0;
        inside.then_some(uv)
    }

    /// Inward normals `(n, d)` of the four side planes of the (undistorted) frustum in the camera
    /// frame, widened by `margin` of the image size on every border; a point p is inside when
    /// `n . p >= 0` for all of them.
    pub fn side_planes(&self, margin: f64) -> [Vector3<f64>; 4] {
        let (w, h) = (f64::from(self.width), f64::from(self.height));
        let u0 = (-0.5 - margin * w - self.cx) / self.fx;
        let u1 = (w - 0.5 + margin * w - self.cx) / self.fx;
        let v0 = (-0.5 - margin * h - self.cy) / self.fy;
        let v1 = (h - 0.5 + margin * h - self.cy) / self.fy;
        [
            Vector3::new(1.0, 0.0, -u0).normalize(),
            Vector3::new(-1.0, 0.0, u1).normalize(),
            Vector3::new(0.0, 1.0, -v0).normalize(),
            Vector3::new(0.0, -1.0, v1).normalize(),
        ]
    }
}

fn no_distortion(d: &[f64; 5]) -> bool {
    d.iter().all(|&v| v == 0.0)
}

fn write_distortion<S: Serializer>(d: &[f64; 5], s: S) -> Result<S::Ok, S::Error> {
    d.as_slice().serialize(s)
}

fn read_distortion<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 5], D::Error> {
    let v: Vec<f64> = Vec::deserialize(d)?;
    match v.len() {
        0 => Ok([0.0; 5]),
        5 => Ok([v[0], v[1], v[2], v[3], v[4]]),
        n => Err(serde::de::Error::custom(format!(
            "expected [k1, k2, p1, p2, k3] or [], got {n} numbers"
        ))),
    }
}

/// `imu.*`: continuous-time noise densities and gravity magnitude.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Imu {
    /// rad/s/sqrt(Hz)
    pub gyro_noise: f64,
    /// m/s^2/sqrt(Hz)
    pub accel_noise: f64,
    /// rad/s^2/sqrt(Hz)
    pub gyro_bias_walk: f64,
    /// m/s^3/sqrt(Hz)
    pub accel_bias_walk: f64,
    /// m/s^2
    pub gravity: f64,
    /// Accelerometer unit: 1.0 for m/s^2; 9.81 for drivers that publish in g (Livox).
    pub accel_scale: f64,
}

impl Default for Imu {
    fn default() -> Self {
        Self {
            gyro_noise: 1.7e-4,
            accel_noise: 2.0e-3,
            gyro_bias_walk: 1.9e-5,
            accel_bias_walk: 3.0e-3,
            gravity: 9.81,
            accel_scale: 1.0,
        }
    }
}

impl Imu {
    /// Checks value ranges that types alone cannot express; returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        positive(&[
            ("imu.gravity", self.gravity),
            ("imu.accel_scale", self.accel_scale),
        ])?;
        let non_negative = [
            ("imu.gyro_noise", self.gyro_noise),
            ("imu.accel_noise", self.accel_noise),
            ("imu.gyro_bias_walk", self.gyro_bias_walk),
            ("imu.accel_bias_walk", self.accel_bias_walk),
        ];
        for (k, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err((k.into(), format!("must be a non-negative number, got {v}")));
            }
        }
        Ok(())
    }
}

/// `time_offset.*`: seconds added to each sensor's stamps to put them on the IMU clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeOffset {
    pub camera: f64,
    pub lidar: f64,
}

impl TimeOffset {
    /// Checks value ranges that types alone cannot express; returns (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (k, v) in [
            ("time_offset.camera", self.camera),
            ("time_offset.lidar", self.lidar),
        ] {
            if !v.is_finite() || v.abs() > 10.0 {
                return Err((
                    k.into(),
                    format!("must be finite seconds within ±10, got {v}"),
                ));
            }
        }
        Ok(())
    }
}

/// `Err((key, message))` unless every value is finite and positive.
fn positive(values: &[(&str, f64)]) -> Result<(), (String, String)> {
    match values.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
        Some((k, v)) => Err((k.to_string(), format!("must be a positive number, got {v}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> Camera {
        Camera {
            width: 64,
            height: 48,
            fx: 50.0,
            fy: 50.0,
            cx: 31.5,
            cy: 23.5,
            distortion: [0.0; 5],
        }
    }

    #[test]
    fn projects_centre_and_rejects_behind() {
        let c = cam();
        let uv = c.project_camera(&Vector3::new(0.0, 0.0, 2.0)).unwrap();
        assert_eq!(uv, [31.5, 23.5]);
        assert!(c.project_camera(&Vector3::new(0.0, 0.0, -1.0)).is_none());
        let uv = c.project_camera(&Vector3::new(0.2, -0.1, 2.0)).unwrap();
        assert!((uv[0] - 36.5).abs() < 1e-12 && (uv[1] - 21.0).abs() < 1e-12);
    }

    #[test]
    fn distortion_moves_off_axis_points_outward_for_positive_k1() {
        let mut c = cam();
        c.distortion = [0.1, 0.0, 0.0, 0.0, 0.0];
        let p = Vector3::new(0.4, 0.0, 1.0);
        let uv = c.project_camera(&p).unwrap();
        // x_d = 0.4 * (1 + 0.1 * 0.16)
        assert!((uv[0] - (31.5 + 50.0 * 0.4 * 1.016)).abs() < 1e-9);
    }

    #[test]
    fn resized_camera_sees_points_at_the_scaled_pixel() {
        // A point imaged at source pixel (u, v) lands where the area resampling puts that
        // source position: (u + 0.5) * s - 0.5 per axis.
        let c = cam();
        let r = c.resized(40, 36);
        let (sx, sy) = (40.0 / 64.0, 36.0 / 48.0);
        for p in [Vector3::new(0.3, -0.2, 2.0), Vector3::new(-0.5, 0.4, 3.0)] {
            let a = c.project_camera(&p).unwrap();
            let b = r.project_camera(&p).unwrap();
            assert!((b[0] - ((a[0] + 0.5) * sx - 0.5)).abs() < 1e-12);
            assert!((b[1] - ((a[1] + 0.5) * sy - 0.5)).abs() < 1e-12);
        }
        // The image corners map to the corners.
        assert!((r.cx - (32.0 * sx - 0.5)).abs() < 1e-12);
        assert_eq!(c.downsampled(2), c.resized(32, 24));
        assert_eq!(c.downsampled(1), c);
    }

    #[test]
    fn side_planes_contain_image_and_exclude_outside() {
        let c = cam();
        let planes = c.side_planes(0.0);
        let inside = Vector3::new(0.1, 0.1, 2.0);
        let outside = Vector3::new(3.0, 0.0, 2.0);
        assert!(planes.iter().all(|n| n.dot(&inside) >= 0.0));
        assert!(planes.iter().any(|n| n.dot(&outside) < 0.0));
        // A corner pixel's ray lies (just) inside.
        let corner = Vector3::new((0.0 - 31.5) / 50.0, (0.0 - 23.5) / 50.0, 1.0);
        assert!(planes.iter().all(|n| n.dot(&corner) >= -1e-12));
    }
}
