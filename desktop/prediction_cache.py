"""AI results cached per file: (relative path, size, mtime, bundle's ONNX hash) -> probabilities.

Reopening a folder shows earlier results at once; a changed file or another
model misses the cache. Kept beside the reviews (``.cxr-review/``) but in
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
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the prediction cache is damaged")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def get(
        self, rel_path: str, size: int, mtime_ns: int, model_sha: str
    ) -> tuple[np.ndarray | None, str | None] | None:
        row = self._db.execute(
            "SELECT probabilities, error FROM predictions WHERE rel_path = ? AND model_sha = ? "
            "AND size = ? AND mtime_ns = ?",
            (rel_path, model_sha, size, mtime_ns),
        ).fetchone()
        if row is None:
            return None
        probs = None if row[0] is None else np.asarray(json.loads(row[0]), np.float32)
        return probs, row[1]

    def put_many(
        self, rows: list[tuple[str, int, int, str, np.ndarray | None, str | None]]
    ) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        rel,
                        size,
                        mtime,
                        sha,
                        None if p is None else json.dumps([float(v) for v in p]),
                        err,
                    )
                    for rel, size, mtime, sha, p, err in rows
                ],
            )

    def get_attention(
        self, rel_path: str, size: int, mtime_ns: int, model_sha: str, method: str
    ) -> Attention | None:
        """Where the predicted class's heatmap lay, if known for this exact file and model."""
        row = self._db.execute(
            "SELECT attention FROM attention WHERE rel_path = ? AND model_sha = ? AND method = ? "
            "AND size = ? AND mtime_ns = ?",
            (rel_path, model_sha, method, size, mtime_ns),
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
        self, rel_path: str, size: int, mtime_ns: int, model_sha: str, method: str, att: Attention
    ) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO attention VALUES (?, ?, ?, ?, ?, ?)",
                (rel_path, size, mtime_ns, model_sha, method, json.dumps(att.as_dict())),
            )
