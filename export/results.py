"""The typed public face shared by the app and every command.

* :class:`Bundle`: a model bundle opened and verified once, then handed down.
* :class:`Prediction`: what the classifier says about one image.
* :class:`ImageResult`: the one per-image result of the app's list,
  ``cxr classify``, ``cxr report`` and ``cxr audit``.
* :class:`FileKey`: what makes a cached result stale (the file changed).

Grad-CAM's typed result, :class:`export.explain.Heatmap`, and the attention
result, :class:`export.attention.Attention` (with its explicit "not
judged" state), live next to the code that makes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.attention import Attention, flag
from export.bundle import Manifest, bundle_root, load_bundle
from export.novelty import Novelty


@dataclass(frozen=True)
class Bundle:
    """A bundle whose hashes were verified when it was opened; pass this, not the path."""

    root: Path
    manifest: Manifest

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Bundle:
        root = bundle_root(path)
        return cls(root, load_bundle(root))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.class_names)

    @property
    def onnx_sha256(self) -> str:
        """Identifies the model: cached results are valid for this hash only."""
        return self.manifest.files.get(self.manifest.onnx.file, "")

    @property
    def results_key(self) -> str:
        """What cached results are valid for (:func:`results_key`)."""
        return results_key(self.manifest)


def results_key(manifest: Manifest) -> str:
    """The ONNX file's hash, plus the guard's statistics where the bundle has them: a bundle
    re-exported from the same weights with another threshold or reference arrays gives the
    same probabilities but other "unlike the training data" verdicts."""
    import hashlib
    import json

    onnx = manifest.files.get(manifest.onnx.file, "")
    nov = manifest.novelty
    if nov is None or not onnx:
        return onnx
    guard = {
        "score": nov.score,
        "threshold": nov.threshold,
        "feature_dim": nov.feature_dim,
        "means": manifest.files.get(nov.means_file, ""),
        "precision": manifest.files.get(nov.precision_file, ""),
    }
    digest = hashlib.sha256(json.dumps(guard, sort_keys=True).encode()).hexdigest()[:16]
    return f"{onnx}+{digest}"


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray
    class_names: tuple[str, ...]

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.class_names[self.index]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


@dataclass(frozen=True)
class FileKey:
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileKey:
        try:
            st = Path(path).stat()
            return cls(st.st_size, st.st_mtime_ns)
        except OSError:
            return cls(-1, -1)


@dataclass
class ImageResult:
    """One image of a folder: where it is, what the model said, where it looked, the review.

    ``error`` is set when the file could not be classified (the reason, in
    words); ``attention`` once the predicted class's Grad-CAM was measured;
    ``review`` is the reviewer's :class:`desktop.review_store.Review`, if any;
    ``novelty`` whether the image is unlike the model's training data.
    """

    path: Path
    rel_path: str
    key: FileKey | None = None
    probabilities: np.ndarray | None = None
    error: str | None = None
    attention: Attention | None = None
    review: Any = None
    provider: str = ""
    #: is the image unlike the training data? None until checked
    novelty: Novelty | None = None

    @property
    def classified(self) -> bool:
        return self.probabilities is not None or self.error is not None

    @property
    def status(self) -> str:
        return "error" if self.error is not None else "ok" if self.classified else "pending"

    @property
    def confidence(self) -> float | None:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    @property
    def predicted_index(self) -> int | None:
        return None if self.probabilities is None else int(np.argmax(self.probabilities))

    def predicted(self, class_names: tuple[str, ...]) -> str | None:
        i = self.predicted_index
        return None if i is None else class_names[i]

    def prediction(self, class_names: tuple[str, ...]) -> Prediction | None:
        p = self.probabilities
        return None if p is None else Prediction(p, tuple(class_names))

    def flagged(self, min_lung_share: float) -> bool:
        """The model looked outside the lungs (see :func:`export.attention.flag`)."""
        return self.error is None and flag(self.attention, min_lung_share)

    def set_outcome(self, probabilities: np.ndarray | None, error: str | None) -> None:
        self.probabilities = None if probabilities is None else np.asarray(probabilities)
        self.error = error
