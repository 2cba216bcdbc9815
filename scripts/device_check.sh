#!/usr/bin/env bash
# One prepared check for a machine with a Vulkan GPU (an NVIDIA desktop card or a Jetson): the
# rasteriser's Vulkan-vs-CPU tests on that GPU, the render benchmark table, then the whole pipeline
# (embedded and desktop profiles, each also under the mapper's time budget as realtime and gpu;
# Vulkan and the native CPU backend) with a summary table in $OUT/table.md. Aimed at under 10 minutes on a fresh GPU machine (the build is most of it);
# PIPELINE_SECONDS (default 10) sets the simulated sequence's length.
#
# Usage: scripts/device_check.sh [output-dir]
#   With cargo on the machine it builds everything itself. Without cargo (a bare GPU box), point
#   GS_LIVO_BIN_DIR at a folder holding prebuilt, stripped x86-64 binaries made on a build machine
#   with scripts/device_bundle.sh: `gs_livo`, `render_vulkan`, `render_fit`.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-target/device_check}}"
mkdir -p "$OUT"
BIN_DIR="${GS_LIVO_BIN_DIR:-}"
status=0
{
  echo "== $(date -u) $(uname -srm)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E "deviceName|deviceType|apiVersion|driverInfo"
  true
} 2>&1 | tee "$OUT/env.txt"
export RUST_LOG="${RUST_LOG:-info}"

if [ -z "$BIN_DIR" ]; then
  cargo build --release --bin gs_livo 2>&1 | tail -3
  BIN_DIR="$OUT/bin"
  mkdir -p "$BIN_DIR"
  cp target/release/gs_livo "$BIN_DIR/"
  for t in render_vulkan render_fit; do
    exe=$(cargo test --release --no-run --test "$t" --message-format=json 2>/dev/null |
      grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
    cp "$exe" "$BIN_DIR/$t"
  done
fi

# Vulkan against the CPU reference: forward, every gradient (pose included), loss, fitting,
# degenerate inputs. --test-threads=1 so the GPU sees one test at a time and logs stay ordered.
for t in render_vulkan render_fit; do
  echo "== test $t" | tee -a "$OUT/tests.txt"
  "$BIN_DIR/$t" --test-threads=1 --nocapture 2>&1 | tee -a "$OUT/tests.txt" || status=1
done

# The in-binary verification, when this build has it (prints max relative errors per group).
if "$BIN_DIR/gs_livo" bench render --help 2>/dev/null | grep -q -- --verify; then
  echo "== verify" | tee "$OUT/verify.txt"
  "$BIN_DIR/gs_livo" bench render --backend vulkan --verify 2>&1 | tee -a "$OUT/verify.txt" || status=1
fi

# Benchmark table: Vulkan at every size, then the CPU reference at the small size only.
"$BIN_DIR/gs_livo" bench render --backend vulkan --runs 20 2>&1 | tee "$OUT/bench_vulkan.md" || status=1
"$BIN_DIR/gs_livo" bench render --backend cpu --gaussians 20000 --sizes 256x216 --cpu-runs 3 \
  2>&1 | tee "$OUT/bench_cpu.md" || status=1
# The whole pipeline, streaming, per profile and backend (real-time factor, stage times, ATE).
"$BIN_DIR/gs_livo" bench pipeline --duration "${PIPELINE_SECONDS:-10}" --profiles embedded,realtime,desktop,gpu \
  --backends vulkan,fast --render-every 10 2>&1 | tee "$OUT/bench_pipeline.md" || status=1

{
  echo "# gs_livo device check $(date -u +%F)"
  echo
  echo '```'
  cat "$OUT/env.txt"
  echo '```'
  echo
  echo "## Vulkan against the CPU reference"
  echo
  grep -E "^test result|FAILED|panicked" "$OUT/tests.txt" | sed 's/^/    /'
  echo
  echo "## Rasteriser (Vulkan)"
  echo
  grep -E "^\|" "$OUT/bench_vulkan.md" || tail -20 "$OUT/bench_vulkan.md"
  echo
  echo "## Pipeline"
  echo
  grep -E "^\|" "$OUT/bench_pipeline.md" || tail -20 "$OUT/bench_pipeline.md"
} >"$OUT/table.md"
echo "== done (status $status); results in $OUT, summary in $OUT/table.md"
exit $status
