"""``cxr report FOLDER --bundle B --out report.pdf``: the annotated PDF, headless.

Qt is imported inside :func:`run` (the ``cxr`` parser imports this module),
and the PDF is written to a temporary file that replaces the target only
when complete: a failed write loses nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from desktop.cli_options import add_view_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="folder of images (searched recursively)")
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--out", required=True, help="PDF file to write")
    p.add_argument("--reviewer", default=None, help="name on the cover (default: the OS user)")
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="REL_PATH",
        help="include only this file (relative to FOLDER); repeat for several",
    )
    add_view_arguments(p, "report")
    p.add_argument("--force", action="store_true", help="replace an existing PDF")


def run(args: argparse.Namespace) -> int:
    from desktop.batch import read_known, run_folder
    from desktop.errors import (
        CliError,
        check_complete_pdf,
        check_fraction,
        check_output,
        why_not_written,
    )
    from desktop.provider_text import describe_providers
    from desktop.review_store import default_reviewer
    from export.atomic import atomic_temp_path
    from export.progress import throttled_progress
    from export.results import Bundle

    out = Path(args.out)
    check_output(out, args.force)
    check_fraction("--opacity", args.opacity)
    check_fraction("--min-lung-share", args.min_lung_share)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from desktop.ui.report_pdf import write_report

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # fonts for the PDF writer
    bundle = Bundle.open(args.bundle)  # verified once for both passes
    manifest = bundle.manifest
    only = set(args.only) if args.only else None
    t0 = time.perf_counter()
    known = read_known(args.reuse, bundle.results_key) if args.reuse else {}
    # the cover needs every result before the first page: classify once (what the app
    # handed over is not classified again), then draw the pages from those results
    first = [
        p.result
        for p in run_folder(args.folder, bundle, only=only, prefer=args.provider, known=known)
    ]
    if not first:
        raise CliError(f"no images in {args.folder}")
    if inference := describe_providers(r.provider for r in first):
        print(f"report: {inference}", file=sys.stderr, flush=True)
    progress = throttled_progress("report: pages")
    from desktop.batch import read_store

    inverted = read_store(Path(args.folder))[1]
    known.update(
        {r.rel_path: _as_known(r, known.get(r.rel_path), r.rel_path in inverted) for r in first}
    )
    pages = run_folder(
        args.folder,
        bundle,
        cam_method=args.cam_method,
        only=only,
        keep_images=True,
        prefer=args.provider,
        known=known,
    )
    from desktop.reviews_io import marks_and_history

    marks, history = marks_and_history(args.folder)
    tmp = atomic_temp_path(out)
    try:
        n = write_report(
            tmp,
            manifest,
            folder=Path(args.folder).resolve(),
            reviewer=args.reviewer or default_reviewer(),
            first_pass=first,
            pages=pages,
            opacity=args.opacity,
            colormap=args.colormap,
            cam_method=args.cam_method,
            progress=progress,
            min_lung_share=args.min_lung_share,
            marks=marks,
            history=history,
        )
        check_complete_pdf(tmp)
        if out.exists() and not args.force:  # appeared while this report was written
            raise CliError(f"{out} was created meanwhile; nothing replaced (use --force)")
        os.replace(tmp, out)
    except OSError as exc:
        raise CliError(f"could not write the report ({why_not_written(exc, out)}): {out}") from None
    finally:
        tmp.unlink(missing_ok=True)
    del app
    print(
        f"report: {n} pages, {len(first)} images in {time.perf_counter() - t0:.1f} s -> {out}",
        file=sys.stderr,
    )
    return 0


def _as_known(result, before, inverted: bool = False):
    """A first-pass result as known for the page pass (keeping the app's CAM, if any)."""
    from desktop.batch import Known
    from export.results import FileKey

    cam, method = (before.cam, before.cam_method) if before is not None else (None, None)
    return Known(
        result.key or FileKey.of(result.path),
        result.probabilities,
        result.error,
        result.attention,
        cam,
        method,
        result.novelty,
        inverted,
    )
