"""``cxr classify FOLDER --bundle B --out results.csv [--heatmaps DIR] [--json PATH]``: headless batch.

The heatmap PNGs carry the reviewer's marks; the summary line and the
``--json`` summary carry the reviewer-vs-AI agreement (``desktop.agreement``).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

from desktop.cli_options import add_view_arguments
from desktop.folder_scan import EXPORT_MARKER
from desktop.provider_text import REUSED, describe_providers
from export.atomic import atomic_write_bytes
from export.attention import Attention
from export.novelty import Novelty


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="folder of images (searched recursively)")
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument(
        "--heatmaps", metavar="DIR", help="also write a full-resolution overlay PNG per image"
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="also write a JSON summary: counts, reviewer-vs-AI confusion matrix, agreement, κ",
    )
    add_view_arguments(p, "PNGs")
    p.add_argument("--force", action="store_true", help="overwrite an existing CSV (and JSON)")


#: a cell starting with one of these is a formula to a spreadsheet (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> object:
    """Text a spreadsheet shows as text: a leading apostrophe before a formula character."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


class SpreadsheetSafeWriter:
    """``csv.writer`` whose cells never start a formula (file names and notes are user text)."""

    def __init__(self, stream) -> None:
        self._w = csv.writer(stream)

    def writerow(self, row) -> None:
        self._w.writerow([spreadsheet_safe(c) for c in row])


ATTENTION_COLUMNS = ("lung_share", "border_share", "marker_share", "looked_outside_lungs")


def attention_columns(att: Attention | None, min_lung_share: float) -> list[str]:
    """Where the heatmap lay (``export.attention``); empty when no heatmap was computed."""
    from export.attention import flag

    if att is None:
        return [""] * len(ATTENTION_COLUMNS)
    values = (att.lung_share, att.border_share, att.marker_share)
    shares = ["" if v is None else f"{v:.4f}" for v in values]
    return [*shares, "yes" if flag(att, min_lung_share) else "no"]


NOVELTY_COLUMNS = ("ood_score", "unlike_training_data", "unlike_reasons")


def novelty_columns(novelty: Novelty | None) -> list[str]:
    """The model's score (empty when the bundle has none), yes/no, and the reasons in words;
    all empty for a file that was not classified."""
    if novelty is None:
        return ["", "", ""]
    score = "" if novelty.score is None else f"{novelty.score:.4f}"
    return [score, "yes" if novelty.unlike else "no", "; ".join(novelty.reasons)]


def review_columns(r) -> list[str]:
    """decision, reviewer class, reviewer, time, note (empty when not reviewed)."""
    if r is None:
        return ["", "", "", "", ""]
    return [r.decision or "", r.reviewer_class or "", r.reviewer, r.updated_at, r.note]


def agreement_summary(folder, names, decided, history, n: int, n_err: int) -> dict:
    """The ``--json`` summary (``decided``: (AI class, decision, reviewer class) per image)."""
    from collections import Counter

    from desktop.agreement import agreement

    a = agreement(decided, names, history)
    predicted = Counter(ai for ai, _d, _c in decided)
    return {
        "format": "cxr-review-classify-summary",
        "format_version": 1,
        "folder": str(Path(folder).resolve()),
        "files": n,
        "unreadable": n_err,
        "predicted": {name: predicted.get(name, 0) for name in names},
        "agreement": a.as_dict(),
        "summary": a.line(),
    }


def write_summary_json(path: Path, summary: dict) -> None:
    import json

    from desktop.errors import CliError, why_not_written

    try:
        data = json.dumps(summary, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise CliError(f"could not write {path} ({why_not_written(exc, path)})") from None


def run(args: argparse.Namespace) -> int:
    from desktop.batch import read_known, run_folder
    from desktop.errors import CliError, check_fraction, check_output, why_not_written
    from desktop.mark_drawing import draw_marks
    from desktop.overlay import composite
    from desktop.reviews_io import marks_and_history
    from export.image_input import windowed
    from export.progress import throttled_progress
    from export.results import Bundle

    out = Path(args.out)
    check_output(out, args.force)
    summary_path = Path(args.json) if args.json else None
    if summary_path is not None:
        check_output(summary_path, args.force)
    check_fraction("--opacity", args.opacity)
    check_fraction("--min-lung-share", args.min_lung_share)
    bundle = Bundle.open(args.bundle)
    manifest, names = bundle.manifest, bundle.class_names
    sha = bundle.onnx_sha256[:16]
    known = read_known(args.reuse, bundle.results_key) if args.reuse else None
    heat_dir = Path(args.heatmaps) if args.heatmaps else None
    if heat_dir:
        heat_dir.mkdir(parents=True, exist_ok=True)
        (heat_dir / EXPORT_MARKER).write_text("written by cxr classify; folder scans skip it\n")
    t0 = time.perf_counter()
    progress = throttled_progress("classify")
    buf = io.StringIO()
    w = SpreadsheetSafeWriter(buf)
    w.writerow(
        [
            "path",
            "status",
            "error",
            "predicted",
            *[f"p_{n}" for n in names],
            *NOVELTY_COLUMNS,
            "model",
            "bundle_sha256",
            "provider",
            "reviewer_decision",
            "reviewer_class",
            "reviewer",
            "reviewed_at",
            "note",
            *(ATTENTION_COLUMNS if heat_dir else ()),
        ]
    )
    n = n_err = 0
    gen = run_folder(
        args.folder,
        bundle,
        cam_method=args.cam_method if heat_dir else None,
        prefer=args.provider,
        progress=progress,
        known=known,
    )
    png_failed: list[str] = []
    marks, history = marks_and_history(args.folder)
    decided: list[tuple[str, str | None, str | None]] = []
    told = ""
    for page in gen:
        rec = page.result
        n += 1
        if rec.provider and rec.provider != REUSED and rec.provider != told:
            told = rec.provider  # which provider runs, and why CUDA not, in one line
            print(f"classify: {describe_providers([told])}", file=sys.stderr, flush=True)
        n_err += rec.status != "ok"
        if rec.status == "ok":
            r = rec.review
            decided.append(
                (rec.predicted(names), r.decision if r else None, r.reviewer_class if r else None)
            )
        probs = [] if rec.probabilities is None else [f"{float(p):.6f}" for p in rec.probabilities]
        w.writerow(
            [
                rec.rel_path,
                rec.status,
                rec.error or "",
                rec.predicted(names) or "",
                *(probs or [""] * len(names)),
                *novelty_columns(rec.novelty),
                manifest.model_name,
                sha,
                rec.provider,
                *review_columns(rec.review),
                *(attention_columns(rec.attention, args.min_lung_share) if heat_dir else ()),
            ]
        )
        if heat_dir and page.decoded is not None:
            import cv2

            heat = page.heatmap.overlay if page.heatmap is not None else None
            rgb = composite(windowed(page.decoded), heat, args.opacity, args.colormap)
            meta = page.decoded.meta
            rgb = draw_marks(rgb, marks.get(rec.rel_path, ()), (meta.width, meta.height))
            ok, png = cv2.imencode(".png", rgb[..., ::-1])
            if not ok:
                raise OSError(f"could not encode the heatmap PNG for {rec.rel_path}")
            target = heat_dir / (rec.rel_path + ".heatmap.png")  # mirrors the folder: no clashes
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, png.tobytes())
            except OSError as exc:  # the CSV is still written: the run is not lost
                png_failed.append(f"{why_not_written(exc, target)}: {target}")
    if out.exists() and not args.force:  # appeared while this run classified
        raise CliError(f"{out} was created meanwhile; nothing replaced (use --force)")
    try:
        atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
    except OSError as exc:
        raise CliError(f"could not write the CSV ({why_not_written(exc, out)}): {out}") from None
    summary = agreement_summary(args.folder, names, decided, history, n, n_err)
    if summary_path is not None:
        write_summary_json(summary_path, summary)
    print(
        f"classify: {n} files ({n_err} unreadable) in {time.perf_counter() - t0:.1f} s -> {out}"
        f"; {summary['summary']}",
        file=sys.stderr,
    )
    if png_failed:
        raise CliError(f"{len(png_failed)} heatmap PNG(s) not written, first: {png_failed[0]}")
    return 0
