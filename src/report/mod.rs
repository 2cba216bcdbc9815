//! `RUN/report.html`: one page per run folder with the summary (accuracy, render quality,
//! speed), the plots (drawn here into `RUN/plots/` from the run's files), the kept render
//! comparisons, the drops and skips by cause and the configuration's differences from the
//! defaults. Works on any finished run folder, so `gs_livo report RUN` can redo it.

pub mod html;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Config;
use crate::eval::plot::{plot_ape, plot_top_view, TopView};
use crate::eval::plot_series::{median_period, plot_gaussians, plot_quality, plot_timing};
use crate::eval::records::{read_renders, FrameTable, RenderRecord};
use crate::eval::tum::read_tum;
use crate::eval::{self, EvalError, RpeDelta};
use html::Page;

/// Errors that stop a report (a missing plot only leaves a note in the page).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a run summary: {message}")]
    Summary { path: PathBuf, message: String },
}

/// Sections of the page, in order (id, title).
pub const SECTIONS: [(&str, &str); 8] = [
    ("summary", "Summary"),
    ("trajectory", "Trajectory"),
    ("timing", "Time per frame"),
    ("quality", "Render quality"),
    ("map", "Gaussian map"),
    ("renders", "Renders"),
    ("drops", "Drops and skips"),
    ("config", "Configuration"),
];

const PLOT_SIZE: (u32, u32) = (1100, 520);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `run/report.html` (and `run/plots/*.png`); returns the page's path.
pub fn write_report(run: &Path) -> Result<PathBuf, ReportError> {
    let sp = run.join("summary.json");
    let text = std::fs::read_to_string(&sp).map_err(io(&sp))?;
    let summary: Value = serde_json::from_str(&text).map_err(|e| ReportError::Summary {
        path: sp.clone(),
        message: e.to_string(),
    })?;
    if !summary.is_object() || summary.get("status").is_none() {
        return Err(ReportError::Summary {
            path: sp,
            message: "no `status` field".into(),
        });
    }
    let plots = run.join("plots");
    std::fs::create_dir_all(&plots).map_err(io(&plots))?;
    let mut page = Page::default();
    summary_section(&mut page, &summary);
    trajectory_section(&mut page, run);
    let frames = FrameTable::read(&run.join("frames.csv"));
    timing_section(&mut page, run, &frames);
    let renders = read_renders(&run.join("renders.csv"));
    quality_section(&mut page, run, &renders);
    map_section(&mut page, run, &frames);
    renders_section(&mut page, run, &renders);
    drops_section(&mut page, &summary);
    config_section(&mut page, run);
    let title = format!("gs_livo run: {}", run.display());
    let sub = format!(
        "status {} · bag {}",
        str_at(&summary, "/status"),
        str_at(&summary, "/bag")
    );
    let out = run.join("report.html");
    std::fs::write(&out, page.finish(&title, &sub)).map_err(io(&out))?;
    Ok(out)
}

fn str_at(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn num_at(v: &Value, ptr: &str) -> Option<f64> {
    v.pointer(ptr).and_then(Value::as_f64)
}

fn fmt_num(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or("n/a".into(), |x| {
        format!("{x:.digits$} {unit}").trim_end().to_string()
    })
}

fn summary_section(p: &mut Page, s: &Value) {
    p.section(SECTIONS[0].0, SECTIONS[0].1);
    let rows: Vec<(&str, String)> = vec![
        ("status", str_at(s, "/status")),
        ("mode", str_at(s, "/options/mode")),
        ("renderer", str_at(s, "/renderer")),
        (
            "frames (estimated / mapped)",
            format!("{} / {}", str_at(s, "/frames"), str_at(s, "/mapped_frames")),
        ),
        ("sensor time", fmt_num(num_at(s, "/sensor_seconds"), 1, "s")),
        ("wall time", fmt_num(num_at(s, "/wall_seconds"), 1, "s")),
        (
            "real-time factor",
            fmt_num(num_at(s, "/real_time_factor"), 2, "x"),
        ),
        (
            "streaming real-time factor",
            fmt_num(num_at(s, "/streaming_real_time_factor"), 2, "x"),
        ),
        ("CPU time", fmt_num(num_at(s, "/cpu_seconds"), 1, "s")),
        (
            "ATE RMSE (translation)",
            fmt_num(num_at(s, "/accuracy/ate_rmse_m"), 4, "m"),
        ),
        (
            "ATE mean / max",
            format!(
                "{} / {}",
                fmt_num(num_at(s, "/accuracy/ate_mean_m"), 4, "m"),
                fmt_num(num_at(s, "/accuracy/ate_max_m"), 4, "m")
            ),
        ),
        (
            "ATE RMSE (rotation)",
            fmt_num(num_at(s, "/accuracy/ate_rotation_rmse_deg"), 3, "deg"),
        ),
        (
            "RPE RMSE (translation)",
            fmt_num(num_at(s, "/accuracy/rpe_translation_rmse_m"), 4, "m"),
        ),
        ("ground truth", str_at(s, "/accuracy/source")),
        (
            "PSNR mean (min / max)",
            match num_at(s, "/render_quality/psnr_mean_db") {
                Some(m) => format!(
                    "{m:.2} dB ({} / {})",
                    fmt_num(num_at(s, "/render_quality/psnr_min_db"), 2, "dB"),
                    fmt_num(num_at(s, "/render_quality/psnr_max_db"), 2, "dB")
                ),
                None => "n/a (no renders)".into(),
            },
        ),
        (
            "SSIM mean",
            fmt_num(num_at(s, "/render_quality/ssim_mean"), 3, ""),
        ),
        ("renders compared", str_at(s, "/render_quality/renders")),
        (
            "Gaussians (map / window at the end)",
            format!(
                "{} / {}",
                str_at(s, "/gaussians"),
                str_at(s, "/window_gaussians")
            ),
        ),
    ];
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(k, v)| vec![k.into(), v]).collect();
    p.table(&["quantity", "value"], &rows);
    if let Some(e) = s.get("error").and_then(Value::as_str) {
        p.para(&format!("Errors during the run: {e}"));
    }
    if let Some(stages) = s.get("stages").and_then(Value::as_object) {
        let rows: Vec<Vec<String>> = stages
            .iter()
            .map(|(k, v)| {
                let f = |key: &str| fmt_num(v.get(key).and_then(Value::as_f64), 2, "");
                vec![
                    k.clone(),
                    str_at(v, "/count"),
                    f("median_ms"),
                    f("p95_ms"),
                    f("max_ms"),
                    f("total_ms"),
                ]
            })
            .collect();
        p.para("Stage times (ms):");
        p.table(&["stage", "count", "median", "p95", "max", "total"], &rows);
    }
    p.end_section();
}

/// Plots `name` into plots/ with `draw`; adds it to the page, or a note saying why not.
fn plot_into(
    p: &mut Page,
    run: &Path,
    name: &str,
    caption: &str,
    draw: impl FnOnce(&Path) -> Result<(), EvalError>,
) {
    let rel = format!("plots/{name}");
    match draw(&run.join(&rel)) {
        Ok(()) => p.image(&rel, caption),
        Err(e) => p.note(&format!("{caption}: not available ({e})")),
    }
}

fn trajectory_section(p: &mut Page, run: &Path) {
    p.section(SECTIONS[1].0, SECTIONS[1].1);
    let est = match read_tum(&run.join("trajectory.tum")) {
        Ok(e) if e.len() >= 2 => e,
        Ok(_) => {
            p.note("fewer than two poses in trajectory.tum");
            p.end_section();
            return;
        }
        Err(e) => {
            p.note(&format!("no trajectory: {e}"));
            p.end_section();
            return;
        }
    };
    let gt_path = run.join("ground_truth.tum");
    let evaluated = gt_path
        .exists()
        .then(|| eval::evaluate_run(&read_tum(&gt_path)?, &est));
    match evaluated {
        Some(Ok(r)) => {
            p.para(&format!(
                "Estimate aligned to the ground truth ({:?}, {} matched poses): ATE RMSE {:.4} m, \
                 RPE RMSE over {} {:.4} m (translation) / {:.3} deg (rotation).",
                r.options.align,
                r.matched,
                r.ate.rmse,
                delta_text(r.options.rpe_delta),
                r.rpe_translation.rmse,
                r.rpe_rotation_deg.rmse
            ));
            let errs: Vec<f64> = r.errors.iter().map(|e| e.1).collect();
            let view = TopView {
                estimate: &r.estimate_xyz,
                reference: &r.reference_xyz,
                errors: Some(&errs),
            };
            plot_into(
                p,
                run,
                "trajectory.png",
                "Top view, estimate coloured by APE",
                |f| plot_top_view(&view, f, (900, 760)).map(drop),
            );
            plot_into(
                p,
                run,
                "ape.png",
                "Absolute position error over time",
                |f| plot_ape(&r.errors, r.ate.rmse, f, PLOT_SIZE).map(drop),
            );
        }
        other => {
            if let Some(Err(e)) = other {
                p.note(&format!("ground truth could not be matched: {e}"));
            } else {
                p.note("no ground truth in this run: estimate only, no APE");
            }
            let xyz: Vec<[f64; 3]> = est
                .iter()
                .map(|q| q.pose.translation.vector.into())
                .collect();
            let view = TopView {
                estimate: &xyz,
                reference: &[],
                errors: None,
            };
            plot_into(p, run, "trajectory.png", "Top view of the estimate", |f| {
                plot_top_view(&view, f, (900, 760)).map(drop)
            });
        }
    }
    p.end_section();
}

fn delta_text(d: RpeDelta) -> String {
    match d {
        RpeDelta::Meters(v) => format!("{v} m"),
        RpeDelta::Seconds(v) => format!("{v} s"),
        RpeDelta::Frames(n) => format!("{n} frame(s)"),
    }
}

fn timing_section(p: &mut Page, run: &Path, frames: &Result<FrameTable, EvalError>) {
    p.section(SECTIONS[2].0, SECTIONS[2].1);
    match frames {
        Ok(t) => {
            let period = median_period(t);
            p.para(&format!(
                "Time each stage spent per frame, stacked; the dashed line is the sensor period \
                 ({}). Stages on different threads run in parallel, so the stack can exceed the \
                 wall time of a frame; waits and once-per-run totals are left out.",
                fmt_num(period.map(|s| s * 1e3), 1, "ms")
            ));
            plot_into(p, run, "timing.png", "Stage time per frame", |f| {
                plot_timing(t, period, f, PLOT_SIZE).map(drop)
            });
        }
        Err(e) => p.note(&format!("no per-frame records: {e}")),
    }
    p.end_section();
}

fn quality_section(p: &mut Page, run: &Path, renders: &Result<Vec<RenderRecord>, EvalError>) {
    p.section(SECTIONS[3].0, SECTIONS[3].1);
    match renders {
        Ok(r) => {
            let held = r.iter().filter(|x| x.held_out).count();
            p.para(&format!(
                "PSNR and SSIM of each render against its camera image, in camera units: {} \
                 training views, {held} held-out views.",
                r.len() - held
            ));
            plot_into(
                p,
                run,
                "quality.png",
                "Render PSNR and SSIM over time",
                |f| plot_quality(r, f, (1100, 700)).map(drop),
            );
        }
        Err(e) => p.note(&format!("no renders recorded: {e}")),
    }
    p.end_section();
}

fn map_section(p: &mut Page, run: &Path, frames: &Result<FrameTable, EvalError>) {
    p.section(SECTIONS[4].0, SECTIONS[4].1);
    match frames {
        Ok(t) if t.rows.iter().any(|r| r.map_gaussians > 0) => {
            plot_into(
                p,
                run,
                "gaussians.png",
                "Gaussians in the map and the window",
                |f| plot_gaussians(t, f, PLOT_SIZE).map(drop),
            );
        }
        Ok(_) => p.note("no Gaussian map in this run"),
        Err(e) => p.note(&format!("no per-frame records: {e}")),
    }
    p.end_section();
}

fn renders_section(p: &mut Page, run: &Path, renders: &Result<Vec<RenderRecord>, EvalError>) {
    p.section(SECTIONS[5].0, SECTIONS[5].1);
    let kept: Vec<&RenderRecord> = match renders {
        Ok(r) => r.iter().filter(|x| x.image.is_some()).collect(),
        Err(_) => Vec::new(),
    };
    if kept.is_empty() {
        p.note("no render images kept");
    } else {
        p.para("Camera image (exposure-normalised), render and error map, spread over the run.");
    }
    for r in kept {
        let img = r.image.as_deref().unwrap_or_default();
        let caption = format!(
            "frame {} at {:.1} s{}: PSNR {}, SSIM {}",
            r.frame,
            r.time_s,
            if r.held_out { " (held out)" } else { "" },
            fmt_num(r.psnr_db, 2, "dB"),
            fmt_num(r.ssim, 3, "")
        );
        if run.join(img).is_file() {
            p.image(img, &caption);
        } else {
            p.note(&format!("{caption}: {img} is missing"));
        }
    }
    p.end_section();
}

/// Fields of a counter group that count inputs rather than losses.
const NOT_LOSSES: [&str; 9] = [
    "messages",
    "imu",
    "clouds",
    "images",
    "ground_truth",
    "scans",
    "sensor_seconds",
    "applied",
    "exposure",
];

fn drops_section(p: &mut Page, s: &Value) {
    p.section(SECTIONS[6].0, SECTIONS[6].1);
    let groups = [
        ("ingest", "/ingest", "reading the bag"),
        ("sync", "/sync", "time synchronisation"),
        ("lio", "/lio", "LiDAR-inertial odometry"),
        (
            "visual",
            "/visual/skipped",
            "visual update skipped, by reason",
        ),
        ("dropped", "/dropped", "queues and mapping"),
    ];
    let mut rows = Vec::new();
    let mut zero = 0;
    for (name, ptr, what) in groups {
        let Some(obj) = s.pointer(ptr).and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in obj {
            let Some(n) = v.as_u64() else { continue };
            if NOT_LOSSES.contains(&k.as_str()) || (name == "lio" && k == "scans") {
                continue;
            }
            if n == 0 {
                zero += 1;
            } else {
                rows.push(vec![format!("{name}.{k}"), n.to_string(), what.to_string()]);
            }
        }
    }
    if rows.is_empty() {
        p.para(&format!(
            "Nothing dropped or skipped ({zero} counters, all zero)."
        ));
    } else {
        p.table(&["counter", "count", "where"], &rows);
        p.note(&format!("{zero} other counters are zero."));
    }
    p.end_section();
}

/// Dotted keys of every leaf of `v` (arrays are leaves).
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

/// Keys whose value in `cfg` differs from the defaults: (key, default, value).
pub fn config_diff(cfg: &Config) -> Vec<(String, String, String)> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    flatten(
        "",
        &serde_json::to_value(Config::default()).unwrap_or(Value::Null),
        &mut a,
    );
    flatten(
        "",
        &serde_json::to_value(cfg).unwrap_or(Value::Null),
        &mut b,
    );
    let text = |v: Option<&Value>| v.map_or("-".to_string(), |v| v.to_string());
    b.iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), text(a.get(k)), text(Some(v))))
        .collect()
}

fn config_section(p: &mut Page, run: &Path) {
    p.section(SECTIONS[7].0, SECTIONS[7].1);
    match Config::load(&run.join("config.yaml"), &[]) {
        Ok(cfg) => {
            let d = config_diff(&cfg);
            if d.is_empty() {
                p.para("The run used the default configuration.");
            } else {
                p.para(&format!(
                    "{} parameters differ from the defaults (config.yaml):",
                    d.len()
                ));
                let rows: Vec<Vec<String>> = d.into_iter().map(|(k, a, b)| vec![k, a, b]).collect();
                p.table(&["parameter", "default", "this run"], &rows);
            }
        }
        Err(e) => p.note(&format!("configuration not available: {e}")),
    }
    p.end_section();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_diff_names_changed_keys_only() {
        let mut c = Config::default();
        assert!(config_diff(&c).is_empty());
        c.camera.fx = 123.5;
        c.gaussian.iterations += 2;
        let d = config_diff(&c);
        let keys: Vec<&str> = d.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(keys, vec!["camera.fx", "gaussian.iterations"], "{d:?}");
        assert_eq!(d[0].2, "123.5");
    }
}
