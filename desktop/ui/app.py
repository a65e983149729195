"""QApplication set-up for the review app (the only place that creates one)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_MS = 120_000


def _last(key: str) -> Path | None:
    from PySide6.QtCore import QSettings

    value = QSettings().value(key, "")
    return Path(str(value)) if value and Path(str(value)).is_dir() else None


def choose_start(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(folder, bundle) a start opens: the command line's; with ``--demo`` the demo images
    and bundle; otherwise the last session's folder and bundle where they still exist, and
    the demo bundle when none was used. Needs the QApplication's names set (settings)."""
    from desktop.demo_folder import prepare_demo_images
    from desktop.paths import DEMO_BUNDLE

    if args.folder:
        folder = Path(args.folder).absolute()  # remembered as given, from any working folder
    elif args.demo:  # a copy in the user data folder: the bundled set stays as is
        folder = prepare_demo_images()
    else:
        folder = _last("last_folder")
    if args.bundle:
        bundle = Path(args.bundle)
    elif not args.demo and (last := _last("last_bundle")) is not None:
        bundle = last
    else:
        bundle = DEMO_BUNDLE if DEMO_BUNDLE.exists() else None  # the demo when none is configured
    return folder, bundle


def run_app(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cxr-review")
    app.setOrganizationName("cxr-review")
    from PySide6.QtGui import QIcon

    from desktop.desktop_entry import ICON

    app.setWindowIcon(QIcon(str(ICON)))

    folder, bundle = choose_start(args)
    window = MainWindow()  # loads the native libraries first (see workers.preload_native_libraries)
    window.show()
    app.processEvents()  # the window is on screen before any model work starts
    if os.environ.get("CXR_REVIEW_STARTUP_PROBE"):  # benchmarks: start-up time to a shown window
        print(
            f"window-shown {time.time():.6f} tensorflow={'tensorflow' in sys.modules}", flush=True
        )
        window.shutdown()
        return 0
    if bundle is not None:
        window.set_bundle(bundle)
    if folder is not None:
        window.open_folder(folder)

    if args.screenshot:
        window.resize(1440, 900)  # a workstation-sized window, whatever the (virtual) screen
        target = Path(args.screenshot)
        result = {"code": 1}
        # wait for: an image on screen, and (with a model) the folder classified and the
        # current image's heatmap drawn and every image's lung share known, or the bundle refused
        ready = {"image": False, "classified": bundle is None, "heatmap": bundle is None,
                 "attention": bundle is None}  # fmt: skip

        def capture() -> None:
            window.menus.save_settings()
            ok = window.grab().save(str(target))
            result["code"] = 0 if ok else 1
            if not ok:
                print(f"cxr-review: could not write screenshot {target}", file=sys.stderr)
            app.quit()

        def mark(what: str) -> None:
            if not all(ready.values()):
                ready[what] = True
                if all(ready.values()):
                    QTimer.singleShot(150, capture)

        def give_up(why: str) -> None:
            print(f"cxr-review: {why}; no screenshot", file=sys.stderr)
            app.quit()

        def refused(_text: str) -> None:
            # a bundle can be refused before the folder's first image is on screen
            ready["classified"] = ready["heatmap"] = ready["attention"] = True
            mark("classified" if folder is not None and not ready["image"] else "image")

        window.first_image_shown.connect(lambda: mark("image"))
        window.classification_finished.connect(lambda: mark("classified"))
        window.heatmap_shown.connect(lambda: mark("heatmap"))
        window.attention_checked.connect(lambda: mark("attention"))
        window.bundle_failed.connect(refused)
        window.folder_failed.connect(lambda msg: give_up(f"cannot open the folder ({msg})"))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: give_up("nothing was shown in time"))
        app.exec()
        window.shutdown()
        return result["code"]

    code = app.exec()
    window.shutdown()
    return code
