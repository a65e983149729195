"""Marks drawn with the mouse on the image on screen: each kind, moved, undone, redone,
deleted, kept through zoom and paging, found again after closing the window."""

from __future__ import annotations

import numpy as np
import pytest
from imaging_factory import png_bytes
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QInputDialog

from desktop.review_store import ReviewStore, ReviewStoreError
from desktop.ui.main_window import MainWindow

W, H = 300, 240  # image pixels; the view shows them scaled
LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "scans"
    f.mkdir()
    grad = np.linspace(0, 4095, W * H).reshape(H, W).astype(np.uint16)
    (f / "a.png").write_bytes(png_bytes(grad))
    (f / "b.png").write_bytes(png_bytes(grad[::-1].copy()))
    return f


def _window(qtbot, folder) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.first_image_shown, timeout=10_000):
        w.open_folder(folder)
    return w


def _send(w: MainWindow, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    vp = w.view.viewport()
    ev = QMouseEvent(kind, pos, vp.mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(vp, ev)


def drag(w: MainWindow, *points: tuple[float, float]) -> None:
    """A left-button drag through ``points`` (image pixels), as a mouse on the viewport."""
    pos = [w.view.to_viewport(x, y) for x, y in points]
    _send(w, QEvent.Type.MouseButtonPress, pos[0], LEFT, LEFT)
    for p in pos[1:]:
        _send(w, QEvent.Type.MouseMove, p, NONE, LEFT)
    _send(w, QEvent.Type.MouseButtonRelease, pos[-1], LEFT, NONE)


def _stored(w: MainWindow, rel: str = "a.png") -> list[tuple]:
    return [(m.kind, m.points, m.text) for m in w.session.store.annotations(rel)]


def _near(points, want, tol: float = 1.5) -> bool:
    return len(points) == len(want) and all(
        abs(p[0] - q[0]) <= tol and abs(p[1] - q[1]) <= tol
        for p, q in zip(points, want, strict=True)
    )


def _key(w: MainWindow, key, mod=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(QApplication.focusWidget() or w, key, mod)


def test_each_kind_drawn_with_the_mouse_is_stored_in_image_pixels(qtbot, folder):
    w = _window(qtbot, folder)
    assert w.marks.tool() == "select"
    assert w.view.zoom() != pytest.approx(1.0)  # screen and image pixels differ
    w.marks.ask_text = lambda _title, _text: "effusion"
    for key, tool in ((Qt.Key_L, "arrow"), (Qt.Key_E, "ellipse"), (Qt.Key_R, "rectangle")):
        _key(w, key)
        assert w.marks.tool() == tool
    _key(w, Qt.Key_L)
    drag(w, (20, 30), (60, 50), (80, 90))
    _key(w, Qt.Key_E)
    drag(w, (100, 100), (140, 130))
    _key(w, Qt.Key_R)
    drag(w, (150, 20), (250, 80))
    _key(w, Qt.Key_P)
    drag(w, (30, 150), (80, 150), (80, 200), (30, 200))
    _key(w, Qt.Key_T)
    drag(w, (200, 200))
    got = _stored(w)
    assert [g[0] for g in got] == ["arrow", "ellipse", "rectangle", "polyline", "text"]
    assert _near(got[0][1], [(20, 30), (80, 90)])
    assert _near(got[1][1], [(100, 100), (140, 130)])
    assert _near(got[2][1], [(150, 20), (250, 80)])
    assert _near(got[3][1], [(30, 150), (80, 150), (80, 200), (30, 200)])
    assert _near(got[4][1], [(200, 200)]) and got[4][2] == "effusion"
    assert [m.kind for m in w.marks.marks()] == [g[0] for g in got]
    _key(w, Qt.Key_Escape)
    assert w.marks.tool() == "select"
    w.shutdown()


def test_a_click_or_a_drag_off_the_image_draws_nothing_outside_it(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.set_tool("rectangle")
    drag(w, (100, 100))  # a click, no shape
    assert _stored(w) == []
    drag(w, (250, 200), (400, 400))  # past the corner: kept on the image
    assert _near(_stored(w)[0][1], [(250, 200), (W, H)])
    w.shutdown()


def test_move_undo_redo_delete_and_the_store_follows(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.set_tool("rectangle")
    drag(w, (50, 50), (150, 100))
    before = _stored(w)[0][1]
    w.marks.set_tool("select")
    drag(w, (100, 50), (120, 60), (130, 70))  # grab the top edge, move by (30, 20)
    moved = _stored(w)[0][1]
    assert _near(moved, [(80, 70), (180, 120)])
    assert w.marks.selected() is not None
    _key(w, Qt.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _stored(w)[0][1] == before
    _key(w, Qt.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert _stored(w)[0][1] == moved
    _key(w, Qt.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _key(w, Qt.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert _stored(w)[0][1] == moved
    drag(w, (180, 120), (200, 110))  # the selected box's lower-right handle
    assert _near(_stored(w)[0][1], [(80, 70), (200, 110)])
    w.marks.select(w.marks.marks()[0].uid)
    _key(w, Qt.Key_Delete)  # a mark is selected: Del deletes it, the decision stays
    assert _stored(w) == []
    assert w.entries[0].review is None or w.entries[0].review.decision is None
    _key(w, Qt.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(_stored(w)) == 1
    history = [h for h in w.session.store.history("a.png") if h[0] == "annotations"]
    assert len(history) == 9  # each change above, undo and redo included
    w.shutdown()


def test_double_click_edits_a_label(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.ask_text = lambda _title, _text: "first"
    w.marks.set_tool("text")
    drag(w, (100, 100))
    w.marks.set_tool("select")
    w.marks.ask_text = lambda _title, text: text + " and second"
    pos = w.view.to_viewport(101, 101)
    _send(w, QEvent.Type.MouseButtonDblClick, pos, LEFT, LEFT)
    _send(w, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE)
    assert _stored(w)[0][2] == "first and second"
    w.marks.ask_text = lambda _title, _text: "x" * 501
    w.marks.edit_text()  # the selected mark
    assert _stored(w)[0][2] == "first and second"
    assert "longer than 500 characters" in w.statusBar().currentMessage()
    w.marks.set_tool("text")
    drag(w, (20, 20))
    assert len(_stored(w)) == 1
    w.shutdown()


def test_the_label_dialog_belongs_to_the_window(qtbot, folder, monkeypatch):
    w = _window(qtbot, folder)
    asked = []

    def answer(parent, title, label, text=""):
        asked.append((parent, title, text))
        return "apex", True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    w.marks.set_tool("text")
    drag(w, (100, 100))
    assert asked == [(w, "Text label", "")]
    assert _stored(w)[0][2] == "apex"
    w.shutdown()


def test_without_a_drawing_tool_the_left_drag_still_pans(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.set_tool("arrow")
    drag(w, (100, 100), (200, 150))
    w.marks.set_tool("select")
    w.view.viewbox.scaleBy((0.5, 0.5))  # zoom in so there is room to pan
    rect = w.view.viewbox.viewRect()
    arrow = _stored(w)[0][1]
    drag(w, (150, 60), (160, 70), (170, 80))  # on the image, nowhere near the arrow
    assert w.view.viewbox.viewRect() != rect  # panned
    assert _stored(w)[0][1] == arrow  # and the mark stayed on its pixels
    assert w.marks.selected() is None
    drag(w, *arrow[1:], (arrow[1][0] - 10, arrow[1][1]))  # found where its pixels went
    assert _near(
        _stored(w)[0][1], [(arrow[0][0] - 10, arrow[0][1]), (arrow[1][0] - 10, arrow[1][1])]
    )
    w.shutdown()


def test_marks_follow_the_image_on_screen_and_hide_on_m(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.set_tool("ellipse")
    drag(w, (10, 10), (60, 60))
    with qtbot.waitSignal(w.marks.changed, timeout=10_000):
        w.step(1)
    qtbot.waitUntil(lambda: w.image.index == 1, timeout=10_000)
    assert w.marks.marks() == []
    drag(w, (100, 100), (120, 140))
    assert [m[0] for m in _stored(w, "b.png")] == ["ellipse"]
    assert len(_stored(w, "a.png")) == 1
    w.step(-1)
    qtbot.waitUntil(lambda: w.image.index == 0, timeout=10_000)
    assert _near(w.marks.marks()[0].points, [(10, 10), (60, 60)])
    assert w.marks.is_visible()
    _key(w, Qt.Key_M)
    assert not w.marks.is_visible()
    _key(w, Qt.Key_M)
    assert w.marks.is_visible()
    w.shutdown()


def test_hidden_marks_are_not_picked_and_the_note_keeps_its_keys(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.set_tool("rectangle")
    drag(w, (50, 50), (150, 100))
    w.marks.set_tool("select")
    _key(w, Qt.Key_M)
    drag(w, (100, 50), (130, 70))  # on the hidden box's edge: pans, moves nothing
    assert _near(_stored(w)[0][1], [(50, 50), (150, 100)])
    assert w.marks.selected() is None
    _key(w, Qt.Key_M)
    w.marks.select(w.marks.marks()[0].uid)
    w.side.note.setFocus()
    qtbot.waitUntil(w.side.note.hasFocus)
    for ch in "tree":
        _key(w, ch)
    _key(w, Qt.Key_Backspace)
    _key(w, Qt.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _key(w, "p")
    assert w.side.note.toPlainText().endswith("p")
    assert w.marks.tool() == "select"  # letters went to the note, not to the tools
    assert len(_stored(w)) == 1  # Backspace and Ctrl+Z edited the note, not the marks
    _key(w, Qt.Key_Escape)
    assert not w.side.note.hasFocus()
    w.shutdown()


def test_a_refused_write_takes_the_mark_back_and_says_why(qtbot, folder, monkeypatch):
    w = _window(qtbot, folder)

    def full(*_a, **_k):
        raise ReviewStoreError("disk full: review.sqlite")

    monkeypatch.setattr(w.session.store, "set_annotations", full)
    w.marks.set_tool("rectangle")
    drag(w, (50, 50), (150, 100))
    assert w.marks.marks() == []
    assert "Could not save the marks of a.png: disk full" in w.statusBar().currentMessage()
    w.shutdown()


def test_closed_and_reopened_the_window_shows_the_marks(qtbot, folder):
    w = _window(qtbot, folder)
    w.marks.set_tool("polyline")
    drag(w, (30, 30), (90, 30), (90, 90))
    w.marks.set_tool("arrow")
    drag(w, (200, 200), (150, 150))
    drawn = _stored(w)
    w.close()
    w2 = _window(qtbot, folder)
    assert [(m.kind, m.points, m.text) for m in w2.marks.marks()] == drawn
    w2.shutdown()
    with ReviewStore.for_folder(folder) as store:
        assert [m.kind for m in store.annotations("a.png")] == ["polyline", "arrow"]
