"""``FOLDER BUNDLE WARM``: page through every image with its heatmap and follow the resident
memory of the app and its Grad-CAM child; growth is counted from heatmap ``WARM`` on."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer

from benchmarks.children.window import pump, rss_mb, setup


def main() -> None:
    app, w = setup()
    folder, bundle, warm = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    state = {"heat": 0, "done": False, "samples": []}
    w.classification_finished.connect(lambda: state.update(done=True))

    def sample():
        pid = w.heatmaps.cam.child_pid
        child = rss_mb(pid) if pid is not None else None
        state["samples"].append((state["heat"], rss_mb(os.getpid()), child))

    def on_heat():
        state["heat"] += 1
        if state["heat"] in (warm, len(w.entries)) or state["heat"] % 100 == 0:
            sample()
        QTimer.singleShot(0, lambda: w.step(1))

    w.heatmap_shown.connect(on_heat)
    w.set_bundle(bundle)
    t0 = time.perf_counter()
    w.open_folder(folder)
    if not pump(app, lambda: state["heat"] >= len(w.entries) > 0, 1800):
        print("soak timed out at", state["heat"], file=sys.stderr)
        w.shutdown()
        sys.exit(3)
    s = {k: v for k, *v in state["samples"]}
    base, end = s.get(warm), s.get(state["heat"])
    out = {
        "soak_images": state["heat"],
        "soak_s": round(time.perf_counter() - t0, 1),
        "soak_rss_samples": [[k, a and round(a), b and round(b)] for k, a, b in state["samples"]],
    }
    if base and end and None not in base and None not in end:
        out.update(
            soak_rss_growth_mb=round(sum(end) - sum(base), 1),
            soak_app_rss_mb=round(end[0]),
            soak_cam_child_rss_mb=round(end[1]),
        )
    print(json.dumps(out))
    w.shutdown()


if __name__ == "__main__":
    main()
