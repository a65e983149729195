"""A Qt message box for fatal start-up errors (the launcher falls back to Tk, then stderr)."""

from __future__ import annotations

import sys


def show_error_dialog(title: str, message: str, details: str = "") -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])
    box = QMessageBox(QMessageBox.Icon.Critical, title, message)
    if details:
        box.setDetailedText(details)
    if app.platformName() != "offscreen":
        box.exec()
