"""The report summary's agreement section: reviewer × AI confusion matrix, percent
agreement, Cohen's κ with its 95 % CI, and inter-reader κ (``desktop.agreement``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen

from desktop.agreement import Agreement

if TYPE_CHECKING:
    from desktop.ui.report_pdf import ReportWriter

CELL_H = 28.0


def draw_agreement(w: ReportWriter, y: float, a: Agreement) -> float:
    """Draw the section from ``y``; returns the y below it."""
    y = w._line(y, "Reviewer and AI agreement", 12, bold=True)
    y = w._line(
        y,
        f"Decisions: agreed {a.agreed}, overridden {a.overridden}, uncertain {a.uncertain} "
        "(uncertain images are left out of the matrix and of κ).",
        8,
        color="#333333",
    )
    if a.kappa is None:
        return w._line(y, "No image has a reviewer class yet.", 9)
    y = _matrix(w, y, a)
    k = a.kappa
    y = w._line(
        y + 4,
        f"Percent agreement {k.observed * 100:.1f} % ({round(k.observed * k.n)} of {k.n}); "
        f"Cohen's {k.text()}",
        9,
        bold=True,
    )
    for r1, r2, ik in a.inter_reader:
        y = w._line(
            y,
            f"Inter-reader ({r1} vs {r2}): {ik.observed * 100:.1f} % agreement, {ik.text()}",
            9,
        )
    return w._line(
        y,
        "95 % CI: κ ± 1.96 SE with the large-sample SE of Fleiss, Cohen and Everitt (1969); "
        "approximate for small n.",
        7,
        color="#555555",
    )


def _matrix(w: ReportWriter, y: float, a: Agreement) -> float:
    labels = a.labels
    first = min(w.w * 0.3, 330.0)
    cell = min(150.0, (w.w - first) / (len(labels) + 1))
    p = w.painter
    w._text(QRectF(0, y, first, CELL_H), "reviewer ↓   AI →", 7, bold=True)
    for j, name in enumerate([*labels, "total"]):
        w._text(
            QRectF(first + j * cell, y, cell, CELL_H), name, 7, bold=True,
            align=Qt.AlignmentFlag.AlignHCenter,
        )  # fmt: skip
    y += CELL_H
    p.setPen(QPen(QColor("#bbbbbb")))
    for i, name in enumerate(labels):
        w._text(QRectF(0, y, first, CELL_H), name, 8, bold=True)
        row = a.matrix[i]
        for j, count in enumerate([*row, sum(row)]):
            rect = QRectF(first + j * cell, y - 2, cell, CELL_H)
            if i == j and count:
                p.fillRect(rect, QColor("#dcefdc"))
            p.setPen(QPen(QColor("#bbbbbb")))
            p.drawRect(rect)
            w._text(rect, str(count), 8, align=Qt.AlignmentFlag.AlignHCenter)
        y += CELL_H
    totals = [sum(a.matrix[i][j] for i in range(len(labels))) for j in range(len(labels))]
    w._text(QRectF(0, y, first, CELL_H), "total", 8, bold=True)
    for j, count in enumerate([*totals, sum(totals)]):
        w._text(
            QRectF(first + j * cell, y, cell, CELL_H), str(count), 8,
            align=Qt.AlignmentFlag.AlignHCenter,
        )  # fmt: skip
    return y + CELL_H
