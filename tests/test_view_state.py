"""The reviewer's view settings as one Qt-free value: validation and the settings round trip."""

from __future__ import annotations

import dataclasses

import pytest

from desktop.overlay import COLORMAPS, DEFAULT_OPACITY
from desktop.view_state import DEFAULT_UNCERTAIN_BELOW, ViewState
from export.attention import DEFAULT_MIN_LUNG_SHARE
from export.cam import DEFAULT_METHOD, METHODS


def test_defaults():
    s = ViewState()
    assert (s.opacity, s.colormap, s.cam_method, s.cam_class) == (
        DEFAULT_OPACITY,
        COLORMAPS[0],
        DEFAULT_METHOD,
        None,
    )
    assert (s.min_lung_share, s.uncertain_below) == (
        DEFAULT_MIN_LUNG_SHARE,
        DEFAULT_UNCERTAIN_BELOW,
    )
    assert (s.window_centre, s.window_width, s.inverted) == (0.5, 1.0, False)


def test_numbers_are_clamped_and_names_fall_back():
    s = ViewState(
        opacity=1.7,
        min_lung_share=-0.2,
        uncertain_below=3,
        window_centre=-4,
        window_width=0.0,
        colormap="CET-L3",
        cam_method="magic",
        cam_class=-1,
    )
    assert (s.opacity, s.min_lung_share, s.uncertain_below) == (1.0, 0.0, 1.0)
    assert s.window_centre == 0.0 and s.window_width == pytest.approx(1e-3)
    assert (s.colormap, s.cam_method, s.cam_class) == ("inferno", DEFAULT_METHOD, None)
    assert ViewState(opacity=float("nan")).opacity == DEFAULT_OPACITY
    assert ViewState(window_width=99).window_width == 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.opacity = 0.5  # type: ignore[misc]
    assert dataclasses.replace(s, opacity=-1).opacity == 0.0  # replace validates too


@pytest.mark.parametrize("method", list(METHODS))
def test_round_trip_through_a_flat_dict(method):
    s = ViewState(
        opacity=0.65,
        colormap="turbo",
        cam_method=method,
        cam_class=1,
        min_lung_share=0.35,
        uncertain_below=0.7,
        window_centre=0.4,
        window_width=0.5,
        inverted=True,
    )
    d = s.to_dict()
    assert all(isinstance(v, float | str | bool | int) for v in d.values())
    assert ViewState.from_dict(d) == s
    # QSettings' INI files give everything back as text
    assert ViewState.from_dict({k: str(v).lower() for k, v in d.items()}) == s
    assert ViewState.from_dict(ViewState().to_dict()) == ViewState()
    assert ViewState().to_dict()["cam_class"] == "predicted"


def test_damaged_settings_get_the_defaults():
    d = {
        "opacity": 40,
        "min_lung_share": "half",
        "uncertain_below": None,
        "window_width": -1,
        "inverted": "maybe",
        "colormap": 3,
        "cam_class": "2.5",
        "unknown_key": 1,
    }
    assert ViewState.from_dict(d) == ViewState()
    assert ViewState.from_dict({}) == ViewState()
    assert ViewState.from_dict({"cam_class": "0", "inverted": "1"}) == ViewState(
        cam_class=0, inverted=True
    )


def test_settings_of_earlier_versions_are_read(qapp, tmp_path):
    """Thresholds and heatmap looks saved at the top level before the view group existed
    are kept; the view group wins; the heatmap's class always starts at the predicted one."""
    from PySide6.QtCore import QSettings

    from desktop.ui.menus import load_view_state, save_view_state

    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    s.setValue("min_lung_share", 0.3)
    s.setValue("uncertain_below", 0.7)
    s.setValue("opacity", 40)  # the slider's old integer
    s.setValue("colormap", "viridis")
    got = load_view_state(s)
    assert (got.min_lung_share, got.uncertain_below, got.colormap) == (0.3, 0.7, "viridis")
    assert got.opacity == pytest.approx(0.4)
    save_view_state(s, dataclasses.replace(got, min_lung_share=0.6, cam_class=2))
    again = load_view_state(s)
    assert again.min_lung_share == 0.6 and again.cam_class is None
