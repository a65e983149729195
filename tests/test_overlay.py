"""One colour table and one blending rule for the viewer, the PDF and the heatmap PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop import overlay
from desktop.overlay import (
    COLORMAPS,
    DEFAULT_COLORMAP,
    colour_bar,
    composite,
    heat_index,
    rgba_table,
)


def test_committed_tables_are_matplotlibs():
    """``python -m desktop.overlay`` regenerates the file; it must be current."""
    import desktop.colormap_tables as tables

    assert Path(tables.__file__).read_text(encoding="utf-8") == overlay.table_module_source()


@pytest.mark.parametrize("name", COLORMAPS)
def test_each_table_has_colour_and_the_heat_alpha_ramp(name):
    t = rgba_table(name)
    assert t.shape == (256, 4) and t.dtype == np.uint8 and not t.flags.writeable
    assert t[0, 3] == 0 and t[128:, 3].min() == 255  # cold is see-through, half heat opaque
    assert np.all(np.diff(t[:, 3].astype(int)) >= 0)
    assert len({tuple(c) for c in t[:, :3]}) > 200  # a real ramp, not a constant


def test_colormaps_differ_and_unknown_names_fail_in_one_line():
    assert DEFAULT_COLORMAP == "inferno"
    assert not np.array_equal(rgba_table("inferno"), rgba_table("viridis"))
    with pytest.raises(ValueError, match="unknown colormap 'CET-L3'; choose from inferno"):
        rgba_table("CET-L3")


def test_heat_bins_are_the_viewers():
    """256 equal bins of [0, 1], the top one closed; NaN counts as no heat."""
    h = np.array([0.0, 0.5 / 256, 1 / 256, 0.5, 255.5 / 256, 1.0, 1.5, -1.0, np.nan])
    assert heat_index(h).tolist() == [0, 0, 1, 128, 255, 255, 255, 0, 0]


def test_composite_blends_with_the_tables_alpha_and_the_opacity():
    img = np.full((4, 4), 0.5, np.float32)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0], heat[0, 1] = 1.0, 0.25
    out = composite(img, heat, 0.5, "viridis")
    assert tuple(out[3, 3]) == (128, 128, 128)  # no heat: untouched
    t = rgba_table("viridis").astype(float)
    np.testing.assert_allclose(out[0, 0], np.rint(0.5 * 127.5 + 0.5 * t[255, :3]), atol=1)
    a = t[64, 3] / 255 * 0.5  # quarter heat: half-transparent entry, times the opacity
    np.testing.assert_allclose(out[0, 1], np.rint((1 - a) * 127.5 + a * t[64, :3]), atol=1)
    assert np.array_equal(composite(img, heat, 0.0), composite(img, None, 1.0))
    assert not np.array_equal(out, composite(img, heat, 0.5, "inferno"))


def test_composite_stretches_a_small_heatmap_onto_the_image():
    heat = np.zeros((2, 2), np.float32)
    heat[0, 0] = 1.0
    out = composite(np.zeros((20, 20), np.float32), heat, 1.0)
    assert out.shape == (20, 20, 3)
    assert tuple(out[0, 0]) == tuple(rgba_table()[255, :3]) and tuple(out[19, 19]) == (0, 0, 0)


def test_colour_bar_runs_from_cold_to_hot():
    bar = colour_bar("viridis", height=5)
    assert bar.shape == (5, 256, 3) and bar.flags.c_contiguous
    assert np.array_equal(bar[2], rgba_table("viridis")[:, :3])
