//! The payload of each section file: what is written, in order (see `codec`).

use super::codec::{ReadResult, Reader, Writer};
use super::{GaussianSection, Rig};
use crate::gaussian::{BackgroundGrid, Gaussian, GaussianRecord, Keyframe, MapperState};
use crate::lidar_map::{MapPoint, NodeRecord, Plane, PointNoise, VoxelMapConfig};
use crate::sensors::Camera;

/// `rig.bin`: source, camera, extrinsics, voxel-map settings, Gaussian structure settings.
pub fn write_rig(
    w: &mut Writer,
    source: &str,
    rig: &Rig,
    lidar: &VoxelMapConfig,
    g: Option<&GaussianSection>,
) {
    w.str(source);
    let c = &rig.camera;
    w.u32(c.width);
    w.u32(c.height);
    w.f64s(&[c.fx, c.fy, c.cx, c.cy]);
    w.f64s(&c.distortion);
    w.iso(&rig.imu_t_lidar);
    w.iso(&rig.imu_t_camera);
    w.f64(lidar.root_size);
    w.u8(lidar.max_depth);
    w.u64(lidar.min_points as u64);
    w.u64(lidar.max_points as u64);
    w.f64(lidar.plane_std);
    w.f64(lidar.map_radius);
    w.bool(g.is_some());
    if let Some(g) = g {
        w.f64(g.root_size);
        w.u32(g.levels);
        w.u32(g.sh_degree);
    }
}

/// What `rig.bin` holds.
pub struct RigSection {
    pub source: String,
    pub rig: Rig,
    pub lidar: VoxelMapConfig,
    /// Root size, levels and SH degree of the Gaussian map, when there is one.
    pub gaussian: Option<(f64, u32, u32)>,
}

pub fn read_rig(r: &mut Reader) -> ReadResult<RigSection> {
    let source = r.str()?;
    let (width, height) = (r.u32()?, r.u32()?);
    let [fx, fy, cx, cy] = r.f64s::<4>()?;
    let distortion = r.f64s::<5>()?;
    let camera = Camera {
        width,
        height,
        fx,
        fy,
        cx,
        cy,
        distortion,
    };
    let rig = Rig {
        camera,
        imu_t_lidar: r.iso()?,
        imu_t_camera: r.iso()?,
    };
    let lidar = VoxelMapConfig {
        root_size: r.f64()?,
        max_depth: r.u8()?,
        min_points: r.u64()? as usize,
        max_points: r.u64()? as usize,
        plane_std: r.f64()?,
        map_radius: r.f64()?,
    };
    if !(lidar.root_size > 0.0 && lidar.root_size.is_finite()) {
        return Err(format!("lidar_map.root_size {}", lidar.root_size));
    }
    let gaussian = if r.bool()? {
        Some((r.f64()?, r.u32()?, r.u32()?))
    } else {
        None
    };
    Ok(RigSection {
        source,
        rig,
        lidar,
        gaussian,
    })
}

fn write_plane(w: &mut Writer, p: &Plane) {
    w.vec3(&p.normal);
    w.vec3(&p.center);
    w.u64(p.count as u64);
    w.f64(p.point_var);
    w.vec3(&p.axes[0]);
    w.vec3(&p.axes[1]);
    w.f64s(&p.spread);
    w.f64(p.thickness);
}

fn read_plane(r: &mut Reader) -> ReadResult<Plane> {
    Ok(Plane {
        normal: r.vec3()?,
        center: r.vec3()?,
        count: r.u64()? as usize,
        point_var: r.f64()?,
        axes: [r.vec3()?, r.vec3()?],
        spread: r.f64s::<2>()?,
        thickness: r.f64()?,
    })
}

/// Bytes of one stored point (position, noise a, b, direction).
const POINT_BYTES: usize = 8 * 8;
/// Least bytes of one stored node (no points, no plane).
const NODE_BYTES: usize = 8 * 3 + 8 + 1 + 8 + 8 * 21 + 8 + 1 + 1 + 1 + 8;

/// `lidar_map.bin`: roots sorted by key, each its nodes in pre-order.
pub fn write_lidar(w: &mut Writer, roots: &[([i32; 3], Vec<NodeRecord>)]) {
    w.len(roots.len());
    for (k, nodes) in roots {
        k.iter().for_each(|&v| w.i32(v));
        w.len(nodes.len());
        for n in nodes {
            w.vec3(&n.center);
            w.f64(n.half);
            w.u8(n.depth);
            w.u64(n.n as u64);
            w.vec3(&n.sum);
            w.mat3(&n.sum_sq);
            w.mat3(&n.sum_cov);
            w.len(n.points.len());
            for p in &n.points {
                w.vec3(&p.p);
                w.f64(p.noise.a);
                w.f64(p.noise.b);
                w.vec3(&p.noise.dir);
            }
            w.bool(n.plane.is_some());
            if let Some(p) = &n.plane {
                write_plane(w, p);
            }
            w.bool(n.children.is_some());
            w.u8(n.children.unwrap_or(0));
            w.bool(n.frozen);
            w.u64(n.since_fit as u64);
        }
    }
}

pub fn read_lidar(r: &mut Reader) -> ReadResult<Vec<([i32; 3], Vec<NodeRecord>)>> {
    let roots = r.len(12 + 8)?;
    let mut out = Vec::with_capacity(roots);
    for _ in 0..roots {
        let key = [r.i32()?, r.i32()?, r.i32()?];
        let count = r.len(NODE_BYTES)?;
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let center = r.vec3()?;
            let half = r.f64()?;
            let depth = r.u8()?;
            let n = r.u64()? as usize;
            let sum = r.vec3()?;
            let sum_sq = r.mat3()?;
            let sum_cov = r.mat3()?;
            let np = r.len(POINT_BYTES)?;
            let mut points = Vec::with_capacity(np);
            for _ in 0..np {
                let p = r.vec3()?;
                let (a, b) = (r.f64()?, r.f64()?);
                points.push(MapPoint {
                    p,
                    noise: PointNoise {
                        a,
                        b,
                        dir: r.vec3()?,
                    },
                });
            }
            let plane = if r.bool()? {
                Some(read_plane(r)?)
            } else {
                None
            };
            let has_children = r.bool()?;
            let mask = r.u8()?;
            let children = has_children.then_some(mask);
            nodes.push(NodeRecord {
                center,
                half,
                depth,
                n,
                sum,
                sum_sq,
                sum_cov,
                points,
                plane,
                children,
                frozen: r.bool()?,
                since_fit: r.u64()? as usize,
            });
        }
        out.push((key, nodes));
    }
    Ok(out)
}

/// Floats per Gaussian before the SH coefficients.
const HEAD: usize = 11;

/// Bytes of one stored Gaussian record at SH `coeffs` coefficients (fixed size).
pub fn record_bytes(coeffs: usize) -> usize {
    1 + 24 + 1 + 4 * (HEAD + 3 * coeffs)
}

/// One Gaussian: depth, cell, colour flag, values up to the degree's coefficients.
pub fn write_record(w: &mut Writer, coeffs: usize, r: &GaussianRecord) {
    w.u8(r.depth);
    r.cell.iter().for_each(|&c| w.i64(c));
    w.bool(r.coloured);
    let g = &r.gaussian;
    w.f32s(&g.mean);
    w.f32s(&g.log_scale);
    w.f32s(&g.rotation);
    w.f32(g.opacity_logit);
    g.sh.iter().take(coeffs).for_each(|c| w.f32s(c));
}

pub fn read_record(r: &mut Reader, coeffs: usize) -> ReadResult<GaussianRecord> {
    let depth = r.u8()?;
    let cell = [r.i64()?, r.i64()?, r.i64()?];
    let coloured = r.bool()?;
    let mut g = Gaussian {
        mean: r.f32s::<3>()?,
        log_scale: r.f32s::<3>()?,
        rotation: r.f32s::<4>()?,
        opacity_logit: r.f32()?,
        ..Default::default()
    };
    for c in g.sh.iter_mut().take(coeffs) {
        *c = r.f32s::<3>()?;
    }
    Ok(GaussianRecord {
        gaussian: g,
        depth,
        cell,
        coloured,
    })
}

/// Version 2's `gaussians.bin`: SH degree, then every Gaussian record (version 3 stores them
/// in tiles, see `tiles`).
#[cfg(test)]
pub fn write_gaussians(w: &mut Writer, sh_degree: u32, gs: &[GaussianRecord]) {
    let coeffs = crate::gaussian::sh_coeff_count(sh_degree.min(3));
    w.u32(sh_degree);
    w.len(gs.len());
    gs.iter().for_each(|r| write_record(w, coeffs, r));
}

/// Reads version 2's `gaussians.bin`.
pub fn read_gaussians(r: &mut Reader, sh_degree: u32) -> ReadResult<Vec<GaussianRecord>> {
    let stored = r.u32()?;
    if stored != sh_degree {
        return Err(format!("SH degree {stored}, rig.bin says {sh_degree}"));
    }
    let coeffs = crate::gaussian::sh_coeff_count(sh_degree.min(3));
    let n = r.len(record_bytes(coeffs))?;
    (0..n).map(|_| read_record(r, coeffs)).collect()
}

fn write_frames(w: &mut Writer, frames: &[Keyframe]) {
    w.len(frames.len());
    for k in frames {
        w.iso(&k.camera_t_world);
        let (e, bytes) = super::quant::encode(&k.target);
        w.len(bytes.len());
        w.i32(e);
        w.0.extend_from_slice(&bytes);
    }
}

fn read_frames(r: &mut Reader) -> ReadResult<Vec<Keyframe>> {
    let n = r.len(56 + 8 + 4)?;
    (0..n)
        .map(|_| {
            let camera_t_world = r.iso()?;
            let len = r.len(1)?;
            let e = r.i32()?;
            if !super::quant::EXPONENTS.contains(&e) {
                return Err(format!("keyframe target step 2^{e} out of range"));
            }
            Ok(Keyframe {
                camera_t_world,
                target: super::quant::decode(e, r.bytes(len)?),
            })
        })
        .collect()
}

/// `keyframes.bin`: the mapper's state besides the Gaussians.
pub fn write_keyframes(w: &mut Writer, s: &MapperState) {
    w.u64(s.frames);
    write_frames(w, &s.keyframes);
    w.bool(s.last_keyframe.is_some());
    if let Some(t) = &s.last_keyframe {
        w.iso(t);
    }
    w.u64(s.keyframe_cursor as u64);
    write_frames(w, &s.anchors);
    w.bool(s.background.is_some());
    if let Some(b) = &s.background {
        w.u64(b.az_bins as u64);
        w.u64(b.el_bins as u64);
        w.len(b.num.len());
        b.num.iter().for_each(|v| w.f64s(v));
        w.len(b.den.len());
        w.f64s(&b.den);
        w.len(b.baked.len());
        b.baked.iter().for_each(|v| w.f32s(v));
    }
}

/// Reads `keyframes.bin` into a state holding `gaussians`.
pub fn read_keyframes(r: &mut Reader, gaussians: Vec<GaussianRecord>) -> ReadResult<MapperState> {
    let frames = r.u64()?;
    let keyframes = read_frames(r)?;
    let last_keyframe = if r.bool()? { Some(r.iso()?) } else { None };
    let keyframe_cursor = r.u64()? as usize;
    let anchors = read_frames(r)?;
    let background = if r.bool()? {
        let az_bins = r.u64()? as usize;
        let el_bins = r.u64()? as usize;
        let n = r.len(24)?;
        let num = (0..n).map(|_| r.f64s::<3>()).collect::<ReadResult<_>>()?;
        let n = r.len(8)?;
        let den = (0..n).map(|_| r.f64()).collect::<ReadResult<_>>()?;
        let n = r.len(12)?;
        let baked = (0..n).map(|_| r.f32s::<3>()).collect::<ReadResult<_>>()?;
        Some(BackgroundGrid {
            az_bins,
            el_bins,
            num,
            den,
            baked,
        })
    } else {
        None
    };
    Ok(MapperState {
        gaussians,
        keyframes,
        last_keyframe,
        keyframe_cursor,
        anchors,
        background,
        frames,
    })
}
