"""First start on a desktop: Qt's system libraries checked on the platform really used, and a
clear fix when one is missing; the export's status line, the reviewer's name, a warning bar
that does not move the image."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from imaging_factory import png_bytes
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QInputDialog

from desktop import launcher
from desktop.qt_check import (
    APT_LINE,
    check_qt,
    failure_message,
    missing_libraries,
    platform_in_use,
)

ROOT = Path(__file__).resolve().parents[1]
#: the packages a desktop Debian lacked, or that Qt's xcb plugin needs since Qt 6.5
XCB_PACKAGES = [
    "libegl1",
    "libgl1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libfontconfig1",
    "libdbus-1-3",
    "libglib2.0-0",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-image0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xkb1",
]
LOADER_ERROR = (
    'qt.core.plugin.loader: QLibraryPrivate::loadPlugin failed on "/v/PySide6/Qt/plugins/'
    'platforms/libqxcb.so" : "Cannot load library /v/PySide6/Qt/plugins/platforms/libqxcb.so: '
    '(libxcb-icccm.so.4: cannot open shared object file: No such file or directory)"\n'
    'qt.qpa.plugin: Could not load the Qt platform plugin "xcb" in "" even though it was found.\n'
    "This application failed to start because no Qt platform plugin could be initialized.\n"
)


def _no_display_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    return {**env, **extra}


def _broken_library(tmp_path: Path, soname: str) -> str:
    """A folder for LD_LIBRARY_PATH whose ``soname`` cannot be loaded (an empty file)."""
    folder = tmp_path / "broken-libs"
    folder.mkdir()
    (folder / soname).write_bytes(b"")
    return str(folder)


# ---------------------------------------------------------------------- the Qt check


def test_the_platform_checked_is_the_one_qt_will_use():
    assert platform_in_use({}) == "offscreen"
    assert platform_in_use({"DISPLAY": ":0"}) == "xcb"
    assert platform_in_use({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}) == "wayland"
    assert platform_in_use({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert platform_in_use({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"


def test_a_missing_library_is_named_with_its_package_and_the_full_apt_line():
    assert set(XCB_PACKAGES) <= set(APT_LINE.split())
    assert missing_libraries(LOADER_ERROR) == ["libxcb-icccm.so.4"]
    text = failure_message("xcb", LOADER_ERROR, env={"DISPLAY": ":0"})
    assert "xcb platform (X display :0)" in text
    assert "libxcb-icccm.so.4 (package libxcb-icccm4)" in text
    assert APT_LINE in text and APT_LINE.startswith("sudo apt-get install -y ")
    assert "/v/PySide6" not in text  # folders of the install say nothing to the reader
    assert APT_LINE in failure_message("xcb", LOADER_ERROR, quote=False)
    assert "Qt said" not in failure_message("xcb", LOADER_ERROR, quote=False)


def test_an_unreachable_display_is_not_blamed_on_packages():
    said = "qt.qpa.xcb: could not connect to display :5\nno Qt platform plugin could be initialized"
    text = failure_message("xcb", said, env={"DISPLAY": ":5"})
    assert "display cannot be reached" in text and "apt-get" not in text


def test_qt_starts_offscreen_here():
    r = subprocess.run(
        [sys.executable, "-m", "desktop.qt_check", "--platform", "offscreen"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "offscreen" in r.stdout


def test_a_library_that_cannot_load_fails_the_check(tmp_path):
    """Qt's real loader, with libxcb-icccm made unloadable: the check names it and the fix."""
    env = _no_display_env(LD_LIBRARY_PATH=_broken_library(tmp_path, "libxcb-icccm.so.4"))
    r = subprocess.run(
        [sys.executable, "-m", "desktop.qt_check", "--platform", "xcb"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1
    assert "libxcb-icccm.so.4 (package libxcb-icccm4)" in r.stderr and APT_LINE in r.stderr


def test_check_qt_reports_an_unknown_platform():
    result = check_qt("no-such-platform")
    assert not result.ok and "no-such-platform" in result.message()


# ---------------------------------------------------------------------- the launcher


def test_launcher_explains_a_platform_plugin_that_cannot_load(tmp_path):
    """Qt would abort the process; the launcher says what to install and exits with 1."""
    env = _no_display_env(
        QT_QPA_PLATFORM="xcb", LD_LIBRARY_PATH=_broken_library(tmp_path, "libxcb-icccm.so.4")
    )
    r = subprocess.run(
        [sys.executable, "-m", "desktop", "--screenshot", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )
    assert r.returncode == 1, r.stderr  # not an abort
    assert "cxr-review: Qt cannot start on the xcb platform" in r.stderr
    assert "package libxcb-icccm4" in r.stderr and APT_LINE in r.stderr
    assert "cxr-review.log" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_launcher_explains_a_qt_library_missing_at_import(monkeypatch, capsys):
    import desktop.ui.qt_start as qt_start

    def missing(on_fatal):
        raise ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(qt_start, "start_application", missing)
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):  # the Tk fallback finds no screen: stderr only
        monkeypatch.delenv(name, raising=False)
    assert launcher.main(["--demo"]) == 1
    err = capsys.readouterr().err
    assert "libEGL.so.1 (package libegl1)" in err and APT_LINE in err


# ---------------------------------------------------------------------- export, reviewer, warning


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "scans"
    f.mkdir()
    grad = (np.linspace(0, 4095, 64 * 80).reshape(64, 80)).astype(np.uint16)
    for name in ("a.png", "b.png"):
        (f / name).write_bytes(png_bytes(grad))
    return f


def test_csv_export_names_the_csv_and_the_heatmap_folder(qtbot, folder, tmp_path, monkeypatch):
    from desktop.paths import DEMO_BUNDLE
    from desktop.session import ReviewSession
    from desktop.ui.exports import ExportController
    from desktop.ui.heatmaps import HeatmapController
    from desktop.view_state import ViewState
    from export.bundle import read_manifest

    if not (DEMO_BUNDLE / "manifest.json").exists():
        pytest.skip("demo bundle not built")
    child = tmp_path / "fake-python"  # the export child's work is tested in test_app_shell
    child.write_text("#!/bin/sh\nexit 0\n")
    child.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(child))
    session = ReviewSession()
    session.folder, session.bundle = folder, DEMO_BUNDLE
    session.manifest = read_manifest(DEMO_BUNDLE)
    heatmaps = HeatmapController(session)
    exports = ExportController(session, heatmaps)
    said: list[str] = []
    exports.message.connect(said.append)
    out = tmp_path / "results.csv"
    with qtbot.waitSignal(exports.finished, timeout=30_000):
        exports.csv(str(out), ViewState())
    assert said[-1] == f"Exported {out} and the heatmap PNGs in {tmp_path / 'results-heatmaps'}/"
    heatmaps.shutdown()


def _window_with_folder(qtbot, folder):
    from desktop.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.first_image_shown, timeout=10_000):
        w.open_folder(folder)
    return w


def test_first_decision_asks_the_reviewer_once(qtbot, folder, monkeypatch):
    monkeypatch.delenv("CXR_REVIEW_ASK_REVIEWER")
    QSettings().remove("reviewer")
    asked: list[str] = []

    def answer(*args, **kwargs):
        asked.append(kwargs.get("text", ""))
        return "Dr Ada", True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    w = _window_with_folder(qtbot, folder)
    assert w.reviewer.label.text().startswith("Reviewer: ")  # the login name, shown
    assert asked == []  # nothing asked before a decision
    w.reviews.decide("uncertain", None)
    assert len(asked) == 1
    first = w.entries[w.session.current]
    assert first.review is not None and first.review.reviewer == "Dr Ada"
    assert w.reviewer.label.text() == "Reviewer: Dr Ada"
    assert QSettings().value("reviewer") == "Dr Ada"
    w.step(1)
    w.reviews.decide("uncertain", None)
    assert len(asked) == 1  # once
    w.shutdown()


def test_a_cancelled_question_keeps_the_login_name_and_asks_next_session(
    qtbot, folder, monkeypatch
):
    from desktop.review_store import default_reviewer

    monkeypatch.delenv("CXR_REVIEW_ASK_REVIEWER")
    QSettings().remove("reviewer")
    asked: list[int] = []

    def cancel(*args, **kwargs):
        asked.append(1)
        return "", False

    monkeypatch.setattr(QInputDialog, "getText", cancel)
    w = _window_with_folder(qtbot, folder)
    w.reviews.decide("uncertain", None)
    w.reviews.decide("uncertain", None)
    assert len(asked) == 1
    assert w.entries[w.session.current].review.reviewer == default_reviewer()
    w.close()
    assert not QSettings().contains("reviewer")  # closing stores no name nobody chose


def test_no_question_when_a_name_is_stored_or_asking_is_off(qtbot, folder, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("asked")

    monkeypatch.setattr(QInputDialog, "getText", fail)
    QSettings().remove("reviewer")  # CXR_REVIEW_ASK_REVIEWER=0 (conftest): never asked
    w = _window_with_folder(qtbot, folder)
    w.reviews.decide("uncertain", None)
    w.shutdown()
    monkeypatch.delenv("CXR_REVIEW_ASK_REVIEWER")
    QSettings().setValue("reviewer", "Dr B")
    w2 = _window_with_folder(qtbot, folder)
    assert w2.reviewer.label.text() == "Reviewer: Dr B"
    w2.reviews.decide("uncertain", None)
    assert w2.entries[w2.session.current].review.reviewer == "Dr B"
    w2.shutdown()


def test_the_attention_warning_does_not_move_the_image(qtbot, folder):
    from desktop.review_store import ReviewStore
    from desktop.session import ReviewSession
    from desktop.ui.current_image import CurrentImage
    from desktop.view_state import ViewState
    from export.attention import Attention

    session = ReviewSession()
    store = ReviewStore.for_folder(folder)
    session.open_folder(folder, sorted(folder.glob("*.png")), store, {})
    image = CurrentImage(session, ViewState(min_lung_share=0.5))
    qtbot.addWidget(image.widget)
    image.widget.resize(1100, 800)
    image.widget.show()
    qtbot.waitExposed(image.widget)
    before = image.view.geometry()
    session.current = 0
    session.entries[0].attention = Attention(0.1, 0.6, 0.3, "estimated")
    image.update_warning(None)
    QApplication.processEvents()  # the layout reacts to the shown bar
    assert image.warning.isVisible() and "outside the lungs" in image.warning.text()
    assert image.view.geometry() == before
    session.entries[0].attention = Attention(0.9, 0.05, 0.05, "estimated")
    image.update_warning(None)
    QApplication.processEvents()
    assert not image.warning.isVisible() and image.view.geometry() == before
    image.shutdown()
    session.close()
