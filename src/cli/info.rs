//! `gs_livo info` (being built).

/// Arguments of `gs_livo info`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gs_livo info` is not built yet")
}
