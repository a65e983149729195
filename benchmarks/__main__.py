"""``python -m benchmarks [--quick] --json OUT``: figures that exist so far (see README)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--json", dest="json_out", required=True)
    args = p.parse_args(argv)
    from benchmarks.gui import run_gui
    from benchmarks.inference import run_inference

    t0 = time.perf_counter()
    out = {"machine": machine(), "quick": args.quick}
    out.update(run_inference(quick=args.quick))
    gui = run_gui(n_images=60 if args.quick else 200)
    out.update(gui)
    from benchmarks.app_figures import int8_demo, raw_ort_img_per_s, startup_ms, train_peak_rss
    from desktop.paths import DEMO_BUNDLE

    out.update(startup_ms())
    raw = raw_ort_img_per_s(DEMO_BUNDLE)
    out["demo_raw_ort_img_per_s"] = round(raw, 1)
    if "gui_elapsed_s" in gui:
        out["folder_img_per_s"] = gui["folder_img_per_s"]
        out["folder_vs_raw"] = round(gui["folder_img_per_s"] / raw, 3)
    out.update(int8_demo(DEMO_BUNDLE, 150 if args.quick else 600))
    out.update(train_peak_rss(300 if args.quick else 2000))
    out["bench_seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.json_out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
