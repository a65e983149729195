"""How often the reviewer and the model agreed, and how often two reviewers did (Qt-free).

* Reviewer × AI: over the images whose current decision is ``agree`` or
  ``override`` (a reviewer class was given); ``uncertain`` images are counted
  apart and left out of the matrix, so they neither raise nor lower κ.
* Cohen's κ with a 95 % confidence interval from the large-sample standard
  error of Fleiss, Cohen & Everitt (1969), κ ± 1.96·SE clipped to [−1, 1].
  With few images the interval is wide and approximate; it is printed with
  the number of images it rests on.
* Inter-reader κ: each reviewer's latest decision per image comes from the
  store's history (``ReviewStore.decision_history``); every pair of
  reviewers is compared on the images both gave a class to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

Z95 = 1.959963984540054
#: below this many images the large-sample SE means nothing (two images give a zero-width
#: interval): κ is given without an interval
MIN_N_FOR_CI = 10


@dataclass(frozen=True)
class Kappa:
    n: int
    observed: float  # percent agreement as a fraction
    expected: float  # chance agreement from the marginals
    kappa: float | None  # None when chance agreement is 1 (one class only): undefined
    se: float | None
    low: float | None
    high: float | None

    def text(self) -> str:
        if self.kappa is None:
            return f"κ undefined (one class only), n = {self.n}"
        if self.low is None or self.high is None:
            return f"κ = {self.kappa:.2f} (too few images for a 95 % CI), n = {self.n}"
        return f"κ = {self.kappa:.2f} (95 % CI {self.low:.2f} to {self.high:.2f}), n = {self.n}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "percent_agreement": round(self.observed * 100, 2),
            "kappa": self.kappa,
            "kappa_se": self.se,
            "kappa_ci95": None if self.low is None else [self.low, self.high],
            "ci_method": "Fleiss-Cohen-Everitt large-sample SE, kappa +/- 1.96 SE",
        }


def confusion(pairs: Iterable[tuple[str, str]], classes: Sequence[str]) -> list[list[int]]:
    """counts[i][j]: first rater said classes[i], second said classes[j]. Classes outside
    ``classes`` are appended in order of appearance (a reviewer class the model lacks)."""
    labels = list(classes)
    pairs = list(pairs)
    for a, b in pairs:
        for c in (a, b):
            if c not in labels:
                labels.append(c)
    k = len(labels)
    m = [[0] * k for _ in range(k)]
    index = {c: i for i, c in enumerate(labels)}
    for a, b in pairs:
        m[index[a]][index[b]] += 1
    return m


def kappa(matrix: Sequence[Sequence[int]]) -> Kappa | None:
    """Cohen's κ of a square count matrix, None when it is empty."""
    n = sum(map(sum, matrix))
    if n == 0:
        return None
    k = len(matrix)
    p = [[matrix[i][j] / n for j in range(k)] for i in range(k)]
    row = [sum(p[i]) for i in range(k)]
    col = [sum(p[i][j] for i in range(k)) for j in range(k)]
    po = sum(p[i][i] for i in range(k))
    pe = sum(row[i] * col[i] for i in range(k))
    if pe >= 1.0 - 1e-12:
        return Kappa(n, po, pe, None, None, None, None)
    kap = (po - pe) / (1 - pe)
    diag = sum(p[i][i] * (1 - (row[i] + col[i]) * (1 - kap)) ** 2 for i in range(k))
    off = sum(p[i][j] * (col[i] + row[j]) ** 2 for i in range(k) for j in range(k) if i != j)
    var = (diag + (1 - kap) ** 2 * off - (kap - pe * (1 - kap)) ** 2) / (n * (1 - pe) ** 2)
    se = math.sqrt(max(var, 0.0))
    if n < MIN_N_FOR_CI:
        return Kappa(n, po, pe, kap, None, None, None)
    low, high = max(-1.0, kap - Z95 * se), min(1.0, kap + Z95 * se)
    return Kappa(n, po, pe, kap, se, low, high)


@dataclass(frozen=True)
class Agreement:
    """Reviewer class × AI class over the decided images."""

    labels: list[str]
    matrix: list[list[int]]  # rows: reviewer class, columns: AI class
    kappa: Kappa | None
    agreed: int  # decision "agree"
    overridden: int
    uncertain: int
    inter_reader: list[tuple[str, str, Kappa]]

    @property
    def n(self) -> int:
        return sum(map(sum, self.matrix))

    def line(self) -> str:
        """One line for ``cxr classify``'s summary."""
        if self.kappa is None:
            base = f"no reviewer classes yet ({self.uncertain} uncertain)"
        else:
            base = (
                f"reviewer vs AI: {self.kappa.observed * 100:.0f} % agreement, "
                f"{self.kappa.text()}; {self.uncertain} uncertain"
            )
        pairs = "; ".join(f"{a} vs {b}: {k.text()}" for a, b, k in self.inter_reader)
        return base + (f"; inter-reader {pairs}" if pairs else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "classes": self.labels,
            "confusion_matrix": {"rows": "reviewer class", "columns": "AI class",
                                 "counts": self.matrix},
            "reviewer_vs_ai": None if self.kappa is None else self.kappa.as_dict(),
            "decisions": {"agree": self.agreed, "override": self.overridden,
                          "uncertain": self.uncertain},
            "inter_reader": [
                {"reviewers": [a, b], **k.as_dict()} for a, b, k in self.inter_reader
            ],
        }  # fmt: skip


def latest_by_reviewer(
    history: Iterable[tuple[str, str, str | None, str, str]],
) -> dict[str, dict[str, tuple[str | None, str | None]]]:
    """rel path -> reviewer -> (decision, class): each reviewer's latest, from the history
    rows (rel, field, new value, reviewer, time) in time order."""
    out: dict[str, dict[str, list[str | None]]] = {}
    for rel, field, new, who, _at in history:
        state = out.setdefault(rel, {}).setdefault(who, [None, None])
        state[0 if field == "decision" else 1] = new
    return {
        rel: {who: (d, c if d in ("agree", "override") else None) for who, (d, c) in r.items()}
        for rel, r in out.items()
    }


def inter_reader(
    latest: dict[str, dict[str, tuple[str | None, str | None]]], classes: Sequence[str]
) -> list[tuple[str, str, Kappa]]:
    """Cohen's κ of every pair of reviewers over the images both gave a class to."""
    reviewers = sorted({who for r in latest.values() for who in r})
    out = []
    for a, b in combinations(reviewers, 2):
        pairs = [
            (r[a][1], r[b][1]) for r in latest.values() if a in r and b in r and r[a][1] and r[b][1]
        ]
        if pairs and (k := kappa(confusion(pairs, classes))) is not None:
            out.append((a, b, k))
    return out


def agreement(
    decided: Iterable[tuple[str | None, str | None, str | None]],
    classes: Sequence[str],
    history: Iterable[tuple[str, str, str | None, str, str]] = (),
) -> Agreement:
    """``decided``: (AI class, decision, reviewer class) per image; ``history`` as
    :meth:`desktop.review_store.ReviewStore.decision_history` gives it."""
    pairs: list[tuple[str, str]] = []
    counts = {"agree": 0, "override": 0, "uncertain": 0}
    for ai, decision, reviewer_class in decided:
        if decision in counts:
            counts[decision] += 1
        if decision == "agree" and not reviewer_class:  # imported without the AI's class
            reviewer_class = ai
        if decision in ("agree", "override") and ai and reviewer_class:
            pairs.append((reviewer_class, ai))
    m = confusion(pairs, classes)
    labels = list(classes) + [c for a, b in pairs for c in (a, b) if c not in classes]
    labels = list(dict.fromkeys(labels))
    return Agreement(
        labels,
        m,
        kappa(m),
        counts["agree"],
        counts["override"],
        counts["uncertain"],
        inter_reader(latest_by_reviewer(history), classes),
    )
