"""``cxr reviews export FOLDER --out reviews.json [--coco]`` and ``cxr reviews import FOLDER FILE``.

Reviews that travel: decisions, notes and marks of a folder as one JSON file
(``docs/reviews.schema.json``), matched on import by the content hash of the
image file first and its relative path second, so a renamed or moved file
keeps its review. ``--coco`` writes the marks as COCO-style annotations
instead (``desktop/reviews_coco.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

FORMAT = "cxr-review-reviews"
FORMAT_VERSION = 1
#: a reviews file larger than this is not a reviews file
MAX_REVIEWS_BYTES = 256 * 2**20


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = sub.add_parser("export", help="write the folder's reviews as JSON (or COCO with --coco)")
    e.add_argument("folder", help="folder of images with reviews")
    e.add_argument("--out", required=True, help="JSON file to write")
    e.add_argument(
        "--coco", action="store_true", help="write the marks as COCO-style annotations instead"
    )
    e.add_argument("--force", action="store_true", help="replace an existing file")
    i = sub.add_parser("import", help="merge a reviews JSON into the folder's reviews")
    i.add_argument("folder", help="folder of images")
    i.add_argument("file", help="reviews JSON (format cxr-review-reviews)")


class FolderFiles:
    """The folder's image files by relative path, and by content hash once one is asked for
    that the named file does not have (hashing a whole folder only when needed)."""

    def __init__(self, folder: Path) -> None:
        from desktop.batch import scan

        self.folder = folder
        self.by_path = {rel: path for path, rel in scan(folder)}
        self._hashes: dict[str, str] = {}
        self._by_hash: dict[str, list[str]] | None = None

    def sha256(self, rel: str) -> str | None:
        if rel not in self._hashes:
            path = self.by_path.get(rel)
            self._hashes[rel] = file_sha256(path) if path is not None else ""
        return self._hashes[rel] or None

    def find(self, rel: str | None, sha: str | None) -> tuple[str | None, str]:
        """(relative path, how it matched: "hash" / "path" / "") of an entry's image."""
        if sha:
            if rel in self.by_path and self.sha256(rel) == sha:
                return rel, "hash"
            if self._by_hash is None:
                self._by_hash = {}
                for r in self.by_path:
                    if (h := self.sha256(r)) is not None:
                        self._by_hash.setdefault(h, []).append(r)
            if same := self._by_hash.get(sha):
                return same[0], "hash"
        if rel in self.by_path:
            return rel, "path"
        return None, ""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a regular file's bytes ('' when it cannot be read)."""
    from export.files import open_regular
    from export.image_input import DEFAULT_MAX_FILE_BYTES

    h = hashlib.sha256()
    try:
        with open_regular(path) as fh:
            left = DEFAULT_MAX_FILE_BYTES
            while left > 0 and (chunk := fh.read(min(left, 1 << 20))):
                h.update(chunk)
                left -= len(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def open_reviews(folder: Path):
    """The folder's store, read-only; None when it has none (nothing is created)."""
    from desktop.review_db import existing_store
    from desktop.review_store import ReviewStore

    path = existing_store(folder)
    return None if path is None else ReviewStore(path, read_only=True)


def marks_and_history(folder: str | os.PathLike[str]) -> tuple[dict[str, list], list[tuple]]:
    """The folder's marks (rel path -> marks) and decision history, for reports and PNGs;
    empty when it has no store, and a warning (never a failure) when it cannot be read."""
    import sqlite3

    from desktop.annotations import AnnotationError
    from desktop.review_store import ReviewStoreError

    try:
        store = open_reviews(Path(folder))
        if store is None:
            return {}, []
        with store:
            return store.all_annotations(), store.decision_history()
    except (ReviewStoreError, sqlite3.DatabaseError, AnnotationError, ValueError) as exc:
        print(f"warning: marks left out, the reviews cannot be read ({exc})", file=sys.stderr)
        return {}, []


def collect(folder: Path) -> list[dict[str, Any]]:
    """One entry per image with a decision, a note or marks, in path order."""
    store = open_reviews(folder)
    if store is None:
        return []
    files = FolderFiles(folder)
    with store:
        reviews, marks = store.all(), store.all_annotations()
        out = []
        for rel in sorted(set(reviews) | set(marks)):
            r = reviews.get(rel)
            hist = store.history(rel)
            if r is None and not marks.get(rel):
                continue
            if r is not None and r.decision is None and not r.note and not marks.get(rel):
                continue
            times = [h[4] for h in hist] + ([r.updated_at] if r else [])
            who = r.reviewer if r else (hist[-1][3] if hist else "")
            entry: dict[str, Any] = {"path": rel}
            if sha := files.sha256(rel):
                entry["sha256"] = sha
            entry.update(
                reviewer=who,
                decision=r.decision if r else None,
                **{"class": r.reviewer_class if r and r.decision != "uncertain" else None},
                note=r.note if r else "",
                reviewed_at=max(times),
                annotations=[m.to_dict() for m in marks.get(rel, [])],
                ai_class=r.ai_class if r else None,
                ai_probability=r.ai_probability if r else None,
            )
            out.append(entry)
    return out


def export_document(folder: Path) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "folder": Path(folder).resolve().name,
        "reviews": collect(folder),
    }


def read_document(path: Path) -> dict[str, Any]:
    """The parsed reviews file; a CliError with one line when it is not one."""
    from desktop.errors import CliError
    from export.files import read_regular

    try:
        data = read_regular(path, MAX_REVIEWS_BYTES)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CliError(f"{path} is not a reviews file (format {FORMAT!r} expected)")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise CliError(f"{path} has format_version {version!r}; this version reads 1")
    if not isinstance(doc.get("reviews"), list):
        raise CliError(f"{path} has no list of reviews")
    return doc


def run(args: argparse.Namespace) -> int:
    from desktop.errors import CliError

    folder = Path(args.folder)
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder")
    if args.action == "export":
        return _export(folder, args)
    from desktop.reviews_import import import_reviews

    doc = read_document(Path(args.file))
    report = import_reviews(folder, doc["reviews"])
    for line in report.problems:
        print(f"reviews import: {line}", file=sys.stderr)
    print(f"reviews import: {report.summary()}", file=sys.stderr)
    return 1 if report.problems else 0


def _export(folder: Path, args: argparse.Namespace) -> int:
    from desktop.errors import CliError, check_output, why_not_written
    from export.atomic import atomic_write_bytes

    out = Path(args.out)
    check_output(out, args.force)
    doc = export_document(folder)
    if args.coco:
        from desktop.reviews_coco import to_coco

        doc = to_coco(folder, doc["reviews"])
        n = len(doc["annotations"])
        what = f"{n} marks on {len(doc['images'])} images (COCO)"
    else:
        what = f"{len(doc['reviews'])} reviews"
    data = json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8")
    try:
        atomic_write_bytes(out, data + b"\n")
    except OSError as exc:
        raise CliError(f"could not write {out} ({why_not_written(exc, out)})") from None
    print(f"reviews export: {what} -> {os.fspath(out)}", file=sys.stderr)
    return 0
