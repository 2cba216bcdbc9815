//! Where the shared test data lives (`../shared/data` beside the checkout in CI).

use std::path::PathBuf;

/// The shared data folder: `$GS_LIVO_DATA`, else `../shared/data` beside the crate, else
/// `/work/shared/data`. Returns the first that exists (the last candidate otherwise).
pub fn dir() -> PathBuf {
    let candidates = [
        std::env::var_os("GS_LIVO_DATA").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ];
    let mut last = PathBuf::new();
    for c in candidates.into_iter().flatten() {
        if c.exists() {
            return c;
        }
        last = c;
    }
    last
}
