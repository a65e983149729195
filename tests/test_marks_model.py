"""The marks of one image while they are edited (Qt-free): operations, undo/redo, hit tests,
and the store write that every change makes."""

from __future__ import annotations

import pytest

from desktop.annotations import Annotation
from desktop.marks_model import (
    UNDO_LIMIT,
    MarksModel,
    clamp_move,
    clamp_point,
    distance_to_outline,
    save,
    thin_path,
)
from desktop.review_store import ReviewStore, ReviewStoreError

ARROW = Annotation.make("arrow", [(10, 10), (50, 40)])
BOX = Annotation.make("rectangle", [(100, 100), (200, 150)], "nodule?")
RING = Annotation.make("ellipse", [(0, 0), (40, 20)])
TRACE = Annotation.make("polyline", [(0, 0), (30, 0), (30, 30)])
LABEL = Annotation.make("text", [(5, 5)], "L")


def _shapes(model: MarksModel) -> list[tuple]:
    return [(m.kind, m.points, m.text) for m in model.marks]


def test_add_move_edit_delete_each_undone_and_redone():
    model = MarksModel([ARROW])
    states = [_shapes(model)]
    box = model.add(BOX)
    states.append(_shapes(model))
    model.move(box.uid, 5, -10)
    states.append(_shapes(model))
    assert model.get(box.uid).points == ((105, 90), (205, 140))
    model.set_text(box.uid, "mass")
    states.append(_shapes(model))
    model.set_points(box.uid, [(0, 0), (9, 9)])
    states.append(_shapes(model))
    model.delete(model.marks[0].uid)
    states.append(_shapes(model))
    assert _shapes(model) == [("rectangle", ((0, 0), (9, 9)), "mass")]
    for want in reversed(states[:-1]):
        assert model.undo()
        assert _shapes(model) == want
    assert not model.undo() and not model.can_undo()
    for want in states[1:]:
        assert model.redo()
        assert _shapes(model) == want
    assert not model.redo()


def test_a_new_change_forgets_the_redo_steps_and_identities_stay():
    model = MarksModel()
    a = model.add(ARROW)
    b = model.add(BOX)
    assert a.uid != b.uid
    model.undo()
    assert model.can_redo()
    model.add(RING)
    assert not model.can_redo()
    model.move(a.uid, 1, 1)
    assert model.marks[0].uid == a.uid  # a moved mark keeps its place and identity
    with pytest.raises(KeyError):
        model.delete(b.uid)  # undone: no longer there


def test_restore_takes_back_a_change_the_store_refused():
    model = MarksModel([ARROW])
    model.add(BOX)
    point = model.checkpoint()
    model.delete(model.marks[0].uid)
    model.restore(point)
    assert _shapes(model) == [("arrow", ARROW.points, ""), ("rectangle", BOX.points, "nodule?")]
    model.undo()
    assert _shapes(model) == [("arrow", ARROW.points, "")]


def test_undo_keeps_a_bounded_number_of_steps():
    model = MarksModel()
    for k in range(UNDO_LIMIT + 20):
        model.add(Annotation.make("text", [(k, k)], str(k)))
    n = 0
    while model.undo():
        n += 1
    assert n == UNDO_LIMIT
    assert len(model) == 20


def test_hits_the_outline_topmost_first_never_the_inside():
    model = MarksModel([BOX, Annotation.make("rectangle", [(100, 100), (180, 150)])])
    top = model.marks[1]
    assert model.hit(140, 151, 3) == top  # both bottom edges: the one drawn last
    assert model.hit(200, 125, 3) == model.marks[0]
    assert model.hit(150, 125, 3) is None  # inside: the image pans there
    assert distance_to_outline(RING, (40, 10)) == pytest.approx(0, abs=0.01)
    assert distance_to_outline(RING, (20, 10)) > 9
    assert distance_to_outline(TRACE, (15, 15)) == pytest.approx(0)  # the closing side
    assert distance_to_outline(ARROW, (10, 10)) == 0
    assert distance_to_outline(LABEL, (8, 9)) == pytest.approx(5)


def test_points_stay_on_the_image_and_traces_are_thinned():
    assert clamp_point((-3, 500.04), 100, 200) == (0.0, 200.0)
    assert clamp_point((12.345, 6.78), 100, 200) == (12.3, 6.8)
    assert clamp_move(BOX, 500, -500, 220, 300) == (20, -100)
    assert thin_path([(0, 0), (0.5, 0), (2, 0), (2.1, 0), (4, 0)], 1.5) == [(0, 0), (2, 0), (4, 0)]


def test_every_change_is_stored_with_history_and_a_refusal_says_why(tmp_path, monkeypatch):
    model = MarksModel()
    with ReviewStore.for_folder(tmp_path) as store:
        model.add(ARROW)
        assert save(store, "a.png", model.marks, "dr x") is None
        model.add(BOX)
        assert save(store, "a.png", model.marks, "dr x") is None
        assert [m.kind for m in store.annotations("a.png")] == ["arrow", "rectangle"]
        assert [h[0] for h in store.history("a.png")] == ["annotations", "annotations"]

        def full(*_a, **_k):
            raise ReviewStoreError(f"disk full: {store.path}")

        monkeypatch.setattr(store, "set_annotations", full)
        msg = save(store, "a.png", [], "dr x")
        assert msg is not None and "Could not save the marks of a.png" in msg
        assert "disk full" in msg
