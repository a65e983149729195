"""Review decisions in SQLite: every change committed at once, with a history.

WAL journal + ``synchronous=FULL``: once a write returns, a killed app or a
power cut does not lose it. Two app instances on one folder serialise their
writes through SQLite's lock (busy timeout), the last write wins and the
history keeps both. A read-only image folder falls back to the user data
folder, and :attr:`ReviewStore.fallback_reason` says so. The file itself (where
it lives, its schema, a damaged one) is in :mod:`desktop.review_db`, the SQL of
the marks and image-settings tables in :mod:`desktop.review_marks`; every write
goes through this class's transactions.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from desktop.annotations import Annotation, dumps
from desktop.folder_scan import STATE_DIR
from desktop.review_db import (
    ReviewStoreError,
    connect_read_only,
    copy_store,
    open_db,
    replace_damaged,
    store_path_for,
)
from desktop.review_marks import (
    read_all_marks,
    read_inverted,
    read_marks,
    write_inverted,
    write_marks,
)
from export.files import disk_full

DECISIONS = ("agree", "override", "uncertain")


@dataclass(frozen=True)
class Review:
    rel_path: str
    decision: str | None
    reviewer_class: str | None
    ai_class: str | None
    ai_probability: float | None
    note: str
    reviewer: str
    updated_at: str


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "reviewer"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def normalise_time(text: str) -> str:
    """An ISO 8601 time as the store writes it (UTC, milliseconds), so times sort as text;
    a time without a zone is taken as UTC. Raises ValueError for anything else."""
    try:
        t = datetime.fromisoformat(text)
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t.astimezone(UTC).isoformat(timespec="milliseconds")
    except OverflowError as exc:  # e.g. year 9999 with a negative offset
        raise ValueError(str(exc)) from None


class ReviewStore:
    """One folder's reviews. Methods are safe to call from one thread at a time."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fallback_reason: str | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fallback_reason = fallback_reason
        #: set when a damaged database was moved aside: where to, and what was recovered
        self.recovery_note: str | None = None
        self._depth = 0  # nesting of :meth:`transaction`
        if read_only:  # headless readers: never write, works on read-only media
            self._db = connect_read_only(self.path)
            self._db.execute("PRAGMA busy_timeout = 10000")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = open_db(self.path)
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise ReviewStoreError(
                    f"the review database is locked by another program: {self.path}"
                ) from None
            if disk_full(exc, self.path, free_below=64 * 1024):
                raise ReviewStoreError(f"disk full: {self.path}") from None
            self._db, self.recovery_note = replace_damaged(self.path, exc)

    @classmethod
    def for_folder(cls, folder: str | os.PathLike[str]) -> ReviewStore:
        path, reason = store_path_for(folder)
        in_folder = Path(folder).resolve() / STATE_DIR / "review.sqlite"
        if reason and not path.exists() and in_folder.is_file():
            # the folder is read-only but holds reviews: the fallback starts as their copy
            copy_store(in_folder, path)
            reason += " (its earlier reviews were copied there)"
        return cls(path, reason)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def get(self, rel_path: str) -> Review | None:
        row = self._db.execute(
            "SELECT rel_path, decision, reviewer_class, ai_class, ai_probability, note, reviewer, "
            "updated_at FROM reviews WHERE rel_path = ?",
            (rel_path,),
        ).fetchone()
        return Review(*row) if row else None

    def all(self) -> dict[str, Review]:
        try:
            rows = self._db.execute(
                "SELECT rel_path, decision, reviewer_class, ai_class, ai_probability, note, "
                "reviewer, updated_at FROM reviews"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # an empty file (read-only readers create nothing)
                return {}
            raise
        return {r[0]: Review(*r) for r in rows}

    def history(self, rel_path: str) -> list[tuple[str, str | None, str | None, str, str]]:
        """(field, old, new, reviewer, time), oldest first."""
        return self._db.execute(
            "SELECT field, old_value, new_value, reviewer, at FROM history WHERE rel_path = ? "
            "ORDER BY id",
            (rel_path,),
        ).fetchall()

    def decision_history(self) -> list[tuple[str, str, str | None, str, str]]:
        """(rel path, field, new value, reviewer, time) of every decision and reviewer-class
        change, oldest first by time: who decided what (``desktop.agreement.latest_by_reviewer``)."""
        try:
            return self._db.execute(
                "SELECT rel_path, field, new_value, reviewer, at FROM history "
                "WHERE field IN ('decision', 'reviewer_class') ORDER BY at, id"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise

    def annotations(self, rel_path: str) -> list[Annotation]:
        """The image's marks, in drawing order (empty when it has none)."""
        return read_marks(self._db, rel_path)

    def all_annotations(self) -> dict[str, list[Annotation]]:
        """Every image's marks (images without marks are absent)."""
        return read_all_marks(self._db)

    def inverted_images(self) -> set[str]:
        """Images the reviewer said are stored with inverted polarity: the model and the
        display see them flipped. Kept apart from the reviews: a setting, not a finding."""
        return read_inverted(self._db)

    def set_inverted(self, rel_path: str, invert: bool) -> None:
        self._transaction_begin()
        try:
            write_inverted(self._db, rel_path, invert)
            self._commit()
        except BaseException as exc:
            self._transaction_failed(exc)
            raise

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # ------------------------------------------------------------------ writes

    def set_decision(
        self,
        rel_path: str,
        decision: str | None,
        *,
        reviewer: str,
        reviewer_class: str | None = None,
        ai_class: str | None = None,
        ai_probability: float | None = None,
        at: str | None = None,
    ) -> Review:
        """Agree, override (with the reviewer's class), mark uncertain, or clear (None).
        ``at`` (ISO time) is for imports; the current time otherwise."""
        if decision is not None and decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS} or None")
        if decision == "override" and not reviewer_class:
            raise ValueError("an override needs the reviewer's class")
        if decision == "agree":
            reviewer_class = ai_class
        return self._write(
            rel_path,
            reviewer,
            {
                "decision": decision,
                "reviewer_class": reviewer_class,
                "ai_class": ai_class,
                "ai_probability": ai_probability,
            },
            at,
        )

    def set_note(self, rel_path: str, note: str, *, reviewer: str, at: str | None = None) -> Review:
        return self._write(rel_path, reviewer, {"note": note}, at)

    def record_history(
        self, rel_path: str, field: str, old: str | None, new: str | None, *, reviewer: str, at: str
    ) -> None:
        """A version kept in the history only (an imported review older than the current
        one): the current state stays, nothing is lost."""
        self._transaction_begin()
        try:
            self._db.execute(
                "INSERT INTO history(rel_path, field, old_value, new_value, reviewer, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rel_path, field, old, new, reviewer, at),
            )
            self._commit()
        except BaseException as exc:
            self._transaction_failed(exc)
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside happen together or not at all (one imported review)."""
        self._transaction_begin()
        try:
            yield
            self._commit()
        except BaseException as exc:
            self._transaction_failed(exc)
            raise

    def set_annotations(
        self, rel_path: str, marks: list[Annotation], *, reviewer: str, at: str | None = None
    ) -> None:
        """Replace the image's marks, committed at once; the history keeps the old and the
        new list (JSON) under the field ``annotations``. ``at`` (ISO time) is for imports."""
        new = dumps(marks)
        now = at or _now()
        self._transaction_begin()
        try:
            write_marks(self._db, rel_path, new, reviewer=reviewer, at=now)
            self._commit()
        except BaseException as exc:
            self._transaction_failed(exc)
            raise

    def _transaction_begin(self) -> None:
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1

    def _commit(self) -> None:
        # the depth drops only once COMMIT succeeded: a failed COMMIT goes on to
        # _transaction_failed, which drops it and rolls back (never a depth below 0, which
        # would leave every later write outside a transaction)
        if self._depth == 1:
            self._db.execute("COMMIT")
        self._depth -= 1

    def _transaction_failed(self, exc: BaseException) -> None:
        """Roll back (the outermost transaction does); a full disk becomes a
        :class:`ReviewStoreError` saying so."""
        self._depth = max(0, self._depth - 1)
        if self._depth > 0:
            return
        db = self._db
        if db.in_transaction:  # SQLite may have rolled back itself (a full disk)
            db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and disk_full(exc, self.path, free_below=64 * 1024):
            raise ReviewStoreError(f"disk full: {self.path}") from None

    def own_latest(self, rel_path: str, field: str, reviewer: str) -> str | None:
        """The reviewer's own latest value of a history field for the image (None if none)."""
        row = self._db.execute(
            "SELECT new_value FROM history WHERE rel_path = ? AND field = ? AND reviewer = ? "
            "ORDER BY at DESC, id DESC LIMIT 1",
            (rel_path, field, reviewer),
        ).fetchone()
        return row[0] if row else None

    def _write(
        self, rel_path: str, reviewer: str, changes: dict[str, object], at: str | None = None
    ) -> Review:
        now = at or _now()
        db = self._db
        self._transaction_begin()
        try:
            old = self.get(rel_path)
            if old is None:
                db.execute(
                    "INSERT INTO reviews(rel_path, note, reviewer, updated_at) VALUES (?, '', ?, ?)",
                    (rel_path, reviewer, now),
                )
            for field, value in changes.items():
                before = getattr(old, field) if old else None
                same = before == value or (field == "note" and before is None and value == "")
                # a second reviewer who decides as the first is still a decision of theirs:
                # the history says who decided what (inter-reader agreement)
                confirms = (
                    same
                    and field in ("decision", "reviewer_class")
                    and "decision" in changes
                    and self.own_latest(rel_path, field, reviewer) != _text(value)
                )
                if same and not confirms:
                    continue
                if not same:
                    db.execute(
                        f"UPDATE reviews SET {field} = ? WHERE rel_path = ?", (value, rel_path)
                    )
                if field in ("decision", "reviewer_class", "note"):
                    db.execute(
                        "INSERT INTO history(rel_path, field, old_value, new_value, reviewer, at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (rel_path, field, _text(before), _text(value), reviewer, now),
                    )
            db.execute(
                "UPDATE reviews SET reviewer = ?, updated_at = ? WHERE rel_path = ?",
                (reviewer, now, rel_path),
            )
            self._commit()
        except BaseException as exc:
            self._transaction_failed(exc)
            raise
        review = self.get(rel_path)
        assert review is not None
        return review


def _text(v: object) -> str | None:
    return None if v is None else str(v)


#: the store's public face; :class:`ReviewStoreError` is what its methods raise
__all__ = [
    "DECISIONS",
    "Review",
    "ReviewStore",
    "ReviewStoreError",
    "default_reviewer",
    "normalise_time",
]
