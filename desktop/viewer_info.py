"""What the viewer tells the reviewer about the image on screen, without Qt.

The view windows a [0, 1] image: 0 and 1 are the file's values that
:func:`export.image_input.display_limits` chose. A :class:`PixelSource`
knows those two values, so window centre/width and the value under the
cursor read in the file's own units (a 12-bit PNG's 0…4095, a DICOM's
modality values) as well as in % of that default window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: how far a right-drag across the whole view changes the window: the width by a factor
#: e**DRAG_GAIN (about 4.5x), the centre by DRAG_GAIN / 2 widths
DRAG_GAIN = 1.5
#: window widths a drag can reach, in units of the default window
MIN_WIDTH, MAX_WIDTH = 0.002, 4.0
APP_TITLE = "cxr-review"
TITLE_TAIL = "Research use only"


@dataclass(frozen=True)
class PixelSource:
    """The decoded pixels behind the shown [0, 1] image and the values 0 and 1 stand for."""

    pixels: np.ndarray | None = None
    limits: tuple[float, float] = (0.0, 1.0)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def in_file_units(self) -> bool:
        return self.pixels is not None

    def to_file_units(self, v: float) -> float:
        lo, hi = self.limits
        return lo + v * (hi - lo)

    def value_at(self, x: int, y: int) -> float | None:
        """The file's value at column ``x``, row ``y``; None outside the image."""
        if self.pixels is None:
            return None
        h, w = self.pixels.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return None
        return float(self.pixels[y, x])


def drag_window(
    centre: float, width: float, dx: float, dy: float, view_w: float, view_h: float
) -> tuple[float, float]:
    """Window after a right-drag of (dx, dy) screen pixels from (centre, width).

    Right widens, left narrows: the width changes by a factor, so a step is the
    same share of the window whatever its size; down lowers the centre by a share
    of the width. Both scale with the view's size, so a 20-pixel step in a
    1000-pixel view changes the width by about 3 %.
    """
    fx = dx / max(view_w, 1.0)
    fy = dy / max(view_h, 1.0)
    new_width = float(np.clip(width * math.exp(DRAG_GAIN * fx), MIN_WIDTH, MAX_WIDTH))
    new_centre = centre - DRAG_GAIN * fy * width / 2
    return new_centre, new_width


def format_value(v: float) -> str:
    """Whole numbers without decimals; other values with four significant digits."""
    if math.isfinite(v) and abs(v - round(v)) < 1e-6 and abs(v) < 1e9:
        return str(round(v))
    return f"{v:.4g}"


def window_text(centre: float, width: float, source: PixelSource, inverted: bool = False) -> str:
    """``C 2048  W 4095  (50 % / 100 %)``: file units where known, always % of the default."""
    pct = f"{centre * 100:.0f} % / {width * 100:.0f} %"
    inv = "  inverted" if inverted else ""
    if not source.in_file_units:
        return f"Window  C {pct.replace(' / ', '  W ')}{inv}"
    lo, hi = source.limits
    c = format_value(source.to_file_units(centre))
    w = format_value(width * (hi - lo))
    return f"Window  C {c}  W {w}  ({pct}){inv}"


def zoom_text(screen_per_image_pixel: float) -> str:
    return f"Zoom {screen_per_image_pixel * 100:.0f} %"


def pixel_text(x: int, y: int, shown01: float, source: PixelSource) -> str:
    """Image coordinates and the file's value there (the shown [0, 1] value when unknown)."""
    raw = source.value_at(x, y)
    value = format_value(raw) if raw is not None else f"{shown01:.3f}"
    return f"x {x}  y {y}  value {value}"


def tags_text(tags: dict[str, str]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in tags.items())


def window_title(folder: Path | str | None = None, rel_path: str | None = None) -> str:
    """``cxr-review — FOLDER — REL_PATH — Research use only``, leaving out what is unknown."""
    parts = [APP_TITLE]
    if folder:
        parts.append(Path(folder).name or str(folder))
    if rel_path:
        parts.append(rel_path)
    parts.append(TITLE_TAIL)
    return " — ".join(parts)
