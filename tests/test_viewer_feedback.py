"""The viewer says what it shows: window, zoom, the pixel under the cursor, DICOM tags, the
file's full name in the list and the window title."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from imaging_factory import dicom_bytes, png_bytes
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from desktop.ui.file_table import HEADERS, FileTableModel
from desktop.ui.image_view import ImageView
from desktop.ui.main_window import MainWindow
from desktop.viewer_info import PixelSource, drag_window, window_title
from export.image_input import apply_window, decode_image
from export.results import ImageResult

H, W = 40, 60
LIMITS = (100.0, 4100.0)  # the file values the [0, 1] image's 0 and 1 stand for


def _raw() -> np.ndarray:
    return (np.arange(H * W, dtype=np.float32).reshape(H, W) % 4000 + 100).astype(np.float32)


@pytest.fixture
def view(qtbot):
    v = ImageView()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    qtbot.waitExposed(v)
    raw = _raw()
    v.set_image(apply_window(raw, *LIMITS), PixelSource(raw, LIMITS))
    v.fit()
    return v


def _mouse(view: ImageView, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    ev = QMouseEvent(kind, pos, view.viewport().mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), ev)


def _right_drag(view: ImageView, steps: list[tuple[int, int]]) -> None:
    right, none = Qt.MouseButton.RightButton, Qt.MouseButton.NoButton
    pos = QPointF(400, 300)
    _mouse(view, QEvent.Type.MouseButtonPress, pos, right, right)
    for dx, dy in steps:
        pos = pos + QPointF(dx, dy)
        _mouse(view, QEvent.Type.MouseMove, pos, none, right)
    _mouse(view, QEvent.Type.MouseButtonRelease, pos, right, none)


def test_readout_follows_window_presets_auto_window_and_invert(view):
    assert "Window  C 2100  W 4000  (50 % / 100 %)" in view.readout_text()
    view.set_window(0.25, 0.5)  # a preset
    assert "C 1100  W 2000  (25 % / 50 %)" in view.readout_text()
    view.auto_window()
    c, w = view.window()
    assert (c, w) != (0.25, 0.5)
    assert f"({c * 100:.0f} % / {w * 100:.0f} %)" in view.readout_text()
    view.toggle_invert()
    assert "inverted" in view.readout_text()
    view.reset_window()
    assert "C 2100  W 4000" in view.readout_text()


def test_readout_follows_zoom_fit_and_one_to_one(view):
    fitted = view.zoom()
    assert fitted > 1.0  # a 60x40 image fills an 800x600 view
    assert f"Zoom {fitted * 100:.0f} %" in view.readout_text()
    view.one_to_one()
    assert "Zoom 100 %" in view.readout_text()
    view.viewbox.scaleBy((0.5, 0.5))  # what two wheel notches in do
    assert "Zoom 200 %" in view.readout_text()
    view.fit()
    assert f"Zoom {fitted * 100:.0f} %" in view.readout_text()


def test_readout_without_file_units_speaks_percent(qtbot):
    v = ImageView()
    qtbot.addWidget(v)
    assert v.readout_text() == ""
    v.set_image(np.full((8, 8), 0.5, np.float32))
    assert "Window  C 50 %  W 100 %" in v.readout_text()
    v.show_message("Cannot show this file")
    assert v.readout_text() == ""


@pytest.mark.parametrize("dx", [20, -20])
def test_six_small_right_drag_steps_change_the_window_gently(view, dx):
    view.set_window(0.5, 0.2)
    _right_drag(view, [(dx, 0)] * 6)
    c, w = view.window()
    assert c == pytest.approx(0.5)
    assert w != pytest.approx(0.2)
    assert (w > 0.2) == (dx > 0)  # right widens, left narrows
    assert abs(w - 0.2) / 0.2 < 0.5
    assert f"{w * 100:.0f} %" in view.readout_text()  # the readout followed the drag


def test_right_drag_down_lowers_the_centre_by_a_share_of_the_width(view):
    view.set_window(0.5, 0.4)
    _right_drag(view, [(0, 20)] * 3)
    c, w = view.window()
    assert w == pytest.approx(0.4)
    assert 0.4 < c < 0.5


def test_drag_scales_with_view_size_and_width():
    small = drag_window(0.5, 0.2, 60, 0, 400, 400)
    large = drag_window(0.5, 0.2, 60, 0, 1600, 400)
    assert small[1] > large[1] > 0.2
    assert drag_window(0.5, 0.02, 60, 0, 800, 600)[1] / 0.02 == pytest.approx(
        drag_window(0.5, 0.2, 60, 0, 800, 600)[1] / 0.2
    )


def test_pixel_under_the_cursor_in_file_units(view):
    raw = _raw()
    for x, y in ((0, 0), (37, 21), (W - 1, H - 1)):
        pos = view.viewbox.mapViewToDevice(QPointF(x + 0.5, y + 0.5))
        _mouse(view, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
        assert f"x {x}  y {y}  value {int(raw[y, x])}" in view.readout_text()
    view.viewbox.scaleBy((0.5, 0.5))  # zoomed in: another pixel under the resting cursor
    assert f"x {W - 1}  y {H - 1}" not in view.readout_text()
    assert "value" in view.readout_text()
    outside = view.viewbox.mapViewToDevice(QPointF(-5, -5))
    _mouse(view, QEvent.Type.MouseMove, outside, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    assert "value" not in view.readout_text()


def _tagged_dicom(arr: np.ndarray) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(arr)))
    ds.PatientID = "P-0042"
    ds.StudyID = "S7"
    ds.StudyDate = "20240131"
    ds.ViewPosition = "PA"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_dicom_header_tags_are_kept_for_display_only():
    arr = (np.arange(32 * 32).reshape(32, 32) % 4096).astype(np.uint16)
    tagged = decode_image(_tagged_dicom(arr))
    plain = decode_image(dicom_bytes(arr))
    assert tagged.meta.tags == {
        "Patient ID": "P-0042",
        "Study ID": "S7",
        "Study date": "2024-01-31",
        "Modality": "DX",
        "View": "PA",
    }
    assert plain.meta.tags == {"Modality": "DX"}
    assert tagged.meta == plain.meta  # tags take no part in comparing metas
    assert decode_image(png_bytes(arr)).meta.tags == {}


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "ward 7 scans"
    (f / "sub").mkdir(parents=True)
    grad = (np.linspace(0, 4095, 64 * 80).reshape(64, 80)).astype(np.uint16)
    (f / "a.png").write_bytes(png_bytes(grad))
    (f / "sub" / "chest.dcm").write_bytes(_tagged_dicom(grad))
    return f


def test_title_tags_and_toggle_in_the_window(qtbot, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.windowTitle() == window_title()
    with qtbot.waitSignal(w.first_image_shown, timeout=10_000):
        w.open_folder(folder)
    assert w.windowTitle() == "cxr-review — ward 7 scans — a.png — Research use only"
    assert "Window  C" in w.view.readout_text()
    assert w.view.tags_text() == ""  # a PNG has no header tags
    w.step(1)
    qtbot.waitUntil(lambda: "Patient ID: P-0042" in w.view.tags_text(), timeout=10_000)
    assert w.windowTitle() == "cxr-review — ward 7 scans — sub/chest.dcm — Research use only"
    assert "View: PA" in w.view.tags_text() and "Study date: 2024-01-31" in w.view.tags_text()
    assert w.view.toggle_tags() is False
    assert w.view.tags_text() == ""
    assert w.view.toggle_tags() is True
    assert "Patient ID: P-0042" in w.view.tags_text()
    w.shutdown()


def test_tooltip_names_the_full_path_on_every_column():
    long = "converted1/ward 7/patient_0042_followup_16bit.png"
    entries = [
        ImageResult(Path("/x") / long, long),
        ImageResult(Path("/x/b.png"), "b.png", error="file is damaged"),
        ImageResult(
            Path("/x/c.png"),
            "c.png",
            probabilities=np.array([0.4, 0.35, 0.25], np.float32),
        ),
    ]
    model = FileTableModel(uncertain_below=0.6)
    model.reset(entries, [0, 1, 2], ("COVID-19", "Normal", "Pneumonia"))
    tip = Qt.ItemDataRole.ToolTipRole
    for col in range(len(HEADERS)):
        assert model.data(model.index(0, col), tip) == long
        assert model.data(model.index(1, col), tip) == "b.png\nfile is damaged"
        assert model.data(model.index(2, col), tip).startswith("c.png")
    assert model.data(model.index(2, 1), tip) == "c.png\nlow AI confidence"
