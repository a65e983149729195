"""Annotated PDF report with Qt's own PDF writer, one page at a time (memory stays flat).

Pages: a cover (folder, date, reviewer, model and its test metrics,
intended use, counts, AI-vs-reviewer agreement), one page per image (plain
image beside the heatmap overlay at the chosen opacity, both with the
reviewer's marks drawn on, colour bar, probability bars, AI class, the
reviewer's decision, note and mark labels, CAM method and layer), and a
summary: the agreement figures (``desktop/ui/report_agreement.py``) and a
table of all files, overridden images first. The words and their styles come
from ``desktop/report_text.py`` (Qt-free); this module places and draws them
with the images, bars and tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from desktop.agreement import Agreement, agreement
from desktop.annotations import Annotation
from desktop.batch import Page
from desktop.folder_model import format_probability
from desktop.mark_drawing import draw_marks
from desktop.overlay import DEFAULT_COLORMAP, colour_bar, composite
from desktop.report_text import (
    Line,
    ai_line,
    cover_lines,
    heatmap_lines,
    novelty_header,
    novelty_lines,
    outside_lungs_header,
    overridden_first,
    review_lines,
    reviewer_vs_ai,
    summary_cells,
)
from desktop.ui.report_agreement import draw_agreement
from export.attention import DEFAULT_MIN_LUNG_SHARE, Attention
from export.bundle import Manifest
from export.image_input import windowed
from export.results import ImageResult

DPI = 150
MAX_IMAGE_SIDE = 900
YELLOW = QColor("#f2c200")


def _qimage(rgb: np.ndarray) -> QImage:
    h, w, _ = rgb.shape
    data = np.ascontiguousarray(rgb)
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _shrink(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    s = min(1.0, MAX_IMAGE_SIDE / max(h, w))
    if s >= 1.0:
        return rgb
    return cv2.resize(
        rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
    )


class ReportWriter:
    def __init__(self, path: Path, manifest: Manifest, *, title: str = "cxr-review report") -> None:
        self.manifest = manifest
        self.pdf = QPdfWriter(str(path))
        self.pdf.setResolution(DPI)
        self.pdf.setTitle(title)
        self.pdf.setCreator("cxr-review (research use only)")
        self.pdf.setPageLayout(
            QPageLayout(
                QPageSize(QPageSize.PageSizeId.A4),
                QPageLayout.Orientation.Portrait,
                QMarginsF(12, 12, 12, 12),
                QPageLayout.Unit.Millimeter,
            )
        )
        self.painter = QPainter(self.pdf)
        self.w = self.pdf.width()
        self.h = self.pdf.height()
        self.page = 0
        self._first = True

    # ------------------------------------------------------------------ helpers

    def _new_page(self) -> None:
        if not self._first:
            self.pdf.newPage()
        self._first = False
        self.page += 1
        p = self.painter
        p.fillRect(QRectF(0, 0, self.w, 40), YELLOW)
        self._text(
            QRectF(0, 0, self.w, 40),
            "RESEARCH USE ONLY — not a medical device",
            9,
            bold=True,
            align=Qt.AlignmentFlag.AlignCenter,
        )
        footer = f"{self.manifest.model_name}   ·   page {self.page}"
        self._text(
            QRectF(0, self.h - 30, self.w, 30),
            footer,
            7,
            color="#555555",
            align=Qt.AlignmentFlag.AlignRight,
        )

    def _text(
        self,
        rect: QRectF,
        text: str,
        size: float,
        *,
        bold: bool = False,
        color: str = "#000000",
        align=Qt.AlignmentFlag.AlignLeft,
    ) -> QRectF:
        p = self.painter
        f = QFont("DejaVu Sans")
        f.setPointSizeF(size)
        f.setBold(bold)
        p.setFont(f)
        p.setPen(QColor(color))
        flags = align | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        return p.drawText(rect, flags, text)

    def _line(self, y: float, text: str, size: float = 9, **kw) -> float:
        r = self._text(QRectF(0, y, self.w, self.h - y), text, size, **kw)
        return y + r.height() + 6

    def _lines(self, y: float, lines: Iterable[Line]) -> float:
        """Each line below the last, with the space it asks for above it."""
        for ln in lines:
            y = self._line(y + ln.before, ln.text, ln.size, bold=ln.bold, color=ln.color)
        return y

    # ------------------------------------------------------------------ pages

    def cover(
        self, *, folder: Path, reviewer: str, rows: list[ImageResult], cam_method: str
    ) -> None:
        self._new_page()
        lines = cover_lines(
            self.manifest, folder=folder, reviewer=reviewer, rows=rows, cam_method=cam_method
        )
        self._lines(70.0, lines)

    def image_page(
        self,
        page: Page,
        *,
        opacity: float,
        cam_method: str,
        colormap: str = DEFAULT_COLORMAP,
        min_lung_share: float = DEFAULT_MIN_LUNG_SHARE,
        marks: Sequence[Annotation] = (),
    ) -> None:
        self._new_page()
        names = self.manifest.class_names
        y = 60.0
        rec = page.result
        y = self._line(y, rec.rel_path, 12, bold=True)
        size_kb = rec.path.stat().st_size / 1024 if rec.path.exists() else float("nan")
        if page.decoded is None:
            self._line(
                y, f"Could not be read: {rec.error}  ({size_kb:.0f} KB)", 10, color="#b00020"
            )
            return
        meta = page.decoded.meta
        y = self._line(
            y,
            f"{meta.width}×{meta.height} px, {meta.bit_depth}-bit {meta.source_format.upper()} "
            f"{meta.photometric}, {size_kb:.0f} KB",
            8,
            color="#333333",
        )
        img01 = windowed(page.decoded)
        plain = _shrink(composite(img01, None, 0.0))
        heat = page.heatmap
        over = _shrink(composite(img01, heat.overlay if heat else None, opacity, colormap))
        plain, over = (draw_marks(x, marks, (meta.width, meta.height)) for x in (plain, over))
        gap = 30.0
        box_w = (self.w - gap) / 2
        box_h = self.h * 0.45
        drawn = 0.0
        for k, (rgb, label) in enumerate(
            ((plain, "image"), (over, f"heatmap at {opacity * 100:.0f} % opacity"))
        ):
            ih, iw = rgb.shape[:2]
            s = min(box_w / iw, box_h / ih)
            rect = QRectF(k * (box_w + gap), y, iw * s, ih * s)
            self.painter.drawImage(rect, _qimage(rgb))
            self._text(QRectF(rect.x(), rect.bottom() + 4, box_w, 30), label, 7, color="#333333")
            drawn = max(drawn, rect.height())
        y += drawn + 36
        # colour bar under the overlay
        bar = _qimage(colour_bar(colormap))
        self.painter.drawImage(QRectF(box_w + gap, y, box_w * 0.8, 16), bar)
        self._text(QRectF(box_w + gap, y + 18, box_w * 0.8, 20), "low", 7)
        self._text(
            QRectF(box_w + gap, y + 18, box_w * 0.8, 20),
            "high attention",
            7,
            align=Qt.AlignmentFlag.AlignRight,
        )
        y += 50
        probs = rec.probabilities
        if probs is None:  # read for the page, but not classified
            self._line(y, f"Not classified: {rec.error or 'no result'}", 10, color="#b00020")
            return
        y = self._lines(y, [ai_line(rec, names, int(np.argmax(probs)))])
        if nov := novelty_lines(rec):
            y = self._lines(y, nov) + 4
        for n, p in zip(names, probs, strict=True):
            self._text(QRectF(0, y, 220, 24), n, 9)
            full = self.w * 0.45
            self.painter.setPen(QPen(QColor("#999999")))
            self.painter.drawRect(QRectF(230, y + 3, full, 16))
            self.painter.fillRect(QRectF(230, y + 3, full * float(p), 16), QColor("#2a7ab0"))
            self._text(QRectF(240 + full, y, 200, 24), format_probability(float(p)), 9)
            y += 26
        y = self._lines(y + 8, review_lines(rec, names, marks))
        self._lines(y, heatmap_lines(rec, heat, self.manifest, cam_method, min_lung_share))

    def summary(
        self,
        rows: list[ImageResult],
        attention: dict[str, Attention | None] | None = None,
        min_lung_share: float = DEFAULT_MIN_LUNG_SHARE,
        agreement: Agreement | None = None,
    ) -> None:
        """Agreement figures, then the table of all files, overridden images first;
        ``attention`` (rel path -> shares) adds the lung column."""
        names = self.manifest.class_names
        rows = overridden_first(rows)
        attention = attention or {}
        cols = [
            ("File", 0.32),
            ("AI", 0.12),
            ("p", 0.07),
            ("Lungs", 0.08),
            ("Review", 0.13),
            ("Note", 0.28),
        ]
        row_h = 30.0
        checked = [a for a in attention.values() if a is not None]

        def header(y: float) -> float:
            y = self._line(y, "Summary", 14, bold=True)
            y = self._lines(y, outside_lungs_header(checked, min_lung_share))
            y = self._lines(y, novelty_header(rows))
            x = 0.0
            for name, frac in cols:
                self._text(QRectF(x, y, self.w * frac, row_h), name, 8, bold=True)
                x += self.w * frac
            return y + row_h

        self._new_page()
        y = 60.0
        if agreement is not None:
            y = draw_agreement(self, y, agreement) + 16
        y = header(y)
        for rec in rows:
            if y + row_h > self.h - 40:
                self._new_page()
                y = header(60.0)
            att = attention.get(rec.rel_path)
            cells = summary_cells(rec, names, att, min_lung_share)
            x = 0.0
            for text, (_n, frac) in zip(cells, cols, strict=True):
                short = text if len(text) < 60 else text[:57] + "…"
                self._text(QRectF(x, y, self.w * frac - 6, row_h), short, 7)
                x += self.w * frac
            y += row_h

    def close(self) -> bool:
        """False when the PDF writer could not finish the file (a full disk, say)."""
        return bool(self.painter.end())


def write_report(
    out: Path,
    manifest: Manifest,
    *,
    folder: Path,
    reviewer: str,
    first_pass: list[ImageResult],
    pages: Iterable[Page],
    opacity: float,
    cam_method: str,
    colormap: str = DEFAULT_COLORMAP,
    progress: Callable[[int, int], None] | None = None,
    min_lung_share: float = DEFAULT_MIN_LUNG_SHARE,
    marks: dict[str, list[Annotation]] | None = None,
    history: Sequence[tuple[str, str, str | None, str, str]] = (),
) -> int:
    """Cover from the first (cheap) pass, then pages streamed from the second; returns page count.
    ``marks`` (rel path -> marks) and ``history`` (``ReviewStore.decision_history``) come from
    the folder's reviews."""
    marks = marks or {}
    w = ReportWriter(out, manifest)
    try:
        w.cover(folder=folder, reviewer=reviewer, rows=first_pass, cam_method=cam_method)
        attention: dict[str, Attention | None] = {}
        for k, rec in enumerate(pages):
            w.image_page(
                rec,
                opacity=opacity,
                cam_method=cam_method,
                colormap=colormap,
                min_lung_share=min_lung_share,
                marks=marks.get(rec.result.rel_path, ()),
            )
            attention[rec.result.rel_path] = rec.result.attention
            if progress:
                progress(k + 1, len(first_pass))
        names = manifest.class_names
        agreed = agreement(reviewer_vs_ai(first_pass, names), names, history)
        w.summary(first_pass, attention, min_lung_share, agreed)
    finally:
        finished = w.close()
    if not finished:
        raise OSError("the PDF writer could not finish the file")
    return w.page
