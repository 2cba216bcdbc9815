//! `gs_livo eval` (being built).

/// Arguments of `gs_livo eval`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gs_livo eval` is not built yet")
}
