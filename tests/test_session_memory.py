"""Per-image heatmap class, session memory across starts, and the bundle check that runs
without a folder."""

from __future__ import annotations

import argparse
import shutil
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from imaging_factory import png_bytes

from desktop.heatmap_choice import UNLIKELY_BELOW, class_label, map_note
from desktop.paths import DEMO_BUNDLE
from desktop.session_memory import MAX_FOLDERS, recall, remember

NAMES = ("COVID-19", "Normal", "Pneumonia")
HAS_DEMO = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built"
)


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "scans"
    f.mkdir()
    for k in range(5):
        img = (np.linspace(0, 255, 48 * 40).reshape(48, 40) + 40 * k) % 256
        (f / f"img{k}.png").write_bytes(png_bytes(img.astype(np.uint8)))
    return f


def _window(qtbot):
    from desktop.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    return w


def _open(qtbot, w, folder) -> None:
    with qtbot.waitSignal(w.first_image_shown, timeout=20_000):
        w.open_folder(folder)


def _current(w) -> str:
    return w.entries[w.session.current].rel_path


# ---------------------------------------------------------------------- Qt-free wording


def test_map_note_names_the_class_and_says_when_it_is_unlikely():
    probs = np.array([0.9, 0.087, 0.013])
    text, unlikely = map_note(NAMES, probs, 2, 0)
    assert unlikely and text == (
        "Pneumonia is unlikely here (1.3 %): this map shows what would argue for it."
    )
    text, unlikely = map_note(NAMES, probs, 1, 0)
    assert not unlikely and "Normal (8.7 %)" in text and "not the AI's class (COVID-19)" in text
    text, unlikely = map_note(NAMES, probs, 0, 0)
    assert not unlikely and "the AI's class (90.0 %)" in text
    assert map_note(NAMES, np.array([0.5, 0.5 - UNLIKELY_BELOW, UNLIKELY_BELOW]), 2, 0)[1] is False
    assert map_note(NAMES, None, 1, None) == ("Map for Normal.", False)
    assert (
        class_label("Normal", 0.0871) == "Normal (8.7 %)"
        and class_label("Normal", None) == "Normal"
    )


def test_last_image_map_keeps_recent_folders_and_survives_damage(tmp_path):
    text = remember("", tmp_path / "a", "x/1.png")
    text = remember(text, tmp_path / "b", "2.png")
    text = remember(text, tmp_path / "a", "x/3.png")
    assert recall(text, tmp_path / "a") == "x/3.png" and recall(text, tmp_path / "b") == "2.png"
    assert recall(text, tmp_path / "c") is None
    for bad in ("{not json", "[1, 2]", None, 7):
        assert recall(bad, tmp_path / "a") is None
        assert recall(remember(bad, tmp_path / "a", "p.png"), tmp_path / "a") == "p.png"
    for k in range(MAX_FOLDERS + 5):
        text = remember(text, tmp_path / f"f{k}", "p.png")
    assert recall(text, tmp_path / f"f{MAX_FOLDERS + 4}") == "p.png"
    assert recall(text, tmp_path / "a") is None  # the oldest folders are forgotten


# ---------------------------------------------------------------------- heatmap class per image


def test_class_choice_resets_on_the_next_image_unless_pinned(qtbot, folder):
    w = _window(qtbot)
    _open(qtbot, w, folder)
    w.side.set_classes(NAMES)  # as a bundle's ModelReady does
    box = w.side.cam_class
    box.setCurrentIndex(box.findData(1))  # Normal
    assert w.state.cam_class == 1
    w.step(1)
    assert box.currentData() is None and w.state.cam_class is None  # the predicted class again
    box.setCurrentIndex(box.findData(2))
    w.side.pin_class.setChecked(True)
    assert w.state.pin_class
    w.step(1)
    w.step(1)
    assert box.currentData() == 2 and w.state.cam_class == 2  # pinned: kept
    w.side.pin_class.setChecked(False)
    w.step(-1)
    assert box.currentData() is None and w.state.cam_class is None
    w.shutdown()


@HAS_DEMO
def test_map_of_an_unlikely_class_says_so_with_its_probability(qtbot, folder):
    from desktop.messages import ModelReady
    from export.results import Bundle

    w = _window(qtbot)
    _open(qtbot, w, folder)
    manifest = Bundle.open(DEMO_BUNDLE).manifest
    w.session.model_ready(ModelReady(manifest, "CPU"))
    names = tuple(manifest.class_names)
    e = w.entries[w.session.current]
    e.set_outcome(np.array([0.9, 0.087, 0.013]), None)
    w.side.set_classes(names)
    w.reviews.show(w.session.current)
    assert w.side.cam_class.itemText(w.side.cam_class.findData(2)) == f"{names[2]} (1.3 %)"
    w.cam_choice.describe(SimpleNamespace(class_index=2, probabilities=e.probabilities))
    assert w.side.map_note.text() == (
        f"{names[2]} is unlikely here (1.3 %): this map shows what would argue for it."
    )
    w.cam_choice.describe(SimpleNamespace(class_index=0, probabilities=e.probabilities))
    assert "the AI's class (90.0 %)" in w.side.map_note.text()
    w.step(1)
    assert w.side.map_note.text() == ""  # a new image: no map described yet
    w.shutdown()


# ---------------------------------------------------------------------- reopening


def test_a_start_without_a_folder_reopens_where_the_reviewer_stopped(qtbot, folder):
    from desktop.ui.app import choose_start

    w = _window(qtbot)
    _open(qtbot, w, folder)
    w.sort_box.setCurrentText("Confidence (high first)")
    w.filter_box.setCurrentText("Not reviewed")
    w.step(2)
    stopped = _current(w)
    assert stopped != "img0.png"
    w.side.cam_method.setCurrentIndex(w.side.cam_method.findData("hirescam"))
    w.side.colormap.setCurrentText("viridis")
    w.side.set_opacity(0.3)
    w.close()

    args = argparse.Namespace(folder=None, bundle=None, demo=False)
    start_folder, bundle = choose_start(args)
    assert start_folder == folder.absolute()
    assert bundle == (DEMO_BUNDLE if DEMO_BUNDLE.exists() else None)  # none chosen: the demo
    w2 = _window(qtbot)
    assert w2.sort_box.currentText() == "Confidence (high first)"
    assert w2.filter_box.currentText() == "Not reviewed"
    assert w2.side.cam_method.currentData() == "hirescam" and w2.state.cam_method == "hirescam"
    assert (w2.state.colormap, w2.state.opacity) == ("viridis", pytest.approx(0.3))
    _open(qtbot, w2, start_folder)  # no bundle: only the folder's memory is under test here
    assert _current(w2) == stopped
    w2.step(-2)
    first = _current(w2)
    w2.shutdown()

    # another folder does not take this one's place; a folder never seen starts at row 0
    other = folder.parent / "other"
    shutil.copytree(folder, other)
    w3 = _window(qtbot)
    _open(qtbot, w3, other)
    assert w3.files.position(w3.session.current)[0] == 1
    w3.step(3)
    w3.close()
    w4 = _window(qtbot)
    _open(qtbot, w4, folder)
    assert _current(w4) == first
    assert choose_start(args)[0] == folder.absolute()  # the last folder opened
    w4.shutdown()


def test_demo_and_a_named_folder_win_over_the_last_folder(qtbot, folder, tmp_path):
    from desktop.ui.app import choose_start

    w = _window(qtbot)
    _open(qtbot, w, folder)
    w.close()
    named = tmp_path / "named"
    got, _ = choose_start(argparse.Namespace(folder=str(named), bundle=None, demo=False))
    assert got == named.absolute()
    got, bundle = choose_start(argparse.Namespace(folder=None, bundle=None, demo=True))
    assert bundle == (DEMO_BUNDLE if DEMO_BUNDLE.exists() else None)
    assert got != folder.absolute() and got.is_dir()
    shutil.rmtree(folder)  # a last folder that is gone is not reopened
    assert choose_start(argparse.Namespace(folder=None, bundle=None, demo=False))[0] is None


# ---------------------------------------------------------------------- bundle check


@HAS_DEMO
def test_a_bundle_set_without_a_folder_is_verified_or_refused_at_once(qtbot, tmp_path):
    w = _window(qtbot)
    with qtbot.waitSignal(w.bundle_check.verified, timeout=30_000):
        w.set_bundle(DEMO_BUNDLE)
    assert w.model_label.text().startswith("Model: ") and not w.entries
    bad = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, bad)
    onnx = bad / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with qtbot.waitSignal(w.bundle_failed, timeout=30_000) as refused:
        w.set_bundle(bad)
    assert "model.onnx" in refused.args[0] and "sha256" in refused.args[0]
    assert w.model_label.text().startswith("Model bundle refused: ")
    w.shutdown()


@HAS_DEMO
def test_a_slow_bundle_check_says_what_it_is_doing(qtbot, monkeypatch):
    import desktop.ui.bundle_check as bundle_check
    import export.bundle

    release = threading.Event()
    real = export.bundle.sha256_file

    def held(path):
        release.wait(30)
        return real(path)

    monkeypatch.setattr(export.bundle, "sha256_file", held)
    monkeypatch.setattr(bundle_check, "SLOW_AFTER_MS", 0)
    w = _window(qtbot)
    w.set_bundle(DEMO_BUNDLE)
    try:
        qtbot.waitUntil(lambda: "verifying hashes of" in w.model_label.text(), timeout=10_000)
        assert "MB" in w.model_label.text() and "files" in w.model_label.text()
    finally:
        release.set()
    qtbot.waitUntil(lambda: w.model_label.text().startswith("Model: "), timeout=30_000)
    w.shutdown()


def test_a_scan_that_ends_after_shutdown_reaches_no_one(qtbot, folder):
    w = _window(qtbot)
    w.open_folder(folder)
    w.shutdown()
    qtbot.wait(500)  # the scan ends meanwhile; its answer must not start a display decode
    assert not w.entries
