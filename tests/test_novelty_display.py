"""The "unlike the training data" verdict is shown wherever a probability is: the list's
column and filter, the bar above the image, the panel, the report page and its summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_factory import png_bytes
from PySide6.QtCore import Qt

from desktop.folder_model import filter_names, novelty_summary, visible_rows
from desktop.paths import DEMO_BUNDLE
from desktop.ui.file_table import HEADERS, UNLIKE_COLUMN, FileTableModel
from export.image_input import read_image
from export.novelty import Novelty
from export.results import ImageResult

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("COVID-19", "Normal", "Pneumonia")
REASON = "a colour picture (a photograph?), not a greyscale radiograph"
needs_bundle = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="no demo bundle"
)


def _entries() -> list[ImageResult]:
    p = np.array([0.9, 0.05, 0.05], np.float32)
    return [
        ImageResult(Path("/x/a.png"), "a.png", probabilities=p, novelty=Novelty.not_available()),
        ImageResult(
            Path("/x/b.png"), "b.png", probabilities=p, novelty=Novelty.not_available((REASON,))
        ),
        ImageResult(
            Path("/x/c.png"), "c.png", probabilities=p, novelty=Novelty(True, 1.0, 5.0, ())
        ),
        ImageResult(Path("/x/d.png"), "d.png", error="damaged"),
    ]


def test_filter_and_summary_count_images_unlike_the_training_data():
    assert "Unlike training data" in filter_names(NAMES)
    es = _entries()
    assert visible_rows(es, NAMES, filter_name="Unlike training data") == [1]
    assert novelty_summary(es) == (1, 3)


def test_the_list_column_marks_the_verdict_and_greys_the_probability(qapp):
    model = FileTableModel(uncertain_below=0.6)
    model.reset(_entries(), [0, 1, 2, 3], NAMES)
    assert HEADERS[UNLIKE_COLUMN] == "Unlike"
    shown = [model.data(model.index(r, UNLIKE_COLUMN)) for r in range(4)]
    assert shown == ["–", "⚠ yes", "no", ""]
    tip = model.data(model.index(1, UNLIKE_COLUMN), Qt.ItemDataRole.ToolTipRole)
    assert "Unlike the training data" in tip and REASON in tip
    assert "no model-based check" in model.data(
        model.index(0, UNLIKE_COLUMN), Qt.ItemDataRole.ToolTipRole
    )
    fg = Qt.ItemDataRole.ForegroundRole
    assert model.data(model.index(1, 2), fg) is not None  # greyed, never hidden
    assert model.data(model.index(0, 2), fg) is None
    assert model.data(model.index(1, 2)) == model.data(model.index(0, 2))  # same probability


def test_report_page_and_summary_say_it(qapp, tmp_path):
    from pypdf import PdfReader

    from desktop.batch import Page
    from desktop.ui.report_pdf import ReportWriter
    from export.bundle import load_bundle

    src = tmp_path / "x.png"
    src.write_bytes(png_bytes(np.tile(np.linspace(40, 200, 64, dtype=np.uint8), (64, 1))))
    es = _entries()[:3]
    for e in es:
        e.path = src
    pdf = tmp_path / "r.pdf"
    w = ReportWriter(pdf, load_bundle(DEMO_BUNDLE))
    for e in es:
        w.image_page(Page(e, read_image(src), None), opacity=0.5, cam_method="gradcam")
    w.summary(es)
    assert w.close()
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(str(pdf)).pages]
    assert "Unlike the model's training data" not in pages[0]
    assert "Unlike the model's training data" in pages[1] and "colour picture" in pages[1]
    assert "Unlike-training-data score 1, threshold 5" in pages[2]
    assert "Unlike the training data: 1 of 3 images" in pages[-1]


@needs_bundle
def test_bar_filter_and_invert_in_the_window(qtbot, tmp_path):
    from desktop.ui.main_window import MainWindow

    folder = tmp_path / "scans"
    folder.mkdir()
    src = sorted((ROOT / "resources" / "demo" / "images" / "8-bit").glob("*.png"))[0]
    (folder / "a-film.png").write_bytes(src.read_bytes())
    flipped = (255 - read_image(src).pixels).astype(np.uint8)
    (folder / "b-inverted.png").write_bytes(png_bytes(flipped))
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.set_bundle(DEMO_BUNDLE)
    with qtbot.waitSignal(w.classification_finished, timeout=120_000):
        w.open_folder(folder)
    bar = w.image.novelty_bar
    qtbot.waitUntil(lambda: w.image.index == 0, timeout=10_000)
    assert not bar.isVisible()
    room = w.image.view.geometry().top()  # the attention warning's room, kept when hidden
    assert room >= 2 * w.image.warning.fontMetrics().lineSpacing()
    w.files.filter_box.setCurrentText("Unlike training data")
    assert [w.entries[i].rel_path for i in w.files.rows] == ["b-inverted.png"]
    qtbot.waitUntil(lambda: bar.isVisible(), timeout=10_000)
    assert "inverted polarity" in bar.text()
    # no blank strip between the bar and the image when there is no attention warning
    assert not w.image.warning.isVisible()
    qtbot.waitUntil(lambda: w.image.view.geometry().top() == bar.geometry().bottom() + 1)
    assert "Unlike the training data" in w.side.confidence_note.text()
    assert "Unlike training data: 1 of 2" in w.status.novelty.text()
    w.files.filter_box.setCurrentText("All")
    w.files.go_to_row(1)
    qtbot.waitUntil(lambda: w.image.index == 1, timeout=10_000)
    with qtbot.waitSignal(w.classifier.finished, timeout=120_000):
        w.menus.toggle_model_invert()
    qtbot.waitUntil(lambda: w.image.index == 1 and not bar.isVisible(), timeout=20_000)
    assert not w.entries[1].novelty.unlike
    assert w.session.store.inverted_images() == {"b-inverted.png"}
    np.testing.assert_allclose(w.entries[1].probabilities, w.entries[0].probabilities, atol=1e-5)
    w.shutdown()
