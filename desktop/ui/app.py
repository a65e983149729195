"""QApplication set-up for the review app (the only place that creates one)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_MS = 120_000


def run_app(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES
    from desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cxr-review")
    app.setOrganizationName("cxr-review")

    folder = Path(args.folder) if args.folder else (DEMO_IMAGES if args.demo else None)
    bundle = Path(args.bundle) if args.bundle else (DEMO_BUNDLE if DEMO_BUNDLE.exists() else None)
    window = MainWindow()
    window.show()
    if bundle is not None:
        window.set_bundle(bundle)
    if folder is not None:
        window.open_folder(folder)

    if args.screenshot:
        target = Path(args.screenshot)
        result = {"code": 1}

        def capture() -> None:
            ok = window.grab().save(str(target))
            result["code"] = 0 if ok else 1
            if not ok:
                print(f"cxr-review: could not write screenshot {target}", file=sys.stderr)
            app.quit()

        def give_up() -> None:
            print("cxr-review: no image was shown in time; no screenshot", file=sys.stderr)
            app.quit()

        window.first_image_shown.connect(lambda: QTimer.singleShot(50, capture))
        window.folder_failed.connect(lambda _msg: give_up())
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, give_up)
        app.exec()
        window.shutdown()
        return result["code"]

    code = app.exec()
    window.shutdown()
    return code
