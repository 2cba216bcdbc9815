//! `gs_livo eval`: trajectory error of an estimate against ground truth.

use std::path::PathBuf;

use gs_livo::eval::{self, plot::plot_report, tum::read_tum, Align, EvalOptions, RpeDelta};

/// Arguments of `gs_livo eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Ground-truth trajectory (TUM).
    #[arg(long)]
    pub gt: PathBuf,
    /// Estimated trajectory (TUM).
    #[arg(long)]
    pub est: PathBuf,
    #[arg(long, value_enum, default_value = "se3")]
    pub align: Align,
    /// Largest stamp difference for association (s).
    #[arg(long, default_value_t = 0.01)]
    pub max_diff: f64,
    /// RPE step: a number with unit m (metres), s (seconds) or f (frames), e.g. 1m, 0.5s, 10f.
    #[arg(long, default_value = "1m")]
    pub delta: String,
    /// PNG plot: top view of ground truth and aligned estimate coloured by error, and the APE
    /// over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Express the ground truth in the map frame of the run whose ground truth is this TUM file
    /// (a run's map frame is its first pose made level, yaw kept): to judge, with `--align
    /// none`, a run that relocalised in that run's saved map.
    #[arg(long)]
    pub gt_in_map_of: Option<PathBuf>,
}

fn parse_delta(s: &str) -> anyhow::Result<RpeDelta> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let v: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--delta {s}: expected e.g. 1m, 0.5s or 10f"))?;
    Ok(match unit {
        "m" => RpeDelta::Meters(v),
        "s" => RpeDelta::Seconds(v),
        "f" if v >= 1.0 && v.fract() == 0.0 => RpeDelta::Frames(v as usize),
        _ => anyhow::bail!("--delta {s}: unit must be m, s or f (whole frames)"),
    })
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let mut gt = read_tum(&a.gt)?;
    if let Some(first) = &a.gt_in_map_of {
        let origin = read_tum(first)?
            .first()
            .map(|p| gs_livo::session::level_frame(&p.pose))
            .ok_or_else(|| anyhow::anyhow!("--gt-in-map-of {}: no poses", first.display()))?;
        let map_t_world = origin.inverse();
        gt.iter_mut().for_each(|p| p.pose = map_t_world * p.pose);
    }
    let est = read_tum(&a.est)?;
    let opt = EvalOptions {
        align: a.align,
        max_diff: a.max_diff,
        rpe_delta: parse_delta(&a.delta)?,
    };
    let r = eval::evaluate(&gt, &est, &opt)?;
    if let Some(p) = &a.plot {
        plot_report(&r, p)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "matched {} of {} gt / {} est poses, align {:?} (scale {:.6})",
            r.matched, r.reference_poses, r.estimate_poses, a.align, r.alignment.scale
        );
        let row = |name: &str, s: &eval::Stats| {
            println!(
                "{name:<18} rmse {:.6}  mean {:.6}  median {:.6}  max {:.6}  (n={})",
                s.rmse, s.mean, s.median, s.max, s.count
            )
        };
        row("ATE trans [m]", &r.ate);
        row("ATE rot [deg]", &r.ate_rotation_deg);
        row("RPE trans [m]", &r.rpe_translation);
        row("RPE rot [deg]", &r.rpe_rotation_deg);
    }
    Ok(())
}
