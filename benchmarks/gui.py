"""The real window, offscreen, in a child process: GUI stalls, folder throughput, the soak.

* ``run_gui``: longest GUI-thread stall while a phantom folder is classified
  and heatmaps are computed (the reviewer pages through the first images).
* ``run_folder_throughput``: images per second from "open folder" to "all
  classified" with a given bundle (VGG19 for the bar), nothing else asked.
* ``run_soak``: page through N images, each with its heatmap, and follow the
  resident memory of the app *and* its Grad-CAM child process.
* ``run_decodes_and_reports``: decodes per image viewed with its heatmap, and
  the demo folder's PDF report from the app (reusing its results) against
  ``cxr report`` from scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(program: str, args: list[str], d: Path, timeout: int = 1800) -> dict:
    """``python -m benchmarks.children.PROGRAM *args`` with settings in ``d``; its JSON line."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(d / "cfg"), "CXR_REVIEW_HOME": str(d / "home")}
    r = subprocess.run(
        [sys.executable, "-m", f"benchmarks.children.{program}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    line = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not line:
        return {"error": r.stderr[-800:]}
    return json.loads(line[-1])


def _phantoms(folder: Path, n: int, size: int = 512) -> None:
    from training.phantom_dataset import write_phantoms

    write_phantoms(folder, n, size=size, bit_depth=16, seed=1, flat=True, masks=False)


def _in_folder(prefix: str, n_images: int, program: str, args: list[str], key: str) -> dict:
    """Phantoms in a temporary folder, then ``program FOLDER *args`` in a child."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        _phantoms(Path(d) / "f", n_images)
        out = _run(program, [str(Path(d) / "f"), *args], Path(d))
    return {key: out["error"]} if "error" in out else out


def run_gui(n_images: int = 200, n_heatmaps: int = 10, bundle: Path | None = None) -> dict:
    from desktop.paths import DEMO_BUNDLE

    args = [str(n_heatmaps), str(bundle or DEMO_BUNDLE)]
    return _in_folder("cxr-bench-gui-", n_images, "gui_stall", args, "gui_error")


def run_folder_throughput(bundle: Path, n_images: int) -> dict:
    return _in_folder(
        "cxr-bench-folder-", n_images, "folder_throughput", [str(bundle)], "folder_error"
    )


def run_soak(n_images: int = 1000, warm: int = 100, bundle: Path | None = None) -> dict:
    from desktop.paths import DEMO_BUNDLE

    args = [str(bundle or DEMO_BUNDLE), str(warm)]
    return _in_folder("cxr-bench-soak-", n_images, "soak", args, "soak_error")


def run_decodes_and_reports(bundle: Path | None = None) -> dict:
    """On a copy of the demo images: the app's figures, then the headless report's time."""
    import shutil
    import time

    from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES

    bundle = bundle or DEMO_BUNDLE
    with tempfile.TemporaryDirectory(prefix="cxr-bench-report-") as d:
        folder = Path(d) / "demo"
        shutil.copytree(DEMO_IMAGES, folder, ignore=shutil.ignore_patterns(".cxr-review"))
        out = _run("decodes_and_report", [str(folder), str(bundle), f"{d}/app.pdf"], Path(d))
        if "error" in out:
            return {"report_error": out["error"]}
        t0 = time.perf_counter()
        cli = [sys.executable, "-m", "desktop.cli", "report", str(folder), "--bundle", str(bundle)]
        r = subprocess.run([*cli, "--out", f"{d}/headless.pdf"], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, "CXR_REVIEW_HOME": f"{d}/home"})  # fmt: skip
        if r.returncode != 0:
            out["headless_report_error"] = r.stderr[-300:]
        else:
            out["headless_report_s"] = round(time.perf_counter() - t0, 2)
            if out.get("app_report_s"):
                out["app_vs_headless_report"] = round(
                    out["app_report_s"] / out["headless_report_s"], 3
                )
    return out
