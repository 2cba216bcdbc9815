#!/usr/bin/env bash
# aarch64 (Jetson) readiness on an x86-64 machine: cross-compile lint-clean, run a chosen subset of
# the tests under qemu-user, and compare an aarch64 run's trajectory with the x86 run's bit for bit.
#
# Usage: scripts/aarch64_check.sh [work-dir]
#   Needs: rustup target aarch64-unknown-linux-gnu, gcc/g++-aarch64-linux-gnu, qemu-user
#   (.ci/run installs them on Debian). X86_BIN (default: target/debug/gs_livo, built from this tree) is
#   the x86 reference; both sides use the dev profile so only the architecture differs.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-target/aarch64_check}"
TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=("gcc-aarch64-linux-gnu")
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=("g++-aarch64-linux-gnu")
command -v qemu-aarch64 >/dev/null || missing+=("qemu-user")
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || missing+=("rustup target $TARGET")
if [ ${#missing[@]} -gt 0 ]; then
  echo "aarch64 check: missing ${missing[*]}; cannot cross-compile here" >&2
  exit 1
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $SYSROOT"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
mkdir -p "$WORK"
start=$(date +%s)

echo "== aarch64: clippy -D warnings (library, binary, tests, benches)"
cargo clippy --target "$TARGET" --all-targets -- -D warnings

echo "== aarch64: tests under qemu"
# Estimator (IESKF, propagation, deskew, LiDAR and photometric update pieces), the native CPU
# renderer against the f64 reference, the photometric update end to end on a small scene.
cargo test --target "$TARGET" --lib estimator::
cargo test --target "$TARGET" --test render_fast --test visual_update --test lio_jacobians

echo "== aarch64: trajectories against x86"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# The integration tests above built the binary from this tree (with the tests' dependency
# features; `cargo build --bin` alone would recompile dependencies for ~2 minutes).
ARM_BIN="$TARGET_DIR/$TARGET/debug/gs_livo"
[ -x "$ARM_BIN" ] || cargo build --target "$TARGET" --bin gs_livo
if [ -z "${X86_BIN:-}" ]; then
  cargo build --bin gs_livo
  X86_BIN="$TARGET_DIR/debug/gs_livo"
fi
arm() { qemu-aarch64 -L "$SYSROOT" "$ARM_BIN" "$@"; }

# LIO on the room; LIVO on the corridor, where the photometric pose update runs every image.
"$X86_BIN" sim --out "$WORK/room" --scene room --duration 3 --seed 11 >/dev/null
"$X86_BIN" sim --out "$WORK/corridor" --scene corridor --duration 2 --seed 11 >/dev/null
status=0
# Identical bytes hoped for; `tol` (metres, max position difference) is the margin for libm's
# transcendental functions, which may round differently per architecture (LIVO: ~2 um seen).
compare() { # name, mode, scene, frames, tol
  local name=$1 mode=$2 scene=$3 frames=$4 tol=$5
  local args=(run "$WORK/$scene/bag" --config "$WORK/$scene/config.yaml" --mode "$mode"
    --max-frames "$frames")
  "$X86_BIN" "${args[@]}" --out "$WORK/$name-x86" >"$WORK/$name-x86.log" 2>&1
  arm "${args[@]}" --out "$WORK/$name-arm" >"$WORK/$name-arm.log" 2>&1
  for f in trajectory.tum map.ply; do
    [ -f "$WORK/$name-x86/$f" ] || continue
    a=$(md5sum <"$WORK/$name-x86/$f" | cut -d' ' -f1)
    b=$(md5sum <"$WORK/$name-arm/$f" | cut -d' ' -f1)
    if [ "$a" = "$b" ]; then
      echo "$name $f: identical ($a)"
    elif [ "$f" = trajectory.tum ]; then
      python3 - "$WORK/$name-x86/$f" "$WORK/$name-arm/$f" "$tol" "$name" <<'PY' || status=1
import sys
rows = [[list(map(float, l.split())) for l in open(p) if l.strip() and not l.startswith("#")]
        for p in sys.argv[1:3]]
tol, name = float(sys.argv[3]), sys.argv[4]
if len(rows[0]) != len(rows[1]):
    sys.exit(f"{name}: {len(rows[0])} x86 poses, {len(rows[1])} aarch64 poses")
d = max((sum((a[i] - b[i]) ** 2 for i in (1, 2, 3)) ** 0.5 for a, b in zip(*rows)), default=0.0)
print(f"{name} trajectory.tum: differs, max position difference {d:.3g} m (tolerance {tol:g} m)")
sys.exit(1 if d > tol else 0)
PY
    else
      echo "$name $f: differs (judged by the trajectory)"
    fi
  done
}
compare lio lio room 30 0
compare livo livo corridor 6 1e-4
echo "== aarch64 check done in $(($(date +%s) - start)) s (status $status)"
exit $status
