"""Marks a reviewer puts on an image: arrow, ellipse, rectangle, freehand outline, text label.

Qt-free. Points are pixels of the original image file, origin top-left, x to
the right and y down, so a mark stays on the same anatomy through zoom, pan,
window/level and window resizes, and means the same thing in a report, a PNG
export, a reviews JSON and a COCO file.

Shapes by kind (``points``):

* ``arrow``: ``[tail, head]``: the head is the point shown.
* ``ellipse`` / ``rectangle``: two opposite corners of the bounding box.
* ``polyline``: a freehand outline, ≥ 2 points (closed when drawn as a region).
* ``text``: one anchor point; ``text`` holds the label.

Any kind may carry a ``text`` label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("arrow", "ellipse", "rectangle", "polyline", "text")
#: points each kind needs (minimum, maximum); None = no maximum
_POINTS = {
    "arrow": (2, 2),
    "ellipse": (2, 2),
    "rectangle": (2, 2),
    "polyline": (2, None),
    "text": (1, 1),
}
MAX_POINTS = 10_000  # a freehand outline longer than this is not a mark but a mistake
MAX_TEXT = 500


class AnnotationError(ValueError):
    """A mark that cannot be stored; the message says which and why, in one line."""


Point = tuple[float, float]


@dataclass(frozen=True)
class Annotation:
    kind: str
    points: tuple[Point, ...]
    text: str = ""
    #: a stable identity within one image's list (selection, undo); not exported
    uid: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AnnotationError(f"unknown mark kind {self.kind!r} (known: {', '.join(KINDS)})")
        lo, hi = _POINTS[self.kind]
        n = len(self.points)
        if n < lo or (hi is not None and n > hi) or n > MAX_POINTS:
            want = f"{lo}" if lo == hi else f"{lo} or more"
            raise AnnotationError(f"a {self.kind} mark needs {want} points, got {n}")
        for p in self.points:
            if len(p) != 2 or not all(math.isfinite(v) for v in p):
                raise AnnotationError(f"a {self.kind} mark has a point that is not (x, y): {p!r}")
        if len(self.text) > MAX_TEXT:
            raise AnnotationError(f"a mark's label is longer than {MAX_TEXT} characters")
        if self.kind == "text" and not self.text.strip():
            raise AnnotationError("a text mark needs its text")

    @classmethod
    def make(cls, kind: str, points: Iterable[Sequence[float]], text: str = "") -> Annotation:
        try:
            pts = tuple((float(p[0]), float(p[1])) for p in points)
        except (TypeError, ValueError, OverflowError, IndexError):
            raise AnnotationError(f"a {kind} mark's points must be [[x, y], ...]") from None
        return cls(kind, pts, text)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "points": [[x, y] for x, y in self.points]}
        if self.text:
            d["text"] = self.text
        return d

    @classmethod
    def from_dict(cls, d: object) -> Annotation:
        if not isinstance(d, dict):
            raise AnnotationError(f"a mark must be an object, got {type(d).__name__}")
        kind, points, text = d.get("kind"), d.get("points"), d.get("text", "") or ""
        if not isinstance(kind, str):
            raise AnnotationError("a mark has no kind")
        if not isinstance(points, list) or not all(
            isinstance(p, list | tuple)
            and len(p) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
            for p in points
        ):
            raise AnnotationError(f"a {kind} mark's points must be [[x, y], ...]")
        if not isinstance(text, str):
            raise AnnotationError(f"a {kind} mark's text must be a string")
        return cls.make(kind, points, text)

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in image pixels."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def moved(self, dx: float, dy: float) -> Annotation:
        pts = tuple((x + dx, y + dy) for x, y in self.points)
        return Annotation(self.kind, pts, self.text, self.uid)

    def with_points(self, points: Iterable[Sequence[float]]) -> Annotation:
        pts = tuple((float(p[0]), float(p[1])) for p in points)
        return Annotation(self.kind, pts, self.text, self.uid)

    def with_text(self, text: str) -> Annotation:
        return Annotation(self.kind, self.points, text, self.uid)


def dumps(marks: Sequence[Annotation]) -> str:
    """The stored form: compact JSON, stable key order (history compares strings)."""
    return json.dumps([m.to_dict() for m in marks], separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> list[Annotation]:
    if not text:
        return []
    data = json.loads(text)
    if not isinstance(data, list):
        raise AnnotationError("stored marks are not a list")
    return [Annotation.from_dict(d) for d in data]
