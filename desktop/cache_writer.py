"""Writes to the prediction cache from one background thread, in the order they were asked.

A cache write is a disk write: SQLite may wait there for the lock the folder
pass's connection holds, for a WAL checkpoint or for a busy disk, for
milliseconds or for seconds. The window hands such writes to a
:class:`CacheWriter` and goes on. A write still queued when the app is
killed costs only recomputation; a normal shutdown writes everything first.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from export.attention import Attention

log = logging.getLogger(__name__)


class CacheWriter:
    """One thread owning one :class:`~desktop.prediction_cache.PredictionCache` connection
    at a time (SQLite connections stay in the thread that opened them)."""

    def __init__(self, name: str = "cxr-cache") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._cache = None  # PredictionCache, used only by the writer thread
        self._stopped = False
        # started now, while the app is idle: Thread.start() waits until the new thread runs
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put_attention(
        self,
        cache_path: Path,
        rel_path: str,
        size: int,
        mtime_ns: int,
        model_sha: str,
        method: str,
        att: Attention,
        *,
        invert: bool = False,
    ) -> None:
        """Queue :meth:`PredictionCache.put_attention` into the cache at ``cache_path``."""

        def job() -> None:
            self._open(cache_path).put_attention(
                rel_path, size, mtime_ns, model_sha, method, att, invert=invert
            )

        self._submit(job)

    def close_cache(self) -> None:
        """Close the connection once the writes queued before are done (a new folder or
        model: the next write opens the cache it names)."""
        self._submit(self._close)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued before is done; False if ``timeout`` passed first."""
        if self._stopped:
            return True
        done = threading.Event()
        self._jobs.put(done.set)
        return done.wait(timeout)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Write what is queued, close the cache and end the thread."""
        if self._stopped:
            return
        self._stopped = True
        self._jobs.put(self._close)
        self._jobs.put(None)
        self._thread.join(timeout)

    def _submit(self, job: Callable[[], None]) -> None:
        if not self._stopped:
            self._jobs.put(job)

    def _open(self, path: Path):
        if self._cache is None or self._cache.path != Path(path):
            from desktop.prediction_cache import PredictionCache

            self._close()
            self._cache = PredictionCache(path)
        return self._cache

    def _close(self) -> None:
        cache, self._cache = self._cache, None
        if cache is not None:
            cache.close()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception as exc:  # a cache is worth a retry next time, never an error
                log.warning("attention not cached: %s", exc)
                self._close()
