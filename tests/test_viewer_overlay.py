"""The viewer draws the overlay the exports draw, and its panel speaks the view state's units."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from desktop.overlay import composite, rgba_table
from desktop.ui.image_view import ImageView
from desktop.ui.side_panel import SidePanel
from desktop.view_state import ViewState

N = 32  # image pixels per side; each covers several screen pixels


def _pattern() -> tuple[np.ndarray, np.ndarray]:
    """Grey rises down the rows, heat along the columns: every pairing on screen at once."""
    ramp = np.linspace(0.0, 1.0, N, dtype=np.float32)
    grey = np.repeat(ramp[:, None], N, axis=1) * 0.8 + 0.1
    heat = np.repeat(ramp[None, :], N, axis=0)
    return grey, heat


def _rgb(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h).reshape(h, -1)
    return arr[:, : w * 3].reshape(h, w, 3).copy()


def _screen_pixels(view: ImageView) -> tuple[np.ndarray, np.ndarray]:
    """The rendered view and, per image pixel, the colour at its centre on screen."""
    shot = _rgb(view.grab().toImage())
    out = np.zeros((N, N, 3), np.uint8)
    for y in range(N):
        for x in range(N):
            p = view.viewbox.mapViewToDevice(QPointF(x + 0.5, y + 0.5))
            out[y, x] = shot[int(p.y()), int(p.x())]
    return shot, out


@pytest.mark.parametrize(
    ("colormap", "opacity"), [("inferno", 0.4), ("viridis", 1.0), ("turbo", 0.7), ("inferno", 0.0)]
)
def test_viewer_overlay_matches_composite(qtbot, tmp_path, colormap, opacity):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(300, 300)
    view.show()
    qtbot.waitExposed(view)
    grey, heat = _pattern()
    view.set_readout_visible(False)  # the corner label would cover image pixels
    view.set_image(grey)
    view.set_overlay(heat, (N, N))
    view.apply(ViewState(opacity=opacity, colormap=colormap))
    view.fit()
    qtbot.wait(20)
    shot, seen = _screen_pixels(view)
    expected = composite(grey, heat, opacity, colormap)
    diff = np.abs(seen.astype(int) - expected.astype(int))
    if diff.max() > 3:
        import cv2

        cv2.imwrite(str(tmp_path / "viewer.png"), shot[..., ::-1])
        side = np.concatenate([seen, expected, np.clip(diff * 20, 0, 255).astype(np.uint8)], 1)
        cv2.imwrite(
            str(tmp_path / "seen-expected-diff.png"), np.kron(side, np.ones((8, 8, 1)))[..., ::-1]
        )
    assert diff.max() <= 3, f"viewer and composite differ by up to {diff.max()}; see {tmp_path}"


def test_colormap_swap_changes_only_the_table(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    grey, heat = _pattern()
    view.set_image(grey)
    view.set_overlay(heat, (N, N))
    before = view.overlay_item.image
    view.set_colormap("viridis")
    assert view.overlay_item.image is before
    assert np.array_equal(view.overlay_item.lut, rgba_table("viridis"))


def test_image_view_apply_and_read_back(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.set_image(_pattern()[0])
    view.apply(ViewState(opacity=0.25, window_centre=0.3, window_width=0.2, inverted=True))
    assert view.overlay_item.opacity() == pytest.approx(0.25)
    assert view.window() == pytest.approx((0.3, 0.2)) and view.is_inverted()
    view.apply(ViewState())
    assert not view.is_inverted()


def test_side_panel_emits_a_fraction_and_applies_a_state(qtbot):
    panel = SidePanel()
    qtbot.addWidget(panel)
    panel.set_classes(("COVID-19", "Normal", "Pneumonia"))
    got: list[float] = []
    panel.opacity_changed.connect(got.append)
    panel.opacity.setValue(75)
    assert got == [pytest.approx(0.75)] and panel.opacity_label.text() == "75 %"
    panel.step_opacity(0.5)  # stops at the end
    assert got[-1] == pytest.approx(1.0)

    choices: list[None] = []
    panel.cam_choice_changed.connect(lambda: choices.append(None))
    state = ViewState(opacity=0.3, colormap="cividis", cam_method="hirescam", cam_class=2)
    with qtbot.waitSignal(panel.colormap_changed) as cm:
        panel.apply(state)
    assert cm.args == ["cividis"] and len(choices) == 1  # one request for method + class
    assert got[-1] == pytest.approx(0.3)
    assert panel.cam_method.currentText() == "HiResCAM"
    assert panel.cam_class.currentText() == "Pneumonia"
    assert panel.to_state(ViewState(min_lung_share=0.2)) == ViewState(
        opacity=0.3, colormap="cividis", cam_method="hirescam", cam_class=2, min_lung_share=0.2
    )
    panel.apply(state)
    assert len(choices) == 1  # nothing changed, nothing recomputed
    panel.apply(ViewState(cam_class=7))  # a class this bundle lacks: the predicted class
    assert panel.cam_class.currentData() is None and panel.to_state(ViewState()).cam_class is None


@pytest.mark.parametrize(("h", "w"), [(512, 512), (2500, 2048)])
def test_fit_shows_the_whole_image_whatever_else_is_in_the_view(qtbot, h, w):
    """Fitting uses the image alone: the hidden message's bounds (NaN before it is first
    painted, as off screen) once made it raise, and the rest of the page's set-up with it."""
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(700, 760)
    view.show()
    view.show_message("Cannot show this file")
    view.set_image(np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w))
    view.fit()
    (x0, x1), (y0, y1) = view.viewbox.viewRange()
    assert x0 <= 0 and x1 >= w and y0 <= 0 and y1 >= h
    assert not view.message.isVisible()
