"""The row the reviewer reads, the image on screen and the file a decision is written to are
always the same, whatever keys and clicks came before (random sequences, fixed seed)."""

from __future__ import annotations

import random

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.paths import DEMO_BUNDLE
from desktop.ui.main_window import MainWindow

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built"
)

K = Qt.Key
M = Qt.KeyboardModifier
PAGING = [
    K.Key_Right,
    K.Key_Left,
    K.Key_Up,
    K.Key_Down,
    K.Key_PageDown,
    K.Key_PageUp,
    K.Key_Home,
    K.Key_End,
]
DECIDING = [K.Key_A, K.Key_U, K.Key_1, K.Key_2, K.Key_3, K.Key_Delete]
MOVING_FOCUS = [
    (K.Key_Tab, M.NoModifier),
    (K.Key_Tab, M.ControlModifier),
    (K.Key_Backtab, M.ShiftModifier),
    (K.Key_Down, M.ControlModifier),
    (K.Key_Up, M.ControlModifier),
    (K.Key_Down, M.ShiftModifier),
    (K.Key_Up, M.ShiftModifier),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from training.phantom_dataset import write_phantoms

    out = tmp_path_factory.mktemp("thirty") / "scans"
    write_phantoms(out, 30, size=96, bit_depth=16, seed=11, flat=True, masks=False, workers=1)
    return out


def _reviews(w) -> list:
    """Each entry's decision (notes are written to the row's entry, loaded or not)."""
    return [
        (e.review.decision, e.review.reviewer_class) if e.review and e.review.decision else None
        for e in w.entries
    ]


def _check(w) -> None:
    """List row, bold row, selection and session agree on one image."""
    t = w.table
    r = t.currentIndex().row()
    if not w.files.rows:
        return
    assert 0 <= r < len(w.files.rows)
    cur = w.files.rows[r]
    assert w.session.current == cur
    assert w.table_model.current == cur
    selected = {i.row() for i in t.selectionModel().selectedRows()}
    assert r in selected
    if len(selected) == 1:
        assert selected == {r}


def _act(qtbot, w, rnd: random.Random) -> str:
    focus = QApplication.focusWidget() or w
    kind = rnd.random()
    if kind < 0.35:
        key = rnd.choice(PAGING)
        qtbot.keyClick(focus, key)
        return f"key {key.name}"
    if kind < 0.55:
        key = rnd.choice(DECIDING)
        qtbot.keyClick(focus, key)
        return f"decide {key.name}"
    if kind < 0.7:
        key, mod = rnd.choice(MOVING_FOCUS)
        qtbot.keyClick(focus, key, mod)
        return f"key {key.name}+{mod.name}"
    if kind < 0.85 and w.files.rows:
        r = rnd.randrange(len(w.files.rows))
        mod = rnd.choice([M.NoModifier, M.NoModifier, M.ControlModifier, M.ShiftModifier])
        rect = w.table.visualRect(w.table_model.index(r, 0))
        if rect.isValid() and rect.height() > 0:
            qtbot.mouseClick(w.table.viewport(), Qt.MouseButton.LeftButton, mod, rect.center())
        return f"click row {r} {mod.name}"
    if kind < 0.92:
        box = rnd.choice([w.filter_box, w.sort_box])
        box.setCurrentIndex(rnd.randrange(box.count()))  # as a mouse choice does
        return f"{(box is w.filter_box and 'filter') or 'sort'} {box.currentText()}"
    qtbot.keyClick(focus, K.Key_N)  # into the note, type, then leave by Esc or by paging
    qtbot.keyClicks(QApplication.focusWidget() or w, "ab2")
    qtbot.keyClick(QApplication.focusWidget() or w, rnd.choice([K.Key_Escape, K.Key_PageDown]))
    return "note"


def test_two_hundred_random_sequences_never_split_row_image_and_decision(qtbot, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    w.set_bundle(DEMO_BUNDLE)
    with qtbot.waitSignal(w.first_image_shown, timeout=120_000):
        w.open_folder(folder)
    qtbot.waitUntil(lambda: not w.classifying, timeout=120_000)
    rnd = random.Random(2026)
    saved: list[tuple[int, int | None, int]] = []  # (entry written, entry on screen, list row's)
    decide = w.session.decide

    def watched(i, *args):
        rows = w.files.rows
        row = w.table.currentIndex().row()
        saved.append((i, w.image.index, rows[row] if 0 <= row < len(rows) else -1))
        return decide(i, *args)

    w.session.decide = watched
    decided = 0
    for seq in range(200):
        steps = []
        for _ in range(rnd.randint(1, 4)):
            before = _reviews(w)
            filt, cmap = w.filter_box.currentText(), w.side.colormap.currentText()
            steps.append(_act(qtbot, w, rnd))
            QApplication.processEvents()
            _check(w)
            changed = [
                i for i, (a, b) in enumerate(zip(before, _reviews(w), strict=True)) if a != b
            ]
            # every decision written went to the entry on screen and in the list's row
            assert all(i == on_screen == row for i, on_screen, row in saved), (seq, steps, saved)
            assert set(changed) <= {i for i, _s, _r in saved}, (seq, steps)
            decided += len(changed)
            saved.clear()
            if not steps[-1].startswith(("filter", "sort")):
                assert w.filter_box.currentText() == filt, (seq, steps)
            assert w.side.colormap.currentText() == cmap, (seq, steps)
        # the image on screen catches up with the row (every file here is readable)
        if w.files.rows:
            qtbot.waitUntil(lambda: w.image.index == w.session.current, timeout=10_000)
    assert decided > 20  # the sequences really decided images
    w.shutdown()


def test_keyboard_model_of_a_reading_workstation(qtbot, folder, tmp_path):
    import shutil

    from PySide6.QtWidgets import QWidget

    from desktop.ui.menus import SHORTCUT_HELP

    folder = shutil.copytree(folder, tmp_path / "fresh", ignore=shutil.ignore_patterns(".*"))

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    w.set_bundle(DEMO_BUNDLE)
    with qtbot.waitSignal(w.classification_finished, timeout=120_000):
        w.open_folder(folder)
    qtbot.waitUntil(lambda: w.image.index == w.session.current, timeout=10_000)
    # nothing in the side panel but the note takes the keyboard: no combo box eats arrows
    takers = [x for x in w.side.findChildren(QWidget) if x.focusPolicy() != Qt.FocusPolicy.NoFocus]
    assert set(takers) <= {w.side.note, w.side.note.viewport()}
    assert w.filter_box.focusPolicy() == w.sort_box.focusPolicy() == Qt.FocusPolicy.NoFocus
    first = w.session.current
    qtbot.keyClick(w.table, K.Key_Down)
    assert w.session.current != first and w.filter_box.currentText() == "All"
    qtbot.keyClick(w.table, K.Key_Up)
    assert w.session.current == first
    qtbot.waitUntil(lambda: w.image.index == first, timeout=10_000)

    # N: into the note; letters are text there, not decisions; Esc leaves it, saved
    qtbot.keyClick(w.table, K.Key_N)
    assert w.side.note.hasFocus()
    qtbot.keyClicks(w.side.note, "a2 left base")
    assert w.entries[first].review is None or w.entries[first].review.decision is None
    qtbot.keyClick(w.side.note, K.Key_Escape)
    assert w.table.hasFocus() and w.entries[first].review.note == "a2 left base"
    # paging from inside the note leaves it too
    qtbot.keyClick(w.table, K.Key_N)
    qtbot.keyClick(w.side.note, K.Key_PageDown)
    assert w.session.current != first and w.table.hasFocus()
    qtbot.keyClick(w.table, K.Key_PageUp)
    qtbot.waitUntil(lambda: w.image.index == first, timeout=10_000)

    # a decision, then Del clears it; the history keeps both
    qtbot.keyClick(w.table, K.Key_U)
    assert w.entries[first].review.decision == "uncertain" and w.side.uncertain.isChecked()
    assert w.entries[first].rel_path in w.statusBar().currentMessage()
    qtbot.keyClick(w.table, K.Key_Delete)
    assert w.entries[first].review.decision is None and not w.side.uncertain.isChecked()
    fields = [h[0] for h in w.session.store.history(w.entries[first].rel_path)]
    assert fields.count("decision") >= 2

    # optional: advance to the next image not reviewed after a decision
    w.menus.advance_action.setChecked(True)
    qtbot.keyClick(w.table, K.Key_A)
    assert w.entries[first].review.decision == "agree"
    assert w.session.current != first
    assert w.entries[w.session.current].review is None
    for key in ("G", "Ctrl+E", "N:", "Del", "Esc", "Home/End", "↑"):
        assert key in SHORTCUT_HELP, key
    w.shutdown()
