//! PNG plots with `plotters` (bitmap backend into our own buffer, saved with `image`): the
//! canvas, the embedded font, the trajectory top view and APE over time. `gs_livo eval --plot`,
//! the end of a run and the report all draw with these functions.
//!
//! Text goes through `ab_glyph` with DejaVu Sans compiled in, so plots render the same on a
//! machine without any system font.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{EvalError, EvalReport};

/// The bitmap drawing area every plot draws on.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// A chart with two linear f64 axes.
pub type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Font family name the plots ask for (registered by [`register_font`]).
pub const FONT: &str = "sans-serif";

/// Registers the embedded font once per process (ab_glyph loads no system fonts).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err()
        {
            tracing::warn!("plots: the embedded DejaVu Sans did not load; text will be missing");
        }
    });
}

/// Where one panel's axes lie and where its data landed, both through the chart's own
/// coordinate mapping (so tests can check that the axes cover the data).
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub x: Range<f64>,
    pub y: Range<f64>,
    /// The plotting area in image pixels (x range, y range).
    pub area_px: (Range<i32>, Range<i32>),
    /// Image pixels of the data's bounding-box corners (min x, min y) and (max x, max y).
    pub data_px: [(i32, i32); 2],
}

impl Panel {
    /// Records `chart`'s axes and maps the data box `lo..hi` through it.
    pub fn of(chart: &Chart, lo: (f64, f64), hi: (f64, f64)) -> Self {
        Self {
            x: chart.x_range(),
            y: chart.y_range(),
            area_px: chart.plotting_area().get_pixel_range(),
            data_px: [chart.backend_coord(&lo), chart.backend_coord(&hi)],
        }
    }

    /// Whether every data corner falls inside the plotting area.
    pub fn covers_data(&self) -> bool {
        let (xr, yr) = &self.area_px;
        self.data_px
            .iter()
            .all(|(x, y)| xr.start <= *x && *x <= xr.end && yr.start <= *y && *y <= yr.end)
    }
}

/// An image written by a plot function, with its panels.
#[derive(Debug, Clone)]
pub struct Plotted {
    pub width: u32,
    pub height: u32,
    pub panels: Vec<Panel>,
}

/// Turns a plotters error into the crate's error.
pub fn perr(e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot(e.to_string())
}

/// Draws into a white `size` canvas with `draw` and saves it as PNG at `path`.
pub fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> Result<Vec<Panel>, EvalError>,
) -> Result<Plotted, EvalError> {
    register_font();
    let (w, h) = size;
    if w < 64 || h < 64 {
        return Err(EvalError::Plot(format!("image size {w}x{h} is too small")));
    }
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    let panels = {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        let panels = draw(&root)?;
        root.present().map_err(perr)?;
        panels
    };
    image::save_buffer(path, &buf, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| EvalError::Plot(format!("{}: {e}", path.display())))?;
    Ok(Plotted {
        width: w,
        height: h,
        panels,
    })
}

/// Bounding box of finite points; `None` when there is none.
pub fn bounds(points: impl IntoIterator<Item = (f64, f64)>) -> Option<((f64, f64), (f64, f64))> {
    let mut lo = (f64::INFINITY, f64::INFINITY);
    let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        if x.is_finite() && y.is_finite() {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
    }
    (lo.0 <= hi.0).then_some((lo, hi))
}

/// `lo..hi` widened by `frac` of its span on each side (a flat span gets a unit-scaled pad).
pub fn padded(lo: f64, hi: f64, frac: f64) -> Range<f64> {
    let span = hi - lo;
    let pad = if span > 1e-12 {
        span * frac
    } else {
        0.5 * lo.abs().max(1.0) * frac.max(0.05)
    };
    (lo - pad)..(hi + pad)
}

/// Chart on `area` with the house layout: caption, margins, label areas.
pub fn chart<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<Chart<'a, 'b>, EvalError> {
    ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(perr)
}

/// Mesh with axis descriptions.
pub fn mesh(chart: &mut Chart, x_desc: &str, y_desc: &str) -> Result<(), EvalError> {
    mesh_with(chart, x_desc, y_desc, None)
}

/// Mesh with axis descriptions and, optionally, how to write the y labels.
pub fn mesh_with(
    chart: &mut Chart,
    x_desc: &str,
    y_desc: &str,
    y_labels: Option<&dyn Fn(&f64) -> String>,
) -> Result<(), EvalError> {
    let mut m = chart.configure_mesh();
    m.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235));
    if let Some(f) = y_labels {
        m.y_label_formatter(f);
    }
    m.draw().map_err(perr)
}

/// Large counts in thousands (`12.5k`), small ones as integers.
pub fn count_label(v: &f64) -> String {
    if v.abs() >= 1e4 {
        let k = format!("{:.1}", v / 1e3);
        format!("{}k", k.trim_end_matches(".0"))
    } else {
        format!("{v:.0}")
    }
}

/// A legend beside a chart (in `area`, top-down): filled boxes, or lines where `line`.
pub fn side_legend(area: &Area, entries: &[(String, RGBAColor, bool)]) -> Result<(), EvalError> {
    let text = (FONT, 13).into_font().color(&BLACK);
    for (i, (label, col, line)) in entries.iter().enumerate() {
        let y = 56 + 20 * i as i32;
        if *line {
            area.draw(&PathElement::new([(6, y), (24, y)], col.stroke_width(3)))
        } else {
            area.draw(&Rectangle::new([(6, y - 6), (24, y + 6)], col.filled()))
        }
        .map_err(perr)?;
        area.draw_text(label, &text, (30, y - 7)).map_err(perr)?;
    }
    Ok(())
}

/// Legend box in the upper right.
pub fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    pos: SeriesLabelPosition,
) -> Result<(), EvalError> {
    chart
        .configure_series_labels()
        .position(pos)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(perr)
}

/// What the top view shows: aligned estimate, optional reference and per-point error.
#[derive(Debug, Clone, Copy)]
pub struct TopView<'a> {
    pub estimate: &'a [[f64; 3]],
    /// Ground truth, matched to `estimate` (empty without).
    pub reference: &'a [[f64; 3]],
    /// Translation error per estimate point (m), to colour the estimate by.
    pub errors: Option<&'a [f64]>,
}

const EST: RGBColor = RGBColor(200, 40, 40);
const REF: RGBColor = RGBColor(60, 60, 60);
const COLOUR_BAR_PX: u32 = 90;

/// Top view (x, y) with equal metres per pixel on both axes, start and end marked.
pub fn draw_top_view(area: &Area, v: &TopView) -> Result<Panel, EvalError> {
    let xy = |p: &[f64; 3]| (p[0], p[1]);
    let errors = v
        .errors
        .filter(|e| e.len() == v.estimate.len() && !e.is_empty());
    let (area, bar) = if errors.is_some() {
        let (w, _) = area.dim_in_pixel();
        let (a, b) = area.split_horizontally(w.saturating_sub(COLOUR_BAR_PX));
        (a, Some(b))
    } else {
        (area.clone(), None)
    };
    let (lo, hi) = bounds(v.estimate.iter().chain(v.reference).map(xy))
        .ok_or_else(|| EvalError::Plot("top view: no finite positions".into()))?;
    // Equal scale: grow the shorter span to the plotting area's aspect (the layout's label
    // areas and caption are fixed, so the plotting area's size is known before building).
    let (w, h) = area.dim_in_pixel();
    let (pw, ph) = (
        (w as f64 - 24.0 - 64.0).max(10.0),
        (h as f64 - 24.0 - 44.0 - 30.0).max(10.0),
    );
    let per_px = ((hi.0 - lo.0) / pw).max((hi.1 - lo.1) / ph).max(1e-6) * 1.1;
    let (cx, cy) = ((lo.0 + hi.0) / 2.0, (lo.1 + hi.1) / 2.0);
    let x = (cx - per_px * pw / 2.0)..(cx + per_px * pw / 2.0);
    let y = (cy - per_px * ph / 2.0)..(cy + per_px * ph / 2.0);
    let mut c = chart(&area, "Trajectory (top view)", x, y)?;
    mesh(&mut c, "x [m]", "y [m]")?;
    if !v.reference.is_empty() {
        c.draw_series(LineSeries::new(
            v.reference.iter().map(xy),
            REF.stroke_width(2),
        ))
        .map_err(perr)?
        .label("ground truth")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], REF.stroke_width(2)));
    }
    match errors {
        Some(e) => {
            let max = e
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold(0.0, f64::max);
            let max = if max > 0.0 { max } else { 1.0 };
            let seg = v.estimate.windows(2).zip(e).map(|(p, err)| {
                let col = ViridisRGB::get_color_normalized(*err, 0.0, max);
                PathElement::new([xy(&p[0]), xy(&p[1])], col.stroke_width(3))
            });
            c.draw_series(seg)
                .map_err(perr)?
                .label("estimate, coloured by APE")
                .legend(|(x, y)| {
                    let col = ViridisRGB::get_color(0.6);
                    PathElement::new([(x, y), (x + 20, y)], col.stroke_width(3))
                });
            if let Some(bar) = bar {
                colour_bar(&bar, max)?;
            }
        }
        None => {
            c.draw_series(LineSeries::new(
                v.estimate.iter().map(xy),
                EST.stroke_width(2),
            ))
            .map_err(perr)?
            .label("estimate")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], EST.stroke_width(2)));
        }
    }
    if let (Some(first), Some(last)) = (v.estimate.first(), v.estimate.last()) {
        let start = RGBColor(20, 150, 60);
        c.draw_series([Circle::new(xy(first), 7, start.filled())])
            .map_err(perr)?
            .label("start")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, start.filled()));
        c.draw_series([TriangleMarker::new(xy(last), 9, BLUE.filled())])
            .map_err(perr)?
            .label("end")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLUE.filled()));
    }
    legend(&mut c, SeriesLabelPosition::UpperRight)?;
    Ok(Panel::of(&c, lo, hi))
}

/// A vertical viridis scale from 0 to `max` metres.
fn colour_bar(area: &Area, max: f64) -> Result<(), EvalError> {
    let mut c = ChartBuilder::on(area)
        .margin_top(45)
        .margin_bottom(56)
        .margin_right(8)
        .y_label_area_size(52)
        .caption("APE [m]", (FONT, 13))
        .build_cartesian_2d(0.0..1.0, 0.0..max)
        .map_err(perr)?;
    c.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .disable_y_mesh()
        .label_style((FONT, 12))
        .draw()
        .map_err(perr)?;
    let steps = 64;
    c.draw_series((0..steps).map(|i| {
        let (a, b) = (
            max * i as f64 / steps as f64,
            max * (i + 1) as f64 / steps as f64,
        );
        let col = ViridisRGB::get_color_normalized((a + b) / 2.0, 0.0, max);
        Rectangle::new([(0.0, a), (1.0, b)], col.filled())
    }))
    .map_err(perr)?;
    Ok(())
}

/// APE over time with its RMSE as a dashed line.
pub fn draw_ape(area: &Area, errors: &[(f64, f64)], rmse: f64) -> Result<Panel, EvalError> {
    let (lo, hi) = bounds(errors.iter().copied())
        .ok_or_else(|| EvalError::Plot("APE: no finite errors".into()))?;
    let x = padded(lo.0, hi.0, 0.02);
    let y = 0.0..(hi.1.max(rmse) * 1.15).max(1e-6);
    let mut c = chart(area, "Absolute position error", x.clone(), y)?;
    mesh(&mut c, "time [s]", "APE [m]")?;
    let col = RGBColor(40, 70, 200);
    c.draw_series(LineSeries::new(errors.iter().copied(), col.stroke_width(2)))
        .map_err(perr)?
        .label("APE (translation)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], col.stroke_width(2)));
    if rmse.is_finite() {
        c.draw_series(DashedLineSeries::new(
            [(x.start, rmse), (x.end, rmse)],
            8,
            5,
            EST.stroke_width(2),
        ))
        .map_err(perr)?
        .label(format!("RMSE {rmse:.4} m"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], EST.stroke_width(2)));
    }
    legend(&mut c, SeriesLabelPosition::UpperLeft)?;
    Ok(Panel::of(&c, lo, hi))
}

/// Size of [`plot_report`]'s image: top view left, APE right.
pub const REPORT_SIZE: (u32, u32) = (1400, 620);

/// The evaluation's plot: top view of reference and aligned estimate coloured by error, and the
/// APE over time (when there is a reference), side by side.
pub fn plot_report(report: &EvalReport, path: &Path) -> Result<Plotted, EvalError> {
    let has_ref = !report.reference_xyz.is_empty();
    render_png(path, REPORT_SIZE, |root| {
        let errs: Vec<f64> = report.errors.iter().map(|e| e.1).collect();
        let view = TopView {
            estimate: &report.estimate_xyz,
            reference: &report.reference_xyz,
            errors: has_ref.then_some(errs.as_slice()),
        };
        if !has_ref {
            return Ok(vec![draw_top_view(root, &view)?]);
        }
        let (l, r) = root.split_horizontally(REPORT_SIZE.0 / 2);
        Ok(vec![
            draw_top_view(&l, &view)?,
            draw_ape(&r, &report.errors, report.ate.rmse)?,
        ])
    })
}

/// The top view alone.
pub fn plot_top_view(v: &TopView, path: &Path, size: (u32, u32)) -> Result<Plotted, EvalError> {
    render_png(path, size, |root| Ok(vec![draw_top_view(root, v)?]))
}

/// APE over time alone.
pub fn plot_ape(
    errors: &[(f64, f64)],
    rmse: f64,
    path: &Path,
    size: (u32, u32),
) -> Result<Plotted, EvalError> {
    render_png(path, size, |root| Ok(vec![draw_ape(root, errors, rmse)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(p: &Path) -> (u32, u32) {
        image::image_dimensions(p).unwrap()
    }

    fn circle(n: usize, r: f64, cx: f64, cy: f64) -> Vec<[f64; 3]> {
        (0..n)
            .map(|i| {
                let a = i as f64 / n as f64 * 5.0;
                [cx + r * a.cos(), cy + 2.0 * r * a.sin(), 0.3]
            })
            .collect()
    }

    #[test]
    fn top_view_covers_data_with_equal_scale() {
        let dir = tempfile::tempdir().unwrap();
        let est = circle(200, 3.0, 10.0, -4.0);
        let reference: Vec<[f64; 3]> = est.iter().map(|p| [p[0] + 0.2, p[1], p[2]]).collect();
        let errs: Vec<f64> = (0..est.len()).map(|i| i as f64 * 0.001).collect();
        let p = dir.path().join("top.png");
        let v = TopView {
            estimate: &est,
            reference: &reference,
            errors: Some(&errs),
        };
        let out = plot_top_view(&v, &p, (900, 700)).unwrap();
        assert_eq!(dims(&p), (900, 700));
        assert_eq!((out.width, out.height), (900, 700));
        let pa = &out.panels[0];
        assert!(pa.covers_data(), "{pa:?}");
        // The data box spans x 6.8..13.2 and y -10..2: the axes hold it, not much more.
        assert!(pa.x.start <= 6.8 && pa.x.end >= 13.2, "{pa:?}");
        assert!(pa.y.start <= -10.0 && pa.y.end >= 2.0, "{pa:?}");
        // Metres per pixel agree on both axes within 5 %.
        let (xr, yr) = &pa.area_px;
        let mx = (pa.x.end - pa.x.start) / (xr.end - xr.start) as f64;
        let my = (pa.y.end - pa.y.start) / (yr.end - yr.start) as f64;
        assert!((mx / my - 1.0).abs() < 0.05, "{mx} vs {my} m/px");
        // y grows upwards: the max corner is above (smaller pixel row) the min corner.
        assert!(pa.data_px[1].1 < pa.data_px[0].1 && pa.data_px[1].0 > pa.data_px[0].0);
    }

    #[test]
    fn embedded_font_lays_out_text() {
        // ab_glyph loads no system font: text works only through the registered one.
        register_font();
        let (w, h) = (FONT, 20).into_font().box_size("Trajectory [m]").unwrap();
        assert!(w > 80 && h >= 15, "{w}x{h}");
        assert!(("no-such-family", 20).into_font().box_size("x").is_err());
    }

    #[test]
    fn count_labels() {
        assert_eq!(count_label(&0.0), "0");
        assert_eq!(count_label(&9500.0), "9500");
        assert_eq!(count_label(&12_500.0), "12.5k");
        assert_eq!(count_label(&50_000.0), "50k");
    }

    #[test]
    fn report_plot_has_both_panels_and_a_flat_track_works() {
        let dir = tempfile::tempdir().unwrap();
        let est: Vec<[f64; 3]> = (0..50).map(|i| [i as f64 * 0.1, 2.0, 0.0]).collect();
        let errors: Vec<(f64, f64)> = (0..50).map(|i| (i as f64 * 0.1, 0.01 * i as f64)).collect();
        let report = EvalReport {
            options: Default::default(),
            matched: 50,
            reference_poses: 50,
            estimate_poses: 50,
            alignment: crate::eval::trajectory::Alignment::identity(),
            ate: crate::eval::Stats::of(&[0.3]),
            ate_rotation_deg: crate::eval::Stats::of(&[]),
            rpe_translation: crate::eval::Stats::of(&[]),
            rpe_rotation_deg: crate::eval::Stats::of(&[]),
            errors: errors.clone(),
            reference_xyz: est.clone(),
            estimate_xyz: est,
        };
        let p = dir.path().join("r.png");
        let out = plot_report(&report, &p).unwrap();
        assert_eq!(dims(&p), REPORT_SIZE);
        assert_eq!(out.panels.len(), 2);
        for pa in &out.panels {
            assert!(pa.covers_data(), "{pa:?}");
        }
        // APE axis: time 0..4.9 s, error 0..0.49 m and the RMSE line (0.3) inside.
        let ape = &out.panels[1];
        assert!(ape.x.start <= 0.0 && ape.x.end >= 4.9 && ape.y.end >= 0.49);
        // Both panels sit in their own half.
        assert!(out.panels[0].area_px.0.end <= 700 && ape.area_px.0.start >= 700);
        assert!(plot_ape(&[], 0.0, &dir.path().join("e.png"), (400, 300)).is_err());
    }
}
