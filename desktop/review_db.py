"""The review database file: where a folder's reviews live, its schema, how it is opened, and
what happens to a damaged one.

Reviews live in the folder (``.cxr-review/review.sqlite``); a read-only folder's go to the user
data folder, keyed by the folder's path. A database is opened with a WAL journal and
``synchronous=FULL`` so a write that returned survives a crash. A damaged one is never silently
replaced: it is moved aside and what can still be read is copied into a fresh one.
:class:`desktop.review_store.ReviewStore` is the one way in; this module holds the file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from desktop.folder_scan import STATE_DIR
from desktop.paths import user_data_dir

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    rel_path TEXT PRIMARY KEY,
    decision TEXT,
    reviewer_class TEXT,
    ai_class TEXT,
    ai_probability REAL,
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rel_path TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_path ON history(rel_path);
CREATE TABLE IF NOT EXISTS marks (
    rel_path TEXT PRIMARY KEY,
    marks TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_settings (
    rel_path TEXT PRIMARY KEY,
    invert INTEGER NOT NULL DEFAULT 0
);
"""


class ReviewStoreError(OSError):
    """The review database cannot be used; the message is for the reviewer (no raw SQLite)."""


# --------------------------------------------------------------------------- where it lives


def _writable(folder: Path) -> bool:
    """Can we create files in FOLDER/.cxr-review? A probe file of our own: with one shared name,
    two instances opening the folder at once deleted each other's probe, and the loser took the
    folder for read-only and wrote its reviews elsewhere."""
    import tempfile

    state = folder / STATE_DIR
    try:
        state.mkdir(exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=state)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def _fallback_path(folder: Path) -> Path:
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return user_data_dir() / "reviews" / f"{folder.name}-{key}" / "review.sqlite"


def store_path_for(folder: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """Where the folder's reviews live, and why not in the folder itself (or None)."""
    folder = Path(folder).resolve()
    if _writable(folder):
        return folder / STATE_DIR / "review.sqlite", None
    path = _fallback_path(folder)
    return path, f"{folder} is read-only: reviews are kept in {path.parent}"


def existing_store(folder: str | os.PathLike[str]) -> Path | None:
    """The folder's review database if it has one, found without creating anything."""
    folder = Path(folder).resolve()
    for path in (folder / STATE_DIR / "review.sqlite", _fallback_path(folder)):
        if path.is_file():
            return path
    return None


def copy_store(src: Path, dst: Path) -> None:
    """A read-only folder's reviews as the start of its fallback store: written beside and
    renamed, so a failed copy never leaves an empty store that would hide them next time."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".copying")
    tmp.unlink(missing_ok=True)
    try:
        old = connect_read_only(src)
        new = sqlite3.connect(tmp)
        try:
            old.backup(new)
        finally:
            old.close()
            new.close()
        os.replace(tmp, dst)
    except (sqlite3.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ReviewStoreError(
            f"the reviews in the read-only folder cannot be copied ({exc}): {src}"
        ) from None


# --------------------------------------------------------------------------- opening


def open_db(path: Path) -> sqlite3.Connection:
    """The database at PATH, created with the schema if new, durable writes, integrity checked;
    a damaged one raises :class:`sqlite3.DatabaseError`."""
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
    except BaseException:
        db.close()
        raise
    return db


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Read a store without writing anything, also on read-only media: a WAL database there
    cannot create its shared-memory file, so it is then opened as immutable."""
    for query in ("mode=ro", "mode=ro&immutable=1"):
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?{query}", uri=True, timeout=10.0, isolation_level=None
        )
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.DatabaseError:
            db.close()
    raise ReviewStoreError(f"the review database cannot be read: {path}")


# --------------------------------------------------------------------------- damage


def replace_damaged(path: Path, exc: sqlite3.DatabaseError) -> tuple[sqlite3.Connection, str]:
    """A fresh database at PATH and a note for the reviewer: the damaged file is moved aside
    with a time stamp and what can be read of it is copied into the fresh one."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    os.replace(path, aside)
    for ext in ("-wal", "-shm"):
        side = path.with_name(path.name + ext)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + ext))
    db = open_db(path)
    n = _salvage(aside, db)
    note = (
        f"The review database was damaged ({exc}); it was moved to {aside.name} and "
        f"{n} review(s) were recovered from it into a fresh one"
    )
    return db, note


def _salvage(src: Path, dst: sqlite3.Connection) -> int:
    """Copy what can still be read of a damaged store's reviews and history; the count."""
    try:
        old = connect_read_only(src)
    except (ReviewStoreError, sqlite3.Error):
        return 0
    n = 0
    try:
        for table in ("reviews", "history", "marks", "image_settings"):
            try:
                rows = old.execute(f"SELECT * FROM {table}").fetchall()
            except sqlite3.Error:
                continue
            for row in rows:
                try:
                    marks = ", ".join("?" * len(row))
                    dst.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", row)
                    n += table == "reviews"
                except sqlite3.Error:
                    continue
    finally:
        old.close()
    return n
