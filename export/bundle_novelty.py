"""The bundle's "unlike the training data" guard (format 2): its manifest section and the
reference arrays it names, both checked as untrusted input.

The arrays are raw little-endian float32 (``export/novelty_model.py``); their
sizes are checked against the manifest before anything is hashed or read, so
an oversize file is refused without being read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from export.manifest_fields import MANIFEST_NAME, BundleError, check_relpath, section

if TYPE_CHECKING:
    from export.bundle import Manifest


@dataclass(frozen=True)
class NoveltyInfo:
    """The "unlike the training data" guard (format 2): which score, its threshold, and the
    reference arrays (raw little-endian float32, ``export/novelty_model.py``)."""

    score: str = "mahalanobis"
    features_name: str = "features"
    feature_dim: int = 0
    threshold: float = 0.0
    means_file: str = "novelty/means.f32"
    precision_file: str = "novelty/precision.f32"
    evidence: dict[str, Any] = field(default_factory=dict)


def novelty_field(v: Any) -> NoveltyInfo | None:
    """The guard's section, checked as untrusted input: known score, sane sizes, safe paths."""
    from export.novelty_model import MAX_FEATURE_DIM, SCORES

    if v is None:
        return None
    if not isinstance(v, dict):
        raise BundleError("manifest 'novelty' must be an object", file=MANIFEST_NAME)
    thr = v.get("threshold")
    if isinstance(thr, bool) or not isinstance(thr, int | float) or not math.isfinite(thr):
        raise BundleError("manifest 'novelty.threshold' must be a number", file=MANIFEST_NAME)
    info = section(NoveltyInfo, {**v, "threshold": float(thr)}, "novelty")
    if info.score not in SCORES:
        raise BundleError(
            f"manifest 'novelty.score' must be one of {', '.join(SCORES)}", file=MANIFEST_NAME
        )
    if not 1 <= info.feature_dim <= MAX_FEATURE_DIM:
        raise BundleError(
            f"manifest 'novelty.feature_dim' must be 1 to {MAX_FEATURE_DIM}", file=MANIFEST_NAME
        )
    for rel in (info.means_file, info.precision_file):
        check_relpath(rel)
    return info


def check_novelty_sizes(root: Path, manifest: Manifest) -> None:
    """The guard's arrays must be float32 of the sizes the manifest states, checked before
    hashing, so an oversize file is refused without being read. The means' row count is
    matched to the classes when the session starts (``export/onnx_runtime.py``), after the
    ONNX model's own class count, which gives the clearer message when the two disagree."""
    nov = manifest.novelty
    if nov is None:
        return
    d = nov.feature_dim
    row = 4 * d
    checks = (
        (nov.precision_file, lambda n: n == row * d, f"a {d} x {d} float32 array"),
        (nov.means_file, lambda n: n % row == 0 and 0 < n // row <= 4096, f"rows of {d} float32"),
    )
    for rel, ok, what in checks:
        size = (root / rel).stat().st_size
        if not ok(size):
            raise BundleError(
                f"'{rel}' holds {size} bytes, not {what} as the manifest states",
                bundle=root,
                file=rel,
            )
