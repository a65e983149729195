"""Pieces of the main window's layout that carry no behaviour."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.style import set_bar_value, set_style
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


def build_central(
    window: QMainWindow, open_btn: QPushButton, files, image: QWidget, side: QWidget
) -> QSplitter:
    """Banner, model line, the list's controls, then list | image | panel; sets
    ``window.banner`` and ``window.model_label``; returns the splitter."""
    window.banner = banner_label()
    window.model_label = QLabel("No model bundle loaded — images only, no classification.")
    window.model_label.setStyleSheet("padding: 2px 6px;")
    top = QHBoxLayout()
    top.addWidget(open_btn)
    for label, box in (("Show", files.filter_box), ("Sort", files.sort_box)):
        top.addWidget(QLabel(label))
        top.addWidget(box)
    top.addStretch(1)
    splitter = QSplitter()
    for w in (files.table, image, side):
        splitter.addWidget(w)
    splitter.setStretchFactor(1, 1)
    central = QWidget()
    lay = QVBoxLayout(central)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    lay.addWidget(window.banner)
    lay.addWidget(window.model_label)
    lay.addLayout(top)
    lay.addWidget(splitter, 1)
    window.setCentralWidget(central)
    return splitter


def show_model(label: QLabel, m: Manifest) -> None:
    """The model line above the list; a demo model is highlighted."""
    demo = bool(m.extra.get("demo"))
    note = "  —  DEMO model trained on synthetic phantoms" if demo else ""
    label.setText(
        f"Model: {m.model_name}  ·  {', '.join(m.class_names)}  ·  "
        f"T = {m.calibration_temperature:.2f}{note}   ·   Help ▸ Model card"
    )
    label.setStyleSheet(
        "padding: 2px 6px;" + (" background: #ffb000; font-weight: 600;" if demo else "")
    )


def novelty_bar() -> QLabel:
    """The "unlike the training data" bar above the image: the attention warning's look in
    another colour, hidden until an image needs it."""
    bar = QLabel("")
    bar.setObjectName("novelty_bar")
    bar.setWordWrap(True)
    bar.setStyleSheet("background: #e8743b; color: #1a1a1a; font-weight: 600; padding: 4px 8px;")
    bar.setVisible(False)
    return bar


class _Notice(QLabel):
    """Stays until clicked away or replaced: where reviews are kept is not a passing message."""

    def mousePressEvent(self, event) -> None:
        self.setVisible(False)
        super().mousePressEvent(event)


class StatusWidgets:
    """The status bar's permanent fields: a notice about the review store, progress,
    attention summary, inference provider."""

    def __init__(self, bar: QStatusBar) -> None:
        self.notice = _Notice("")
        self.notice.setWordWrap(False)
        self.notice.setStyleSheet("background: #ffb000; color: #1a1a1a; padding: 0 4px;")
        self.notice.setToolTip("Click to dismiss")
        self.notice.setVisible(False)
        bar.addPermanentWidget(self.notice, 1)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.provider = QLabel("Inference: —")
        self.attention = QLabel("")
        self.attention.setToolTip(
            "Images whose predicted-class Grad-CAM lies mostly outside the lung field "
            "(Settings ▸ Attention threshold); checked in the background after classification"
        )
        self.novelty = QLabel("")
        self.novelty.setToolTip(
            "Images unlike the model's training data (its probabilities mean little there): "
            "the bundle's own check where it has one, and checks that need no model"
        )
        for w in (self.progress, self.novelty, self.attention, self.provider):
            bar.addPermanentWidget(w)

    def show_progress(self, done: int, total: int, running: bool) -> None:
        self.progress.setRange(0, max(1, total))
        set_bar_value(self.progress, done)
        self.progress.setVisible(running)

    def show_attention(self, flagged: int, checked: int, total: int) -> None:
        text = ""
        if total:
            text = f"Looked outside lungs: {flagged} of {checked}"
            if checked < total:
                text += f" (checking {checked}/{total}…)"
        self.attention.setText(text)
        set_style(
            self.attention,
            "background: #ffb000; color: #1a1a1a; padding: 0 4px;" if flagged else "",
        )

    def show_novelty(self, unlike: int, judged: int) -> None:
        self.novelty.setText(f"Unlike training data: {unlike} of {judged}" if judged else "")
        set_style(
            self.novelty, "background: #e8743b; color: #1a1a1a; padding: 0 4px;" if unlike else ""
        )

    def show_notice(self, text: str | None) -> None:
        self.notice.setText(text or "")
        self.notice.setToolTip(f"{text}\n(click to dismiss)" if text else "")
        self.notice.setVisible(bool(text))
