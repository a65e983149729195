"""The model-based "unlike the training data" score: fitted at export, applied at inference.

Two scores are fitted and compared at export; the bundle keeps the one that
separates best:

* ``mahalanobis``: the distance of an image's penultimate-layer features to
  the nearest class mean, under one covariance shared by all classes
  (Ledoit-Wolf shrinkage: the features have hundreds of dimensions and the
  training split may have only a thousand images, where the sample
  covariance is singular or badly conditioned; the shrinkage towards a scaled
  identity is the one that minimises the expected error, with no knob to tune);
* ``energy``: ``-logsumexp(logits)``, high when no class has a large logit.

The threshold is the 99th percentile of the *validation* split's scores
(images the statistics were not fitted on), so about 1 % of in-distribution
images are flagged. Reference arrays travel as raw little-endian float32 files
whose shapes the manifest states: reading them runs no parser that could
execute code (no pickle). NumPy only: no Qt, no TensorFlow.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.novelty import Novelty

SCORES = ("mahalanobis", "energy")
#: the percentile of validation scores above which an image is flagged
THRESHOLD_PERCENTILE = 99.0
THRESHOLD_RULE = "99th percentile of the validation split's scores"
SELECTION_RULE = "highest worst-case AUROC over the out-of-distribution sets (then mean)"
#: the widest feature vector a bundle may carry (precision matrix <= 64 MB)
MAX_FEATURE_DIM = 4096
MEANS_FILE = "novelty/means.f32"
PRECISION_FILE = "novelty/precision.f32"


@dataclass(frozen=True)
class Reference:
    """What the scorer needs: which score, its threshold, class means and shared precision."""

    score: str
    threshold: float
    means: np.ndarray  # (classes, dim) float32
    precision: np.ndarray  # (dim, dim) float32

    def scores(self, logits: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        if self.score == "energy":
            return energy(logits)
        if features is None:
            raise ValueError("the Mahalanobis score needs the model's features")
        return mahalanobis(features, self.means, self.precision)

    def verdicts(self, logits: np.ndarray, features: np.ndarray | None) -> list[Novelty]:
        out = []
        for s in self.scores(logits, features):
            s = float(s)
            reasons = ()
            if not math.isfinite(s) or s > self.threshold:
                reasons = (
                    f"the model's features are far from its training images (score {s:.1f} > {self.threshold:.1f})",
                )
            out.append(Novelty(True, s, self.threshold, reasons))
        return out


# --------------------------------------------------------------------------- the scores


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrunk covariance of centred rows ``x`` (n, d) and the shrinkage in [0, 1]."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    s = x.T @ x / n
    mu = float(np.trace(s)) / d
    delta = float(((s - mu * np.eye(d)) ** 2).sum()) / d
    x2 = x * x
    beta = float(((x2.T @ x2) / n - s * s).sum()) / (d * n)
    shrink = 0.0 if delta <= 0 else min(1.0, max(0.0, beta / delta))
    cov = (1.0 - shrink) * s + shrink * mu * np.eye(d)
    return cov, shrink


def fit_gaussian(
    features: np.ndarray, labels: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Class means (C, D), inverse of the shared shrunk covariance (D, D), shrinkage."""
    f = np.asarray(features, np.float64)
    y = np.asarray(labels)
    means = np.zeros((n_classes, f.shape[1]))
    for c in range(n_classes):
        rows = f[y == c]
        means[c] = rows.mean(0) if len(rows) else f.mean(0)
    cov, shrink = ledoit_wolf(f - means[y])
    # a constant feature (a dead ReLU) leaves the identity part at zero: floor the diagonal
    cov += np.eye(cov.shape[0]) * max(1e-6 * float(np.trace(cov)) / len(cov), 1e-12)
    precision = np.linalg.inv(cov)
    precision = (precision + precision.T) / 2
    return means.astype(np.float32), precision.astype(np.float32), shrink


def mahalanobis(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Distance to the nearest class mean under the shared precision, one per row.

    Up to :data:`EINSUM_MAX_ROWS` rows (a model batch) the products go through ``einsum``'s
    own loops, not BLAS: 16-32 rows against a 256x256 to 512x512 precision are too few for
    BLAS's threads, which cost more to wake than the arithmetic and, while decode workers
    and ONNX Runtime hold the cores, took 15 ms a batch of 16 in the folder pass (einsum:
    0.2 ms); and each row's score is the same whatever batch it came in. A whole
    validation set at export goes through BLAS (5,000 x 512: 82 ms against einsum's 309;
    2,000 x 2,048: 0.3 s against 5.6), where the last bits do not matter.
    """
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    p = np.asarray(precision, np.float64)
    m = np.asarray(means, np.float64)
    fp = np.einsum("nd,de->ne", f, p) if len(f) <= EINSUM_MAX_ROWS else f @ p
    mp = np.einsum("cd,de->ce", m, p)
    d2 = (
        np.einsum("nd,nd->n", fp, f)[:, None]
        - 2.0 * np.einsum("nd,cd->nc", fp, m)
        + np.einsum("cd,cd->c", mp, m)[None, :]
    )
    return np.sqrt(np.maximum(d2.min(1), 0.0))


#: rows up to which :func:`mahalanobis` avoids BLAS (a model batch is at most 32)
EINSUM_MAX_ROWS = 64


def energy(logits: np.ndarray) -> np.ndarray:
    """``-logsumexp(logits)``: low when one class is confidently present."""
    z = np.asarray(logits, np.float64)
    top = z.max(1)
    return -(top + np.log(np.exp(z - top[:, None]).sum(1)))


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an outside image > score of an inside one), ties counting half."""
    a = np.asarray(inside, np.float64)
    b = np.asarray(outside, np.float64)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    both = np.concatenate([a, b])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both))
    sorted_vals = both[order]
    i = 0
    while i < len(both):  # average ranks over ties
        j = i
        while j + 1 < len(both) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rb = ranks[len(a) :].sum()
    return float((rb - len(b) * (len(b) + 1) / 2.0) / (len(a) * len(b)))


# --------------------------------------------------------------------------- fitting at export


def fit_reference(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    n_classes: int,
    val_outputs: tuple[np.ndarray, np.ndarray],
    ood_outputs: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[Reference, dict[str, Any]]:
    """Fit both scores, compare them on validation vs each OOD set, keep the better one.

    ``*_outputs`` are (logits, features) pairs. Returns the reference and the
    evidence the manifest records (AUROCs of both scores, the choice, the rules).
    """
    means, precision, shrink = fit_gaussian(train_features, train_labels, n_classes)
    val_logits, val_features = val_outputs
    scored = {
        "mahalanobis": lambda lo, fe: mahalanobis(fe, means, precision),
        "energy": lambda lo, fe: energy(lo),
    }
    table: dict[str, dict[str, float]] = {}
    for name, fn in scored.items():
        v = fn(val_logits, val_features)
        table[name] = {k: round(auroc(v, fn(lo, fe)), 4) for k, (lo, fe) in ood_outputs.items()}

    def rank(name: str) -> tuple[float, float]:
        vals = list(table[name].values())
        return (min(vals), float(np.mean(vals))) if vals else (0.0, 0.0)

    chosen = max(SCORES, key=rank) if ood_outputs else "mahalanobis"
    val_scores = scored[chosen](val_logits, val_features)
    threshold = float(np.percentile(val_scores, THRESHOLD_PERCENTILE))
    evidence = {
        "auroc": table,
        "selection_rule": SELECTION_RULE if ood_outputs else "no OOD sets given: mahalanobis",
        "threshold_rule": THRESHOLD_RULE,
        "shrinkage": float(shrink),
        "shrinkage_method": "Ledoit-Wolf",
        "val_flagged": float((val_scores > threshold).mean()),
        "n_train": len(train_labels),
        "n_val": len(val_scores),
        "ood_flagged": {
            k: float((scored[chosen](lo, fe) > threshold).mean())
            for k, (lo, fe) in ood_outputs.items()
        },
    }
    return Reference(chosen, threshold, means, precision), evidence


def write_arrays(root: str | os.PathLike[str], ref: Reference) -> None:
    """The two arrays as raw little-endian float32 (C order) under ``root/novelty/``."""
    root = Path(root)
    (root / MEANS_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / MEANS_FILE).write_bytes(np.ascontiguousarray(ref.means, "<f4").tobytes())
    (root / PRECISION_FILE).write_bytes(np.ascontiguousarray(ref.precision, "<f4").tobytes())


def read_array(path: str | os.PathLike[str], shape: tuple[int, ...]) -> np.ndarray:
    """A raw float32 file of exactly ``shape``: a wrong size or a non-finite value is refused."""
    from export.files import TooLarge, read_regular

    want = 4 * math.prod(shape)
    try:
        data = read_regular(path, want)
    except TooLarge:
        raise ValueError(f"{Path(path).name} is larger than {shape} float32") from None
    if len(data) != want:
        raise ValueError(f"{Path(path).name} holds {len(data)} bytes, not {shape} float32")
    arr = np.frombuffer(data, dtype="<f4").reshape(shape).astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{Path(path).name} holds values that are not finite numbers")
    return arr


__all__ = [
    "MAX_FEATURE_DIM",
    "SCORES",
    "Reference",
    "auroc",
    "energy",
    "fit_gaussian",
    "fit_reference",
    "ledoit_wolf",
    "mahalanobis",
    "read_array",
    "write_arrays",
]
