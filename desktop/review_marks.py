"""The review store's tables beside the reviews: the reviewer's marks on each image (one JSON
list per image, every change kept in the history under the field ``annotations``) and the
per-image settings (inverted polarity: a setting, not a finding).

Functions on an open connection. :class:`desktop.review_store.ReviewStore` is the way in: it
wraps every write here in its transaction. A read-only store written before a table existed
reads as empty.
"""

from __future__ import annotations

import sqlite3

from desktop.annotations import Annotation, dumps, loads


def read_marks(db: sqlite3.Connection, rel_path: str) -> list[Annotation]:
    try:
        row = db.execute("SELECT marks FROM marks WHERE rel_path = ?", (rel_path,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a store written before marks existed, read-only
            return []
        raise
    return loads(row[0]) if row else []


def read_all_marks(db: sqlite3.Connection) -> dict[str, list[Annotation]]:
    try:
        rows = db.execute("SELECT rel_path, marks FROM marks").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    return {path: marks for path, text in rows if (marks := loads(text))}


def write_marks(db: sqlite3.Connection, rel_path: str, new: str, *, reviewer: str, at: str) -> None:
    """Replace the image's marks (NEW: their JSON) and keep the change in the history; nothing
    is written when they are the same. Inside the caller's transaction."""
    row = db.execute("SELECT marks FROM marks WHERE rel_path = ?", (rel_path,)).fetchone()
    old = row[0] if row else dumps([])
    if old != new:
        db.execute(
            "INSERT INTO marks(rel_path, marks, reviewer, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(rel_path) DO UPDATE SET marks = excluded.marks, "
            "reviewer = excluded.reviewer, updated_at = excluded.updated_at",
            (rel_path, new, reviewer, at),
        )
        db.execute(
            "INSERT INTO history(rel_path, field, old_value, new_value, reviewer, at) "
            "VALUES (?, 'annotations', ?, ?, ?, ?)",
            (rel_path, old, new, reviewer, at),
        )


def read_inverted(db: sqlite3.Connection) -> set[str]:
    try:
        rows = db.execute("SELECT rel_path FROM image_settings WHERE invert").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a store written before the setting, read-only
            return set()
        raise
    return {r[0] for r in rows}


def write_inverted(db: sqlite3.Connection, rel_path: str, invert: bool) -> None:
    """Inside the caller's transaction."""
    db.execute(
        "INSERT INTO image_settings(rel_path, invert) VALUES (?, ?) "
        "ON CONFLICT(rel_path) DO UPDATE SET invert = excluded.invert",
        (rel_path, int(bool(invert))),
    )
