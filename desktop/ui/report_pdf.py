"""Annotated PDF report with Qt's own PDF writer, one page at a time (memory stays flat).

Pages: a cover (folder, date, reviewer, model and its test metrics,
intended use, counts, AI-vs-reviewer agreement), one page per image (plain
image beside the heatmap overlay at the chosen opacity, both with the
reviewer's marks drawn on, colour bar, probability bars, AI class, the
reviewer's decision, note and mark labels, CAM method and layer), and a
summary: the agreement figures (``desktop/ui/report_agreement.py``) and a
table of all files, overridden images first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen

from desktop.agreement import Agreement, agreement
from desktop.annotations import Annotation
from desktop.batch import Page
from desktop.folder_model import format_probability
from desktop.mark_drawing import draw_marks
from desktop.model_card import num
from desktop.overlay import DEFAULT_COLORMAP, colour_bar, composite
from desktop.provider_text import describe_providers
from desktop.ui.report_agreement import draw_agreement, overridden_first, reviewer_vs_ai
from export.attention import DEFAULT_MIN_LUNG_SHARE, Attention, describe, flag
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

    # ------------------------------------------------------------------ pages

    def cover(
        self, *, folder: Path, reviewer: str, rows: list[ImageResult], cam_method: str
    ) -> None:
        self._new_page()
        m = self.manifest
        names = m.class_names
        met = m.training.metrics or {}
        y = 70.0
        y = self._line(y, "Chest X-ray review report", 18, bold=True)
        y = self._line(y, f"Folder: {folder}")
        y = self._line(
            y,
            f"Date: {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}    Reviewer: {reviewer}",
        )
        sha = m.files.get(m.onnx.file, "")[:16]
        y = self._line(
            y,
            f"Model: {m.model_name} (ONNX sha256 {sha}…), {m.training.backbone}, "
            f"calibration T = {m.calibration_temperature:.2f}",
        )
        if inference := describe_providers(r.provider for r in rows):
            y = self._line(y, f"Inference: {inference}")
        acc = met.get("accuracy")
        macro = met.get("macro") or {}
        if acc is not None:
            y = self._line(
                y,
                f"Model test metrics: accuracy {acc * 100:.1f} % on {met.get('n', '?')} images, "
                f"macro F1 {num(macro.get('f1'))}, "
                f"macro ROC AUC {num(macro.get('roc_auc'))}",
            )
        if m.extra.get("demo"):
            y = self._line(
                y,
                "DEMO MODEL trained on synthetic phantoms — not for any conclusion.",
                10,
                bold=True,
                color="#b03a00",
            )
        y = self._line(y + 6, f"Intended use: {m.intended_use}", 8, color="#333333")
        ok = [r for r in rows if r.status == "ok"]
        pred = Counter(r.predicted(names) for r in ok)
        y = self._line(y + 10, "AI predictions", 12, bold=True)
        y = self._line(
            y,
            ",   ".join(f"{n}: {pred.get(n, 0)}" for n in names)
            + f",   unreadable: {len(rows) - len(ok)}   (of {len(rows)} files)",
        )
        reviewed = [r for r in ok if r.review and r.review.decision]
        dec = Counter(r.review.decision for r in reviewed)
        y = self._line(y + 6, "Reviewer decisions", 12, bold=True)
        y = self._line(
            y,
            f"agreed {dec.get('agree', 0)},   overridden {dec.get('override', 0)},   "
            f"uncertain {dec.get('uncertain', 0)},   not reviewed {len(ok) - len(reviewed)}",
        )

        def reviewer_class(r: ImageResult) -> str | None:  # an agreement without its class
            c = r.review.reviewer_class  # (imported) agrees with the AI
            return c or (r.predicted(names) if r.review.decision == "agree" else None)

        by_class = Counter(c for r in reviewed if (c := reviewer_class(r)))
        if by_class:
            y = self._line(
                y, "Reviewer classes: " + ",   ".join(f"{n}: {by_class.get(n, 0)}" for n in names)
            )
        y = self._kappa_line(y, rows)
        y = self._line(
            y + 6,
            "The summary at the end counts the images whose heatmap lay mostly "
            "outside the lung field (possible shortcut: text, border, devices).",
            8,
            color="#333333",
        )
        y = self._line(
            y + 2,
            f"Heatmaps: {cam_method} for the AI's class at layer "
            f"{m.savedmodel.cam_layer}; they show where the model looked, "
            "not where disease is.",
            8,
            color="#333333",
        )

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
        best = int(np.argmax(probs))
        unlike = rec.novelty is not None and rec.novelty.unlike
        y = self._line(
            y,
            f"{'⚠ ' if unlike else ''}AI: {names[best]}  ({format_probability(float(probs[best]))})",
            12,
            bold=True,
            color="#777777" if unlike else "#000000",
        )
        y = self.novelty_lines(y, rec)
        for n, p in zip(names, probs, strict=True):
            self._text(QRectF(0, y, 220, 24), n, 9)
            full = self.w * 0.45
            self.painter.setPen(QPen(QColor("#999999")))
            self.painter.drawRect(QRectF(230, y + 3, full, 16))
            self.painter.fillRect(QRectF(230, y + 3, full * float(p), 16), QColor("#2a7ab0"))
            self._text(QRectF(240 + full, y, 200, 24), format_probability(float(p)), 9)
            y += 26
        y += 8
        r = rec.review
        if r is None or r.decision is None:
            y = self._line(y, "Reviewer: not reviewed", 10)
        else:
            what = {
                "agree": f"agreed ({r.reviewer_class or rec.predicted(names) or 'the AI'})",
                "override": f"overridden → {r.reviewer_class}",
                "uncertain": "marked uncertain",
            }[r.decision]
            y = self._line(
                y,
                f"Reviewer: {what} — {r.reviewer}, {r.updated_at[:19].replace('T', ' ')} UTC",
                10,
                bold=True,
            )
        if r is not None and r.note:
            y = self._line(y, f"Note: {r.note}", 10)
        y = self._marks_line(y, marks)
        cls_name = names[heat.class_index] if heat is not None else "—"
        y = self._line(
            y + 4,
            f"Heatmap: {cam_method} for {cls_name}, layer {self.manifest.savedmodel.cam_layer}",
            8,
            color="#333333",
        )
        if rec.attention is not None:
            flagged = flag(rec.attention, min_lung_share)
            self._line(
                y + 2,
                ("⚠ " if flagged else "") + describe(rec.attention, min_lung_share),
                10 if flagged else 8,
                bold=flagged,
                color="#b03a00" if flagged else "#333333",
            )

    def _kappa_line(self, y: float, rows: list[ImageResult]) -> float:
        """Agreement and Cohen's κ on the cover, the same figures as the summary's (which
        adds the matrix and the inter-reader figures)."""
        names = self.manifest.class_names
        k = agreement(reviewer_vs_ai(rows, names), names).kappa
        if k is None:
            return y
        agreed = round(k.observed * k.n)
        y = self._line(
            y,
            f"AI–reviewer agreement: {agreed}/{k.n} ({k.observed * 100:.0f} %) of the images "
            "agreed with or overridden",
        )
        return self._line(y, f"Cohen's {k.text()} (confusion matrix in the summary)")

    def _marks_line(self, y: float, marks: Sequence[Annotation]) -> float:
        """What the reviewer marked, in words (the labels are also drawn on the image)."""
        if not marks:
            return y
        parts = [m.kind + (f" “{m.text}”" if m.text else "") for m in marks]
        return self._line(y, f"Marks ({len(marks)}): " + ", ".join(parts), 9)

    def novelty_lines(self, y: float, rec: ImageResult) -> float:
        """Whether the image is unlike the training data, with every reason; the probabilities
        above are left as the model gave them."""
        n = rec.novelty
        if n is None:
            return y
        if n.unlike:
            y = self._line(
                y,
                "⚠ Unlike the model's training data: these probabilities may mean little.",
                10,
                bold=True,
                color="#b03a00",
            )
            for reason in n.reasons:
                y = self._line(y, f"• {reason}", 9, color="#b03a00")
        if n.score is not None:
            thr = "" if n.threshold is None else f", threshold {n.threshold:.3g}"
            y = self._line(y, f"Unlike-training-data score {n.score:.3g}{thr}", 8, color="#333333")
        elif not n.unlike:
            y = self._line(
                y,
                "Unlike training data: no sign from the checks that need no model "
                "(this bundle has no model-based check)",
                8,
                color="#333333",
            )
        return y + 4

    def novelty_header(self, y: float, rows: list[ImageResult]) -> float:
        """The summary's count of images unlike the training data."""
        judged = [r for r in rows if r.novelty is not None and r.probabilities is not None]
        if not judged:
            return y
        n = sum(r.novelty.unlike for r in judged)
        return self._line(
            y,
            f"Unlike the training data: {n} of {len(judged)} images (marked ⚠ in the AI column)",
            9,
            bold=bool(n),
            color="#b03a00" if n else "#333333",
        )

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
        n_flag = sum(flag(a, min_lung_share) for a in checked)

        def header(y: float) -> float:
            y = self._line(y, "Summary", 14, bold=True)
            if checked:
                y = self._line(
                    y,
                    f"Looked outside the lungs: {n_flag} of {len(checked)} images (less than "
                    f"{min_lung_share:.0%} of the heatmap in the lung field, marked ⚠)",
                    9,
                    bold=bool(n_flag),
                    color="#b03a00" if n_flag else "#333333",
                )
            y = self.novelty_header(y, rows)
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
            r = rec.review
            review = (
                ""
                if r is None or r.decision is None
                else (
                    "agree"
                    if r.decision == "agree"
                    else f"→ {r.reviewer_class}"
                    if r.decision == "override"
                    else "uncertain"
                )
            )
            p = (
                ""
                if rec.probabilities is None
                else format_probability(float(np.max(rec.probabilities)), 0)
            )
            att = attention.get(rec.rel_path)
            lung = (
                ""
                if att is None or not att.judged
                else (f"{'⚠ ' if flag(att, min_lung_share) else ''}{att.lung_share:.0%}")
            )
            unlike = "⚠ " if rec.novelty is not None and rec.novelty.unlike else ""
            cells = [
                rec.rel_path,
                unlike + rec.predicted(names) if rec.status == "ok" else "error",
                p,
                lung,
                review,
                (r.note if r else "") if rec.status == "ok" else rec.error,
            ]
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
