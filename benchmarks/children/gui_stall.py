"""``FOLDER N_HEATMAPS BUNDLE``: the longest GUI-thread stall while the folder is classified,
the first heatmaps are paged through and the background pass computes every image's heatmap.

``CXR_BENCH_LIMIT`` (seconds, default 900) bounds the run; ``CXR_BENCH_STALL_DETAIL=1`` adds
``gui_top_stalls`` (see ``benchmarks.children.stall_detail``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer

from benchmarks.children.stall_detail import ENV as STALL_DETAIL_ENV
from benchmarks.children.window import pump, setup

LIMIT = float(os.environ.get("CXR_BENCH_LIMIT", 900))


def main() -> None:
    app, w = setup()
    folder, n_heat, bundle = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    gaps, last = [], [time.perf_counter()]
    detail = None
    if os.environ.get(STALL_DETAIL_ENV, "").strip() == "1":
        from benchmarks.children.stall_detail import StallDetail

        detail = StallDetail()

    def beat():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now
        if detail is not None:
            detail.tick()

    timer = QTimer()
    timer.timeout.connect(beat)
    timer.start(5)
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
    t0 = time.perf_counter()
    w.open_folder(folder)
    # done: all classified, the first n_heat heatmaps shown while paging, and every image's
    # heatmap computed by the background attention pass
    ok = pump(app, lambda: state["done"] and state["heat"] >= n_heat and state["checked"], LIMIT)
    elapsed = time.perf_counter() - t0
    if not ok:
        from desktop.folder_model import attention_summary

        print(
            "stall bench timed out:",
            state,
            attention_summary(w.entries, 0.5),
            w.heatmaps.cam.background_left,
            w.classifying,
            file=sys.stderr,
        )
        w.shutdown()
        sys.exit(3)
    g = np.array(gaps[3:]) * 1000
    out = {}
    if detail is not None:
        out["gui_top_stalls"] = detail.top(t0)
    print(
        json.dumps(
            {
                **out,
                "gui_max_stall_ms": round(float(g.max()), 1),
                "gui_p99_stall_ms": round(float(np.percentile(g, 99)), 1),
                "gui_images": len(w.entries),
                "gui_heatmaps_paged": state["heat"],
                "gui_all_heatmaps_computed": state["checked"],
                "gui_elapsed_s": round(elapsed, 1),
                "gui_folder_img_per_s": round(len(w.entries) / (state["t_done"] - t0), 1),
            }
        )
    )
    w.shutdown()


if __name__ == "__main__":
    main()
