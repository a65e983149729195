"""The bundle's TF ``cam`` signature, loaded lazily (TensorFlow takes seconds to import).

Construct a :class:`CamRunner` inside the worker thread that will use it,
never on the GUI thread.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from export.bundle import BundleError, Manifest, bundle_root, load_bundle

#: set to 1 to see TensorFlow's native start-up messages (absl, CUDA probing, XLA)
VERBOSE_ENV = "CXR_VERBOSE"


@contextlib.contextmanager
def quiet_native_stderr():
    """TensorFlow's C++ start-up chatter ("cudart_stub", "failed call to cuInit", XLA) goes
    to file descriptor 2 behind Python's back: it is sent to the null device while
    TensorFlow is imported, a model loaded and warmed up, unless CXR_VERBOSE=1. Python
    exceptions are raised as usual."""
    if os.environ.get(VERBOSE_ENV, "").strip() == "1":
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured or replaced stream
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)


#: with precision "auto": CXR_CAM_PRECISION=fp32 forces the XLA float32 path, bf16 bfloat16
PRECISION_ENV = "CXR_CAM_PRECISION"


def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def use_bfloat16(precision: str | None = None) -> bool:
    """bfloat16 Grad-CAM? ``precision``: "fp32" (default), "bf16", or "auto" = bfloat16 on
    CPUs with native bf16 (AMX / AVX512-BF16) unless :data:`PRECISION_ENV` says otherwise.

    The switch is process-wide (TF's graph optimiser), so only a process that does
    nothing but Grad-CAM asks for "auto": the app's Grad-CAM child, for the heatmaps
    it displays. A training or export process never turns it on (its parity checks
    compare float32 graphs), and the attention figures use ``run(exact=True)``.

    A heatmap is a picture normalised to [0, 1]: bfloat16's 3 significant digits
    move it by about a percent (the benchmark reports the difference), while
    the class probabilities the reviewer reads always come from ONNX Runtime.
    """
    choice = (precision or "fp32").lower()
    if choice == "auto":
        choice = (os.environ.get(PRECISION_ENV) or "auto").lower()
    if choice not in ("auto", "fp32", "bf16"):
        raise ValueError(f"{PRECISION_ENV} must be auto, fp32 or bf16, not {choice!r}")
    return choice == "bf16" or (choice == "auto" and cpu_has_bf16())


class CamRunner:
    def __init__(
        self,
        bundle: str | os.PathLike[str],
        manifest: Manifest | None = None,
        precision: str | None = None,
    ) -> None:
        with quiet_native_stderr():
            self._load(bundle, manifest, precision)

    def _load(self, bundle, manifest: Manifest | None, precision: str | None) -> None:
        if os.environ.get(VERBOSE_ENV, "").strip() != "1":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's info and warning lines
        import tensorflow as tf

        root = bundle_root(bundle)
        self.manifest = m = manifest or load_bundle(root)
        try:
            self._module = tf.saved_model.load(str(root / m.savedmodel.directory))
        except Exception as exc:
            raise BundleError(
                f"SavedModel cannot be loaded ({type(exc).__name__})",
                bundle=root,
                file=m.savedmodel.directory,
            ) from None
        sigs = self._module.signatures
        if m.savedmodel.cam_signature not in sigs:
            raise BundleError(
                f"SavedModel has no '{m.savedmodel.cam_signature}' signature", bundle=root
            )
        # the XLA `cam` stays float32 even with the bfloat16 switch on: the exact path
        self._fn = self._fn_exact = sigs[m.savedmodel.cam_signature]
        self.precision = "fp32 (XLA)"
        #: where TensorFlow runs Grad-CAM: "GPU" when it sees one (it places the ops there)
        self.device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        graph = "cam_graph"  # export.build.GRAPH_CAM_SIGNATURE (not imported: build pulls Keras)
        if graph in sigs and self.device == "CPU" and use_bfloat16(precision):
            # oneDNN's bfloat16 rewrite of the plain graph (AMX or AVX512-BF16 where the CPU
            # has them); process-wide, which suits the processes that run Grad-CAM (the app's
            # child, the CLI)
            tf.config.optimizer.set_experimental_options(
                {"auto_mixed_precision_onednn_bfloat16": True}
            )
            self._fn = sigs[graph]
            self.precision = (
                "bfloat16 (oneDNN)" if cpu_has_bf16() else "bfloat16 requested (no native bf16)"
            )
        self._tf = tf
        embedded = getattr(self._module, "class_names", None)
        if embedded is not None:
            import json

            names = json.loads(embedded.numpy().decode("utf-8"))
            if names != list(m.class_names):
                raise BundleError(
                    f"the SavedModel was exported for classes {names} but the manifest lists "
                    f"{list(m.class_names)} (edited manifest?)",
                    bundle=root,
                )
        # warm-up (XLA compiles here) and the TF-side cross-check of the class count
        probe = np.zeros((1, m.input.height, m.input.width, m.input.channels), np.float32)
        _, _, probs = self.run(probe, [0])
        if probs.shape[-1] != len(m.class_names):
            raise BundleError(
                f"SavedModel gives {probs.shape[-1]} classes but the manifest lists "
                f"{len(m.class_names)}",
                bundle=root,
            )

    def run(
        self, images: np.ndarray, class_index, *, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(activations, gradients of the class logit, probabilities), all NumPy.

        ``exact``: float32 through XLA even where the runner displays in bfloat16 (the
        "looked outside the lungs" figures, which must match reports and ``cxr audit``).
        """
        tf = self._tf
        x = np.ascontiguousarray(images, np.float32)
        idx = np.asarray(class_index, np.int32).reshape(-1)
        fn = self._fn_exact if exact else self._fn
        out = fn(image=tf.constant(x), class_index=tf.constant(idx))
        return out["activations"].numpy(), out["gradients"].numpy(), out["probabilities"].numpy()
