"""A mark the app reported saved survives the app being killed (SIGKILL) right after."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from imaging_factory import png_bytes

from desktop.review_store import ReviewStore

ROOT = Path(__file__).resolve().parents[1]

#: the window's own path: the marks controller adds a mark and prints its number only after
#: the store's commit returned (its status line says "marks saved")
APP = r"""
import sys
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

app = QApplication([])
from desktop.annotations import Annotation
from desktop.ui.main_window import MainWindow

w = MainWindow()
n = [int(sys.argv[2])]
saved = []
w.marks.message.connect(saved.append)


def tick():
    i = n[0]
    n[0] += 1
    saved.clear()
    w.marks.add(Annotation.make("text", [(i % 50, i % 40)], f"mark {i}"))
    if saved and "marks saved" in saved[-1]:
        print(i, flush=True)


timer = QTimer()
timer.timeout.connect(tick)
w.image.pixels_changed.connect(lambda i: i is not None and timer.start(0))
w.open_folder(Path(sys.argv[1]))
app.exec()
"""


def test_sigkill_never_loses_a_saved_mark(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(np.full((40, 50), 900, np.uint16)))
    rng = random.Random(7)
    reported: list[int] = []
    start = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", APP, str(folder), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        guard = threading.Timer(120, proc.kill)  # a child that never starts fails the test
        guard.start()
        try:
            first = [proc.stdout.readline() for _ in range(3)]
            assert all(line.strip() for line in first), "the app saved no mark"
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate()
        finally:
            guard.cancel()
        got = [int(x) for x in "".join(first).split() + out.split()]
        reported += got
        start = got[-1] + 1
        with ReviewStore.for_folder(folder) as store:
            assert store.integrity_ok()
            stored = {m.text for m in store.annotations("a.png")}
        missing = [i for i in reported if f"mark {i}" not in stored]
        assert not missing, f"reported saved but lost after kill -9: {missing[:5]}"
    assert len(reported) > 9
