"""The questions an export asks before it starts: which images, and where to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox

if TYPE_CHECKING:
    from desktop.ui.main_window import MainWindow


def ask_report_scope(w: MainWindow) -> tuple[str, list[str] | None] | None:
    """(PDF path, files to include or None for all), or None when cancelled."""
    box = QMessageBox(w)
    box.setWindowTitle("Export report")
    box.setText("Which images should the PDF report include?")
    selected = w.files.selected_paths()
    accept = QMessageBox.ButtonRole.AcceptRole
    current = box.addButton("Current image", accept)
    chosen = box.addButton(f"Selected ({len(selected)})", accept) if len(selected) > 1 else None
    whole = box.addButton(f"Whole folder ({len(w.session.entries)})", accept)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked is None or clicked not in (current, chosen, whole):
        return None
    only = None
    if clicked is current and w.session.current is not None:
        only = [w.session.entries[w.session.current].rel_path]
    elif clicked is chosen:
        only = selected
    folder = w.session.folder
    default = str(folder.parent / f"{folder.name}-cxr-report.pdf")
    path, _ = QFileDialog.getSaveFileName(w, "Save report", default, "PDF (*.pdf)")
    return (path, only) if path else None  # the dialog asked before overwriting a file


def ask_csv_path(w: MainWindow) -> str | None:
    folder = w.session.folder
    default = str(folder.parent / f"{folder.name}-cxr-results.csv")
    path, _ = QFileDialog.getSaveFileName(w, "Save results", default, "CSV (*.csv)")
    return path or None
