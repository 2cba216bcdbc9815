//! A short simulated run, then what a user looks at: `report.html` (every section, every image
//! it references on disk, no network), the per-frame records behind its plots, the render
//! comparisons spread over the run, and the Foxglove layout naming only topics of results.mcap.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use gs_livo::config::Config;
use gs_livo::eval::records::{read_renders, FrameTable};
use gs_livo::pipeline::{run_offline, OutputsConfig, PipelineOptions, RunSummary};
use gs_livo::report::{write_report, SECTIONS};
use gs_livo::sim::{self, SimConfig};

const MAX_PNGS: usize = 4;

fn simulated_run(root: &Path) -> (PathBuf, RunSummary) {
    let mut cfg = SimConfig::new("room");
    cfg.duration = 3.5;
    let seq = sim::simulate(&cfg).expect("simulate");
    sim::write_sequence(&root.join("seq"), &seq).expect("write sequence");
    let config = Config::load(
        &root.join("seq/config.yaml"),
        &[
            // The native CPU rasteriser: fast, and the same on every machine.
            "render.backend=fast".into(),
            "gaussian.iterations=2".into(),
            "gaussian.downsample=4".into(),
        ],
    )
    .expect("config");
    let out = root.join("run");
    let opts = PipelineOptions {
        render_every: 2,
        centres_every: 10,
        ..Default::default()
    };
    let outputs = OutputsConfig {
        max_render_pngs: MAX_PNGS,
        ..Default::default()
    };
    let s = run_offline(
        &root.join("seq/bag"),
        &config,
        &out,
        &opts,
        outputs,
        None,
        Arc::new(AtomicBool::new(false)),
        |_| {},
    )
    .expect("run");
    (out, s)
}

/// Every `src="..."` of the page.
fn image_sources(html: &str) -> Vec<String> {
    html.split("src=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

/// Topics the layout's panels subscribe to.
fn layout_topics(layout: &serde_json::Value) -> BTreeSet<String> {
    let mut t = BTreeSet::new();
    let panels = layout["configById"].as_object().expect("configById");
    for (id, cfg) in panels {
        if id.starts_with("3D!") {
            t.extend(cfg["topics"].as_object().unwrap().keys().cloned());
        } else if id.starts_with("Image!") {
            t.insert(cfg["imageMode"]["imageTopic"].as_str().unwrap().to_string());
        } else if id.starts_with("Plot!") {
            for p in cfg["paths"].as_array().unwrap() {
                let v = p["value"].as_str().unwrap();
                t.insert(v[..v.find('.').unwrap_or(v.len())].to_string());
            }
        } else {
            panic!("unexpected panel {id}");
        }
    }
    t
}

/// Panel ids at the leaves of the layout tree.
fn layout_leaves(node: &serde_json::Value, out: &mut BTreeSet<String>) {
    match node {
        serde_json::Value::String(s) => {
            out.insert(s.clone());
        }
        serde_json::Value::Object(m) => {
            layout_leaves(&m["first"], out);
            layout_leaves(&m["second"], out);
        }
        other => panic!("bad layout node {other}"),
    }
}

#[test]
fn report_records_renders_and_foxglove_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, s) = simulated_run(tmp.path());
    assert_eq!(s.status, "finished");

    // Per-frame records: one row per estimated frame, stage times that add up to the totals.
    let frames = FrameTable::read(&run.join("frames.csv")).unwrap();
    assert_eq!(frames.rows.len() as u64, s.frames);
    assert!(frames.rows.windows(2).all(|w| w[0].time_s < w[1].time_s));
    for stage in ["lio", "map_optimise"] {
        let col: f64 = frames.stage(stage).expect(stage).iter().sum();
        let total = s.stages[stage].total_ms;
        assert!(
            col <= total * 1.0001 && col >= 0.8 * total,
            "{stage}: {col} of {total} ms"
        );
    }
    let last = frames.rows.last().unwrap();
    assert!(
        last.map_gaussians > 1000 && last.window_gaussians > 0,
        "{last:?}"
    );

    // Renders: every render recorded, at most MAX_PNGS kept, spread over the whole run.
    let renders = read_renders(&run.join("renders.csv")).unwrap();
    let rq = s.render_quality.as_ref().expect("renders");
    assert_eq!(renders.len(), rq.renders);
    assert!(renders.len() > 2 * MAX_PNGS, "{} renders", renders.len());
    let kept: Vec<usize> = (0..renders.len())
        .filter(|&i| renders[i].image.is_some())
        .collect();
    assert!(
        kept.len() <= MAX_PNGS && kept.len() >= MAX_PNGS / 2,
        "{kept:?}"
    );
    assert_eq!(kept[0], 0);
    let step = kept[1] - kept[0];
    assert!(kept.windows(2).all(|w| w[1] - w[0] == step), "{kept:?}");
    assert!(renders.len() - 1 - kept.last().unwrap() < step, "{kept:?}");
    let files = std::fs::read_dir(run.join("renders")).unwrap().count();
    assert_eq!(
        files,
        3 * kept.len(),
        "render, camera and comparison per kept render"
    );
    for &i in &kept {
        let img = renders[i].image.as_ref().unwrap();
        let (w, h) = image::image_dimensions(run.join(img)).unwrap();
        let cam = image::image_dimensions(run.join(img.replace("_compare", "_camera"))).unwrap();
        assert_eq!(w, 3 * cam.0, "{img}");
        assert!(h > cam.1, "{img}: a header above the images");
    }

    // The page: every section, every image beside it, nothing from the network.
    let page = write_report(&run).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    for (id, title) in SECTIONS {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
        assert!(html.contains(title), "{title}");
    }
    let srcs = image_sources(&html);
    for src in &srcs {
        assert!(run.join(src).is_file(), "{src} referenced but missing");
    }
    for plot in ["trajectory", "ape", "timing", "quality", "gaussians"] {
        let p = format!("plots/{plot}.png");
        assert!(srcs.contains(&p), "{p} not in the page: {srcs:?}");
    }
    assert_eq!(
        srcs.iter().filter(|s| s.ends_with("_compare.png")).count(),
        kept.len()
    );
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(!html.contains("not available"), "a plot failed");
    let ate = format!("{:.4} m", s.accuracy.as_ref().unwrap().ate_rmse_m);
    assert!(html.contains(&ate), "ATE {ate} in the summary");
    // The sim's rig differs from the defaults, and the quick profile's overrides show.
    assert!(html.contains("gaussian.iterations") && html.contains("render.backend"));

    // `gs_livo report RUN` rewrites the same page for an existing run.
    std::fs::remove_file(&page).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .arg("report")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        page.display().to_string()
    );
    assert_eq!(std::fs::read_to_string(&page).unwrap(), html);
    let bad = Command::new(env!("CARGO_BIN_EXE_gs_livo"))
        .arg("report")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("summary.json"));

    // The Foxglove layout names only topics that results.mcap has, and every panel is placed.
    let layout_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("foxglove/gs_livo.json");
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout_path).unwrap()).unwrap();
    let mcap = std::fs::read(run.join("results.mcap")).unwrap();
    let summary = mcap::Summary::read(&mcap)
        .unwrap()
        .expect("summary section");
    let have: BTreeSet<String> = summary.channels.values().map(|c| c.topic.clone()).collect();
    let want = layout_topics(&layout);
    assert!(want.len() >= 8, "{want:?}");
    let missing: Vec<_> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "layout topics not in results.mcap: {missing:?} (has {have:?})"
    );
    let mut leaves = BTreeSet::new();
    layout_leaves(&layout["layout"], &mut leaves);
    let ids: BTreeSet<String> = layout["configById"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(leaves, ids);
}
