"""``FOLDER BUNDLE``: images per second from "open folder" to "all classified"."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.children.window import pump, setup


def main() -> None:
    app, w = setup()
    folder, bundle = Path(sys.argv[1]), Path(sys.argv[2])
    state = {}
    w.classification_finished.connect(lambda: state.setdefault("t", time.perf_counter()))
    w.set_bundle(bundle)
    t0 = time.perf_counter()
    w.open_folder(folder)
    if not pump(app, lambda: "t" in state, 900):
        print("folder bench timed out", file=sys.stderr)
        w.shutdown()
        sys.exit(3)
    n = sum(e.probabilities is not None for e in w.entries)
    print(
        json.dumps(
            {
                "folder_images": n,
                "folder_s": round(state["t"] - t0, 2),
                "folder_img_per_s": round(n / (state["t"] - t0), 2),
            }
        )
    )
    w.shutdown()


if __name__ == "__main__":
    main()
