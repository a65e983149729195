"""The bundle's TF ``cam`` signature, loaded lazily (TensorFlow takes seconds to import).

Construct a :class:`CamRunner` inside the worker thread that will use it,
never on the GUI thread.
"""

from __future__ import annotations

import os

import numpy as np

from export.bundle import BundleError, Manifest, bundle_root, load_bundle


class CamRunner:
    def __init__(self, bundle: str | os.PathLike[str], manifest: Manifest | None = None) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        root = bundle_root(bundle)
        self.manifest = m = manifest or load_bundle(root)
        try:
            self._module = tf.saved_model.load(str(root / m.savedmodel.directory))
        except Exception as exc:
            raise BundleError(f"SavedModel cannot be loaded ({type(exc).__name__})", bundle=root,
                              file=m.savedmodel.directory) from None  # fmt: skip
        sigs = self._module.signatures
        if m.savedmodel.cam_signature not in sigs:
            raise BundleError(
                f"SavedModel has no '{m.savedmodel.cam_signature}' signature", bundle=root
            )
        self._fn = sigs[m.savedmodel.cam_signature]
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

    def run(self, images: np.ndarray, class_index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(activations, gradients of the class logit, probabilities), all NumPy."""
        tf = self._tf
        x = np.ascontiguousarray(images, np.float32)
        idx = np.asarray(class_index, np.int32).reshape(-1)
        out = self._fn(image=tf.constant(x), class_index=tf.constant(idx))
        return out["activations"].numpy(), out["gradients"].numpy(), out["probabilities"].numpy()
