//! Per-frame and per-render records of a run (`frames.csv`, `renders.csv`): the time series the
//! plots and the report draw, in plain CSV so a spreadsheet or pandas opens them too.

use std::fmt::Write as _;
use std::path::Path;

use super::EvalError;

/// One estimated frame: when, what each stage cost in the interval, and the map's size.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRecord {
    pub frame: u64,
    /// Seconds since the first frame (sensor time).
    pub time_s: f64,
    /// Gaussians in the global map and in the sliding window, as of this frame's output.
    pub map_gaussians: usize,
    pub window_gaussians: usize,
    /// Milliseconds per stage, in the order of [`FrameTable::stages`].
    pub stage_ms: Vec<f64>,
}

/// All frames of a run with the stage names of the columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameTable {
    pub stages: Vec<String>,
    pub rows: Vec<FrameRecord>,
}

/// One render compared with its camera image.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderRecord {
    pub frame: u64,
    pub time_s: f64,
    pub psnr_db: Option<f64>,
    pub ssim: Option<f64>,
    /// A view the map was not optimised on (novel-view quality) rather than a training view.
    pub held_out: bool,
    /// The comparison image in the run folder, when this render was kept as a PNG.
    pub image: Option<String>,
}

const FRAME_FIXED: [&str; 4] = ["frame", "time_s", "map_gaussians", "window_gaussians"];
const RENDER_HEADER: &str = "frame,time_s,psnr_db,ssim,held_out,image";

fn parse_err(path: &Path, line: usize, message: String) -> EvalError {
    EvalError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    }
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), EvalError> {
    std::fs::write(path, text).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x:.6}"))
}

fn field<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("bad {what} `{}`", s.trim()))
}

fn opt_field(s: &str, what: &str) -> Result<Option<f64>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    field::<f64>(s, what).map(Some)
}

impl FrameTable {
    /// Column `stage` (ms per frame), if recorded.
    pub fn stage(&self, stage: &str) -> Option<Vec<f64>> {
        let k = self.stages.iter().position(|s| s == stage)?;
        Some(self.rows.iter().map(|r| r.stage_ms[k]).collect())
    }

    pub fn to_csv(&self) -> String {
        let mut s = FRAME_FIXED.join(",");
        for st in &self.stages {
            let _ = write!(s, ",{st}_ms");
        }
        s.push('\n');
        for r in &self.rows {
            let _ = write!(
                s,
                "{},{:.6},{},{}",
                r.frame, r.time_s, r.map_gaussians, r.window_gaussians
            );
            for v in &r.stage_ms {
                let _ = write!(s, ",{v:.4}");
            }
            s.push('\n');
        }
        s
    }

    pub fn write(&self, path: &Path) -> Result<(), EvalError> {
        write(path, &self.to_csv())
    }

    pub fn read(path: &Path) -> Result<Self, EvalError> {
        Self::parse(&read(path)?, path)
    }

    /// Parses `frames.csv` text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, EvalError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| parse_err(origin, 1, "empty file: no header".into()))?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        if cols.len() < FRAME_FIXED.len() || cols[..FRAME_FIXED.len()] != FRAME_FIXED {
            return Err(parse_err(
                origin,
                1,
                format!("header must start with {}", FRAME_FIXED.join(",")),
            ));
        }
        let stages = cols[FRAME_FIXED.len()..]
            .iter()
            .map(|c| {
                c.strip_suffix("_ms")
                    .map(str::to_string)
                    .ok_or_else(|| parse_err(origin, 1, format!("column `{c}` lacks _ms")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::new();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').collect();
            let row = (|| {
                if f.len() != cols.len() {
                    return Err(format!("expected {} fields, got {}", cols.len(), f.len()));
                }
                Ok(FrameRecord {
                    frame: field(f[0], "frame")?,
                    time_s: field(f[1], "time")?,
                    map_gaussians: field(f[2], "map_gaussians")?,
                    window_gaussians: field(f[3], "window_gaussians")?,
                    stage_ms: f[4..]
                        .iter()
                        .map(|v| field::<f64>(v, "time"))
                        .collect::<Result<_, _>>()?,
                })
            })()
            .map_err(|m| parse_err(origin, i + 1, m))?;
            rows.push(row);
        }
        Ok(Self { stages, rows })
    }
}

/// `renders.csv` text of `rows`.
pub fn renders_to_csv(rows: &[RenderRecord]) -> String {
    let mut s = format!("{RENDER_HEADER}\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{:.6},{},{},{},{}",
            r.frame,
            r.time_s,
            opt(r.psnr_db),
            opt(r.ssim),
            u8::from(r.held_out),
            r.image.as_deref().unwrap_or("")
        );
    }
    s
}

pub fn write_renders(rows: &[RenderRecord], path: &Path) -> Result<(), EvalError> {
    write(path, &renders_to_csv(rows))
}

pub fn read_renders(path: &Path) -> Result<Vec<RenderRecord>, EvalError> {
    parse_renders(&read(path)?, path)
}

/// Parses `renders.csv` text; `origin` names the file in errors.
pub fn parse_renders(text: &str, origin: &Path) -> Result<Vec<RenderRecord>, EvalError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, h)) if h.trim() == RENDER_HEADER => {}
        _ => {
            return Err(parse_err(
                origin,
                1,
                format!("header must be {RENDER_HEADER}"),
            ))
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').collect();
        let row = (|| {
            if f.len() != 6 {
                return Err(format!("expected 6 fields, got {}", f.len()));
            }
            let held_out = match f[4].trim() {
                "0" => false,
                "1" => true,
                x => return Err(format!("held_out must be 0 or 1, got `{x}`")),
            };
            let image = f[5].trim();
            Ok(RenderRecord {
                frame: field(f[0], "frame")?,
                time_s: field(f[1], "time")?,
                psnr_db: opt_field(f[2], "psnr")?,
                ssim: opt_field(f[3], "ssim")?,
                held_out,
                image: (!image.is_empty()).then(|| image.to_string()),
            })
        })()
        .map_err(|m| parse_err(origin, i + 1, m))?;
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_errors() {
        let t = FrameTable {
            stages: vec!["lio".into(), "map_optimise".into()],
            rows: vec![
                FrameRecord {
                    frame: 0,
                    time_s: 0.0,
                    map_gaussians: 10,
                    window_gaussians: 5,
                    stage_ms: vec![1.5, 20.25],
                },
                FrameRecord {
                    frame: 1,
                    time_s: 0.1,
                    map_gaussians: 12,
                    window_gaussians: 6,
                    stage_ms: vec![2.0, 0.0],
                },
            ],
        };
        let p = Path::new("frames.csv");
        assert_eq!(FrameTable::parse(&t.to_csv(), p).unwrap(), t);
        assert_eq!(t.stage("map_optimise"), Some(vec![20.25, 0.0]));
        assert_eq!(t.stage("visual"), None);
        let bad = "frame,time_s,map_gaussians,window_gaussians,lio_ms\n0,0.0,1,1\n";
        let e = FrameTable::parse(bad, p).unwrap_err().to_string();
        assert!(
            e.contains("frames.csv:2") && e.contains("expected 5"),
            "{e}"
        );
        assert!(FrameTable::parse("", p).is_err());
        assert!(FrameTable::parse("frame,time_s\n", p).is_err());
    }

    #[test]
    fn renders_round_trip_and_errors() {
        let rows = vec![
            RenderRecord {
                frame: 3,
                time_s: 0.3,
                psnr_db: Some(21.5),
                ssim: None,
                held_out: false,
                image: Some("renders/frame00003_compare.png".into()),
            },
            RenderRecord {
                frame: 9,
                time_s: 0.9,
                psnr_db: None,
                ssim: Some(0.5),
                held_out: true,
                image: None,
            },
        ];
        let p = Path::new("renders.csv");
        assert_eq!(parse_renders(&renders_to_csv(&rows), p).unwrap(), rows);
        let bad = format!("{RENDER_HEADER}\n1,0.1,20,0.5,2,\n");
        let e = parse_renders(&bad, p).unwrap_err().to_string();
        assert!(e.contains("held_out"), "{e}");
        assert!(parse_renders("frame,psnr\n", p).is_err());
    }
}
