"""Long paths in the file list keep the files of a folder apart: the file's name before its
folders, the end of the name (its numbers) before its start."""

from __future__ import annotations

import pytest

from desktop.folder_model import elide_path


def _fits(width: int):
    return lambda s: len(s) <= width


@pytest.mark.parametrize(
    ("width", "want"),
    [
        (40, "16-bit/phantom-00001.png"),
        (22, "1…it/phantom-00001.png"),
        (19, "…/phantom-00001.png"),
        (17, "16-…tom-00001.png"),  # a hint of the folder while the name keeps 6 or more
        (12, "16-…0001.png"),
        (9, "…0001.png"),  # too little room for both: the name's end
        (2, "…g"),
        (0, "…g"),  # never empty: Qt elides what still does not fit
    ],
)
def test_folders_go_first_then_the_start_of_the_name(width, want):
    got = elide_path("16-bit/phantom-00001.png", _fits(width))
    assert got == want


def test_two_files_that_differ_only_at_the_end_stay_apart_at_every_width():
    a, b = "2026-11/study-0001/IM-0001-0041.png", "2026-11/study-0001/IM-0001-0042.png"
    for width in range(6, 40):
        ea, eb = elide_path(a, _fits(width)), elide_path(b, _fits(width))
        assert ea != eb, width
        assert len(ea) <= width


def test_the_demo_folders_stay_apart_when_the_name_is_cut():
    for width in range(10, 24):
        a = elide_path("16-bit/phantom-00001.png", _fits(width))
        b = elide_path("8-bit/phantom-00001.png", _fits(width))
        assert a != b or width in (19, 20), (width, a, b)


def test_folders_keep_their_start_and_end():
    rel = "ward-7/patient-0123/IM-0001.png"
    assert elide_path(rel, _fits(23)) == "ward-…-0123/IM-0001.png"
    assert elide_path(rel, _fits(14)) == "…3/IM-0001.png"
    assert elide_path(rel, _fits(13)) == "…/IM-0001.png"
    assert elide_path(rel, _fits(7)) == "…01.png"
    # patients told apart by the end of their folder, with the same file names
    a = elide_path("patient-0123/IM-0001.png", _fits(15))
    b = elide_path("patient-0124/IM-0001.png", _fits(15))
    assert a != b and a.endswith("/IM-0001.png")


def test_the_list_draws_the_short_form(qapp, tmp_path):
    """In the table: a narrow File column shows the name's end, not its start."""
    from PySide6.QtWidgets import QStyleOptionViewItem

    from desktop.ui.file_table import FileTableModel, PathDelegate
    from export.results import ImageResult

    model = FileTableModel(0.6)
    rel = "16-bit/phantom-00001.png"
    model.reset([ImageResult(tmp_path / rel, rel)], [0], ())
    option = QStyleOptionViewItem()
    option.rect.setWidth(option.fontMetrics.horizontalAdvance("…00001.png") + 12)
    PathDelegate().initStyleOption(option, model.index(0, 0))
    assert "…" in option.text and option.text.endswith("01.png")
    option = QStyleOptionViewItem()
    option.rect.setWidth(2000)
    PathDelegate().initStyleOption(option, model.index(0, 0))
    assert option.text == rel
