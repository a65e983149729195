"""The review session as plain data: files, AI results, reviews; sorting and filtering.

Qt-free so it is tested without a display; the window only renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop.review_store import Review
from export.attention import flag

#: the filters that do not depend on the model; a bundle's classes sit between "All" and these
STATE_FILTERS = ("Not reviewed", "Uncertain AI", "Looked outside lungs", "Errors")
SORTS = ("Name", "Most uncertain first", "Confidence (high first)", "AI class")


@dataclass
class Entry:
    path: Path
    rel_path: str
    probabilities: np.ndarray | None = None
    error: str | None = None
    review: Review | None = None
    cache_key: tuple = field(default=())
    #: where the predicted class's Grad-CAM lay (``export.attention`` shares), once computed
    attention: dict | None = None

    def flagged(self, min_lung_share: float) -> bool:
        """The model looked outside the lungs (see ``export.attention.flag``)."""
        return self.error is None and flag(self.attention, min_lung_share)

    @property
    def classified(self) -> bool:
        return self.probabilities is not None or self.error is not None

    def predicted(self, class_names: tuple[str, ...]) -> str | None:
        if self.probabilities is None:
            return None
        return class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float | None:
        return None if self.probabilities is None else float(np.max(self.probabilities))

    def status_text(self) -> str:
        r = self.review
        if r is None or r.decision is None:
            return ""
        if r.decision == "agree":
            return "✓ agreed"
        if r.decision == "override":
            return f"✎ {r.reviewer_class}"
        return "? uncertain"


def format_probability(p: float, digits: int = 1) -> str:
    """Never print 100 % or 0 %: a model is not certain, and a reviewer should not read it so."""
    hi = 1.0 - 0.5 * 10 ** -(digits + 2)
    if p >= hi:
        return f">{100 - 10**-digits:.{digits}f} %" if digits else ">99 %"
    if p <= 1.0 - hi:
        return f"<{10**-digits:.{digits}f} %" if digits else "<1 %"
    return f"{p * 100:.{digits}f} %"


def filter_names(class_names: tuple[str, ...]) -> tuple[str, ...]:
    """The list filters for a bundle: "All", every class it predicts, then the state filters.

    A class named "All" or like a state filter gets no filter of its own: the
    two would be indistinguishable, and the state filter keeps its meaning.
    """
    classes = tuple(c for c in class_names if c != "All" and c not in STATE_FILTERS)
    return ("All", *classes, *STATE_FILTERS)


def file_key(path: Path) -> tuple:
    """What makes a cached prediction stale: the file changed (size or time)."""
    try:
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return (str(path), -1, -1)


def visible_rows(
    entries: list[Entry],
    class_names: tuple[str, ...],
    *,
    filter_name: str = "All",
    sort_name: str = "Name",
    uncertain_below: float = 0.6,
    min_lung_share: float = 0.5,
) -> list[int]:
    """Indices of ``entries`` to show, in display order."""
    rows = list(range(len(entries)))

    def keep(i: int) -> bool:
        e = entries[i]
        if filter_name == "All":
            return True
        if filter_name in STATE_FILTERS:
            return state(e)
        if filter_name in class_names:
            return e.predicted(class_names) == filter_name
        raise ValueError(f"unknown filter {filter_name!r}")

    def state(e: Entry) -> bool:
        if filter_name == "Not reviewed":
            return e.review is None or e.review.decision is None
        if filter_name == "Uncertain AI":
            return e.confidence is not None and e.confidence < uncertain_below
        if filter_name == "Looked outside lungs":
            return e.flagged(min_lung_share)
        return e.error is not None  # "Errors"

    rows = [i for i in rows if keep(i)]
    if sort_name == "Name":
        rows.sort(key=lambda i: entries[i].rel_path.lower())
    elif sort_name == "Most uncertain first":
        rows.sort(key=lambda i: (entries[i].confidence is None, entries[i].confidence or 0.0))
    elif sort_name == "Confidence (high first)":
        rows.sort(key=lambda i: (entries[i].confidence is None, -(entries[i].confidence or 0.0)))
    elif sort_name == "AI class":
        rows.sort(key=lambda i: (entries[i].predicted(class_names) or "~", entries[i].rel_path))
    else:
        raise ValueError(f"unknown sort {sort_name!r}")
    return rows


def attention_summary(entries: list[Entry], min_lung_share: float) -> tuple[int, int, int]:
    """(flagged, checked, classified without error) for the folder summary."""
    ok = [e for e in entries if e.probabilities is not None]
    checked = [e for e in ok if e.attention is not None]
    return sum(e.flagged(min_lung_share) for e in checked), len(checked), len(ok)
