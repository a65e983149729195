"""Entry point of the ``cxr-review`` gui-script.

Standard library only at import time: whatever goes wrong later (a missing
Qt library, a broken install), this module can still log it and show the
reviewer a native error dialog instead of exiting silently.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("cxr_review")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cxr-review",
        description="Review chest X-rays with an AI classifier. Research use only.",
    )
    p.add_argument("folder", nargs="?", help="folder of images to open")
    p.add_argument("--bundle", help="model bundle folder")
    p.add_argument("--demo", action="store_true", help="open the bundled demo images")
    p.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add cxr-review to the desktop's application menu (double-click launch) and exit",
    )
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="render the window once the first image is shown, save it, and exit",
    )
    return p


def _setup_logging() -> Path | None:
    from desktop.paths import user_log_dir

    try:
        folder = user_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "cxr-review.log"
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def show_fatal_error(message: str, details: str = "", qt: bool = True) -> None:
    """Best effort, in order: a Qt message box (unless Qt is what failed, ``qt=False``), a Tk
    message box; the message always goes to standard error too."""
    print(f"cxr-review: {message}", file=sys.stderr)
    if qt:
        try:
            from desktop.ui.error_dialog import show_error_dialog

            show_error_dialog("cxr-review could not start", message, details)
            return
        except Exception:  # Qt itself may be what failed
            pass
    try:
        import tkinter
        from tkinter import messagebox

        root = tkinter.Tk()
        root.withdraw()
        messagebox.showerror("cxr-review could not start", message)
        root.destroy()
    except Exception:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.install_desktop_entry:
        from desktop.desktop_entry import install_desktop_entry

        try:
            print(f"cxr-review: installed {install_desktop_entry()}")
            return 0
        except OSError as exc:
            print(f"cxr-review: could not install the desktop entry: {exc}", file=sys.stderr)
            return 2
    log_path = _setup_logging()
    where = f"\n\nDetails were written to {log_path}" if log_path else ""
    try:
        from desktop.ui.qt_start import start_application

        start_application(lambda qt_said: _qt_cannot_start(qt_said, where))
        from desktop.ui.app import run_app

        return run_app(args)
    except SystemExit:
        raise
    except BaseException as exc:  # start-up must never fail silently
        details = traceback.format_exc()
        log.error("start-up failed:\n%s", details)
        from desktop.qt_check import failure_message, missing_libraries, platform_in_use

        if isinstance(exc, ImportError) and missing_libraries(str(exc)):  # Qt's own libraries
            message = failure_message(platform_in_use(), str(exc), quote=False)
            show_fatal_error(f"{message}{where}", details, qt=False)
        else:
            show_fatal_error(f"{type(exc).__name__}: {exc}{where}", details)
        return 1


def _qt_cannot_start(qt_said: str, where: str) -> None:
    """Qt's platform plugin failed (Qt would abort next): say why and which packages fix it,
    then end the process."""
    from desktop.qt_check import check_qt, failure_message, platform_in_use

    platform = platform_in_use()
    log.error("Qt could not start on %s: %s", platform, qt_said)
    result = check_qt(platform)  # a child with the loader's messages names the missing library
    log.error("the check in a child process said:\n%s", result.output)
    output = result.output if not result.ok else qt_said
    message = failure_message(platform, output, quote=False)
    show_fatal_error(f"{message}{where}", qt_said, qt=False)
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
