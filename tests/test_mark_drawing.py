"""Marks drawn into exported images: every kind, scaled from file pixels to the drawn size."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.annotations import Annotation
from desktop.mark_drawing import MARK_COLOUR, draw_marks


def _marked(rgb: np.ndarray) -> np.ndarray:
    """Where the mark colour is, antialiased text included (the halo is black, the image
    grey: neither has a low red with a high green and blue)."""
    r, g, b = (rgb[..., k].astype(int) for k in range(3))
    assert MARK_COLOUR[0] < 80 < 120 < min(MARK_COLOUR[1:])
    return (r < 80) & (g > 120) & (b > 120)


@pytest.mark.parametrize(
    "mark, inside, outside",
    [
        (Annotation.make("arrow", [(20, 100), (180, 100)]), (100, 100), (100, 40)),
        (Annotation.make("ellipse", [(40, 40), (160, 160)]), (40, 100), (100, 100)),
        (Annotation.make("rectangle", [(40, 40), (160, 160)]), (40, 40), (100, 100)),
        (Annotation.make("polyline", [(40, 40), (160, 40), (100, 160)]), (100, 40), (100, 190)),
        (Annotation.make("text", [(100, 100)], "R"), (100, 100), (20, 20)),
    ],
)
def test_each_kind_is_drawn_where_its_points_are(mark, inside, outside):
    grey = np.full((200, 200, 3), 128, np.uint8)
    out = draw_marks(grey, [mark], (200, 200))
    hit = _marked(out)
    x, y = inside
    assert hit[y - 3 : y + 4, x - 3 : x + 4].any(), f"no {mark.kind} at {inside}"
    x, y = outside
    assert not hit[y - 3 : y + 4, x - 3 : x + 4].any(), f"{mark.kind} drawn at {outside}"
    assert (grey == 128).all()  # the input is left as it was


def test_marks_scale_from_file_pixels_to_the_drawn_size():
    mark = Annotation.make("rectangle", [(400, 400), (800, 800)])
    small = draw_marks(np.zeros((100, 100, 3), np.uint8), [mark], (1000, 1000))
    hit = _marked(small)
    assert hit[38:43, 38:43].any() and hit[78:83, 78:83].any()  # corners at 40 and 80
    assert not hit[:30].any() and not hit[90:].any()


def test_arrow_has_a_head_at_its_head_point_and_labels_are_drawn():
    rgb = np.zeros((300, 300, 3), np.uint8)
    arrow = Annotation.make("arrow", [(30, 150), (250, 150)], "look here")
    out = _marked(draw_marks(rgb, [arrow], (300, 300)))
    cols = out.any(axis=0)
    head = out[:, 230:250].sum(axis=0).max()  # the head is wider than the shaft
    shaft = out[:, 100:120].sum(axis=0).max()
    assert head > 2 * shaft
    assert out[:140].any()  # no room behind the tail: the label is above it, off the shaft
    assert cols[30:250].all()
    behind = _marked(draw_marks(rgb, [arrow.moved(40, 0)], (300, 300)))
    assert behind[140:160, :60].any() and not behind[:140].any()  # room behind the tail
    assert draw_marks(rgb, [], (300, 300)) is rgb  # nothing to draw: untouched
