"""Find the image files of a folder (Qt-free, so the CLI and tests share it with the app)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from export.image_input import is_candidate_file

#: Our own per-folder state; never scanned as images.
STATE_DIR = ".cxr-review"
#: Dropped into folders of exported heatmaps so they are never scanned as radiographs.
EXPORT_MARKER = ".cxr-export"


def iter_image_files(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Candidate files under ``folder``, recursively, in a stable order.

    Hidden files and folders and ``.cxr-review/`` are skipped; symbolic links
    to folders are not followed (no loops); a folder we may not read is
    skipped rather than stopping the scan.
    """
    root = Path(folder)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda e: None):
        if (Path(dirpath) / EXPORT_MARKER).exists():
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != STATE_DIR)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if is_candidate_file(p):
                yield p
