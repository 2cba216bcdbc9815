//! A C2-smooth body trajectory with analytic derivatives: static start, then sums of sinusoids.
//!
//! Each of x, y, z, yaw, pitch, roll is `c0 + c1*s + sum a_i sin(w_i s + phi_i)` of a warped time
//! `s(t)`: zero during the static start, then ramping up with a quintic smootherstep speed
//! profile (zero first and second derivative at both ends), so position, velocity and
//! acceleration are continuous everywhere and the IMU sees exact values.

use nalgebra::{Isometry3, Rotation3, Translation3, UnitQuaternion, Vector3};

/// `c0 + c1*s + sum a sin(w s + phi)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub c0: f64,
    pub c1: f64,
    /// (amplitude, angular frequency, phase)
    pub terms: Vec<(f64, f64, f64)>,
}

impl Signal {
    pub fn constant(c0: f64) -> Self {
        Self {
            c0,
            c1: 0.0,
            terms: Vec::new(),
        }
    }

    /// Value, first and second derivative with respect to s.
    pub fn eval(&self, s: f64) -> [f64; 3] {
        let mut v = [self.c0 + self.c1 * s, self.c1, 0.0];
        for &(a, w, p) in &self.terms {
            let (sn, cs) = (w * s + p).sin_cos();
            v[0] += a * sn;
            v[1] += a * w * cs;
            v[2] -= a * w * w * sn;
        }
        v
    }
}

/// The full kinematic state of the body (IMU) frame at one time, in the world frame.
#[derive(Debug, Clone, Copy)]
pub struct Kinematics {
    /// `T_world_body`.
    pub pose: Isometry3<f64>,
    pub velocity: Vector3<f64>,
    /// World-frame acceleration (without gravity).
    pub acceleration: Vector3<f64>,
    /// Angular velocity in the body frame.
    pub omega_body: Vector3<f64>,
}

/// A body trajectory; time `t` in seconds from the start of the sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub x: Signal,
    pub y: Signal,
    pub z: Signal,
    pub yaw: Signal,
    pub pitch: Signal,
    pub roll: Signal,
    /// Seconds at rest at the start (for IMU initialisation).
    pub static_time: f64,
    /// Seconds over which the motion ramps up to full speed.
    pub ramp_time: f64,
}

impl Trajectory {
    /// Warped time s(t) and its first two derivatives.
    pub fn warp(&self, t: f64) -> [f64; 3] {
        let t = t - self.static_time;
        if t <= 0.0 {
            return [0.0, 0.0, 0.0];
        }
        let r = self.ramp_time;
        if r <= 0.0 {
            return [t, 1.0, 0.0];
        }
        if t >= r {
            return [0.5 * r + (t - r), 1.0, 0.0];
        }
        let x = t / r;
        let x3 = x * x * x;
        let speed = x3 * (x * (6.0 * x - 15.0) + 10.0);
        let dspeed = 30.0 * x * x * (x - 1.0) * (x - 1.0) / r;
        let s = r * (x3 * x * (x * x - 3.0 * x + 2.5));
        [s, speed, dspeed]
    }

    /// Pose, velocity, acceleration and body angular velocity at time `t`.
    pub fn kinematics(&self, t: f64) -> Kinematics {
        let [s, ds, dds] = self.warp(t);
        let chain = |sig: &Signal| {
            let [v, d1, d2] = sig.eval(s);
            [v, d1 * ds, d2 * ds * ds + d1 * dds]
        };
        let [x, vx, ax] = chain(&self.x);
        let [y, vy, ay] = chain(&self.y);
        let [z, vz, az] = chain(&self.z);
        let [yaw, dyaw, _] = chain(&self.yaw);
        let [pitch, dpitch, _] = chain(&self.pitch);
        let [roll, droll, _] = chain(&self.roll);
        let rz = Rotation3::from_axis_angle(&Vector3::z_axis(), yaw);
        let ry = Rotation3::from_axis_angle(&Vector3::y_axis(), pitch);
        let rx = Rotation3::from_axis_angle(&Vector3::x_axis(), roll);
        let r = rz * ry * rx;
        // R = Rz Ry Rx: world angular velocity = yaw' z + pitch' Rz y + roll' Rz Ry x.
        let omega_world =
            Vector3::z() * dyaw + rz * Vector3::y() * dpitch + (rz * ry) * Vector3::x() * droll;
        Kinematics {
            pose: Isometry3::from_parts(
                Translation3::new(x, y, z),
                UnitQuaternion::from_rotation_matrix(&r),
            ),
            velocity: Vector3::new(vx, vy, vz),
            acceleration: Vector3::new(ax, ay, az),
            omega_body: r.transpose() * omega_world,
        }
    }

    /// `T_world_body` at time `t`.
    pub fn pose(&self, t: f64) -> Isometry3<f64> {
        self.kinematics(t).pose
    }

    /// The default trajectory of a scene: a Lissajous figure through its free space at the
    /// scene's typical speed; `yaw_rate_deg` sets the peak yaw rate; `phase` varies the shape
    /// deterministically with the seed.
    pub fn for_scene(scene: &str, yaw_rate_deg: f64, phase: f64) -> Self {
        let yaw_rate = yaw_rate_deg.to_radians();
        let small = |a: f64, w: f64, p: f64| Signal {
            c0: 0.0,
            c1: 0.0,
            terms: vec![(a, w, p + phase)],
        };
        match scene {
            "corridor" | "corridor_open" => Self {
                // ~1 m/s along the axis, gentle weave.
                x: Signal {
                    c0: -12.0,
                    c1: 1.0,
                    terms: vec![(0.3, 0.8, phase)],
                },
                y: small(0.4, 0.6, 0.3),
                z: Signal {
                    c0: 1.3,
                    c1: 0.0,
                    terms: vec![(0.15, 0.9, phase)],
                },
                yaw: Signal {
                    c0: 0.0,
                    c1: 0.0,
                    terms: vec![(yaw_rate / 1.1, 1.1, phase), (0.1, 0.37, 0.0)],
                },
                pitch: small(0.05, 1.3, 0.5),
                roll: small(0.04, 1.7, 1.0),
                static_time: 1.5,
                ramp_time: 1.5,
            },
            "tunnel" => Self {
                // ~1.5 m/s along the tunnel (a slow vehicle or a walker), gentle weave.
                x: Signal {
                    c0: -20.0,
                    c1: 1.5,
                    terms: vec![(0.3, 0.6, phase)],
                },
                y: small(0.6, 0.4, 0.1),
                z: Signal {
                    c0: 1.6,
                    c1: 0.0,
                    terms: vec![(0.1, 0.8, phase)],
                },
                yaw: Signal {
                    c0: 0.0,
                    c1: 0.0,
                    terms: vec![(yaw_rate / 0.7, 0.7, phase)],
                },
                pitch: small(0.03, 1.2, 0.4),
                roll: small(0.03, 1.6, 0.8),
                static_time: 1.5,
                ramp_time: 1.5,
            },
            "open" => Self {
                // ~2 m/s across the field with a wide weave, looking around.
                x: Signal {
                    c0: -20.0,
                    c1: 2.0,
                    terms: vec![(0.5, 0.5, phase)],
                },
                y: small(3.0, 0.25, 0.0),
                z: Signal {
                    c0: 1.7,
                    c1: 0.0,
                    terms: vec![(0.1, 1.0, phase)],
                },
                yaw: Signal {
                    c0: 0.0,
                    c1: 0.0,
                    terms: vec![(yaw_rate / 0.5, 0.5, phase)],
                },
                pitch: small(0.03, 1.1, 0.2),
                roll: small(0.03, 1.5, 0.7),
                static_time: 1.5,
                ramp_time: 2.0,
            },
            "street" => Self {
                // ~4 m/s along the street with a lane-change weave.
                x: Signal {
                    c0: -60.0,
                    c1: 4.0,
                    terms: vec![(0.5, 0.5, phase)],
                },
                y: small(1.5, 0.3, 0.0),
                z: Signal {
                    c0: 1.8,
                    c1: 0.0,
                    terms: vec![(0.05, 2.0, phase)],
                },
                yaw: Signal {
                    c0: 0.0,
                    c1: 0.0,
                    terms: vec![(yaw_rate / 0.6, 0.6, phase)],
                },
                pitch: small(0.02, 1.1, 0.2),
                roll: small(0.02, 1.5, 0.7),
                static_time: 1.5,
                ramp_time: 2.0,
            },
            _ => Self {
                // Room: figure of eight, ~0.7 m/s, yaw sweeping around.
                x: small(2.0, 0.35, 0.0),
                y: small(1.2, 0.7, 0.4),
                z: Signal {
                    c0: 1.3,
                    c1: 0.0,
                    terms: vec![(0.25, 0.5, phase)],
                },
                yaw: Signal {
                    c0: 0.0,
                    c1: 0.3,
                    terms: vec![(((yaw_rate - 0.3).max(0.05)) / 0.9, 0.9, phase)],
                },
                pitch: small(0.08, 0.8, 0.2),
                roll: small(0.06, 1.1, 0.9),
                static_time: 1.5,
                ramp_time: 1.5,
            },
        }
    }
}

impl Trajectory {
    /// A trajectory that passes the same places again and again, for long runs whose map must
    /// survive revisits. The room's default figure of eight is already periodic (18 s in x, 9 s
    /// in y, a full yaw turn every 21 s), so it is kept; corridor and street become a shuttle
    /// along the axis, out and back (`x = c + A sin(w s)`), with the default weave and yaw
    /// sweep: the street's 70 m stretch at up to 7 m/s every 31 s, the corridors' 20 m at up to
    /// 1 m/s every 63 s, the tunnel's 40 m at 1.5 m/s every 84 s, the open field's 60 m at
    /// 2 m/s every 97 s.
    pub fn looping(scene: &str, yaw_rate_deg: f64, phase: f64) -> Self {
        let mut t = Self::for_scene(scene, yaw_rate_deg, phase);
        let (amplitude, rate) = match scene {
            "street" => (35.0, 0.2),
            "corridor" | "corridor_open" => (10.0, 0.1),
            "tunnel" => (20.0, 0.075),
            "open" => (30.0, 0.065),
            _ => return t,
        };
        t.x = Signal {
            c0: 0.0,
            c1: 0.0,
            terms: vec![(amplitude, rate, phase)],
        };
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traj() -> Trajectory {
        Trajectory::for_scene("room", 60.0, 0.3)
    }

    #[test]
    fn static_start_then_moves() {
        let tr = traj();
        let k0 = tr.kinematics(0.0);
        let k1 = tr.kinematics(1.4);
        assert_eq!(k0.pose, k1.pose);
        assert_eq!(k1.velocity, Vector3::zeros());
        assert_eq!(k1.omega_body, Vector3::zeros());
        assert!(tr.kinematics(5.0).velocity.norm() > 0.3);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let tr = traj();
        let h = 1e-5;
        for &t in &[1.6, 2.3, 2.9, 5.0, 11.7] {
            let k = tr.kinematics(t);
            let kp = tr.kinematics(t + h);
            let km = tr.kinematics(t - h);
            let v_fd = (kp.pose.translation.vector - km.pose.translation.vector) / (2.0 * h);
            assert!((v_fd - k.velocity).norm() < 1e-7, "t={t}");
            let a_fd = (kp.velocity - km.velocity) / (2.0 * h);
            assert!((a_fd - k.acceleration).norm() < 1e-6, "t={t}");
            // omega_body = log(R(t)^T R(t+h)) / h, central.
            let dr = km.pose.rotation.inverse() * kp.pose.rotation;
            let w_fd = dr.scaled_axis() / (2.0 * h);
            assert!(
                (w_fd - k.omega_body).norm() < 1e-6,
                "t={t} {w_fd} {}",
                k.omega_body
            );
        }
    }

    #[test]
    fn acceleration_is_continuous_at_ramp_ends() {
        let tr = traj();
        for t0 in [tr.static_time, tr.static_time + tr.ramp_time] {
            let a = tr.kinematics(t0 - 1e-7).acceleration;
            let b = tr.kinematics(t0 + 1e-7).acceleration;
            assert!((a - b).norm() < 1e-5, "jump at {t0}: {a} vs {b}");
        }
    }

    /// Looping trajectories come back: the street shuttle passes its start again every
    /// period, stays in the street's free space, and the room keeps its periodic default.
    #[test]
    fn looping_trajectories_revisit_their_start() {
        let street = Trajectory::looping("street", 15.0, 0.0);
        let period = std::f64::consts::TAU / 0.2;
        let start = street.static_time + street.ramp_time;
        let x0 = street.pose(start).translation.x;
        let mut xs = (0..4000).map(|i| street.pose(start + i as f64 * 0.1).translation.x);
        assert!(xs.all(|x| x.abs() <= 35.0 + 1e-9));
        for k in 1..4 {
            let x = street.pose(start + k as f64 * period).translation.x;
            assert!((x - x0).abs() < 1e-6, "loop {k}: {x} vs {x0}");
        }
        assert_eq!(
            Trajectory::looping("room", 45.0, 0.3),
            Trajectory::for_scene("room", 45.0, 0.3)
        );
    }

    #[test]
    fn yaw_rate_option_reaches_peak() {
        let tr = Trajectory::for_scene("room", 90.0, 0.0);
        let peak = (0..2000)
            .map(|i| tr.kinematics(3.0 + i as f64 * 0.01).omega_body.norm())
            .fold(0.0, f64::max);
        assert!(
            peak.to_degrees() > 80.0 && peak.to_degrees() < 110.0,
            "{}",
            peak.to_degrees()
        );
    }
}
