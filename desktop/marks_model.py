"""One image's marks while the reviewer edits them: the list, undo/redo, hit testing.

Qt-free. Every operation replaces the whole list (marks are immutable
:class:`~desktop.annotations.Annotation` values), so undo and redo are
snapshots and the caller can hand the list to
``ReviewStore.set_annotations`` after each change. A change the store
refused is taken back with :meth:`MarksModel.restore`, so what is on screen
is always what is stored.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

from desktop.annotations import Annotation, Point

#: undo steps kept per image; older ones are forgotten (the store's history keeps them all)
UNDO_LIMIT = 200

_uids = itertools.count(1)
_Snapshot = tuple[Annotation, ...]


def _with_uid(mark: Annotation) -> Annotation:
    return Annotation(mark.kind, mark.points, mark.text, next(_uids))


class MarksModel:
    """The marks of one image, in drawing order (the last drawn is on top)."""

    def __init__(self, marks: Iterable[Annotation] = ()) -> None:
        self._marks: _Snapshot = tuple(_with_uid(m) for m in marks)
        self._undo: list[_Snapshot] = []
        self._redo: list[_Snapshot] = []

    # ------------------------------------------------------------------ reads

    @property
    def marks(self) -> list[Annotation]:
        return list(self._marks)

    def __len__(self) -> int:
        return len(self._marks)

    def get(self, uid: int) -> Annotation | None:
        return next((m for m in self._marks if m.uid == uid), None)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    # ------------------------------------------------------------------ changes

    def _change(self, new: _Snapshot) -> None:
        self._undo.append(self._marks)
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self._marks = new

    def add(self, mark: Annotation) -> Annotation:
        """Append ``mark`` (drawn on top); returns it with its identity in this list."""
        mark = _with_uid(mark)
        self._change((*self._marks, mark))
        return mark

    def replace(self, uid: int, mark: Annotation) -> Annotation:
        """Put ``mark`` in the place of mark ``uid`` (moved, edited, reshaped)."""
        if self.get(uid) is None:
            raise KeyError(f"no mark {uid}")
        new = Annotation(mark.kind, mark.points, mark.text, uid)
        self._change(tuple(new if m.uid == uid else m for m in self._marks))
        return new

    def move(self, uid: int, dx: float, dy: float) -> Annotation:
        old = self.get(uid)
        if old is None:
            raise KeyError(f"no mark {uid}")
        return self.replace(uid, old.moved(dx, dy))

    def set_text(self, uid: int, text: str) -> Annotation:
        old = self.get(uid)
        if old is None:
            raise KeyError(f"no mark {uid}")
        return self.replace(uid, old.with_text(text))

    def set_points(self, uid: int, points: Iterable[Sequence[float]]) -> Annotation:
        old = self.get(uid)
        if old is None:
            raise KeyError(f"no mark {uid}")
        return self.replace(uid, old.with_points(points))

    def delete(self, uid: int) -> Annotation:
        old = self.get(uid)
        if old is None:
            raise KeyError(f"no mark {uid}")
        self._change(tuple(m for m in self._marks if m.uid != uid))
        return old

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self._marks)
        self._marks = self._undo.pop()
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self._marks)
        self._marks = self._redo.pop()
        return True

    # ------------------------------------------------------------------ store refusals

    def checkpoint(self) -> tuple[_Snapshot, tuple[_Snapshot, ...], tuple[_Snapshot, ...]]:
        """Everything an operation may change, for :meth:`restore`."""
        return self._marks, tuple(self._undo), tuple(self._redo)

    def restore(
        self, point: tuple[_Snapshot, tuple[_Snapshot, ...], tuple[_Snapshot, ...]]
    ) -> None:
        self._marks, undo, redo = point
        self._undo, self._redo = list(undo), list(redo)

    # ------------------------------------------------------------------ hit testing

    def hit(self, x: float, y: float, tolerance: float) -> Annotation | None:
        """The topmost mark whose outline passes within ``tolerance`` (image pixels) of
        (x, y); a text mark is hit at its anchor. The inside of a region is not a hit, so
        a drag inside a large outline still pans the image."""
        for m in reversed(self._marks):
            if distance_to_outline(m, (x, y)) <= tolerance:
                return m
        return None


# ---------------------------------------------------------------------- geometry


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    n = dx * dx + dy * dy
    t = 0.0 if n == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / n))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def outline_segments(mark: Annotation) -> list[tuple[Point, Point]]:
    """The straight pieces a mark is drawn with (an ellipse is approximated by 64)."""
    pts = mark.points
    if mark.kind == "arrow":
        return [(pts[0], pts[1])]
    if mark.kind == "rectangle":
        (x0, y0), (x1, y1) = pts
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    if mark.kind == "ellipse":
        ring = ellipse_points(mark, 64)
        return [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]
    if mark.kind == "polyline":  # a freehand outline is closed
        ring = list(pts)
        return [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]
    return []


def ellipse_points(mark: Annotation, n: int = 64) -> list[Point]:
    """``n`` points on the ellipse inscribed in the mark's two corners."""
    x0, y0, x1, y1 = mark.bbox()
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [
        (cx + rx * math.cos(2 * math.pi * k / n), cy + ry * math.sin(2 * math.pi * k / n))
        for k in range(n)
    ]


def distance_to_outline(mark: Annotation, p: Point) -> float:
    if mark.kind == "text":
        return math.hypot(p[0] - mark.points[0][0], p[1] - mark.points[0][1])
    return min(_segment_distance(p, a, b) for a, b in outline_segments(mark))


def clamp_point(p: Sequence[float], width: float, height: float) -> Point:
    """``p`` kept on the image (marks never point outside it), rounded to 0.1 pixel."""
    return (
        round(min(max(float(p[0]), 0.0), width), 1),
        round(min(max(float(p[1]), 0.0), height), 1),
    )


def clamp_move(mark: Annotation, dx: float, dy: float, width: float, height: float) -> Point:
    """The part of a move by (dx, dy) that keeps the whole mark on the image."""
    x0, y0, x1, y1 = mark.bbox()
    dx = min(max(dx, -x0), width - x1)
    dy = min(max(dy, -y0), height - y1)
    return round(dx, 1), round(dy, 1)


def thin_path(points: Sequence[Point], min_step: float) -> list[Point]:
    """A freehand trace without points closer than ``min_step`` to the previous one."""
    out: list[Point] = []
    for p in points:
        if not out or math.hypot(p[0] - out[-1][0], p[1] - out[-1][1]) >= min_step:
            out.append(p)
    return out


def save(store, rel_path: str, marks: list[Annotation], reviewer: str) -> str | None:
    """Write the image's marks at once; None when saved, else the status line saying why not
    (a full disk, a locked database), as decisions and notes report theirs."""
    try:
        store.set_annotations(rel_path, marks, reviewer=reviewer)
    except Exception as exc:
        return f"Could not save the marks of {rel_path}: {exc}"
    return None
