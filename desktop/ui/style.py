"""Widget updates from the result and attention handlers, which run for every image: only a
change is applied, and nothing paints the window inside the handler."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar, QWidget


def set_style(widget: QWidget, css: str) -> None:
    """``widget.setStyleSheet(css)`` only when it changes: Qt re-polishes (and repaints) a
    widget on every call, even with the same sheet."""
    if widget.styleSheet() != css:
        widget.setStyleSheet(css)


def set_bar_value(bar: QProgressBar, value: int) -> None:
    """``bar.setValue(value)``, painted with the next paint of the window.

    ``QProgressBar.setValue`` repaints at once when its text changes, and a repaint at once
    paints every widget of the window waiting for one (the list's changed rows included)
    inside the handler that set the value; updates off, the bar only asks for a paint."""
    if bar.value() == value:
        return
    bar.setUpdatesEnabled(False)
    bar.setValue(value)
    bar.setUpdatesEnabled(True)
