//! Analytic scenes: planes, (rotated) boxes and vertical cylinders with procedural textures,
//! and exact ray casting against them.

use nalgebra::{Vector2, Vector3};

use super::texture::Texture;

/// A ray `origin + t * dir`, `dir` of unit length.
#[derive(Debug, Clone, Copy)]
pub struct Ray {
    pub origin: Vector3<f64>,
    pub dir: Vector3<f64>,
}

/// The first surface a ray meets.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Distance along the ray.
    pub t: f64,
    pub point: Vector3<f64>,
    /// Surface normal facing the ray origin.
    pub normal: Vector3<f64>,
    /// Surface coordinates in metres (texture domain).
    pub uv: [f64; 2],
    /// Index of the primitive in `Scene::primitives`.
    pub primitive: usize,
}

/// Geometry of one primitive.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Infinite plane through `origin` with unit `normal`; `u_axis` is a unit in-plane direction.
    Plane {
        origin: Vector3<f64>,
        normal: Vector3<f64>,
        u_axis: Vector3<f64>,
    },
    /// Box rotated by `yaw` about the vertical axis through `center`. Seen from inside, its
    /// faces are walls (a room is a box with the sensor inside).
    Box {
        center: Vector3<f64>,
        half: Vector3<f64>,
        yaw: f64,
    },
    /// Infinite horizontal tube along x through (y, z) = `center`: a tunnel seen from inside.
    Tube { center: Vector2<f64>, radius: f64 },
    /// Vertical cylinder with flat caps.
    Cylinder {
        center: Vector2<f64>,
        radius: f64,
        z_min: f64,
        z_max: f64,
    },
}

/// A textured primitive.
#[derive(Debug, Clone, PartialEq)]
pub struct Primitive {
    pub shape: Shape,
    pub texture: Texture,
}

/// A set of primitives; rays return the nearest hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub name: String,
    pub primitives: Vec<Primitive>,
    /// Axis-aligned bounds of the free space the trajectory moves in (min, max).
    pub free_min: Vector3<f64>,
    pub free_max: Vector3<f64>,
}

const EPS: f64 = 1e-9;

impl Shape {
    /// Nearest hit with `t > t_min`, as (t, outward-or-inward normal, uv).
    fn intersect(&self, ray: &Ray, t_min: f64) -> Option<(f64, Vector3<f64>, [f64; 2])> {
        match self {
            Shape::Plane {
                origin,
                normal,
                u_axis,
            } => {
                let denom = normal.dot(&ray.dir);
                if denom.abs() < EPS {
                    return None;
                }
                let t = (origin - ray.origin).dot(normal) / denom;
                if t <= t_min {
                    return None;
                }
                let p = ray.origin + ray.dir * t - origin;
                let v_axis = normal.cross(u_axis);
                Some((t, *normal, [p.dot(u_axis), p.dot(&v_axis)]))
            }
            Shape::Box { center, half, yaw } => {
                let (s, c) = if *yaw == 0.0 {
                    (0.0, 1.0)
                } else {
                    yaw.sin_cos()
                };
                // World -> box frame: rotate by -yaw about z.
                let to_local =
                    |v: Vector3<f64>| Vector3::new(c * v.x + s * v.y, -s * v.x + c * v.y, v.z);
                let o = to_local(ray.origin - center);
                let d = to_local(ray.dir);
                let mut t_near = f64::NEG_INFINITY;
                let mut t_far = f64::INFINITY;
                let mut ax_near = 0usize;
                let mut ax_far = 0usize;
                for a in 0..3 {
                    if d[a].abs() < EPS {
                        if o[a].abs() > half[a] {
                            return None;
                        }
                        continue;
                    }
                    let t1 = (-half[a] - o[a]) / d[a];
                    let t2 = (half[a] - o[a]) / d[a];
                    let (lo, hi) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
                    if lo > t_near {
                        t_near = lo;
                        ax_near = a;
                    }
                    if hi < t_far {
                        t_far = hi;
                        ax_far = a;
                    }
                }
                if t_near > t_far {
                    return None;
                }
                let (t, axis) = if t_near > t_min {
                    (t_near, ax_near)
                } else if t_far > t_min {
                    (t_far, ax_far)
                } else {
                    return None;
                };
                let pl = o + d * t;
                let sign = pl[axis].signum();
                let mut nl = Vector3::zeros();
                nl[axis] = sign;
                let n = Vector3::new(c * nl.x - s * nl.y, s * nl.x + c * nl.y, nl.z);
                // Face coordinates: the two other local axes, offset per face so faces differ.
                let (a1, a2) = match axis {
                    0 => (1, 2),
                    1 => (0, 2),
                    _ => (0, 1),
                };
                let off = 37.0 * (axis as f64 * 2.0 + if sign > 0.0 { 1.0 } else { 0.0 });
                Some((t, n, [pl[a1] + off, pl[a2]]))
            }
            Shape::Tube { center, radius } => {
                let oy = ray.origin.y - center.x;
                let oz = ray.origin.z - center.y;
                let a = ray.dir.y * ray.dir.y + ray.dir.z * ray.dir.z;
                if a <= EPS {
                    return None;
                }
                let b = oy * ray.dir.y + oz * ray.dir.z;
                let disc = b * b - a * (oy * oy + oz * oz - radius * radius);
                if disc < 0.0 {
                    return None;
                }
                let sq = disc.sqrt();
                let t = [(-b - sq) / a, (-b + sq) / a]
                    .into_iter()
                    .find(|&t| t > t_min)?;
                let (py, pz) = (oy + ray.dir.y * t, oz + ray.dir.z * t);
                let n = Vector3::new(0.0, py / radius, pz / radius);
                let x = ray.origin.x + ray.dir.x * t;
                Some((t, n, [x, pz.atan2(py) * radius]))
            }
            Shape::Cylinder {
                center,
                radius,
                z_min,
                z_max,
            } => {
                let mut best: Option<(f64, Vector3<f64>, [f64; 2])> = None;
                let ox = ray.origin.x - center.x;
                let oy = ray.origin.y - center.y;
                let a = ray.dir.x * ray.dir.x + ray.dir.y * ray.dir.y;
                if a > EPS {
                    let b = ox * ray.dir.x + oy * ray.dir.y;
                    let cc = ox * ox + oy * oy - radius * radius;
                    let disc = b * b - a * cc;
                    if disc >= 0.0 {
                        let sq = disc.sqrt();
                        for t in [(-b - sq) / a, (-b + sq) / a] {
                            if t <= t_min {
                                continue;
                            }
                            let z = ray.origin.z + ray.dir.z * t;
                            if z < *z_min || z > *z_max {
                                continue;
                            }
                            let px = ox + ray.dir.x * t;
                            let py = oy + ray.dir.y * t;
                            let n = Vector3::new(px / radius, py / radius, 0.0);
                            let uv = [py.atan2(px) * radius, z];
                            best = Some((t, n, uv));
                            break;
                        }
                    }
                }
                if ray.dir.z.abs() > EPS {
                    for (zc, nz) in [(*z_min, -1.0), (*z_max, 1.0)] {
                        let t = (zc - ray.origin.z) / ray.dir.z;
                        if t <= t_min || best.is_some_and(|b| b.0 <= t) {
                            continue;
                        }
                        let px = ox + ray.dir.x * t;
                        let py = oy + ray.dir.y * t;
                        if px * px + py * py <= radius * radius {
                            best = Some((t, Vector3::new(0.0, 0.0, nz), [px + 91.0, py]));
                        }
                    }
                }
                best
            }
        }
    }
}

impl Shape {
    /// Distance from `p` to the nearest point of the surface (unsigned; inside a box or a
    /// cylinder it is the distance to the nearest face).
    pub fn surface_distance(&self, p: &Vector3<f64>) -> f64 {
        match self {
            Shape::Plane { origin, normal, .. } => (p - origin).dot(normal).abs(),
            Shape::Box { center, half, yaw } => {
                let (s, c) = yaw.sin_cos();
                let v = p - center;
                let q = Vector3::new(
                    (c * v.x + s * v.y).abs(),
                    (-s * v.x + c * v.y).abs(),
                    v.z.abs(),
                );
                let out = q - half;
                if out.max() <= 0.0 {
                    -out.max()
                } else {
                    out.map(|d| d.max(0.0)).norm()
                }
            }
            Shape::Tube { center, radius } => {
                ((Vector2::new(p.y, p.z) - center).norm() - radius).abs()
            }
            Shape::Cylinder {
                center,
                radius,
                z_min,
                z_max,
            } => {
                let radial = (Vector2::new(p.x, p.y) - center).norm() - radius;
                let vertical = (z_min - p.z).max(p.z - z_max);
                if radial <= 0.0 && vertical <= 0.0 {
                    (-radial).min(-vertical)
                } else {
                    Vector2::new(radial.max(0.0), vertical.max(0.0)).norm()
                }
            }
        }
    }
}

impl Scene {
    /// Nearest hit along the ray (strictly in front of its origin), or `None` (sky).
    pub fn intersect(&self, ray: &Ray) -> Option<Hit> {
        let mut best: Option<(f64, Vector3<f64>, [f64; 2], usize)> = None;
        for (i, p) in self.primitives.iter().enumerate() {
            if let Some((t, n, uv)) = p.shape.intersect(ray, 1e-6) {
                if best.is_none_or(|b| t < b.0) {
                    best = Some((t, n, uv, i));
                }
            }
        }
        best.map(|(t, n, uv, i)| {
            let normal = if n.dot(&ray.dir) > 0.0 { -n } else { n };
            Hit {
                t,
                point: ray.origin + ray.dir * t,
                normal,
                uv,
                primitive: i,
            }
        })
    }

    /// Distance from `p` to the nearest surface of the scene (to judge where a map put its
    /// geometry against the truth).
    pub fn surface_distance(&self, p: &Vector3<f64>) -> f64 {
        self.primitives
            .iter()
            .map(|q| q.shape.surface_distance(p))
            .fold(f64::INFINITY, f64::min)
    }

    /// Albedo of a hit averaged over a footprint of `footprint` metres.
    pub fn albedo(&self, hit: &Hit, footprint: f64) -> [f32; 3] {
        self.primitives[hit.primitive]
            .texture
            .albedo(hit.uv, footprint)
    }

    /// A closed room of 8 x 6 x 3 m with boxes and two pillars; the free space in the middle
    /// (about 5 x 3.2 m) is where the trajectory flies.
    pub fn room() -> Self {
        let mut s = Scene {
            name: "room".into(),
            primitives: Vec::new(),
            free_min: Vector3::new(-2.3, -1.5, 0.6),
            free_max: Vector3::new(2.3, 1.5, 2.2),
        };
        s.add_box([0.0, 0.0, 1.5], [4.0, 3.0, 1.5], 0.0, 1.0);
        s.add_box([3.2, 1.6, 0.5], [0.45, 0.6, 0.5], 0.0, 1.0);
        s.add_box([-3.1, -1.9, 0.4], [0.5, 0.5, 0.4], 0.5, 1.0);
        s.add_box([0.8, -2.5, 0.6], [0.9, 0.35, 0.6], 0.0, 1.0);
        s.add_box([-1.2, 2.5, 0.3], [0.6, 0.4, 0.3], -0.3, 1.0);
        s.add_box([3.3, -1.5, 1.1], [0.3, 0.3, 0.25], 0.8, 1.0);
        s.add_cylinder([-2.9, 1.8], 0.25, 0.0, 3.0, 1.0);
        s.add_cylinder([2.9, -0.2], 0.2, 0.0, 3.0, 1.0);
        s
    }

    /// An endless corridor along x, 2.4 m wide and 2.6 m high: four infinite textured planes
    /// (floor, ceiling, two walls) and nothing else. Its cross-section is the same everywhere and
    /// it has no ends (rays along it leave the LiDAR's range), so LiDAR geometry says nothing
    /// about the position along the axis (LiDAR-degenerate), while the textures do (visually
    /// rich).
    pub fn corridor() -> Self {
        let mut s = Scene {
            name: "corridor".into(),
            primitives: Vec::new(),
            free_min: Vector3::new(f64::NEG_INFINITY, -0.7, 0.8),
            free_max: Vector3::new(f64::INFINITY, 0.7, 1.8),
        };
        let (half_width, height) = (1.2, 2.6);
        for (origin, normal) in [
            ([0.0, 0.0, 0.0], [0.0, 0.0, 1.0]),
            ([0.0, 0.0, height], [0.0, 0.0, -1.0]),
            ([0.0, -half_width, 0.0], [0.0, 1.0, 0.0]),
            ([0.0, half_width, 0.0], [0.0, -1.0, 0.0]),
        ] {
            let texture = s.next_texture(1.0);
            s.primitives.push(Primitive {
                shape: Shape::Plane {
                    origin: origin.into(),
                    normal: normal.into(),
                    u_axis: Vector3::x(),
                },
                texture,
            });
        }
        s
    }

    /// An open street 160 m long along x: ground, buildings on both sides, poles.
    pub fn street() -> Self {
        let mut s = Scene {
            name: "street".into(),
            primitives: Vec::new(),
            free_min: Vector3::new(-75.0, -3.0, 1.0),
            free_max: Vector3::new(75.0, 3.0, 2.5),
        };
        s.primitives.push(Primitive {
            shape: Shape::Plane {
                origin: Vector3::zeros(),
                normal: Vector3::z(),
                u_axis: Vector3::x(),
            },
            texture: Texture::from_seed(5000, 2.0),
        });
        let mut x = -80.0;
        let mut k = 0u32;
        while x < 80.0 {
            // Deterministic variety without an RNG: sizes from a small hash of k.
            let w = 8.0 + ((k * 7) % 5) as f64 * 1.5;
            let h = 6.0 + ((k * 3) % 4) as f64 * 3.0;
            let d = 5.0 + ((k * 5) % 3) as f64;
            let side = if k.is_multiple_of(2) { 1.0 } else { -1.0 };
            for sgn in [side, -side] {
                let setback = 9.0 + ((k * 11) % 3) as f64;
                s.add_box(
                    [x + w / 2.0, sgn * (setback + d), h / 2.0],
                    [w / 2.0 - 0.5, d, h / 2.0],
                    0.0,
                    3.0,
                );
            }
            x += w + 1.5;
            k += 1;
        }
        let mut px = -75.0;
        let mut j = 0u32;
        while px <= 75.0 {
            let y = if j.is_multiple_of(2) { 6.0 } else { -6.0 };
            s.add_cylinder([px, y], 0.15, 0.0, 5.0, 1.0);
            px += 10.0;
            j += 1;
        }
        s
    }

    /// A 300 m corridor along x (x in [-150, 150]), 2.4 m wide and 2.6 m high, built of finite
    /// slabs and open at both ends: from the middle stretch the trajectory flies, the ends are
    /// beyond the LiDAR's 120 m, so rays along the axis return nothing (LiDAR-degenerate), while
    /// the camera sees daylight (sky) at the far ends. Unlike `corridor` (infinite planes), it
    /// has an outside: a trajectory leaving an end sees the corridor as an object.
    pub fn corridor_open() -> Self {
        let mut s = Scene {
            name: "corridor_open".into(),
            primitives: Vec::new(),
            free_min: Vector3::new(-140.0, -0.7, 0.8),
            free_max: Vector3::new(140.0, 0.7, 1.8),
        };
        let (half_len, half_width, height, slab) = (150.0, 1.2, 2.6, 0.1);
        let outer = half_width + 2.0 * slab;
        s.add_box([0.0, 0.0, -slab], [half_len, outer, slab], 0.0, 1.0);
        s.add_box([0.0, 0.0, height + slab], [half_len, outer, slab], 0.0, 1.0);
        for side in [-1.0, 1.0] {
            let y = side * (half_width + slab);
            s.add_box(
                [0.0, y, 0.5 * height],
                [half_len, slab, 0.5 * height],
                0.0,
                1.0,
            );
        }
        s
    }

    /// A straight road tunnel along x: a tube of radius 3.2 m with its axis 1.2 m above a flat
    /// floor (5.9 m wide at the floor, 4.4 m high), smooth coarse textures (few visual
    /// features) and only a cabinet every 40 m on alternating sides for the LiDAR to hold on to.
    pub fn tunnel() -> Self {
        let mut s = Scene {
            name: "tunnel".into(),
            primitives: Vec::new(),
            free_min: Vector3::new(f64::NEG_INFINITY, -1.5, 1.0),
            free_max: Vector3::new(f64::INFINITY, 1.5, 2.5),
        };
        let texture = Texture::from_seed(6000, 3.0);
        s.primitives.push(Primitive {
            shape: Shape::Plane {
                origin: Vector3::zeros(),
                normal: Vector3::z(),
                u_axis: Vector3::x(),
            },
            texture,
        });
        let texture = Texture::from_seed(6001, 4.0);
        s.primitives.push(Primitive {
            shape: Shape::Tube {
                center: Vector2::new(0.0, 1.2),
                radius: 3.2,
            },
            texture,
        });
        for k in -5..=5 {
            let side = if k % 2 == 0 { 1.0 } else { -1.0 };
            s.add_box(
                [k as f64 * 40.0, side * 2.5, 0.6],
                [0.4, 0.3, 0.6],
                0.0,
                1.0,
            );
        }
        s
    }

    /// A wide open field: textured ground and a handful of buildings, trees and poles 25-70 m
    /// from the trajectory, so the LiDAR sees mostly the ground and the camera mostly the ground
    /// and the sky.
    pub fn open() -> Self {
        let mut s = Scene {
            name: "open".into(),
            primitives: Vec::new(),
            free_min: Vector3::new(-60.0, -10.0, 1.0),
            free_max: Vector3::new(60.0, 10.0, 2.5),
        };
        s.primitives.push(Primitive {
            shape: Shape::Plane {
                origin: Vector3::zeros(),
                normal: Vector3::z(),
                u_axis: Vector3::x(),
            },
            texture: Texture::from_seed(7000, 2.0),
        });
        // (x, y, kind): 0 = building, 1 = tree trunk / pole.
        let objects: [(f64, f64, u8); 8] = [
            (40.0, 35.0, 0),
            (-30.0, -45.0, 0),
            (70.0, -30.0, 0),
            (-65.0, 30.0, 0),
            (10.0, -28.0, 1),
            (-15.0, 27.0, 1),
            (35.0, -26.0, 1),
            (55.0, 28.0, 1),
        ];
        for (k, &(x, y, kind)) in objects.iter().enumerate() {
            if kind == 0 {
                let h = 4.0 + k as f64;
                s.add_box([x, y, 0.5 * h], [4.0, 3.0, 0.5 * h], 0.3 * k as f64, 2.0);
            } else {
                s.add_cylinder([x, y], 0.3, 0.0, 6.0, 1.0);
            }
        }
        s
    }

    /// The scene called `name` (see [`Scene::NAMES`]).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "room" => Some(Self::room()),
            "corridor" => Some(Self::corridor()),
            "street" => Some(Self::street()),
            "corridor_open" => Some(Self::corridor_open()),
            "tunnel" => Some(Self::tunnel()),
            "open" => Some(Self::open()),
            _ => None,
        }
    }

    /// Names [`Scene::by_name`] knows.
    pub const NAMES: [&'static str; 6] = [
        "room",
        "corridor",
        "street",
        "corridor_open",
        "tunnel",
        "open",
    ];

    /// The same scene with sharp-edged detail (grout, decals, glyphs) on every surface.
    pub fn with_detail(mut self) -> Self {
        for p in &mut self.primitives {
            p.texture.detail = true;
        }
        self
    }

    fn next_texture(&self, scale: f64) -> Texture {
        Texture::from_seed(1000 + 17 * self.primitives.len() as u32, scale)
    }

    fn add_box(&mut self, c: [f64; 3], half: [f64; 3], yaw: f64, tex_scale: f64) {
        let texture = self.next_texture(tex_scale);
        self.primitives.push(Primitive {
            shape: Shape::Box {
                center: c.into(),
                half: half.into(),
                yaw,
            },
            texture,
        });
    }

    fn add_cylinder(&mut self, c: [f64; 2], radius: f64, z_min: f64, z_max: f64, tex: f64) {
        let texture = self.next_texture(tex);
        self.primitives.push(Primitive {
            shape: Shape::Cylinder {
                center: c.into(),
                radius,
                z_min,
                z_max,
            },
            texture,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ray(o: [f64; 3], d: [f64; 3]) -> Ray {
        Ray {
            origin: o.into(),
            dir: Vector3::from(d).normalize(),
        }
    }

    #[test]
    fn room_walls_are_hit_from_inside() {
        let s = Scene::room();
        let h = s.intersect(&ray([0.0, 0.0, 1.5], [0.0, 0.0, 1.0])).unwrap();
        assert!((h.t - 1.5).abs() < 1e-12);
        assert!((h.normal - Vector3::new(0.0, 0.0, -1.0)).norm() < 1e-12);
        let h = s
            .intersect(&ray([0.0, 0.0, 1.5], [0.0, 0.0, -1.0]))
            .unwrap();
        assert!((h.t - 1.5).abs() < 1e-12);
        // Towards +x at 2 m height passes above the box at x=3.2 and hits the wall at x=4.
        let h = s.intersect(&ray([0.0, 1.6, 2.0], [1.0, 0.0, 0.0])).unwrap();
        assert!((h.t - 4.0).abs() < 1e-12);
        // At 0.5 m height it hits the box face at x = 3.2 - 0.45.
        let h = s.intersect(&ray([0.0, 1.6, 0.5], [1.0, 0.0, 0.0])).unwrap();
        assert!((h.t - 2.75).abs() < 1e-12, "{}", h.t);
        assert!((h.normal - Vector3::new(-1.0, 0.0, 0.0)).norm() < 1e-12);
    }

    #[test]
    fn rotated_box_and_cylinder() {
        let mut s = Scene {
            name: "t".into(),
            primitives: vec![],
            free_min: Vector3::zeros(),
            free_max: Vector3::zeros(),
        };
        s.add_box(
            [5.0, 0.0, 0.0],
            [1.0, 1.0, 1.0],
            std::f64::consts::FRAC_PI_4,
            1.0,
        );
        let h = s.intersect(&ray([0.0, 0.0, 0.0], [1.0, 0.0, 0.0])).unwrap();
        assert!((h.t - (5.0 - 2f64.sqrt())).abs() < 1e-12, "{}", h.t);
        let mut c = Scene {
            primitives: vec![],
            ..s.clone()
        };
        c.add_cylinder([5.0, 0.0], 0.5, 0.0, 2.0, 1.0);
        let h = c.intersect(&ray([0.0, 0.0, 1.0], [1.0, 0.0, 0.0])).unwrap();
        assert!((h.t - 4.5).abs() < 1e-12);
        // Top cap from above.
        let h = c
            .intersect(&ray([5.1, 0.0, 4.0], [0.0, 0.0, -1.0]))
            .unwrap();
        assert!((h.t - 2.0).abs() < 1e-12);
        assert!(c
            .intersect(&ray([0.0, 0.0, 3.0], [1.0, 0.0, 0.0]))
            .is_none());
    }

    /// The corridor looks the same to a range sensor at any x: same distances in every
    /// direction, and no end along the axis.
    #[test]
    fn corridor_is_uniform_along_its_axis_and_open() {
        let s = Scene::corridor();
        let dirs = [
            [0.0, 1.0, 0.3],
            [0.2, -1.0, 0.1],
            [0.5, 0.3, -1.0],
            [1.0, 0.8, 1.0],
        ];
        for x in [-500.0, 0.0, 37.3, 1000.0] {
            for d in dirs {
                let a = s.intersect(&ray([0.0, 0.1, 1.4], d)).unwrap();
                let b = s.intersect(&ray([x, 0.1, 1.4], d)).unwrap();
                assert!((a.t - b.t).abs() < 1e-9, "x {x} dir {d:?}");
                assert_eq!(a.primitive, b.primitive);
            }
        }
        // Along the axis nothing is hit: no end walls.
        assert!(s
            .intersect(&ray([0.0, 0.1, 1.4], [1.0, 0.0, 0.0]))
            .is_none());
        assert!(s
            .intersect(&ray([0.0, 0.1, 1.4], [-1.0, 0.0, 0.0]))
            .is_none());
        // Textured: the albedo varies along the wall.
        let h0 = s.intersect(&ray([0.0, 0.0, 1.3], [0.0, 1.0, 0.0])).unwrap();
        let h1 = s.intersect(&ray([0.3, 0.0, 1.3], [0.0, 1.0, 0.0])).unwrap();
        assert_ne!(s.albedo(&h0, 0.0), s.albedo(&h1, 0.0));
    }

    #[test]
    fn street_is_long_and_has_sky() {
        let s = Scene::street();
        assert!(s.primitives.len() > 20);
        assert!(s
            .intersect(&ray([0.0, 0.0, 1.5], [0.0, 0.0, 1.0]))
            .is_none());
        let h = s
            .intersect(&ray([70.0, 0.0, 1.5], [0.0, 0.0, -1.0]))
            .unwrap();
        assert!((h.t - 1.5).abs() < 1e-12);
    }

    /// Ray casting and the distance function agree: every hit lies on a surface (distance 0),
    /// and a point moved off it along the normal by `d` (towards free space) is `d` away, in
    /// every scene kind (planes, boxes from inside and outside, tubes, capped cylinders).
    #[test]
    fn surface_distance_agrees_with_ray_hits() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut uniform = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        for name in [
            "room",
            "corridor",
            "street",
            "corridor_open",
            "tunnel",
            "open",
        ] {
            let s = Scene::by_name(name).unwrap();
            let (mut hits, mut exact) = (0, 0);
            for _ in 0..400 {
                // Open-ended scenes have infinite free bounds: sample 20 m of them.
                let lo = s.free_min.map(|v| v.max(-10.0));
                let hi = s.free_max.map(|v| v.min(10.0));
                let o =
                    lo + (hi - lo).component_mul(&Vector3::new(uniform(), uniform(), uniform()));
                let d = [uniform() - 0.5, uniform() - 0.5, uniform() - 0.5];
                let Some(h) = s.intersect(&ray(o.into(), d)) else {
                    continue;
                };
                hits += 1;
                let on = s.surface_distance(&h.point);
                assert!(on < 1e-9, "{name}: hit {:?} is {on} m off", h.point);
                // Off the surface towards the ray origin, less than the way back to it.
                let step = 0.05f64.min(0.5 * h.t);
                let off = s.surface_distance(&(h.point + h.normal * step));
                // Never farther than the step; nearer only where another surface is close
                // (near corners and edges), which is the exception.
                assert!(off < step + 1e-9, "{name}: {off} vs {step}");
                exact += usize::from((off - step).abs() < 1e-9);
            }
            assert!(hits > 100, "{name}: {hits} hits");
            assert!(exact * 10 > hits * 7, "{name}: {exact} of {hits} exact");
        }
    }
}
