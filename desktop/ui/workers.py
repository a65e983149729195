"""Background work for the window: folder classification (ONNX) and Grad-CAM (TF).

* Classification is a superqt generator worker: batched, decode of the next
  batch overlapping inference of this one, results yielded as they come,
  cancelled at the next yield when the folder or bundle changes.
* Grad-CAM: one long-lived thread always takes the *latest* request, so
  paging quickly through a folder never queues stale work, and hands it to
  a child process where TensorFlow lives (see ``desktop.cam_process``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from superqt.utils import thread_worker

from desktop.cam_process import ATTENTION_METHOD
from export.image_input import ImageDecodeError, load_model_gray, to_model_tensor

log = logging.getLogger(__name__)


def preload_native_libraries() -> None:
    """Load OpenCV's, Pillow's and ONNX Runtime's native code, and the modules the workers
    import lazily, before the window is shown (MainWindow calls it first).

    A C extension being loaded holds the GIL; loaded lazily by the decode and
    classification threads it froze the window for 30-55 ms just after a folder
    opened (found with a watchdog thread sampling stacks during stalls). Here it
    costs the same time once, before anything is on screen.
    """
    try:
        import cv2  # noqa: F401
        import onnxruntime  # noqa: F401
        from PIL import Image, ImageOps  # noqa: F401

        Image.preinit()  # the common format plugins
        import desktop.folder_scan
        import desktop.prediction_cache  # noqa: F401
        import export.bundle
        import export.onnx_runtime  # noqa: F401
    except (ImportError, OSError) as exc:  # the window still opens; the worker reports it
        log.warning("could not preload a native library: %s", exc)


#: errors that depend only on the file's bytes: safe to remember until the file changes
CACHEABLE_ERRORS = frozenset({"empty", "unrecognised", "truncated", "no_pixels", "unreadable"})


def _prepare(path: Path, spec) -> tuple[np.ndarray | None, str | None, bool]:
    """(grey, error, whether the outcome may be cached)."""
    try:
        return load_model_gray(path, spec), None, True
    except ImageDecodeError as exc:
        return None, exc.reason, exc.kind in CACHEABLE_ERRORS
    except Exception as exc:  # a bad file must never stop the folder
        log.exception("decoding %s failed", path)
        return None, f"unexpected error: {type(exc).__name__}: {exc}", False


@thread_worker
def classify_folder(
    bundle: Path,
    items: list[tuple[Path, str, int, int]],
    cache_path: Path | None = None,
    batch_size: int = 16,
    prefer: str = "auto",
):
    """Yields ("ready", manifest, provider), then ("batch", [(index, probs, error)…], cached);
    ("attention", [(index, shares)…], True) for heatmap shares already known.

    ``items`` are (path, relative path, size, mtime_ns); results already in the
    prediction cache for this exact file and model are yielded first, the rest
    are classified in batches and added to the cache.
    """
    from desktop.prediction_cache import PredictionCache
    from export.bundle import load_bundle
    from export.onnx_runtime import OnnxClassifier

    manifest = load_bundle(bundle)
    clf = OnnxClassifier(bundle, manifest, prefer=prefer)
    yield ("ready", manifest, clf.provider)
    sha = manifest.files[manifest.onnx.file]
    cache = PredictionCache(cache_path) if cache_path is not None else None
    todo: list[int] = []
    hits = []
    for i, (_p, rel, size, mtime) in enumerate(items):
        got = cache.get(rel, size, mtime, sha) if cache else None
        if got is None:
            todo.append(i)
        else:
            hits.append((i, got[0], got[1]))
    if hits:
        yield ("batch", hits, True)
    if cache:
        known = []
        for i, (_p, rel, size, mtime) in enumerate(items):
            att = cache.get_attention(rel, size, mtime, sha, ATTENTION_METHOD)
            if att is not None:
                known.append((i, att))
        if known:
            yield ("attention", known, True)
    spec = manifest.input
    batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cxr-prep") as pool:

            def submit(batch: list[int]):
                return [pool.submit(_prepare, items[i][0], spec) for i in batch]

            pending = submit(batches[0]) if batches else []
            for k, batch in enumerate(batches):
                results = [f.result() for f in pending]
                pending = submit(batches[k + 1]) if k + 1 < len(batches) else []
                good = [(i, r[0]) for i, r in zip(batch, results, strict=True) if r[0] is not None]
                out = [(i, None, r[1]) for i, r in zip(batch, results, strict=True) if r[0] is None]
                keep = {i for i, r in zip(batch, results, strict=True) if r[2]}
                if good:
                    probs = clf.probabilities(to_model_tensor(np.stack([g for _, g in good]), spec))
                    out += [(i, p, None) for (i, _), p in zip(good, probs, strict=True)]
                if cache:
                    cache.put_many(
                        [
                            (items[i][1], items[i][2], items[i][3], sha, p, e)
                            for i, p, e in out
                            if i in keep
                        ]
                    )
                yield ("batch", out, False)
    finally:
        if cache:
            cache.close()


@dataclass(frozen=True)
class CamRequest:
    bundle: Path
    path: Path
    class_index: int | None  # None: the predicted class
    method: str
    key: tuple
    model_sha: str = ""  # a re-exported bundle in the same folder must reload the model


class CamService(QObject):
    """One Grad-CAM thread driving a child process; ``request`` replaces whatever was waiting.

    Between the reviewer's requests it works through a background queue
    (:meth:`set_background`): the attention audit of the whole folder, so the
    list can flag every image that made the model look outside the lungs. The
    reviewer's request always goes first.
    """

    done = Signal(int, object)  # generation, dict with cam/probabilities/… or {"error": text}
    attention_done = Signal(object, object)  # request key, attention dict | {"error": text}
    status = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        from desktop.cam_process import CamProcess

        self._cond = threading.Condition()
        self._pending: tuple[int, CamRequest] | None = None
        self._background: deque[CamRequest] = deque()
        self._generation = 0
        self._stop = False
        self._proc = CamProcess()
        self._loaded_bundle: Path | None = None
        # started now, while the app is idle: Thread.start() waits until the new thread runs,
        # and under a busy GIL (a folder being decoded) that wait froze the window ~30 ms
        self._thread = threading.Thread(target=self._loop, name="cxr-gradcam", daemon=True)
        self._thread.start()

    def request(self, req: CamRequest) -> int:
        with self._cond:
            self._generation += 1
            self._pending = (self._generation, req)
            self._cond.notify()
            return self._generation

    def set_background(self, reqs: list[CamRequest]) -> None:
        """Replace the background queue (an empty list cancels it)."""
        with self._cond:
            self._background = deque(reqs)
            self._cond.notify()

    @property
    def background_left(self) -> int:
        return len(self._background)

    @property
    def generation(self) -> int:
        return self._generation

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()  # the loop closes the child process and ends

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._background and not self._stop:
                    self._cond.wait()
                if self._stop:
                    self._proc.close()
                    return
                background = self._pending is None
                if background:
                    gen, req = -1, self._background.popleft()
                else:
                    gen, req = self._pending
                    self._pending = None
            if background:
                self._audit_one(req)
                continue
            if req.bundle != self._loaded_bundle:
                self.status.emit("Loading the Grad-CAM model (TensorFlow, first time only)…")
            result = self._proc.compute(
                req.bundle, req.path, req.class_index, req.method, req.model_sha
            )
            if "error" in result:
                if not self._stop:  # a child ended by shutdown is no failure
                    log.error("Grad-CAM failed: %s", result.get("trace", result["error"]))
            else:
                self._loaded_bundle = req.bundle
            result["key"] = req.key
            if not self._stop:
                self.done.emit(gen, result)

    def _audit_one(self, req: CamRequest) -> None:
        """One background attention request: numbers only, no overlay crosses the pipe."""
        # float32 (exact=True): the flag must match reports and `cxr audit`
        result = self._proc.compute(req.bundle, req.path, req.class_index, req.method,
                                    req.model_sha, overlay=False, exact=True)  # fmt: skip
        if "error" in result:
            if not self._stop:
                log.warning("attention audit of %s failed: %s", req.path, result["error"])
        else:
            self._loaded_bundle = req.bundle
        if not self._stop:
            self.attention_done.emit(req.key, result.get("attention") or result)
