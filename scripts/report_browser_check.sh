#!/usr/bin/env bash
# Opens RUN/report.html in headless Chromium (no network, fresh profile) and checks that the
# screenshot shows the page with its plots, not a blank page or broken images.
# Usage: scripts/report_browser_check.sh RUN [SCREENSHOT.png]
set -euo pipefail
run=$1
shot=${2:-$run/report_screenshot.png}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "no chromium on PATH (apt-get install chromium)" >&2
  exit 1
fi
profile=$(mktemp -d)
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --screenshot="$shot" --window-size=1280,9000 "file://$(realpath "$run")/report.html" 2>/dev/null
rm -rf "$profile"
python3 - "$shot" <<'EOF'
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
from PIL import Image

im = Image.open(sys.argv[1]).convert("RGB")
w, h = im.size
px = list(im.resize((w // 4, h // 4)).convert("RGB").getdata())
# Plots and render images colour the page; text and tables alone leave it mostly white.
coloured = sum(1 for p in px if max(p) - min(p) > 40) / len(px)
print(f"{sys.argv[1]}: {w}x{h}, {coloured:.1%} coloured pixels")
assert (w, h) == (1280, 9000), "unexpected screenshot size"
assert coloured > 0.03, "the page shows no plots (blank page or broken images)"
EOF
