#!/usr/bin/env bash
# Builds the stripped x86-64 binaries that scripts/device_check.sh runs on a GPU machine without
# cargo: gs_livo and the rasteriser's Vulkan test binaries, in release. Usage:
#   scripts/device_bundle.sh [bundle-dir]      (default .devbin; set CARGO_TARGET_DIR as usual)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.devbin}"
mkdir -p "$DEST"
cargo build --release --bin gs_livo
target="${CARGO_TARGET_DIR:-target}"
cp "$target/release/gs_livo" "$DEST/gs_livo"
for t in render_vulkan render_fit; do
  exe=$(cargo test --release --no-run --test "$t" --message-format=json |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
  cp "$exe" "$DEST/$t"
done
strip "$DEST"/*
ls -la "$DEST"
