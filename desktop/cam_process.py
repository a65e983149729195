"""Grad-CAM in a separate process.

TensorFlow's import and XLA compilation hold Python's GIL for hundreds of
milliseconds at a time; in a thread of the app they would freeze the
window. In a child process they cannot touch the GUI thread. The child
receives a :class:`desktop.messages.CamJob` (the image's small model and
analysis inputs, never a path: the parent already decoded the file) and
answers a :class:`export.explain.Heatmap` or a :class:`desktop.messages.CamFailure`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import traceback

from desktop.messages import CamFailure, CamJob
from desktop.priority import lower_this_process

#: the child's CPU priority offset: where classification and Grad-CAM compete for few cores,
#: the folder's classification goes first; an idle app leaves the child the whole CPU anyway.
#: The gap to the folder pass's nice 5 (desktop.priority) is what counts: nice 19 against 5
#: gives the child ~4 % of a contended core, as nice 10 against 0 gave ~10 %; with nice 10
#: against 5 it took ~25 % and the folder pass fell to 0.77 of raw ONNX Runtime (2 cores).
#: The price: during the folder pass on few cores the heatmap on screen comes later.
CAM_NICE = 19


def _serve(conn) -> None:
    from export.parent_watch import exit_with_parent

    exit_with_parent()  # a heatmap half done for a crashed app is not worth finishing
    if os.environ.get("CXR_VERBOSE", "").strip() != "1":  # export.cam_runtime.VERBOSE_ENV
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    lower_this_process(CAM_NICE)  # already so when started from a lowered thread
    runners: dict[tuple[str, str], object] = {}
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if not isinstance(job, CamJob):
            return
        try:
            runner = runners.get((job.bundle, job.model_sha))
            if runner is None:
                from export.cam_runtime import CamRunner

                runners.clear()
                # a process that only computes Grad-CAM: bfloat16 where the CPU has it
                runner = runners[(job.bundle, job.model_sha)] = CamRunner(
                    job.bundle, precision="auto"
                )
            from export.explain import explain

            heat = explain(
                runner, job.image, job.class_index, job.method, overlay=job.overlay, exact=job.exact
            )
            conn.send(heat if job.overlay else heat.numbers_only())
        except Exception as exc:
            conn.send(CamFailure(f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class CamProcess:
    """A lazily started child process; :meth:`compute` blocks the *calling* thread only."""

    def __init__(self) -> None:
        self._proc = None
        self._conn = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = mp.get_context("spawn")  # no fork of a Qt process
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="cxr-gradcam", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def compute(self, job: CamJob):
        """A :class:`export.explain.Heatmap`, or a :class:`CamFailure` saying why not."""
        self._ensure()
        try:
            self._conn.send(job)
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self._proc.exitcode if self._proc else None
            self._proc = None
            return CamFailure(
                f"the Grad-CAM process stopped (exit code {code}); it restarts on the next image"
            )

    def close(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(None)
        self._proc.join(timeout=2)
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc = None


__all__ = ["CAM_NICE", "CamProcess"]
