//! Trajectory error: stamp association, Umeyama alignment (SE3/Sim3), ATE and RPE.
//!
//! Conventions follow `evo` (association from the shorter trajectory by nearest stamp,
//! alignment of the estimate onto the reference, RPE error `(Q_i^-1 Q_j)^-1 (P_i^-1 P_j)`), so
//! numbers agree with `evo_ape` / `evo_rpe` run on the same files.

use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use serde::Serialize;

use super::EvalError;
use crate::sensors::{stamp_to_secs, PoseStamped};

/// Alignment of the estimate onto the reference before computing errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    Se3,
    Sim3,
    None,
}

/// The step between the two poses of an RPE pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum RpeDelta {
    /// Every n-th associated pose (evo's `--delta n --delta_unit f`).
    Frames(usize),
    /// Travelled distance in metres along the (aligned) estimate (evo's `--delta_unit m`).
    Meters(f64),
    /// Elapsed time in seconds.
    Seconds(f64),
}

/// Options of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalOptions {
    pub align: Align,
    /// Largest stamp difference for associating two poses (seconds).
    pub max_diff: f64,
    pub rpe_delta: RpeDelta,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            align: Align::Se3,
            max_diff: 0.01,
            rpe_delta: RpeDelta::Meters(1.0),
        }
    }
}

/// Statistics of an error series (numpy conventions: population std, median of even counts
/// averages the middle two).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    pub rmse: f64,
    pub mean: f64,
    pub median: f64,
    pub max: f64,
    pub min: f64,
    pub std: f64,
    pub count: usize,
}

impl Stats {
    pub fn of(v: &[f64]) -> Self {
        let n = v.len();
        if n == 0 {
            return Self {
                rmse: f64::NAN,
                mean: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
                min: f64::NAN,
                std: f64::NAN,
                count: 0,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let rmse = (v.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
        let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64).sqrt();
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            0.5 * (s[n / 2 - 1] + s[n / 2])
        };
        Self {
            rmse,
            mean,
            median,
            max: s[n - 1],
            min: s[0],
            std,
            count: n,
        }
    }
}

/// A similarity transform `x -> s R x + t`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Alignment {
    pub rotation: [[f64; 3]; 3],
    pub translation: [f64; 3],
    pub scale: f64,
}

impl Alignment {
    pub fn identity() -> Self {
        Self {
            rotation: Matrix3::identity().into(),
            translation: [0.0; 3],
            scale: 1.0,
        }
    }

    fn rot(&self) -> Matrix3<f64> {
        Matrix3::from(self.rotation)
    }

    /// Applies to a pose like evo: scale the translation, then left-multiply by (R, t).
    pub fn apply(&self, p: &Isometry3<f64>) -> Isometry3<f64> {
        let r = Rotation3::from_matrix_unchecked(self.rot());
        let t = r * (p.translation.vector * self.scale) + Vector3::from(self.translation);
        Isometry3::from_parts(
            Translation3::from(t),
            UnitQuaternion::from_rotation_matrix(&r) * p.rotation,
        )
    }
}

/// Index pairs (reference, estimate) with stamps within `max_diff` seconds, matched from the
/// shorter trajectory by nearest stamp (evo's `associate_trajectories`).
pub fn associate(
    reference: &[PoseStamped],
    est: &[PoseStamped],
    max_diff: f64,
) -> Vec<(usize, usize)> {
    let est_longer = est.len() > reference.len();
    let (short, long) = if est_longer {
        (reference, est)
    } else {
        (est, reference)
    };
    let ls: Vec<f64> = long.iter().map(|p| stamp_to_secs(p.stamp)).collect();
    let sorted = ls.windows(2).all(|w| w[1] >= w[0]);
    let mut out = Vec::new();
    for (i, p) in short.iter().enumerate() {
        let s = stamp_to_secs(p.stamp);
        let best = if sorted {
            if ls.is_empty() || s < ls[0] - max_diff || s > ls[ls.len() - 1] + max_diff {
                None
            } else {
                let idx = ls.partition_point(|&x| x <= s).min(ls.len() - 1);
                let ub = ls[idx] - s;
                let lb = if idx > 0 {
                    s - ls[idx - 1]
                } else {
                    f64::INFINITY
                };
                if ub <= max_diff && ub < lb {
                    Some(idx)
                } else if lb <= max_diff && lb <= ub {
                    Some(idx - 1)
                } else {
                    None
                }
            }
        } else {
            ls.iter()
                .enumerate()
                .map(|(j, &x)| (j, (x - s).abs()))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .filter(|&(_, d)| d <= max_diff)
                .map(|(j, _)| j)
        };
        if let Some(j) = best {
            out.push(if est_longer { (i, j) } else { (j, i) });
        }
    }
    out
}

/// Umeyama: the similarity (scale only if `with_scale`) minimising sum |y - (s R x + t)|^2.
pub fn umeyama(
    x: &[Vector3<f64>],
    y: &[Vector3<f64>],
    with_scale: bool,
) -> Result<Alignment, EvalError> {
    let n = x.len();
    if n != y.len() || n < 2 {
        return Err(EvalError::Degenerate(format!(
            "need at least 2 matched positions, got {n}"
        )));
    }
    let nf = n as f64;
    let mx = x.iter().sum::<Vector3<f64>>() / nf;
    let my = y.iter().sum::<Vector3<f64>>() / nf;
    let sigma_x = x.iter().map(|p| (p - mx).norm_squared()).sum::<f64>() / nf;
    let mut cov = Matrix3::zeros();
    for (a, b) in x.iter().zip(y) {
        cov += (b - my) * (a - mx).transpose();
    }
    cov /= nf;
    let svd = cov.svd(true, true);
    let (u, vt) = (svd.u.unwrap(), svd.v_t.unwrap());
    let d = svd.singular_values;
    let eps = f64::EPSILON;
    if d.iter().filter(|&&s| s > eps).count() < 2 {
        return Err(EvalError::Degenerate(
            "positions are (nearly) collinear or coincident".into(),
        ));
    }
    let mut s = Matrix3::identity();
    if u.determinant() * vt.determinant() < 0.0 {
        s[(2, 2)] = -1.0;
    }
    let r = u * s * vt;
    let c = if with_scale {
        (Matrix3::from_diagonal(&d) * s).trace() / sigma_x
    } else {
        1.0
    };
    let t = my - c * r * mx;
    Ok(Alignment {
        rotation: r.into(),
        translation: t.into(),
        scale: c,
    })
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub options: EvalOptions,
    pub matched: usize,
    pub reference_poses: usize,
    pub estimate_poses: usize,
    pub alignment: Alignment,
    /// Translation ATE (m).
    pub ate: Stats,
    /// Rotation ATE (deg).
    pub ate_rotation_deg: Stats,
    pub rpe_translation: Stats,
    pub rpe_rotation_deg: Stats,
    /// Per matched pose: (seconds since the first match, ATE translation error).
    #[serde(skip)]
    pub errors: Vec<(f64, f64)>,
    /// Matched reference and aligned estimate positions (for plotting).
    #[serde(skip)]
    pub reference_xyz: Vec<[f64; 3]>,
    #[serde(skip)]
    pub estimate_xyz: Vec<[f64; 3]>,
}

fn rpe_pairs(
    poses: &[Isometry3<f64>],
    stamps: &[f64],
    delta: RpeDelta,
) -> Result<Vec<(usize, usize)>, EvalError> {
    let ids: Vec<usize> = match delta {
        RpeDelta::Frames(n) => {
            if n == 0 {
                return Err(EvalError::Rpe("delta must be at least 1 frame".into()));
            }
            (0..poses.len()).step_by(n).collect()
        }
        RpeDelta::Meters(d) | RpeDelta::Seconds(d) => {
            if !(d.is_finite() && d > 0.0) {
                return Err(EvalError::Rpe(format!("delta must be positive, got {d}")));
            }
            let mut ids = vec![0];
            let mut acc = 0.0;
            for i in 1..poses.len() {
                acc += match delta {
                    RpeDelta::Meters(_) => {
                        (poses[i].translation.vector - poses[i - 1].translation.vector).norm()
                    }
                    _ => stamps[i] - stamps[i - 1],
                };
                if acc >= d {
                    ids.push(i);
                    acc = 0.0;
                }
            }
            ids
        }
    };
    let pairs: Vec<_> = ids.windows(2).map(|w| (w[0], w[1])).collect();
    if pairs.is_empty() {
        return Err(EvalError::Rpe(format!(
            "delta {delta:?} gives no pose pairs over {} poses",
            poses.len()
        )));
    }
    Ok(pairs)
}

/// Associates, aligns and computes ATE and RPE of `est` against `reference`.
pub fn evaluate(
    reference: &[PoseStamped],
    est: &[PoseStamped],
    opt: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let pairs = associate(reference, est, opt.max_diff);
    if pairs.is_empty() {
        return Err(EvalError::NoMatches {
            max_diff: opt.max_diff,
        });
    }
    let q: Vec<Isometry3<f64>> = pairs.iter().map(|&(i, _)| reference[i].pose).collect();
    let p_raw: Vec<Isometry3<f64>> = pairs.iter().map(|&(_, j)| est[j].pose).collect();
    let stamps: Vec<f64> = pairs
        .iter()
        .map(|&(i, _)| stamp_to_secs(reference[i].stamp))
        .collect();
    let alignment = match opt.align {
        Align::None => Alignment::identity(),
        a => {
            let x: Vec<_> = p_raw.iter().map(|p| p.translation.vector).collect();
            let y: Vec<_> = q.iter().map(|p| p.translation.vector).collect();
            umeyama(&x, &y, a == Align::Sim3)?
        }
    };
    let p: Vec<Isometry3<f64>> = p_raw.iter().map(|x| alignment.apply(x)).collect();
    let ate_err: Vec<f64> = q
        .iter()
        .zip(&p)
        .map(|(a, b)| (b.translation.vector - a.translation.vector).norm())
        .collect();
    let ate_rot: Vec<f64> = q
        .iter()
        .zip(&p)
        .map(|(a, b)| a.rotation.angle_to(&b.rotation).to_degrees())
        .collect();
    let ids = rpe_pairs(&p, &stamps, opt.rpe_delta)?;
    let mut rpe_t = Vec::with_capacity(ids.len());
    let mut rpe_r = Vec::with_capacity(ids.len());
    for &(i, j) in &ids {
        let e = (q[i].inverse() * q[j]).inverse() * (p[i].inverse() * p[j]);
        rpe_t.push(e.translation.vector.norm());
        rpe_r.push(e.rotation.angle().to_degrees());
    }
    let t0 = stamps[0];
    Ok(EvalReport {
        options: *opt,
        matched: pairs.len(),
        reference_poses: reference.len(),
        estimate_poses: est.len(),
        alignment,
        ate: Stats::of(&ate_err),
        ate_rotation_deg: Stats::of(&ate_rot),
        rpe_translation: Stats::of(&rpe_t),
        rpe_rotation_deg: Stats::of(&rpe_r),
        errors: stamps.iter().map(|s| s - t0).zip(ate_err).collect(),
        reference_xyz: q.iter().map(|x| x.translation.vector.into()).collect(),
        estimate_xyz: p.iter().map(|x| x.translation.vector.into()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traj(n: usize, f: impl Fn(f64) -> Isometry3<f64>) -> Vec<PoseStamped> {
        (0..n)
            .map(|i| PoseStamped {
                stamp: 1_000_000_000 + i as u64 * 50_000_000,
                pose: f(i as f64 * 0.05),
            })
            .collect()
    }

    fn helix(t: f64) -> Isometry3<f64> {
        Isometry3::from_parts(
            Translation3::new(3.0 * t.cos(), 2.0 * t.sin(), 0.3 * t),
            UnitQuaternion::from_euler_angles(0.1 * t, 0.05 * t.sin(), t),
        )
    }

    #[test]
    fn recovers_a_known_similarity() {
        let gt = traj(200, helix);
        let g = Isometry3::from_parts(
            Translation3::new(1.0, -2.0, 0.5),
            UnitQuaternion::from_euler_angles(0.2, -0.1, 0.7),
        );
        let s = 0.8;
        let est: Vec<_> = gt
            .iter()
            .map(|p| {
                let mut x = g * p.pose;
                x.translation.vector *= s;
                PoseStamped {
                    stamp: p.stamp,
                    pose: x,
                }
            })
            .collect();
        let opt = EvalOptions {
            align: Align::Sim3,
            ..Default::default()
        };
        let r = evaluate(&gt, &est, &opt).unwrap();
        assert_eq!(r.matched, 200);
        assert!(r.ate.max < 1e-9, "{:?}", r.ate);
        assert!(r.rpe_translation.max < 1e-9 && r.rpe_rotation_deg.max < 1e-6);
        assert!((r.alignment.scale - 1.0 / s).abs() < 1e-9);
        // SE3 alignment cannot undo the scale: error stays.
        let r = evaluate(&gt, &est, &EvalOptions::default()).unwrap();
        assert!(r.ate.rmse > 0.1);
        // Without alignment the offset shows in full.
        let r = evaluate(
            &gt,
            &est,
            &EvalOptions {
                align: Align::None,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r.ate.rmse > 0.5, "{:?}", r.ate);
    }

    #[test]
    fn known_constant_offset_gives_known_ate() {
        let gt = traj(100, helix);
        let est: Vec<_> = gt
            .iter()
            .map(|p| PoseStamped {
                stamp: p.stamp + 3_000_000,
                pose: Isometry3::from_parts(
                    Translation3::from(p.pose.translation.vector + Vector3::new(0.0, 0.0, 0.1)),
                    p.pose.rotation,
                ),
            })
            .collect();
        let opt = EvalOptions {
            align: Align::None,
            ..Default::default()
        };
        let r = evaluate(&gt, &est, &opt).unwrap();
        assert_eq!(r.matched, 100);
        assert!((r.ate.rmse - 0.1).abs() < 1e-12 && (r.ate.median - 0.1).abs() < 1e-12);
        assert!(r.rpe_translation.max < 1e-12);
        // A 3 ms shift falls outside a 2 ms association window.
        let opt = EvalOptions {
            max_diff: 0.002,
            ..opt
        };
        assert!(matches!(
            evaluate(&gt, &est, &opt),
            Err(EvalError::NoMatches { .. })
        ));
    }

    #[test]
    fn stats_follow_numpy() {
        let s = Stats::of(&[1.0, 2.0, 3.0, 10.0]);
        assert_eq!(s.median, 2.5);
        assert_eq!(s.mean, 4.0);
        assert!((s.rmse - (114.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((s.std - (50.0f64 / 4.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn degenerate_alignment_is_an_error() {
        let gt = traj(10, |t| Isometry3::translation(t, 0.0, 0.0));
        assert!(evaluate(&gt, &gt, &EvalOptions::default()).is_err());
        let one = traj(1, helix);
        assert!(evaluate(&one, &one, &EvalOptions::default()).is_err());
    }
}
