"""Background work for the window: the folder pass (ONNX) and Grad-CAM (TF).

* Classification: :func:`desktop.folder_pass.classify_items` as a superqt
  generator worker, cancelled at its next yield when the folder or bundle changes.
* Grad-CAM: one long-lived thread always takes the *latest* request, so
  paging quickly through a folder never queues stale work, and hands it to
  a child process where TensorFlow lives (see ``desktop.cam_process``).
  Between the reviewer's requests it works through the background queue of
  the attention pass.
* Both run below the window's CPU priority (``desktop.priority``), and so do
  the decode threads, ONNX Runtime's threads and the Grad-CAM child they start.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from PySide6.QtCore import QObject, Signal
from superqt.utils import thread_worker

from desktop.folder_pass import classify_items
from desktop.messages import (
    AttentionDone,
    AttentionRequest,
    CamFailure,
    CamJob,
    HeatmapDone,
    HeatmapRequest,
)
from desktop.priority import FOLDER_PASS_NICE, below_window, lower_this_thread
from export.attention import Attention
from export.explain import ATTENTION_METHOD, ImageInput

log = logging.getLogger(__name__)


def _classify_below_window(*args, **kwargs):
    """:func:`classify_items` in a thread below the window's priority: the decode threads
    and ONNX Runtime's threads it starts inherit that priority."""
    with below_window(FOLDER_PASS_NICE):
        yield from classify_items(*args, **kwargs)


classify_folder = thread_worker(_classify_below_window)


def preload_native_libraries() -> None:
    """Load OpenCV's, Pillow's and ONNX Runtime's native code, and the modules the workers
    import lazily, before the window is shown.

    A C extension being loaded holds the GIL: loaded lazily by a decode or
    classification thread it freezes the window for tens of milliseconds.
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


class CamService(QObject):
    """One Grad-CAM thread driving a child process; :meth:`request` replaces whatever waited."""

    done = Signal(object)  # HeatmapDone
    attention_done = Signal(object)  # AttentionDone
    status = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        from desktop.cam_process import CamProcess

        self._cond = threading.Condition()
        self._pending: tuple[int, HeatmapRequest] | None = None
        self._background: deque[AttentionRequest] = deque()
        self._generation = 0
        self._stop = False
        self._proc = CamProcess()
        self._loaded: str | None = None
        # started while the app is idle: Thread.start() waits until the new thread runs,
        # which under a busy GIL would freeze the window
        self._thread = threading.Thread(target=self._loop, name="cxr-gradcam", daemon=True)
        self._thread.start()

    def request(self, req: HeatmapRequest) -> int:
        with self._cond:
            self._generation += 1
            self._pending = (self._generation, req)
            self._cond.notify()
            return self._generation

    def set_background(self, reqs: list[AttentionRequest]) -> None:
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

    @property
    def child_pid(self) -> int | None:
        return self._proc.pid

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()  # the loop closes the child process and ends

    def _loop(self) -> None:
        from desktop.cam_process import CAM_NICE  # imported by __init__ already

        # the child process started from this thread inherits its priority from its first
        # instruction (Python's start-up and imports included)
        lower_this_thread(CAM_NICE)
        while True:
            with self._cond:
                while self._pending is None and not self._background and not self._stop:
                    self._cond.wait()
                if self._stop:
                    self._proc.close()
                    return
                if self._pending is None:
                    gen, req = -1, self._background.popleft()
                else:
                    (gen, req), self._pending = self._pending, None
            if isinstance(req, AttentionRequest):
                self._audit_one(req)
            else:
                self._heatmap(gen, req)

    def _heatmap(self, gen: int, req: HeatmapRequest) -> None:
        bundle = str(req.bundle)
        if bundle != self._loaded:
            self.status.emit("Loading the Grad-CAM model (TensorFlow, first time only)…")
        job = CamJob(bundle, req.key.model_sha, req.image, req.key.class_index, req.key.method)
        out = self._proc.compute(job)
        if isinstance(out, CamFailure):
            if not self._stop:  # a child ended by shutdown is no failure
                log.error("Grad-CAM failed: %s", out.trace or out.error)
            result = HeatmapDone(req, gen, None, out.error)
        else:
            self._loaded = bundle
            result = HeatmapDone(req, gen, out)
        if not self._stop:
            self.done.emit(result)

    def _audit_one(self, req: AttentionRequest) -> None:
        """Float32 Grad-CAM of the predicted class: the flag must match reports and audit."""
        image = req.image
        if image is None:  # not kept by the folder pass
            from export.image_input import ImageDecodeError, InputSpec

            try:
                image = ImageInput.from_path(req.path, req.spec or InputSpec(), invert=req.invert)
            except (ImageDecodeError, OSError, ValueError) as exc:
                if not self._stop:
                    self.attention_done.emit(AttentionDone(req, Attention.not_checked(exc), True))
                return
        job = CamJob(
            str(req.bundle),
            req.model_sha,
            image,
            req.class_index,
            ATTENTION_METHOD,
            overlay=False,
            exact=True,
        )
        out = self._proc.compute(job)
        if isinstance(out, CamFailure):
            if not self._stop:
                log.warning("attention audit of %s failed: %s", req.path, out.error)
            done = AttentionDone(req, Attention.not_checked(out.error), True)
        else:
            self._loaded = str(req.bundle)
            done = AttentionDone(req, out.attention)
        if not self._stop:
            self.attention_done.emit(done)
