//! Time-series plots of a run from its records: stage time per frame (stacked), render quality
//! (PSNR, SSIM) with training and held-out views marked, and the Gaussian counts.

use std::path::Path;

use plotters::prelude::*;

use super::plot::{
    bounds, chart, count_label, legend, mesh, mesh_with, padded, perr, render_png, side_legend,
    Area, Panel, Plotted,
};
use super::records::{FrameTable, RenderRecord};
use super::EvalError;

/// Whether a stage belongs in the stacked time plot: not a once-per-run total, not a wait for
/// another thread (that time is spent by the stage waited for, already stacked).
pub fn stacked_stage(name: &str) -> bool {
    !name.ends_with("_total") && !name.ends_with("_wait")
}

fn need_rows(t: &FrameTable, what: &str) -> Result<(), EvalError> {
    if t.rows.is_empty() {
        return Err(EvalError::Plot(format!("{what}: no frames recorded")));
    }
    Ok(())
}

/// Stage time per frame, stacked (ms), with the sensor period as a dashed line.
pub fn draw_timing(
    area: &Area,
    t: &FrameTable,
    sensor_period_s: Option<f64>,
) -> Result<Panel, EvalError> {
    need_rows(t, "stage times")?;
    let stages: Vec<usize> = (0..t.stages.len())
        .filter(|&k| stacked_stage(&t.stages[k]))
        .collect();
    let xs: Vec<f64> = t.rows.iter().map(|r| r.time_s).collect();
    // Cumulative tops per stage, bottom to top.
    let mut tops: Vec<Vec<f64>> = Vec::with_capacity(stages.len());
    let mut acc = vec![0.0f64; t.rows.len()];
    for &k in &stages {
        for (a, r) in acc.iter_mut().zip(&t.rows) {
            *a += r.stage_ms[k].max(0.0);
        }
        tops.push(acc.clone());
    }
    let period_ms = sensor_period_s
        .filter(|p| p.is_finite() && *p > 0.0)
        .map(|p| p * 1e3);
    let total_max = acc.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = bounds(
        xs.iter()
            .map(|&x| (x, 0.0))
            .chain(xs.iter().zip(&acc).map(|(&x, &y)| (x, y))),
    )
    .ok_or_else(|| EvalError::Plot("stage times: no finite times".into()))?;
    let y_max = (total_max.max(period_ms.unwrap_or(0.0)) * 1.12).max(1e-3);
    let x = padded(lo.0, hi.0, 0.01);
    // The legend goes beside the chart: with a dozen stages it would hide the peaks.
    let (w, _) = area.dim_in_pixel();
    let (area, side) = area.split_horizontally(w.saturating_sub(LEGEND_PX));
    let mut c = chart(
        &area,
        "Stage time per frame (stacked)",
        x.clone(),
        0.0..y_max,
    )?;
    mesh(&mut c, "time [s]", "time per frame [ms]")?;
    let zero = vec![0.0; xs.len()];
    let mut key = Vec::new();
    for (i, &k) in stages.iter().enumerate() {
        let below = if i == 0 { &zero } else { &tops[i - 1] };
        let band: Vec<(f64, f64)> = xs
            .iter()
            .zip(&tops[i])
            .map(|(&x, &y)| (x, y))
            .chain(xs.iter().zip(below).rev().map(|(&x, &y)| (x, y)))
            .collect();
        let col = Palette99::pick(i).to_rgba().mix(0.85);
        c.draw_series([Polygon::new(band, col.filled())])
            .map_err(perr)?;
        key.push((t.stages[k].clone(), col, false));
    }
    // Top of the stack first, as the bands appear.
    key.reverse();
    if let Some(p) = period_ms {
        c.draw_series(DashedLineSeries::new(
            [(x.start, p), (x.end, p)],
            10,
            6,
            RED.stroke_width(2),
        ))
        .map_err(perr)?;
        key.insert(0, (format!("sensor period {p:.0} ms"), RED.to_rgba(), true));
    }
    side_legend(&side, &key)?;
    Ok(Panel::of(&c, lo, hi))
}

/// Width of the legend beside the stacked time plot (px).
const LEGEND_PX: u32 = 190;

const TRAIN: RGBColor = RGBColor(40, 90, 200);
const HELD_OUT: RGBColor = RGBColor(230, 120, 20);

/// One quality metric over time: training views as dots on a line, held-out views as
/// triangles.
fn draw_metric(
    area: &Area,
    title: &str,
    y_desc: &str,
    pts: &[(f64, f64, bool)],
) -> Result<Panel, EvalError> {
    let (lo, hi) = bounds(pts.iter().map(|p| (p.0, p.1)))
        .ok_or_else(|| EvalError::Plot(format!("{title}: no finite values")))?;
    let mut c = chart(
        area,
        title,
        padded(lo.0, hi.0, 0.02),
        padded(lo.1, hi.1, 0.1),
    )?;
    mesh(&mut c, "time [s]", y_desc)?;
    let train: Vec<(f64, f64)> = pts.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
    let held: Vec<(f64, f64)> = pts.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
    if !train.is_empty() {
        c.draw_series(LineSeries::new(
            train.iter().copied(),
            TRAIN.mix(0.5).stroke_width(1),
        ))
        .map_err(perr)?;
        c.draw_series(train.iter().map(|&p| Circle::new(p, 3, TRAIN.filled())))
            .map_err(perr)?
            .label(format!("training views ({})", train.len()))
            .legend(|(x, y)| Circle::new((x + 8, y), 4, TRAIN.filled()));
    }
    if !held.is_empty() {
        c.draw_series(
            held.iter()
                .map(|&p| TriangleMarker::new(p, 6, HELD_OUT.filled())),
        )
        .map_err(perr)?
        .label(format!("held-out views ({})", held.len()))
        .legend(|(x, y)| TriangleMarker::new((x + 8, y), 5, HELD_OUT.filled()));
    }
    legend(&mut c, SeriesLabelPosition::LowerRight)?;
    Ok(Panel::of(&c, lo, hi))
}

/// PSNR over time (top) and SSIM over time (bottom, when recorded).
pub fn plot_quality(
    renders: &[RenderRecord],
    path: &Path,
    size: (u32, u32),
) -> Result<Plotted, EvalError> {
    let psnr: Vec<(f64, f64, bool)> = renders
        .iter()
        .filter_map(|r| r.psnr_db.map(|v| (r.time_s, v, r.held_out)))
        .collect();
    let ssim: Vec<(f64, f64, bool)> = renders
        .iter()
        .filter_map(|r| r.ssim.map(|v| (r.time_s, v, r.held_out)))
        .collect();
    if psnr.is_empty() {
        return Err(EvalError::Plot("render quality: no PSNR recorded".into()));
    }
    render_png(path, size, |root| {
        if ssim.is_empty() {
            return Ok(vec![draw_metric(root, "Render PSNR", "PSNR [dB]", &psnr)?]);
        }
        let (top, bottom) = root.split_vertically(size.1 / 2);
        Ok(vec![
            draw_metric(&top, "Render PSNR", "PSNR [dB]", &psnr)?,
            draw_metric(&bottom, "Render SSIM", "SSIM", &ssim)?,
        ])
    })
}

/// Gaussians in the global map and in the sliding window over time.
pub fn draw_gaussians(area: &Area, t: &FrameTable) -> Result<Panel, EvalError> {
    need_rows(t, "Gaussians")?;
    let map: Vec<(f64, f64)> = t
        .rows
        .iter()
        .map(|r| (r.time_s, r.map_gaussians as f64))
        .collect();
    let win: Vec<(f64, f64)> = t
        .rows
        .iter()
        .map(|r| (r.time_s, r.window_gaussians as f64))
        .collect();
    let (lo, hi) = bounds(map.iter().chain(&win).copied())
        .ok_or_else(|| EvalError::Plot("Gaussians: no finite values".into()))?;
    let mut c = chart(
        area,
        "Gaussians",
        padded(lo.0, hi.0, 0.01),
        0.0..(hi.1 * 1.1).max(1.0),
    )?;
    mesh_with(&mut c, "time [s]", "Gaussians", Some(&count_label))?;
    for (pts, col, name) in [
        (&map, RGBColor(40, 90, 200), "global map"),
        (&win, RGBColor(20, 150, 60), "sliding window"),
    ] {
        c.draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
            .map_err(perr)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], col.stroke_width(2)));
    }
    legend(&mut c, SeriesLabelPosition::UpperLeft)?;
    Ok(Panel::of(&c, lo, hi))
}

pub fn plot_timing(
    t: &FrameTable,
    sensor_period_s: Option<f64>,
    path: &Path,
    size: (u32, u32),
) -> Result<Plotted, EvalError> {
    render_png(path, size, |root| {
        Ok(vec![draw_timing(root, t, sensor_period_s)?])
    })
}

pub fn plot_gaussians(t: &FrameTable, path: &Path, size: (u32, u32)) -> Result<Plotted, EvalError> {
    render_png(path, size, |root| Ok(vec![draw_gaussians(root, t)?]))
}

/// Median spacing of the frame times (s): the sensor's scan period as recorded.
pub fn median_period(t: &FrameTable) -> Option<f64> {
    let mut d: Vec<f64> = t
        .rows
        .windows(2)
        .map(|w| w[1].time_s - w[0].time_s)
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    Some(d[d.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::records::FrameRecord;

    fn table(n: usize) -> FrameTable {
        FrameTable {
            stages: vec![
                "lio".into(),
                "visual_wait".into(),
                "map_optimise".into(),
                "ingest_total".into(),
            ],
            rows: (0..n)
                .map(|i| FrameRecord {
                    frame: i as u64,
                    time_s: 2.0 + i as f64 * 0.1,
                    map_gaussians: 100 * i,
                    window_gaussians: 40 + i,
                    stage_ms: vec![
                        10.0 + i as f64,
                        500.0,
                        30.0,
                        if i == n - 1 { 9000.0 } else { 0.0 },
                    ],
                })
                .collect(),
        }
    }

    #[test]
    fn timing_axes_hold_the_stack_and_the_period() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(40);
        let p = dir.path().join("t.png");
        let out = plot_timing(&t, Some(0.1), &p, (1000, 500)).unwrap();
        assert_eq!(image::image_dimensions(&p).unwrap(), (1000, 500));
        let pa = &out.panels[0];
        assert!(pa.covers_data(), "{pa:?}");
        // Stack of lio + map_optimise: at most 49 + 30 = 79 ms; the wait (500 ms) and the
        // once-per-run total (9000 ms) are not stacked, the 100 ms period is shown.
        assert!(pa.y.end >= 100.0 && pa.y.end < 200.0, "{pa:?}");
        assert!(pa.x.start <= 2.0 && pa.x.end >= 5.9, "{pa:?}");
        assert_eq!(median_period(&t).map(|p| (p * 1e3).round()), Some(100.0));
        assert!(plot_timing(&table(0), None, &p, (400, 300)).is_err());
    }

    #[test]
    fn quality_and_gaussians_cover_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let renders: Vec<RenderRecord> = (0..30)
            .map(|i| RenderRecord {
                frame: i,
                time_s: i as f64 * 0.5,
                psnr_db: Some(15.0 + i as f64 * 0.3),
                ssim: Some(0.4 + i as f64 * 0.01),
                held_out: i % 5 == 4,
                image: None,
            })
            .collect();
        let p = dir.path().join("q.png");
        let out = plot_quality(&renders, &p, (900, 700)).unwrap();
        assert_eq!(image::image_dimensions(&p).unwrap(), (900, 700));
        assert_eq!(out.panels.len(), 2);
        let (psnr, ssim) = (&out.panels[0], &out.panels[1]);
        assert!(psnr.covers_data() && ssim.covers_data());
        assert!(psnr.y.start <= 15.0 && psnr.y.end >= 23.7, "{psnr:?}");
        assert!(
            ssim.y.start <= 0.4 && ssim.y.end >= 0.69 && ssim.y.end < 1.0,
            "{ssim:?}"
        );
        // The SSIM panel is below the PSNR panel.
        assert!(ssim.area_px.1.start >= psnr.area_px.1.end);

        let t = table(25);
        let out = plot_gaussians(&t, &dir.path().join("g.png"), (800, 400)).unwrap();
        let g = &out.panels[0];
        assert!(
            g.covers_data() && g.y.end >= 2400.0 && g.x.end >= 4.4,
            "{g:?}"
        );
        assert!(plot_quality(&[], &p, (400, 300)).is_err());
    }
}
