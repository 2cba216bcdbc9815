//! `gs_livo export`: the map of a saved run as a 3DGS PLY and renders along its trajectory.

use std::path::PathBuf;

use anyhow::{bail, Context};

use gs_livo::config::Config;
use gs_livo::gaussian::{background_path, Background, GaussianMap, GaussianMapper};

/// Arguments of `gs_livo export`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder of a run (holds map.ply, trajectory.tum and, when the map has one,
    /// map.background.png).
    pub run: PathBuf,
    /// Parameter file of the run (camera, extrinsics, gaussian and render sections).
    #[arg(long)]
    pub config: PathBuf,
    /// Map to export: a 3DGS PLY or a map folder (default RUN/map.ply).
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// Body trajectory in TUM format (default RUN/trajectory.tum).
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// Where to write (default RUN/export).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Render every Nth pose of the trajectory.
    #[arg(long, default_value_t = 10)]
    pub every: usize,
    /// Config overrides `key=value`.
    #[arg(long = "set")]
    pub set: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let cfg = Config::load(&a.config, &a.set)?;
    let map_path = a.map.unwrap_or_else(|| a.run.join("map.ply"));
    let traj_path = a.trajectory.unwrap_or_else(|| a.run.join("trajectory.tum"));
    let out = a.out.unwrap_or_else(|| a.run.join("export"));
    // Read every input before writing anything, so a bad run folder leaves no partial export.
    // A map folder (`RUN/map/`, see `gs_livo::session`) or a 3DGS PLY.
    let (map, background) = if map_path.is_dir() {
        let session = gs_livo::session::SessionMap::load(&map_path)
            .with_context(|| format!("loading {}", map_path.display()))?;
        session.check_config(&cfg)?;
        let mapper = session.mapper(&cfg)?.with_context(|| {
            format!("{}: a LiDAR-only map has no Gaussians", map_path.display())
        })?;
        let bg = mapper.background().cloned();
        (mapper.map().clone(), bg)
    } else {
        let map = GaussianMap::load_ply(&map_path, cfg.gaussian.clone())
            .with_context(|| format!("loading {}", map_path.display()))?;
        let bg_path = background_path(&map_path);
        let background = if bg_path.exists() {
            Some(
                Background::load_png(&bg_path)
                    .with_context(|| format!("loading {}", bg_path.display()))?,
            )
        } else {
            None
        };
        (map, background)
    };
    let poses = gs_livo::eval::tum::read_tum(&traj_path)?;
    if poses.is_empty() {
        bail!("{}: no poses", traj_path.display());
    }
    println!(
        "map: {} gaussians from {}{}",
        map.len(),
        map_path.display(),
        if background.is_some() {
            " (with background)"
        } else {
            ""
        }
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut renderer = gs_livo::render::create_renderer(&cfg.render)?;
    let mut mapper =
        GaussianMapper::with_map(map, cfg.camera.clone(), cfg.extrinsics.imu_T_camera.0);
    if let Some(bg) = background {
        mapper.set_background(bg);
    }
    let ply = out.join("map.ply");
    mapper.save_ply(&ply)?;
    println!("wrote {}", ply.display());
    let mut written = 0;
    for (i, p) in poses.iter().enumerate().step_by(a.every.max(1)) {
        mapper.update_window(&p.pose, None);
        let img = mapper.render(renderer.as_mut(), &p.pose)?;
        let path = out.join(format!("render_{i:05}.png"));
        image::RgbImage::from_raw(img.width, img.height, img.rgb)
            .context("render buffer size")?
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        written += 1;
        tracing::debug!(stamp = p.stamp, path = %path.display(), "render written");
    }
    println!(
        "wrote {written} renders along {} poses to {}",
        poses.len(),
        out.display()
    );
    Ok(())
}
