"""The real main window, offscreen, for the GUI child programs."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

#: no display: every QApplication of these programs is offscreen
os.environ["QT_QPA_PLATFORM"] = "offscreen"


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB; None without /proc (not Linux), never a guess."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def setup():
    """(QApplication, shown MainWindow) at a reviewer's screen size."""
    app = QApplication([])
    app.setOrganizationName("cxr-bench")
    app.setApplicationName("cxr-bench")
    from desktop.ui.main_window import MainWindow

    w = MainWindow()
    w.resize(1440, 900)
    w.show()
    return app, w


def pump(app, until, limit: float) -> bool:
    """Process events until ``until()`` holds or ``limit`` seconds pass; its final value."""
    t0 = time.perf_counter()
    while not until() and time.perf_counter() - t0 < limit:
        app.processEvents()
        time.sleep(0.001)
    return until()
