"""Longest GUI-thread stall while a phantom folder is classified and heatmaps are computed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = r"""
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

def main():
    app = QApplication([])
    app.setOrganizationName("cxr-bench"); app.setApplicationName("cxr-bench")
    from desktop.paths import DEMO_BUNDLE
    from desktop.ui.main_window import MainWindow
    folder = Path(sys.argv[1]); n_heat = int(sys.argv[2])
    w = MainWindow(); w.show()
    gaps, last = [], [time.perf_counter()]
    def beat():
        now = time.perf_counter(); gaps.append(now - last[0]); last[0] = now
    timer = QTimer(); timer.timeout.connect(beat); timer.start(5)
    state = {"done": False, "heat": 0, "t_done": None}
    def finished():
        state.update(done=True, t_done=time.perf_counter())
    w.classification_finished.connect(finished)
    def on_heat():
        state["heat"] += 1
        if state["heat"] < n_heat:
            QTimer.singleShot(0, lambda: w.step(1))
    w.heatmap_shown.connect(on_heat)
    w.set_bundle(DEMO_BUNDLE)
    t0 = time.perf_counter(); w.open_folder(folder)
    while not (state["done"] and state["heat"] >= n_heat) and time.perf_counter() - t0 < 600:
        app.processEvents(); time.sleep(0.001)
    elapsed = time.perf_counter() - t0
    g = np.array(gaps[3:]) * 1000
    print(json.dumps({"gui_max_stall_ms": round(float(g.max()), 1),
                      "gui_p99_stall_ms": round(float(np.percentile(g, 99)), 1),
                      "gui_images": len(w.entries), "gui_heatmaps": state["heat"],
                      "gui_elapsed_s": round(elapsed, 1),
                      "folder_img_per_s": round(len(w.entries) / (state["t_done"] - t0), 1)}))
    w.shutdown()

if __name__ == "__main__":
    main()
"""


def run_gui(n_images: int = 200, n_heatmaps: int = 10) -> dict:
    from training.phantom_dataset import write_phantoms

    with tempfile.TemporaryDirectory(prefix="cxr-bench-gui-") as d:
        folder = Path(d) / "f"
        write_phantoms(folder, n_images, size=512, bit_depth=16, seed=1, flat=True, masks=False)
        script = Path(d) / "gui_bench.py"
        script.write_text(SCRIPT)
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(Path(d) / "cfg"),
            "CXR_REVIEW_HOME": str(Path(d) / "home"),
        }
        r = subprocess.run([sys.executable, str(script), str(folder), str(n_heatmaps)],
                           capture_output=True, text=True, timeout=900, env=env,
                           cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        line = [x for x in r.stdout.splitlines() if x.startswith("{")]
        if r.returncode != 0 or not line:
            return {"gui_error": r.stderr[-500:]}
        return json.loads(line[-1])
