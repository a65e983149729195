"""AI results cached per file: (relative path, size, mtime, bundle's ONNX hash) -> probabilities
and the "unlike the training data" verdict.

Reopening a folder shows earlier results at once; a changed file or another
model misses the cache. An image the reviewer inverted for the model is another
input, so its results are kept under their own key (:func:`result_key`) and an
inverted image never reuses the prediction of the file as stored. A row written
without a verdict is a miss for :meth:`PredictionCache.get_with_novelty`: the
verdict is recomputed, never dropped. Kept beside the reviews (``.cxr-review/``) but in
its own file: losing it costs only recomputation, so it does not need the
review database's fsync on every write.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from export.attention import Attention
from export.novelty import Novelty

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    rel_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    model_sha TEXT NOT NULL,
    probabilities TEXT,
    error TEXT,
    PRIMARY KEY (rel_path, model_sha)
);
CREATE TABLE IF NOT EXISTS attention (
    rel_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    model_sha TEXT NOT NULL,
    method TEXT NOT NULL,
    attention TEXT NOT NULL,
    PRIMARY KEY (rel_path, model_sha, method)
);
"""
#: columns added after the first release, with their type
_ADDED_COLUMNS = (("predictions", "novelty", "TEXT"),)


def result_key(model_sha: str, invert: bool = False) -> str:
    """What produced a result: the model, and whether the image was inverted for it."""
    return f"{model_sha}:inverted" if invert else model_sha


class PredictionCache:
    """One connection per thread; opening is cheap."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            # a damaged cache is only lost work: start it again
            for name in (self.path.name, self.path.name + "-wal", self.path.name + "-shm"):
                (self.path.parent / name).unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)
            for table, column, kind in _ADDED_COLUMNS:
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    try:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the prediction cache is damaged")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def get(
        self, rel_path: str, size: int, mtime_ns: int, model_sha: str, *, invert: bool = False
    ) -> tuple[np.ndarray | None, str | None] | None:
        got = self._row(rel_path, size, mtime_ns, model_sha, invert)
        return None if got is None else (got[0], got[1])

    def get_with_novelty(
        self, rel_path: str, size: int, mtime_ns: int, model_sha: str, *, invert: bool = False
    ) -> tuple[np.ndarray | None, str | None, Novelty | None] | None:
        """(probabilities, error, verdict); None when not cached, or cached with probabilities
        but without a verdict (a row from before the verdict existed: computed again)."""
        got = self._row(rel_path, size, mtime_ns, model_sha, invert)
        if got is None or (got[0] is not None and got[2] is None):
            return None
        return got

    def _row(self, rel_path, size, mtime_ns, model_sha, invert):
        row = self._db.execute(
            "SELECT probabilities, error, novelty FROM predictions WHERE rel_path = ? "
            "AND model_sha = ? AND size = ? AND mtime_ns = ?",
            (rel_path, result_key(model_sha, invert), size, mtime_ns),
        ).fetchone()
        if row is None:
            return None
        probs = None if row[0] is None else np.asarray(json.loads(row[0]), np.float32)
        novelty = None
        if row[2] is not None:
            try:
                novelty = Novelty.from_dict(json.loads(row[2]))
            except (ValueError, TypeError, AttributeError):
                novelty = None
        return probs, row[1], novelty

    def put_many(self, rows: list[tuple]) -> None:
        """Rows of (rel_path, size, mtime_ns, model_sha, probabilities, error[, novelty[,
        invert]])."""
        values = []
        for row in rows:
            rel, size, mtime, sha, p, err, *rest = row
            novelty = rest[0] if rest else None
            invert = bool(rest[1]) if len(rest) > 1 else False
            values.append(
                (
                    rel,
                    size,
                    mtime,
                    result_key(sha, invert),
                    None if p is None else json.dumps([float(v) for v in p]),
                    err,
                    None if novelty is None else json.dumps(novelty.to_dict()),
                )
            )
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO predictions(rel_path, size, mtime_ns, model_sha, "
                "probabilities, error, novelty) VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )

    def get_attention(
        self,
        rel_path: str,
        size: int,
        mtime_ns: int,
        model_sha: str,
        method: str,
        *,
        invert: bool = False,
    ) -> Attention | None:
        """Where the predicted class's heatmap lay, if known for this exact file and model."""
        row = self._db.execute(
            "SELECT attention FROM attention WHERE rel_path = ? AND model_sha = ? AND method = ? "
            "AND size = ? AND mtime_ns = ?",
            (rel_path, result_key(model_sha, invert), method, size, mtime_ns),
        ).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            return None
        if not isinstance(value, dict) or "lung_share" not in value:
            return None
        return Attention.from_dict(value)

    def put_attention(
        self,
        rel_path: str,
        size: int,
        mtime_ns: int,
        model_sha: str,
        method: str,
        att: Attention,
        *,
        invert: bool = False,
    ) -> None:
        key = result_key(model_sha, invert)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO attention VALUES (?, ?, ?, ?, ?, ?)",
                (rel_path, size, mtime_ns, key, method, json.dumps(att.as_dict())),
            )
