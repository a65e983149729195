"""Reviewer marks drawn into an RGB image: the PDF report's pages and the heatmap PNGs.

Qt-free (Pillow), so ``cxr classify`` and ``cxr report`` draw the same marks
the same way. Marks are stored in pixels of the original file
(``desktop.annotations``); they are scaled here onto whatever size the image
is drawn at. Each stroke has a dark halo under a bright colour, so it shows
on a white lung field, a black background and every heatmap colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from desktop.annotations import Annotation

MARK_COLOUR = (0, 229, 255)
HALO_COLOUR = (0, 0, 0)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _arrow_head(
    tail: tuple[float, float], head: tuple[float, float], size: float
) -> list[tuple[float, float]]:
    dx, dy = head[0] - tail[0], head[1] - tail[1]
    angle = math.atan2(dy, dx)
    spread = math.radians(25)
    return [
        head,
        (head[0] - size * math.cos(angle - spread), head[1] - size * math.sin(angle - spread)),
        (head[0] - size * math.cos(angle + spread), head[1] - size * math.sin(angle + spread)),
    ]


def draw_marks(
    rgb: np.ndarray,
    marks: Sequence[Annotation],
    source_size: tuple[int, int],
) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3 uint8) with ``marks`` drawn on it. ``source_size`` is the
    original file's (width, height), the frame the marks' points are in."""
    if not marks:
        return rgb
    h, w = rgb.shape[:2]
    sx, sy = w / max(1, source_size[0]), h / max(1, source_size[1])
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    width = max(2, round(min(w, h) / 250))
    halo = width + max(2, width // 2) * 2
    font = _font(max(10, round(min(w, h) / 30)))
    for m in marks:
        pts = [(x * sx, y * sy) for x, y in m.points]
        for stroke, colour in ((halo, HALO_COLOUR), (width, MARK_COLOUR)):
            _shape(d, m.kind, pts, stroke, colour, head=max(8.0, min(w, h) / 25))
        if m.text:
            _label(d, m, pts, font, max(1, width // 2 + 1))
    return np.asarray(img)


def _shape(
    d: ImageDraw.ImageDraw,
    kind: str,
    pts: list[tuple[float, float]],
    width: int,
    colour: tuple[int, int, int],
    head: float,
) -> None:
    if kind == "arrow":
        d.line(pts, fill=colour, width=width)
        d.polygon(_arrow_head(pts[0], pts[1], head + width), fill=colour)
    elif kind in ("ellipse", "rectangle"):
        (x0, y0), (x1, y1) = pts
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if kind == "ellipse":
            d.ellipse(box, outline=colour, width=width)
        else:
            d.rectangle(box, outline=colour, width=width)
    elif kind == "polyline":
        closed = [*pts, pts[0]] if len(pts) >= 3 else pts  # an outline is a region
        d.line(closed, fill=colour, width=width, joint="curve")
    elif kind == "text":
        r = width * 1.5  # the anchor point
        x, y = pts[0]
        d.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _label(
    d: ImageDraw.ImageDraw,
    m: Annotation,
    pts: list[tuple[float, float]],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    stroke: int,
) -> None:
    """The label beside the point the mark starts from: above a region's top left, beside a
    text anchor, and behind an arrow's tail (on the side away from its head, off the shaft)."""
    gap = stroke * 6 + getattr(font, "size", 10) * 0.3
    if m.kind in ("ellipse", "rectangle", "polyline"):
        x, y = min(p[0] for p in pts), min(p[1] for p in pts)
        anchor = "ld"  # above the shape
    elif m.kind == "arrow" and pts[1][0] >= pts[0][0]:
        (x, y), anchor = pts[0], "rm"
        x -= gap
    else:
        (x, y), anchor = pts[0], "lm"
        x += gap
    size = d.im.size
    kw = {"font": font, "anchor": anchor, "stroke_width": stroke}
    x0, y0, x1, y1 = d.textbbox((x, y), m.text, **kw)
    if m.kind == "arrow" and (x0 < 0 or x1 > size[0]):  # no room behind the tail: above it
        x, y, anchor = pts[0][0], pts[0][1] - gap, "md"
        kw["anchor"] = anchor
        x0, y0, x1, y1 = d.textbbox((x, y), m.text, **kw)
    # kept inside the image, so a mark near an edge still shows its whole label
    x += max(0.0, -x0) - max(0.0, x1 - size[0])
    y += max(0.0, -y0) - max(0.0, y1 - size[1])
    d.text(
        (x, y),
        m.text,
        fill=MARK_COLOUR,
        font=font,
        anchor=anchor,
        stroke_width=stroke,
        stroke_fill=HALO_COLOUR,
    )
