//! `gs_livo run` (being built).

/// Arguments of `gs_livo run`.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gs_livo run` is not built yet")
}
