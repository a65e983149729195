"""The real window, offscreen, in a child process: GUI stalls, folder throughput, the soak.

* ``run_gui``: longest GUI-thread stall while a phantom folder is classified
  and heatmaps are computed (the reviewer pages through the first images).
* ``run_folder_throughput``: images per second from "open folder" to "all
  classified" with a given bundle (VGG19 for the bar), nothing else asked.
* ``run_soak``: page through N images, each with its heatmap, and follow the
  resident memory of the app *and* its Grad-CAM child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMON = r"""
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None  # no /proc (not Linux): no figure rather than a wrong one

def setup():
    app = QApplication([])
    app.setOrganizationName("cxr-bench"); app.setApplicationName("cxr-bench")
    from desktop.ui.main_window import MainWindow
    w = MainWindow(); w.resize(1440, 900); w.show()
    return app, w

def pump(app, until, limit):
    t0 = time.perf_counter()
    while not until() and time.perf_counter() - t0 < limit:
        app.processEvents(); time.sleep(0.001)
    return until()
"""

STALL = r"""
LIMIT = float(os.environ.get("CXR_BENCH_LIMIT", 900))
def main():
    app, w = setup()
    folder, n_heat, bundle = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    gaps, last = [], [time.perf_counter()]
    def beat():
        now = time.perf_counter(); gaps.append(now - last[0]); last[0] = now
    timer = QTimer(); timer.timeout.connect(beat); timer.start(5)
    state = {"done": False, "heat": 0, "t_done": None, "checked": False}
    def finished():
        state.update(done=True, t_done=time.perf_counter())
    w.classification_finished.connect(finished)
    w.attention_checked.connect(lambda: state.update(checked=True))
    def on_heat():
        state["heat"] += 1
        if state["heat"] < n_heat:
            QTimer.singleShot(0, lambda: w.step(1))
    w.heatmap_shown.connect(on_heat)
    w.set_bundle(bundle)
    t0 = time.perf_counter(); w.open_folder(folder)
    # done: all classified, the first n_heat heatmaps shown while paging, and every image's
    # heatmap computed by the background attention pass
    ok = pump(app, lambda: state["done"] and state["heat"] >= n_heat and state["checked"], LIMIT)
    elapsed = time.perf_counter() - t0
    if not ok:
        from desktop.folder_model import attention_summary
        print("stall bench timed out:", state, attention_summary(w.entries, 0.5),
              w._cam.background_left, w.classifying, file=sys.stderr)
        w.shutdown()
        sys.exit(3)  # no figure from a run that did not finish
    g = np.array(gaps[3:]) * 1000
    print(json.dumps({"gui_max_stall_ms": round(float(g.max()), 1),
                      "gui_p99_stall_ms": round(float(np.percentile(g, 99)), 1),
                      "gui_images": len(w.entries), "gui_heatmaps_paged": state["heat"],
                      "gui_all_heatmaps_computed": state["checked"],
                      "gui_elapsed_s": round(elapsed, 1),
                      "gui_folder_img_per_s": round(len(w.entries) / (state["t_done"] - t0), 1)}))
    w.shutdown()

"""

#: every script ends so: the Grad-CAM child is spawned and re-imports the script's file
TAIL = """
if __name__ == "__main__":
    main()
"""

FOLDER = r"""
def main():
    app, w = setup()
    folder, bundle = Path(sys.argv[1]), Path(sys.argv[2])
    state = {}
    w.classification_finished.connect(lambda: state.setdefault("t", time.perf_counter()))
    w.set_bundle(bundle)
    t0 = time.perf_counter(); w.open_folder(folder)
    if not pump(app, lambda: "t" in state, 900):
        print("folder bench timed out", file=sys.stderr); w.shutdown(); sys.exit(3)
    n = sum(e.probabilities is not None for e in w.entries)
    print(json.dumps({"folder_images": n, "folder_s": round(state["t"] - t0, 2),
                      "folder_img_per_s": round(n / (state["t"] - t0), 2)}))
    w.shutdown()

"""

SOAK = r"""
def main():
    app, w = setup()
    folder, bundle, warm = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    state = {"heat": 0, "done": False, "samples": []}
    w.classification_finished.connect(lambda: state.update(done=True))
    def sample():
        proc = w._cam._proc._proc
        child = rss_mb(proc.pid) if proc is not None and proc.is_alive() else None
        state["samples"].append((state["heat"], rss_mb(os.getpid()), child))
    def on_heat():
        state["heat"] += 1
        if state["heat"] in (warm, len(w.entries)) or state["heat"] % 100 == 0:
            sample()
        QTimer.singleShot(0, lambda: w.step(1))
    w.heatmap_shown.connect(on_heat)
    w.set_bundle(bundle)
    t0 = time.perf_counter(); w.open_folder(folder)
    if not pump(app, lambda: state["heat"] >= len(w.entries) > 0, 1800):
        print("soak timed out at", state["heat"], file=sys.stderr); w.shutdown(); sys.exit(3)
    s = {k: v for k, *v in state["samples"]}
    base, end = s.get(warm), s.get(state["heat"])
    out = {"soak_images": state["heat"], "soak_s": round(time.perf_counter() - t0, 1),
           "soak_rss_samples": [[k, a and round(a), b and round(b)] for k, a, b in state["samples"]]}
    if base and end and None not in base and None not in end:
        out.update(soak_rss_growth_mb=round(sum(end) - sum(base), 1),
                   soak_app_rss_mb=round(end[0]), soak_cam_child_rss_mb=round(end[1]))
    print(json.dumps(out))
    w.shutdown()

"""


def _run(script: str, args: list[str], d: Path, timeout: int = 1800) -> dict:
    path = d / "bench_script.py"
    path.write_text(COMMON + script + TAIL)
    env = {**os.environ, "XDG_CONFIG_HOME": str(d / "cfg"), "CXR_REVIEW_HOME": str(d / "home")}
    r = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=ROOT)  # fmt: skip
    line = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not line:
        return {"error": r.stderr[-800:]}
    return json.loads(line[-1])


def _phantoms(folder: Path, n: int, size: int = 512) -> None:
    from training.phantom_dataset import write_phantoms

    write_phantoms(folder, n, size=size, bit_depth=16, seed=1, flat=True, masks=False)


def _in_folder(prefix: str, n_images: int, script: str, args: list[str], key: str) -> dict:
    """Phantoms in a temporary folder, then ``script FOLDER *args`` in a child."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        _phantoms(Path(d) / "f", n_images)
        out = _run(script, [str(Path(d) / "f"), *args], Path(d))
    return {key: out["error"]} if "error" in out else out


def run_gui(n_images: int = 200, n_heatmaps: int = 10, bundle: Path | None = None) -> dict:
    from desktop.paths import DEMO_BUNDLE

    return _in_folder("cxr-bench-gui-", n_images, STALL,
                      [str(n_heatmaps), str(bundle or DEMO_BUNDLE)], "gui_error")  # fmt: skip


def run_folder_throughput(bundle: Path, n_images: int) -> dict:
    return _in_folder("cxr-bench-folder-", n_images, FOLDER, [str(bundle)], "folder_error")


def run_soak(n_images: int = 1000, warm: int = 100, bundle: Path | None = None) -> dict:
    from desktop.paths import DEMO_BUNDLE

    return _in_folder("cxr-bench-soak-", n_images, SOAK,
                      [str(bundle or DEMO_BUNDLE), str(warm)], "soak_error")  # fmt: skip
