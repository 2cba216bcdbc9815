//! `gs_livo sim` (being built).

/// Arguments of `gs_livo sim`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gs_livo sim` is not built yet")
}
