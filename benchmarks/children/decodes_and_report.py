"""``FOLDER BUNDLE PDF``: the app on a folder, every image viewed with its heatmap, then its
PDF export. Prints how often each viewed image was decoded (the folder pass, the display,
the attention pass and the Grad-CAM child all count; the child never decodes) and how long
the app's report took, handed what the app had computed."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from PySide6.QtCore import QTimer

import export.image_input as image_input
from benchmarks.children.window import pump, setup


def main() -> None:
    image_input.DECODE_LOG = Counter()
    app, w = setup()
    folder, bundle, pdf = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    state = {"viewed": set(), "checked": False}
    w.attention_checked.connect(lambda: state.update(checked=True))

    def on_heat():
        cur = w.session.current
        # heatmap_shown also fires when the image's attention figure arrives: viewed means
        # its heatmap is on screen, i.e. in the heatmap cache
        key = w.heatmaps.key_for(cur, None, w.state.cam_method) if cur is not None else None
        shown = key is not None and w.heatmaps.cached(key) is not None
        if shown and w.heatmaps.cam.generation and cur not in state["viewed"]:
            state["viewed"].add(cur)
            QTimer.singleShot(0, lambda: w.step(1))

    w.heatmap_shown.connect(on_heat)
    w.set_bundle(bundle)
    w.open_folder(folder)
    ok = pump(app, lambda: len(state["viewed"]) >= len(w.entries) > 0 and state["checked"], 900)
    if not ok:
        print("decode bench timed out", len(state["viewed"]), file=sys.stderr)
        w.shutdown()
        sys.exit(3)
    counts = [image_input.DECODE_LOG[str(w.entries[i].path)] for i in sorted(state["viewed"])]
    done = {}
    w.export_finished.connect(lambda p: done.update(ok=True))
    w.export_failed.connect(lambda why: done.update(ok=False, why=why))
    t0 = time.perf_counter()
    w.export_report_to(pdf)
    pump(app, lambda: bool(done), 900)
    out = {
        "decodes_per_viewed_image": round(sum(counts) / len(counts), 2),
        "decodes_per_viewed_image_max": max(counts),
        "decodes_viewed_images": len(counts),
    }
    if done.get("ok"):
        out["app_report_s"] = round(time.perf_counter() - t0, 2)
    else:
        out["app_report_error"] = done.get("why", "timed out")
    print(json.dumps(out))
    w.shutdown()


if __name__ == "__main__":
    main()
