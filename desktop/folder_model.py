"""Sorting, filtering and summarising a folder's results: plain data, tested without Qt."""

from __future__ import annotations

from collections.abc import Callable

from desktop.review_store import Review
from export.results import ImageResult

#: filters that exist whatever the model's classes (its class names go after "All")
FIXED_FILTERS = (
    "Not reviewed",
    "Uncertain AI",
    "Looked outside lungs",
    "Unlike training data",
    "Errors",
)
SORTS = ("Name", "Most uncertain first", "Confidence (high first)", "AI class")


def filter_names(class_names: tuple[str, ...]) -> tuple[str, ...]:
    """The list's filters for a model: "All", every class it predicts, then the fixed ones.

    A class named "All" or like a fixed filter gets no filter of its own: the
    two would be indistinguishable, and the fixed filter keeps its meaning.
    """
    classes = tuple(c for c in class_names if c != "All" and c not in FIXED_FILTERS)
    return ("All", *classes, *FIXED_FILTERS)


def format_probability(p: float, digits: int = 1) -> str:
    """Never print 100 % or 0 %: a model is not certain, and a reviewer should not read it so."""
    hi = 1.0 - 0.5 * 10 ** -(digits + 2)
    if p >= hi:
        return f">{100 - 10**-digits:.{digits}f} %" if digits else ">99 %"
    if p <= 1.0 - hi:
        return f"<{10**-digits:.{digits}f} %" if digits else "<1 %"
    return f"{p * 100:.{digits}f} %"


def is_unlike(e: ImageResult) -> bool:
    """The image is unlike the model's training data (its probabilities mean little)."""
    return e.novelty is not None and e.novelty.unlike


def novelty_status(e: ImageResult) -> str:
    """The list's short "unlike the training data" column: a warning, "no" when the model's
    own check found the image familiar, "–" when only the checks that need no model ran."""
    n = e.novelty
    if n is None:
        return ""
    if n.unlike:
        return "⚠ yes"
    return "no" if n.available else "–"


def novelty_text(e: ImageResult) -> str:
    """The verdict in words (tooltips, panel, report)."""
    n = e.novelty
    if n is None:
        return ""
    score = ""
    if n.score is not None:
        thr = "" if n.threshold is None else f" (threshold {n.threshold:.3g})"
        score = f"model score {n.score:.3g}{thr}"
    if n.unlike:
        lines = ["Unlike the training data: the probabilities may mean little.", *n.reasons]
        return "\n".join(lines + ([score] if score else []))
    if not n.available:
        return (
            "Like the training data as far as the checks that need no model see; "
            "this bundle has no model-based check"
        )
    return f"Like the training data ({score})" if score else "Like the training data"


def novelty_summary(entries: list[ImageResult]) -> tuple[int, int]:
    """(unlike the training data, judged) over the classified images."""
    judged = [e for e in entries if e.novelty is not None and e.probabilities is not None]
    return sum(e.novelty.unlike for e in judged), len(judged)


def review_status(r: Review | None) -> str:
    """The list's short review column."""
    if r is None or r.decision is None:
        return ""
    if r.decision == "agree":
        return "✓ agreed"
    if r.decision == "override":
        return f"✎ {r.reviewer_class}"
    return "? uncertain"


def review_summary(r: Review | None) -> str:
    """The panel's line: who decided what, when."""
    if r is None or r.decision is None:
        return "Not reviewed"
    what = {
        "agree": f"Agreed ({r.reviewer_class})",
        "override": f"Overridden → {r.reviewer_class}",
        "uncertain": "Marked uncertain",
    }[r.decision]
    return f"{what} by {r.reviewer}, {r.updated_at[:19]} UTC"


def visible_rows(
    entries: list[ImageResult],
    class_names: tuple[str, ...],
    *,
    filter_name: str = "All",
    sort_name: str = "Name",
    uncertain_below: float = 0.6,
    min_lung_share: float = 0.5,
) -> list[int]:
    """Indices of ``entries`` to show, in display order (see :func:`filter_names`)."""

    def keep(e: ImageResult) -> bool:
        if filter_name in class_names and filter_name not in FIXED_FILTERS:
            return e.predicted(class_names) == filter_name
        if filter_name == "Not reviewed":
            return e.review is None or e.review.decision is None
        if filter_name == "Uncertain AI":
            return e.confidence is not None and e.confidence < uncertain_below
        if filter_name == "Looked outside lungs":
            return e.flagged(min_lung_share)
        if filter_name == "Unlike training data":
            return is_unlike(e)
        if filter_name == "Errors":
            return e.error is not None
        if filter_name == "All":
            return True
        raise ValueError(f"unknown filter {filter_name!r}")

    rows = [i for i, e in enumerate(entries) if keep(e)]
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


def attention_summary(entries: list[ImageResult], min_lung_share: float) -> tuple[int, int, int]:
    """(flagged, checked, classified without error) for the folder summary."""
    ok = [e for e in entries if e.probabilities is not None]
    checked = [e for e in ok if e.attention is not None]
    return sum(e.flagged(min_lung_share) for e in checked), len(checked), len(ok)


def elide_path(rel: str, fits: Callable[[str], bool]) -> str:
    """``rel`` (a path relative to the folder, "/"-separated) shortened until ``fits`` says
    it fits, keeping what tells files apart: the file's whole name before its folders (of
    which the start and the end stay: "16-bit/..." or ".../patient-0123/"), and the end of
    the name (the numbers of "IM-0001-0042.png") before its start.

    "ward-7/patient-0123/IM-0001.png" -> "ward-…-0123/IM-0001.png" -> "…3/IM-0001.png"
    -> "…/IM-0001.png"; then, the name cut, a hint of the folder stays while the name keeps
    :data:`NAME_TAIL_MIN` characters ("16-…00001.png" beside "8-b…00001.png"), then the
    name's end alone ("…01.png"); at the least "…" and the name's last character.
    """
    if len(rel) <= 1 or fits(rel):
        return rel
    folders, _, name = rel.rpartition("/")
    if folders:

        def shortened(n: int) -> str:  # n characters of the folders: the end gets the odd one
            end = (n + 1) // 2
            return folders[: n - end] + "…" + folders[len(folders) - end :] + "/" + name

        keep = _longest(len(folders) - 1, lambda n: fits(shortened(n)))
        if keep:
            return shortened(keep)
        if fits("…/" + name):
            return "…/" + name
        hint = folders[:FOLDER_HINT]
        keep = _longest(len(name) - 1, lambda k: fits(hint + "…" + name[-k:]))
        if keep >= NAME_TAIL_MIN:
            return hint + "…" + name[-keep:]
    keep = _longest(len(name) - 1, lambda k: fits("…" + name[-k:]))
    return "…" + name[-max(keep, 1) :]


#: characters of the folders kept before a cut name ("16-" of "16-bit/...")
FOLDER_HINT = 3
#: the fewest characters of a cut name's end worth a folder hint ("01.png")
NAME_TAIL_MIN = 6


def _longest(most: int, fits: Callable[[int], bool]) -> int:
    """The largest k in [1, most] with ``fits(k)`` (fits is monotone), else 0."""
    lo, hi = 0, most
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
