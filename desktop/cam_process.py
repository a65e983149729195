"""Grad-CAM in a separate process.

TensorFlow's import (~2.5 s) and XLA compilation hold Python's GIL for
hundreds of milliseconds at a time; in a thread of the app they froze the
window (measured: 260 ms for the import alone, 950 ms worst case while a
folder was classified). In a child process they cannot touch the GUI
thread. Requests and results are small (a path in; a <=768 px map out).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import traceback
from pathlib import Path

MAX_OVERLAY_SIDE = 768
#: the "looked outside the lungs" measure everywhere (list, reports, ``cxr audit``):
#: Grad-CAM of the predicted class, whatever method the reviewer views
ATTENTION_METHOD = "gradcam"


def heatmap_for(runner, decoded, class_index: int | None, method: str, *, x=None,
                max_side: int | None = None, overlay: bool = True,
                exact: bool = False) -> dict:  # fmt: skip
    """The one Grad-CAM path (app, reports, audit pass): ``cam`` signature for the given or
    the predicted class, CAM method, mapped back onto the image's own frame, and where the
    heatmap lies (lung field / border / burned-in text shares, ``export.attention``).
    ``overlay=False`` skips the full-size map (the background attention pass)."""
    import numpy as np

    from export.attention import image_attention
    from export.cam import compute_cam, onto_image
    from export.image_input import model_gray, to_model_tensor

    m = runner.manifest
    if x is None:
        x = to_model_tensor(model_gray(decoded, m.input), m.input)[None]
    acts, grads, probs = runner.run(x, [class_index or 0], exact=exact)
    cls = class_index
    if cls is None:
        cls = int(np.argmax(probs[0]))
        if cls != 0:
            acts, grads, probs = runner.run(x, [cls], exact=exact)
    cam = compute_cam(method, acts, grads)[0]
    h, w = decoded.meta.height, decoded.meta.width
    att, _c, lungs, markers = image_attention(decoded, cam, m.input)
    return {
        "cam": cam,
        "overlay": onto_image(cam, (h, w), m.input, max_side) if overlay else None,
        "attention": att.as_dict(),
        "lung_mask": lungs,
        "marker_mask": markers,
        "image_size": (h, w),
        "class_index": cls,
        "method": method,
        "probabilities": probs[0],
        "layer": m.savedmodel.cam_layer,
        "precision": "fp32 (XLA)" if exact else getattr(runner, "precision", ""),
    }


def compute_heatmap(
    runner, path: Path, class_index: int | None, method: str, overlay: bool = True,
    exact: bool = False,
) -> dict:  # fmt: skip
    """Decode through the image-input contract, then :func:`heatmap_for` (overlay <= 768 px)."""
    from export.image_input import read_image

    out = heatmap_for(runner, read_image(path), class_index, method,
                      max_side=MAX_OVERLAY_SIDE, overlay=overlay, exact=exact)  # fmt: skip
    if not overlay:  # only the numbers cross the pipe
        for k in ("cam", "lung_mask", "marker_mask"):
            out.pop(k, None)
    return out


#: the child's CPU priority offset: where classification and Grad-CAM compete for few cores,
#: the folder's classification goes first (measured on 2 cores, VGG19: TF's start-up in the
#: child took a third of the CPU while 96 images were classified); an idle app leaves the
#: child the whole CPU anyway
CAM_NICE = 10


def _serve(conn) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.suppress(AttributeError, OSError):  # os.nice: POSIX only
        os.nice(CAM_NICE)
    runners: dict[str, object] = {}
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            return
        if req is None:
            return
        bundle, path, class_index, method, model_sha, overlay, exact = req
        try:
            runner = runners.get((bundle, model_sha))
            if runner is None:
                from export.cam_runtime import CamRunner

                runners.clear()
                # a process that only computes Grad-CAM: bfloat16 where the CPU has it
                runner = runners[(bundle, model_sha)] = CamRunner(bundle, precision="auto")
            conn.send(compute_heatmap(runner, Path(path), class_index, method, overlay, exact))
        except Exception as exc:
            conn.send({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})


class CamProcess:
    """A lazily started child process; :meth:`compute` blocks the *calling* thread only."""

    def __init__(self) -> None:
        self._proc = None
        self._conn = None

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = mp.get_context("spawn")  # no fork of a Qt process
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="cxr-gradcam", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def compute(
        self, bundle: Path, path: Path, class_index: int | None, method: str, model_sha: str = "",
        overlay: bool = True, exact: bool = False,
    ) -> dict:  # fmt: skip
        self._ensure()
        try:
            self._conn.send(
                (str(bundle), str(path), class_index, method, model_sha, overlay, exact)
            )
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self._proc.exitcode if self._proc else None
            self._proc = None
            return {
                "error": f"the Grad-CAM process stopped (exit code {code}); it restarts on the next image"
            }

    def close(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(None)
        self._proc.join(timeout=2)
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc = None
