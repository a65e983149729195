"""What the PDF report says: each line it prints, with its size, weight and colour.

Built from the results alone, without Qt, so the words can be read and
tested on their own; ``desktop/ui/report_pdf.py`` places and draws them. The
novelty lines leave the probabilities as the model gave them and say why an
image is unlike the training data; the summary's cells are one row per file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from desktop.agreement import agreement
from desktop.annotations import Annotation
from desktop.folder_model import format_probability
from desktop.model_card import num
from desktop.provider_text import describe_providers
from export.attention import Attention, describe, flag
from export.bundle import Manifest
from export.explain import Heatmap
from export.results import ImageResult

GREY = "#333333"
WARN = "#b03a00"


@dataclass(frozen=True)
class Line:
    """One paragraph of the report: text (word-wrapped to the page), point size, weight,
    colour, and the space above it in device pixels."""

    text: str
    size: float = 9
    bold: bool = False
    color: str = "#000000"
    before: float = 0.0


def overridden_first(rows: list[ImageResult]) -> list[ImageResult]:
    """Overridden images first (what the reviewer disputed), each group in folder order."""
    over = [r for r in rows if r.review is not None and r.review.decision == "override"]
    ids = {id(r) for r in over}
    return over + [r for r in rows if id(r) not in ids]


def reviewer_vs_ai(
    rows: Iterable[ImageResult], names: Sequence[str]
) -> list[tuple[str | None, str | None, str | None]]:
    """(AI class, decision, reviewer class) of each classified image, for the agreement."""
    return [
        (r.predicted(names), r.review.decision if r.review else None,
         r.review.reviewer_class if r.review else None)
        for r in rows if r.status == "ok"
    ]  # fmt: skip


def cover_lines(
    m: Manifest, *, folder: Path, reviewer: str, rows: list[ImageResult], cam_method: str
) -> list[Line]:
    """The cover: folder, date, reviewer, model and its test metrics, intended use, counts,
    AI-vs-reviewer agreement, and what the heatmaps show."""
    names = m.class_names
    met = m.training.metrics or {}
    out = [
        Line("Chest X-ray review report", 18, bold=True),
        Line(f"Folder: {folder}"),
        Line(
            f"Date: {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}    Reviewer: {reviewer}"
        ),
    ]
    sha = m.files.get(m.onnx.file, "")[:16]
    out.append(
        Line(
            f"Model: {m.model_name} (ONNX sha256 {sha}…), {m.training.backbone}, "
            f"calibration T = {m.calibration_temperature:.2f}"
        )
    )
    if inference := describe_providers(r.provider for r in rows):
        out.append(Line(f"Inference: {inference}"))
    acc = met.get("accuracy")
    macro = met.get("macro") or {}
    if acc is not None:
        out.append(
            Line(
                f"Model test metrics: accuracy {acc * 100:.1f} % on {met.get('n', '?')} images, "
                f"macro F1 {num(macro.get('f1'))}, "
                f"macro ROC AUC {num(macro.get('roc_auc'))}"
            )
        )
    if m.extra.get("demo"):
        out.append(
            Line(
                "DEMO MODEL trained on synthetic phantoms — not for any conclusion.",
                10,
                bold=True,
                color=WARN,
            )
        )
    out.append(Line(f"Intended use: {m.intended_use}", 8, color=GREY, before=6))
    ok = [r for r in rows if r.status == "ok"]
    pred = Counter(r.predicted(names) for r in ok)
    out.append(Line("AI predictions", 12, bold=True, before=10))
    out.append(
        Line(
            ",   ".join(f"{n}: {pred.get(n, 0)}" for n in names)
            + f",   unreadable: {len(rows) - len(ok)}   (of {len(rows)} files)"
        )
    )
    reviewed = [r for r in ok if r.review and r.review.decision]
    dec = Counter(r.review.decision for r in reviewed)
    out.append(Line("Reviewer decisions", 12, bold=True, before=6))
    out.append(
        Line(
            f"agreed {dec.get('agree', 0)},   overridden {dec.get('override', 0)},   "
            f"uncertain {dec.get('uncertain', 0)},   not reviewed {len(ok) - len(reviewed)}"
        )
    )

    def reviewer_class(r: ImageResult) -> str | None:  # an agreement without its class
        c = r.review.reviewer_class  # (imported) agrees with the AI
        return c or (r.predicted(names) if r.review.decision == "agree" else None)

    by_class = Counter(c for r in reviewed if (c := reviewer_class(r)))
    if by_class:
        out.append(
            Line("Reviewer classes: " + ",   ".join(f"{n}: {by_class.get(n, 0)}" for n in names))
        )
    out += kappa_lines(rows, names)
    out.append(
        Line(
            "The summary at the end counts the images whose heatmap lay mostly "
            "outside the lung field (possible shortcut: text, border, devices).",
            8,
            color=GREY,
            before=6,
        )
    )
    out.append(
        Line(
            f"Heatmaps: {cam_method} for the AI's class at layer "
            f"{m.savedmodel.cam_layer}; they show where the model looked, "
            "not where disease is.",
            8,
            color=GREY,
            before=2,
        )
    )
    return out


def kappa_lines(rows: list[ImageResult], names: Sequence[str]) -> list[Line]:
    """Agreement and Cohen's κ on the cover, the same figures as the summary's (which
    adds the matrix and the inter-reader figures)."""
    k = agreement(reviewer_vs_ai(rows, names), names).kappa
    if k is None:
        return []
    agreed = round(k.observed * k.n)
    return [
        Line(
            f"AI–reviewer agreement: {agreed}/{k.n} ({k.observed * 100:.0f} %) of the images "
            "agreed with or overridden"
        ),
        Line(f"Cohen's {k.text()} (confusion matrix in the summary)"),
    ]


def ai_line(rec: ImageResult, names: Sequence[str], best: int) -> Line:
    """The AI's class and its probability, greyed and marked when the image is unlike the
    training data."""
    unlike = rec.novelty is not None and rec.novelty.unlike
    return Line(
        f"{'⚠ ' if unlike else ''}AI: {names[best]}  "
        f"({format_probability(float(rec.probabilities[best]))})",
        12,
        bold=True,
        color="#777777" if unlike else "#000000",
    )


def novelty_lines(rec: ImageResult) -> list[Line]:
    """Whether the image is unlike the training data, with every reason; the probabilities
    above are left as the model gave them. Empty when the image was not judged."""
    n = rec.novelty
    if n is None:
        return []
    out = []
    if n.unlike:
        out.append(
            Line(
                "⚠ Unlike the model's training data: these probabilities may mean little.",
                10,
                bold=True,
                color=WARN,
            )
        )
        out += [Line(f"• {reason}", 9, color=WARN) for reason in n.reasons]
    if n.score is not None:
        thr = "" if n.threshold is None else f", threshold {n.threshold:.3g}"
        out.append(Line(f"Unlike-training-data score {n.score:.3g}{thr}", 8, color=GREY))
    elif not n.unlike:
        out.append(
            Line(
                "Unlike training data: no sign from the checks that need no model "
                "(this bundle has no model-based check)",
                8,
                color=GREY,
            )
        )
    return out


def novelty_header(rows: list[ImageResult]) -> list[Line]:
    """The summary's count of images unlike the training data."""
    judged = [r for r in rows if r.novelty is not None and r.probabilities is not None]
    if not judged:
        return []
    n = sum(r.novelty.unlike for r in judged)
    return [
        Line(
            f"Unlike the training data: {n} of {len(judged)} images (marked ⚠ in the AI column)",
            9,
            bold=bool(n),
            color=WARN if n else GREY,
        )
    ]


def review_lines(rec: ImageResult, names: Sequence[str], marks: Sequence[Annotation]) -> list[Line]:
    """The reviewer's decision, note, and what they marked, in words (the labels are also
    drawn on the image)."""
    r = rec.review
    if r is None or r.decision is None:
        out = [Line("Reviewer: not reviewed", 10)]
    else:
        what = {
            "agree": f"agreed ({r.reviewer_class or rec.predicted(names) or 'the AI'})",
            "override": f"overridden → {r.reviewer_class}",
            "uncertain": "marked uncertain",
        }[r.decision]
        out = [
            Line(
                f"Reviewer: {what} — {r.reviewer}, {r.updated_at[:19].replace('T', ' ')} UTC",
                10,
                bold=True,
            )
        ]
    if r is not None and r.note:
        out.append(Line(f"Note: {r.note}", 10))
    if marks:
        parts = [m.kind + (f" “{m.text}”" if m.text else "") for m in marks]
        out.append(Line(f"Marks ({len(marks)}): " + ", ".join(parts), 9))
    return out


def heatmap_lines(
    rec: ImageResult,
    heat: Heatmap | None,
    m: Manifest,
    cam_method: str,
    min_lung_share: float,
) -> list[Line]:
    """Which heatmap the page shows, and whether the model looked outside the lungs."""
    cls_name = m.class_names[heat.class_index] if heat is not None else "—"
    out = [
        Line(
            f"Heatmap: {cam_method} for {cls_name}, layer {m.savedmodel.cam_layer}",
            8,
            color=GREY,
            before=4,
        )
    ]
    if rec.attention is not None:
        flagged = flag(rec.attention, min_lung_share)
        out.append(
            Line(
                ("⚠ " if flagged else "") + describe(rec.attention, min_lung_share),
                10 if flagged else 8,
                bold=flagged,
                color=WARN if flagged else GREY,
                before=2,
            )
        )
    return out


def outside_lungs_header(checked: Sequence[Attention], min_lung_share: float) -> list[Line]:
    """The summary's count of images whose heatmap lay mostly outside the lungs."""
    if not checked:
        return []
    n_flag = sum(flag(a, min_lung_share) for a in checked)
    return [
        Line(
            f"Looked outside the lungs: {n_flag} of {len(checked)} images (less than "
            f"{min_lung_share:.0%} of the heatmap in the lung field, marked ⚠)",
            9,
            bold=bool(n_flag),
            color=WARN if n_flag else GREY,
        )
    ]


def summary_cells(
    rec: ImageResult,
    names: Sequence[str],
    att: Attention | None,
    min_lung_share: float,
) -> list[str]:
    """One row of the summary table: file, AI class, p, lung share, review, note."""
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
    p = "" if rec.probabilities is None else format_probability(float(np.max(rec.probabilities)), 0)
    lung = (
        ""
        if att is None or not att.judged
        else (f"{'⚠ ' if flag(att, min_lung_share) else ''}{att.lung_share:.0%}")
    )
    unlike = "⚠ " if rec.novelty is not None and rec.novelty.unlike else ""
    return [
        rec.rel_path,
        unlike + rec.predicted(names) if rec.status == "ok" else "error",
        p,
        lung,
        review,
        (r.note if r else "") if rec.status == "ok" else rec.error,
    ]
