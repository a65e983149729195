"""``python -m benchmarks [--quick] [--scale] --json OUT``: speed and memory against the bars.

Every ratio is measured within this one run on this one machine (printed with
the figures): VGG19 224² (weights=None, exported through our own export path)
for inference, CAM, int8 and folder throughput; the demo bundle for the GUI
stall and the soak (the window's own costs, not the model's); the compact CNN
for training memory. ``--scale`` also runs the 20,000-image training-memory run
(tens of minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

#: the bar each figure must meet: key -> (comparison, bound)
BARS = {
    "ort_vs_tf": (">=", 1.5),
    "ort_vs_limit": ("<=", 1.1),
    "cam_vs_ort": ("<=", 1.15),
    "int8_vs_limit": ("<=", 0.35),
    "int8_accuracy_delta_abs": ("<=", 0.5),
    "gui_max_stall_ms": ("<=", 50),
    "startup_ms": ("<=", 2000),
    "folder_vs_raw": (">=", 0.85),
    "soak_rss_growth_mb": ("<=", 150),
    "scale_train_peak_rss_mb": ("<=", 4000),
    "decodes_per_viewed_image_max": ("<=", 2),
    "bundle_check_ms": ("<=", 100),
}
#: bars that hold where CUDA runs (a GPU takes the model off the critical path)
CUDA_BARS = {
    "folder_vs_decode": (">=", 0.8),
    "cuda_vs_cpu_max_dp": ("<=", 1e-4),
}


def machine() -> dict:
    cpu, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        cpu = platform.processor()
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f" {f}" in flags]
    return {"cpu": cpu, "cores": os.cpu_count(), "isa": isa, "python": sys.version.split()[0]}


def check_bars(out: dict) -> dict:
    met = {}
    bars = {**BARS, **CUDA_BARS} if out.get("cuda") == "ok" else BARS
    for key, (op, bound) in bars.items():
        if out.get(key) is not None:
            v = out[key]
            met[key] = v >= bound if op == ">=" else v <= bound
    return met


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and images (< 10 min)")
    p.add_argument("--scale", action="store_true", help="also train on 20,000 512² phantoms")
    p.add_argument("--json", dest="json_out", required=True)
    args = p.parse_args(argv)
    from benchmarks.app_figures import int8_demo, raw_ort_img_per_s, startup_ms, train_peak_rss
    from benchmarks.cuda import run_cuda
    from benchmarks.decoding import run_decoding
    from benchmarks.gui import run_decodes_and_reports, run_folder_throughput, run_gui, run_soak
    from benchmarks.inference import run_inference
    from desktop.paths import DEMO_BUNDLE

    t0 = time.perf_counter()
    out: dict = {"machine": machine(), "quick": args.quick}
    steps: dict[str, float] = {}

    def step(name: str, fn):
        t = time.perf_counter()
        print(f"benchmarks: {name} …", file=sys.stderr, flush=True)
        res = fn()
        out.update(res)
        steps[name] = round(time.perf_counter() - t, 1)
        return res

    work = Path(tempfile.mkdtemp(prefix="cxr-bench-"))
    try:
        step("inference (VGG19 224²: ORT, TF, CAM, int8)", lambda: run_inference(args.quick, work))
        vgg = work / "b"
        raw = step(
            "raw ORT batch 16, app session (VGG19)",
            lambda: {"raw_ort_b16_img_per_s": round(raw_ort_img_per_s(vgg, repeats=4), 2)},
        )
        step(
            "folder throughput in the app (VGG19)",
            lambda: run_folder_throughput(vgg, 160 if args.quick else 320),
        )
        if out.get("folder_img_per_s"):
            out["folder_vs_raw"] = round(out["folder_img_per_s"] / raw["raw_ort_b16_img_per_s"], 3)
        step(
            "decoding (2,500x2,048 16-bit, one core) and the folder engine (all cores, demo)",
            lambda: run_decoding(200 if args.quick else 1000, work),
        )
        step("CUDA (VGG19 224², CUDA vs CPU), when CUDA runs", lambda: run_cuda(work))
        step("GUI stall (200 phantoms, demo bundle)", lambda: run_gui(n_images=200))
        step("start-up", startup_ms)
        step("decodes per viewed image, app vs headless report (demo)", run_decodes_and_reports)
        step("soak (1,000 images with heatmaps)", lambda: run_soak(1000))
        step(
            "int8 accuracy (demo model)", lambda: int8_demo(DEMO_BUNDLE, 150 if args.quick else 600)
        )
        step("training memory", lambda: train_peak_rss(300 if args.quick else 2000))
        if args.scale:
            res = step("training memory at 20,000 images", lambda: train_peak_rss(20000))
            out["scale_train_peak_rss_mb"] = res.get("train_peak_rss_mb")
            out["scale_train_images"] = res.get("train_images")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if out.get("int8_b1_ms") and out.get("flop_limit_ms"):
        out["int8_vs_limit"] = round(out["int8_b1_ms"] / out["flop_limit_ms"], 2)
    if out.get("int8_accuracy_delta") is not None:
        out["int8_accuracy_delta_abs"] = abs(out["int8_accuracy_delta"])
    out["bars_met"] = check_bars(out)
    out["step_seconds"] = steps
    out["bench_seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
