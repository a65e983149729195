"""The review window opens a folder off the GUI thread, pages, and survives bad files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from imaging_factory import png_bytes

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


def test_open_page_and_bad_file(qtbot, folder):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.first_image_shown, timeout=10_000):
        w.open_folder(folder)
    assert [w.file_list.item(i).text() for i in range(w.file_list.count())] == [
        "a.png",
        "b_broken.png",
        "c.PNG",
    ]
    assert w.image_item.image.shape == (64, 80)
    assert "16-bit" in w.statusBar().currentMessage()
    w._step(1)
    qtbot.waitUntil(lambda: "Cannot show" in w.message.toPlainText(), timeout=10_000)
    assert "web page" in w.file_list.item(1).toolTip()
    w._step(1)
    qtbot.waitUntil(
        lambda: w.image_item.image is not None and w.message.toPlainText() == "", timeout=10_000
    )
    first = w.image_item.image.copy()
    w.toggle_invert()
    np.testing.assert_allclose(w.image_item.image, 1.0 - first, atol=1e-6)
    assert "RESEARCH USE ONLY" in w.banner.text()
    w.shutdown()


def test_missing_folder_reports(qtbot, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.folder_failed, timeout=10_000):
        w.open_folder(tmp_path / "missing")
    assert "Cannot open folder" in w.statusBar().currentMessage()
    w.shutdown()


def test_refused_bundle_says_why(qtbot, tmp_path):
    w = MainWindow()
    qtbot.addWidget(w)
    w.set_bundle(tmp_path)
    assert "refused" in w.model_label.text() and "manifest.json" in w.model_label.text()
    w.shutdown()


def test_screenshot_from_the_command_line(tmp_path, folder):
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [sys.executable, "-m", "desktop", str(folder), "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=120,
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
