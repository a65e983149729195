"""Pieces of the main window's layout that carry no behaviour."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QSplitter, QStatusBar, QWidget

from export.bundle import Manifest

BANNER = (
    "RESEARCH USE ONLY — not a medical device. AI output must be checked by a qualified reader."
)


def banner_label() -> QLabel:
    banner = QLabel(BANNER)
    banner.setObjectName("banner")
    banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
    banner.setStyleSheet(
        "#banner { background: #f2c200; color: #1a1a1a; font-weight: 600; padding: 4px; }"
    )
    return banner


def main_splitter(files: QWidget, image: QWidget, side: QWidget) -> QSplitter:
    splitter = QSplitter()
    for w in (files, image, side):
        splitter.addWidget(w)
    splitter.setStretchFactor(1, 1)
    return splitter


def model_text(m: Manifest) -> tuple[str, bool]:
    """The model line above the list, and whether it is a demo model (shown highlighted)."""
    demo = bool(m.extra.get("demo"))
    note = "  —  DEMO model trained on synthetic phantoms" if demo else ""
    text = (
        f"Model: {m.model_name}  ·  {len(m.class_names)} classes  ·  "
        f"T = {m.calibration_temperature:.2f}{note}   ·   Help ▸ Model card"
    )
    return text, demo


class StatusWidgets:
    """The status bar's permanent fields: progress, attention summary, inference provider."""

    def __init__(self, bar: QStatusBar) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.provider = QLabel("Inference: —")
        self.attention = QLabel("")
        self.attention.setToolTip(
            "Images whose predicted-class Grad-CAM lies mostly outside the lung field "
            "(Settings ▸ Attention threshold); checked in the background after classification"
        )
        for w in (self.progress, self.attention, self.provider):
            bar.addPermanentWidget(w)

    def show_progress(self, done: int, total: int, running: bool) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setVisible(running)

    def show_attention(self, flagged: int, checked: int, total: int) -> None:
        text = ""
        if total:
            text = f"Looked outside lungs: {flagged} of {checked}"
            if checked < total:
                text += f" (checking {checked}/{total}…)"
        self.attention.setText(text)
        self.attention.setStyleSheet(
            "background: #ffb000; color: #1a1a1a; padding: 0 4px;" if flagged else ""
        )
