#!/usr/bin/env python3
"""Runs evo_ape / evo_rpe on two TUM files and prints their statistics as JSON.

Usage: evo_compare.py GT EST ALIGN(se3|sim3|none) MAX_DIFF DELTA DELTA_UNIT(m|f)
Used by tests/eval_evo.rs to check `gs_livo eval` against evo.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile


def run(cmd, zip_path):
    subprocess.run(cmd + ["--save_results", zip_path, "--no_warnings"], check=True,
                   stdout=subprocess.DEVNULL)
    with zipfile.ZipFile(zip_path) as z:
        return json.loads(z.read("stats.json"))


def main():
    gt, est, align, max_diff, delta, unit = sys.argv[1:7]
    flags = {"se3": ["-a"], "sim3": ["-a", "-s"], "none": []}[align]
    common = ["tum", gt, est, "--t_max_diff", max_diff] + flags
    out = {}
    with tempfile.TemporaryDirectory() as d:
        out["ape"] = run(["evo_ape"] + common + ["-r", "trans_part"], os.path.join(d, "a.zip"))
        out["ape_rot"] = run(["evo_ape"] + common + ["-r", "angle_deg"], os.path.join(d, "b.zip"))
        rpe = ["evo_rpe"] + common + ["--delta", delta, "--delta_unit", unit]
        out["rpe"] = run(rpe + ["-r", "trans_part"], os.path.join(d, "c.zip"))
        out["rpe_rot"] = run(rpe + ["-r", "angle_deg"], os.path.join(d, "d.zip"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
