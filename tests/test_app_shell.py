"""The review window: folder off the GUI thread, classification, heatmap, review, settings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from imaging_factory import png_bytes
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTextBrowser

from desktop.paths import DEMO_BUNDLE
from desktop.ui.main_window import MainWindow


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "scans ü"
    (f / "sub").mkdir(parents=True)
    grad = (np.linspace(0, 4095, 64 * 80).reshape(64, 80)).astype(np.uint16)
    (f / "a.png").write_bytes(png_bytes(grad))
    (f / "b_broken.png").write_bytes(b"<html>not an image</html>")
    (f / "sub" / "c.PNG").write_bytes(png_bytes(grad[::-1]))
    (f / ".hidden.png").write_bytes(png_bytes(grad))
    (f / "notes.txt").write_text("x")
    return f


@pytest.fixture
def phantom_folder(tmp_path):
    from training.phantom_dataset import write_phantoms

    out = tmp_path / "phantoms"
    write_phantoms(out, 6, size=128, bit_depth=16, seed=5, flat=True, masks=False, workers=1)
    (out / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return out


def _names(w):
    m = w.table_model
    return [m.data(m.index(r, 0)) for r in range(m.rowCount())]


def test_open_page_and_bad_file_without_a_model(qtbot, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.first_image_shown, timeout=10_000):
        w.open_folder(folder)
    assert _names(w) == ["a.png", "b_broken.png", "sub/c.PNG"]
    assert w.view.image_item.image.shape == (64, 80)
    assert "16-bit" in w.statusBar().currentMessage()
    w.step(1)
    qtbot.waitUntil(lambda: "Cannot show" in w.view.message.toPlainText(), timeout=10_000)
    w.step(1)
    qtbot.waitUntil(lambda: w.view.image_item.image is not None, timeout=10_000)
    assert "RESEARCH USE ONLY" in w.banner.text()
    w.shutdown()


def test_missing_folder_and_refused_bundle(qtbot, tmp_path, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.folder_failed, timeout=10_000):
        w.open_folder(tmp_path / "missing")
    assert "Cannot open folder" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.bundle_failed, timeout=20_000):
        w.set_bundle(tmp_path)
        w.open_folder(folder)
    assert "refused" in w.model_label.text() and "manifest.json" in w.model_label.text()
    w.shutdown()


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_classify_heatmap_review_and_reopen(qtbot, phantom_folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.set_bundle(DEMO_BUNDLE)
    announced = []
    w.attention_checked.connect(lambda: announced.append(time.perf_counter()))
    with qtbot.waitSignal(w.classification_finished, timeout=120_000):
        w.open_folder(phantom_folder)
    assert all(e.classified for e in w.entries)
    bad = next(e for e in w.entries if e.rel_path == "zz_broken.png")
    assert bad.error and bad.probabilities is None
    assert "Inference: ONNX Runtime CPU" in w.provider_label.text()
    qtbot.waitUntil(w.view.has_overlay, timeout=120_000)
    # (how long the GUI thread stalls meanwhile is a benchmark figure, not a test:
    #  python -m benchmarks -> gui_max_stall_ms)

    # the attention audit runs behind the reviewer: every classified image gets its lung share
    ok = [e for e in w.entries if e.probabilities is not None]
    qtbot.waitUntil(lambda: bool(announced), timeout=120_000)  # said once, when all are in
    assert all(e.attention is not None for e in ok) and len(announced) == 1
    shares = sorted(e.attention.lung_share for e in ok)
    assert all(0.0 <= v <= 1.0 for v in shares)
    n_low = sum(v < 0.5 for v in shares)
    assert w.attention_label.text().startswith(f"Looked outside lungs: {n_low} of 6")
    # a stricter threshold flags the lower half: list column, filter, summary, image warning
    w.set_min_lung_share(shares[3])
    flagged = {e.rel_path for e in ok if e.attention.lung_share < shares[3]}
    assert len(flagged) >= 3 and f"{len(flagged)} of 6" in w.attention_label.text()
    lung_col = {_names(w)[r]: w.table_model.data(w.table_model.index(r, 3)) for r in range(7)}
    assert {n for n, t in lung_col.items() if t.startswith("⚠")} == flagged
    w.filter_box.setCurrentText("Looked outside lungs")
    assert set(_names(w)) == flagged
    qtbot.waitUntil(lambda: w.view.has_overlay() and w.view_warning.isVisible(), timeout=60_000)
    assert "outside the lungs" in w.view_warning.text()
    assert "Looked outside the lungs" in w.side.attention_note.text()
    assert w.view.outline_item.image is None  # outlines are drawn only when asked for (G)
    qtbot.keyClick(w, Qt.Key.Key_G)
    edge = w.view.outline_item.image
    assert edge is not None and (edge[..., 2] == 255).sum() > 50  # the lung field's outline
    qtbot.keyClick(w, Qt.Key.Key_G)
    assert not w.view.outline_item.isVisible()
    w.filter_box.setCurrentText("All")
    w.set_min_lung_share(0.5)
    qtbot.waitUntil(w.view.has_overlay, timeout=60_000)

    overlay = w.view.overlay_item.image
    w.side.opacity.setValue(75)
    assert w.view.overlay_item.opacity() == pytest.approx(0.75)
    assert w.view.overlay_item.image is overlay  # opacity never recomputes the heatmap

    first = w.session.current
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.session.current != first
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert w.session.current == first
    if w.image.index != first:  # still loading: a decision now is refused, never misplaced
        qtbot.keyClick(w, Qt.Key.Key_2)
        assert w.entries[first].review is None
        assert "not on screen" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w.image.index == first, timeout=10_000)
    qtbot.keyClick(w, Qt.Key.Key_2)  # Normal
    e = w.entries[first]
    assert e.review is not None and e.review.reviewer_class == "Normal"
    assert w.side.class_buttons[1].isChecked() and not w.side.agree.isChecked()
    w.side.note.setPlainText("check the left base")
    qtbot.keyClick(w, Qt.Key.Key_Right)  # leaving the image saves the note
    rel = e.rel_path
    # typing on the next image survives a panel refresh (as when a batch arrives) and a decision
    w.side.note.setPlainText("typed while classifying")
    w.reviews.show(w.session.current)
    assert w.side.note.toPlainText() == "typed while classifying"
    qtbot.waitUntil(lambda: w.image.index == w.session.current, timeout=10_000)
    qtbot.keyClick(w, Qt.Key.Key_A)
    assert w.entries[w.session.current].review.note == "typed while classifying"
    w.close()

    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.set_bundle(DEMO_BUNDLE)
    with qtbot.waitSignal(w2.classification_finished, timeout=60_000):
        w2.open_folder(phantom_folder)
    assert w2.session.cached_hits == len(w2.entries) == 7  # every result came from the cache
    # …and so did every lung share: nothing is queued for Grad-CAM again
    assert all(e.attention is not None for e in w2.entries if e.probabilities is not None)
    assert w2.heatmaps.cam.background_left == 0
    again = next(x for x in w2.entries if x.rel_path == rel)
    assert again.review.reviewer_class == "Normal" and again.review.note == "check the left base"
    assert w2.side.opacity.value() == 75  # settings persisted
    recent = [a.text() for a in w2.menus.recent_folders_menu.actions()]
    assert recent[0] == str(phantom_folder)
    w2.menus.show_model_card()
    card = w2.menus.model_card_dialog.findChild(QTextBrowser).toPlainText()
    assert "DEMO MODEL" in card and "Test accuracy" in card and "COVID-19" in card
    w2.menus.model_card_dialog.close()
    pdf = phantom_folder.parent / "from-app.pdf"
    with qtbot.waitSignal(w2.export_finished, timeout=240_000):
        w2.export_report_to(str(pdf))
    from pypdf import PdfReader

    assert len(PdfReader(str(pdf)).pages) == len(w2.entries) + 2
    w2.table.selectAll()
    picked = w2.files.selected_paths()[:2]
    assert len(picked) == 2
    with qtbot.waitSignal(w2.export_finished, timeout=240_000):
        w2.export_report_to(str(pdf), picked)  # the save dialog confirmed the overwrite
    assert len(PdfReader(str(pdf)).pages) == 2 + 2
    csv_path = phantom_folder.parent / "from-app.csv"
    w2.side.colormap.setCurrentText("viridis")  # the export draws what the viewer shows
    w2.side.set_opacity(1.0)
    with qtbot.waitSignal(w2.export_finished, timeout=240_000):
        w2.export_csv_to(str(csv_path))
    assert "from-app-heatmaps" in w2.statusBar().currentMessage()  # where the PNGs went
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(w2.entries)
    ok_rows = [r for r in rows if r["status"] == "ok"]
    assert len(ok_rows) == 6 and {r["provider"] for r in ok_rows} == {"reused"}  # not redone
    pngs = sorted((phantom_folder.parent / "from-app-heatmaps").glob("*.png"))
    assert len(pngs) == 6
    import cv2

    from desktop.overlay import rgba_table

    rgb = cv2.imread(str(pngs[0]))[..., ::-1].reshape(-1, 3).astype(int)

    def near(colour) -> int:
        return int((np.abs(rgb - np.asarray(colour[:3], int)).max(axis=1) <= 3).sum())

    # the map's peak, sampled at image pixels between model-grid points, can sit a step or two
    # below the top of the table
    top = range(245, 256)
    assert sum(near(rgba_table("viridis")[k]) for k in top) > 0
    assert sum(near(rgba_table("inferno")[k]) for k in top) == 0
    w2.shutdown()


def test_screenshot_from_the_command_line(tmp_path, folder):
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [sys.executable, "-m", "desktop", str(folder), "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    import cv2

    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 400 and img.shape[1] > 600
    assert img.std() > 10  # a rendered window, not a blank frame


def test_start_up_failure_is_logged_and_reported(tmp_path, monkeypatch, capsys):
    """A crash during start-up gives a message and a log file, never a silent exit."""
    import desktop.ui.app as app_mod
    from desktop import launcher

    def boom(args):
        raise RuntimeError("simulated start-up failure")

    monkeypatch.setattr(app_mod, "run_app", boom)
    assert launcher.main(["--demo"]) == 1
    err = capsys.readouterr().err
    assert "simulated start-up failure" in err and "cxr-review.log" in err
    from desktop.paths import user_log_dir

    assert "simulated start-up failure" in (user_log_dir() / "cxr-review.log").read_text()


def test_demo_screenshot_with_model(tmp_path):
    if not (DEMO_BUNDLE / "manifest.json").exists():
        pytest.skip("demo bundle not built")
    shot = tmp_path / "demo.png"
    r = subprocess.run(
        [sys.executable, "-m", "desktop", "--demo", "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1],
    )
    assert r.returncode == 0, r.stderr
    assert shot.stat().st_size > 10_000
    from desktop.paths import demo_copy_dir

    assert (demo_copy_dir() / ".cxr-review").is_dir()  # the review state went into the copy


def test_install_desktop_entry(tmp_path, monkeypatch):
    from desktop import launcher

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert launcher.main(["--install-desktop-entry"]) == 0
    entry = (tmp_path / "share" / "applications" / "cxr-review.desktop").read_text()
    assert (
        "Exec=" in entry and "Terminal=false" in entry and "not a medical device" in entry.lower()
    )
    icon = entry.split("Icon=")[1].splitlines()[0]
    assert Path(icon).is_file() and icon.endswith(".svg")


def test_attention_results_late_stale_or_failing(qtbot, tmp_path):
    """Results of an earlier folder/model are dropped; failures count as checked and stop the
    pass after three in a row, so the summary and --screenshot never wait forever."""
    from desktop.messages import AttentionDone, AttentionRequest
    from export.attention import Attention
    from export.results import FileKey, ImageResult

    w = MainWindow()
    qtbot.addWidget(w)
    s = w.session
    s.bundle = tmp_path
    s.entries = [
        ImageResult(tmp_path / f"{k}.png", f"{k}.png", FileKey(1, k), np.array([0.2, 0.7, 0.1]))
        for k in range(5)
    ]
    emit = w.heatmaps.cam.attention_done.emit

    def done(i, att, failed=False, pass_id=None, rel=None):
        req = AttentionRequest(
            tmp_path,
            "sha",
            s.attention_pass if pass_id is None else pass_id,
            i,
            rel or f"{i}.png",
            tmp_path / f"{i}.png",
            FileKey(1, i),
            1,
        )
        emit(AttentionDone(req, att, failed))

    low = Attention(0.1, 0.5, 0.4, "estimated")
    done(0, low, pass_id=s.attention_pass - 1)  # an older pass: ignored
    assert w.entries[0].attention is None
    done(0, low, rel="other.png")  # another file by now
    assert w.entries[0].attention is None
    done(0, low)
    assert w.entries[0].flagged(0.5) and "1 of 1 (checking 1/5" in w.attention_label.text()
    broken = Attention.not_checked("SavedModel cannot be loaded")
    done(1, broken, failed=True)
    assert w.entries[1].attention.lung_share is None and not w.entries[1].flagged(0.5)
    done(2, broken, failed=True)
    with qtbot.waitSignal(w.attention_checked, timeout=1000):
        done(3, broken, failed=True)
    assert all(e.attention is not None for e in w.entries)  # the pass stopped, nothing waits
    assert "Attention check stopped" in w.statusBar().currentMessage()
    assert w.attention_label.text() == "Looked outside lungs: 1 of 5"
    w.shutdown()
