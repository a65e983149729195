"""The launcher's first Qt step: the QApplication, with a fatal Qt error turned into a message.

A Qt that cannot load its platform plugin (a missing system library, no display) calls
qFatal, which aborts the process: no Python exception is raised. While the application
object is made, a message handler catches that one fatal message and hands it to
``on_fatal`` (which explains it and ends the process) instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

_app: QApplication | None = None  # kept alive: run_app reuses QApplication.instance()


def start_application(on_fatal: Callable[[str], None]) -> QApplication:
    global _app

    existing = QApplication.instance()
    if existing is not None:
        return existing  # type: ignore[return-value]

    def handler(mode: QtMsgType, context, message: str) -> None:
        if mode == QtMsgType.QtFatalMsg:
            on_fatal(message)
            return
        category = getattr(context, "category", None)  # Qt's default format on stderr
        prefix = f"{category}: " if category and category != "default" else ""
        print(f"{prefix}{message}", file=sys.stderr)

    previous = qInstallMessageHandler(handler)
    try:
        _app = QApplication(sys.argv[:1])
    finally:
        qInstallMessageHandler(previous)
    return _app
