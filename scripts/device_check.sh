#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU (or any Vulkan GPU): builds, runs the
# Vulkan-vs-CPU rasteriser tests on the GPU, then the render benchmark (release).
# Usage: scripts/device_check.sh [output-dir]   (results also printed; needs cargo + a Vulkan ICD)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-target/device_check}}"
mkdir -p "$OUT"
{
  echo "== $(date -u) $(uname -a)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|deviceType|apiVersion" || true
} | tee "$OUT/env.txt"
# Prefer the discrete GPU unless the caller chose a device.
export GS_LIVO_VULKAN_DEVICE="${GS_LIVO_VULKAN_DEVICE:-}"
export RUST_LOG="${RUST_LOG:-info}"
cargo build --release --bin gs_livo 2>&1 | tail -3
# Vulkan-vs-CPU forward/gradients/loss, fitting and degenerate inputs (debug profile, small scenes).
cargo test --test render_vulkan --test render_fit -- --nocapture 2>&1 | tee "$OUT/tests.txt"
# Benchmark table: Vulkan on all sizes (20 runs), the CPU reference only at the small size.
./target/release/gs_livo bench render --backend vulkan --runs 20 2>&1 | tee "$OUT/bench_vulkan.md"
./target/release/gs_livo bench render --backend cpu --gaussians 20000 --sizes 256x216 --cpu-runs 3 \
  2>&1 | tee "$OUT/bench_cpu.md"
echo "== done; results in $OUT"
