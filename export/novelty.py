"""Is an image unlike the model's training data? The typed verdict every view shows.

A verdict combines two kinds of evidence, each with its reason in words:

* the model's own score on the image (from the bundle's ``features`` output
  and the reference statistics the export stored), against the threshold the
  export fixed on the validation split; "not available" for bundles exported
  before the guard existed;
* checks that need no model (a colour photograph, a lateral DICOM, inverted
  polarity, ...).

A verdict never changes the prediction: the reviewer sees both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Novelty:
    #: the bundle carries the reference statistics (older bundles do not)
    available: bool
    #: the model-based score (higher = more unlike the training data); None if not available
    score: float | None = None
    #: the score above which an image is unlike the training data (fixed at export)
    threshold: float | None = None
    #: every reason the image is unlike the training data, in words; empty = like it
    reasons: tuple[str, ...] = ()

    @property
    def unlike(self) -> bool:
        return bool(self.reasons)

    @classmethod
    def not_available(cls, reasons: tuple[str, ...] = ()) -> Novelty:
        return cls(False, None, None, tuple(reasons))

    def with_reasons(self, more: tuple[str, ...]) -> Novelty:
        return Novelty(self.available, self.score, self.threshold, self.reasons + tuple(more))

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "score": self.score,
            "threshold": self.threshold,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Novelty:
        score, thr = d.get("score"), d.get("threshold")
        return cls(
            bool(d.get("available")),
            None if score is None else float(score),
            None if thr is None else float(thr),
            tuple(str(r) for r in d.get("reasons") or ()),
        )
