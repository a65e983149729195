"""First start on a desktop: Qt's system libraries checked on the platform really used, and a
clear fix when one is missing; the export's status line, the reviewer's name, a warning bar
that does not move the image."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
