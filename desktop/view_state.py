"""How the reviewer looks at images, as one Qt-free value: the viewer, the exports and the
settings file all read the same fields.

The widgets show a :class:`ViewState` and report changes; the window keeps
the state and hands it to the CLI exports, so a report draws what was on the
screen. Construction validates: numbers are clamped into range (a step past
the end of a slider stops at the end), unknown names fall back to the
defaults. :meth:`ViewState.from_dict` reads a settings file, where a value
that is unreadable or out of range is damage, not intent: it gets the default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from desktop.overlay import COLORMAPS, DEFAULT_COLORMAP, DEFAULT_OPACITY
from export.attention import DEFAULT_MIN_LUNG_SHARE
from export.cam import DEFAULT_METHOD, METHODS

DEFAULT_UNCERTAIN_BELOW = 0.6  # the AI result is marked uncertain below this top probability
MIN_WINDOW_WIDTH = 1e-3
MAX_WINDOW_WIDTH = 2.0
PREDICTED = "predicted"  # settings value of cam_class None: the heatmap of the AI's class

#: field -> (low, high) for the numbers, in the units of the windowed image / fractions
RANGES: dict[str, tuple[float, float]] = {
    "opacity": (0.0, 1.0),
    "min_lung_share": (0.0, 1.0),
    "uncertain_below": (0.0, 1.0),
    "window_centre": (0.0, 1.0),
    "window_width": (MIN_WINDOW_WIDTH, MAX_WINDOW_WIDTH),
}


def _number(value: Any) -> float | None:
    """A finite float from a number or its text; None for anything else."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(value: Any) -> bool | None:
    """A bool from a bool, 0/1 or the text QSettings writes ("true"/"false")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


def _class_index(value: Any) -> int | None:
    """A class index >= 0, or None (the predicted class) for anything else."""
    if value is None or isinstance(value, bool) or value == PREDICTED:
        return None
    f = _number(value)
    return int(f) if f is not None and f >= 0 and f == int(f) else None


@dataclass(frozen=True)
class ViewState:
    opacity: float = DEFAULT_OPACITY
    colormap: str = DEFAULT_COLORMAP
    cam_method: str = DEFAULT_METHOD
    cam_class: int | None = None  # None: the heatmap of the predicted class
    #: keep ``cam_class`` when the image changes (else it goes back to the predicted class)
    pin_class: bool = False
    min_lung_share: float = DEFAULT_MIN_LUNG_SHARE
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW
    window_centre: float = 0.5
    window_width: float = 1.0
    inverted: bool = False

    def __post_init__(self) -> None:
        defaults = ViewState.__dataclass_fields__
        for name, (lo, hi) in RANGES.items():
            f = _number(getattr(self, name))
            value = defaults[name].default if f is None else min(max(f, lo), hi)
            object.__setattr__(self, name, float(value))
        if self.colormap not in COLORMAPS:
            object.__setattr__(self, "colormap", DEFAULT_COLORMAP)
        if self.cam_method not in METHODS:
            object.__setattr__(self, "cam_method", DEFAULT_METHOD)
        object.__setattr__(self, "cam_class", _class_index(self.cam_class))
        for name in ("inverted", "pin_class"):
            flag = _flag(getattr(self, name))
            object.__setattr__(self, name, False if flag is None else flag)

    def to_dict(self) -> dict[str, float | str | bool]:
        """Flat values for QSettings (cam_class None is written as ``"predicted"``)."""
        d = asdict(self)
        d["cam_class"] = PREDICTED if self.cam_class is None else self.cam_class
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ViewState:
        """Read back :meth:`to_dict` (or a settings file): missing, unreadable or
        out-of-range values get the default; other keys are ignored."""
        kept: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            v = values[f.name]
            if f.name in RANGES:
                lo, hi = RANGES[f.name]
                n = _number(v)
                if n is None or not lo <= n <= hi:
                    continue
                v = n
            elif f.name in ("inverted", "pin_class"):
                v = _flag(v)
                if v is None:
                    continue
            elif f.name in ("colormap", "cam_method"):
                v = str(v)
            kept[f.name] = v
        return cls(**kept)
