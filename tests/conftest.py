"""Shared test set-up: no display, no network, user settings and data kept in tmp, and the
bundled resources left exactly as they were."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from source_guard import changes, snapshot

RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"


@pytest.fixture(scope="session", autouse=True)
def _resources_untouched():
    """Tests, the CLI and the app only read resources/: the session fails naming any path that
    was added, removed or modified there."""
    before = snapshot(RESOURCES_DIR)
    yield
    changed = changes(before, snapshot(RESOURCES_DIR))
    if changed:
        pytest.fail("the test session changed resources/: " + "; ".join(changed), pytrace=False)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """QSettings, app data and logs go to a throwaway folder, never the developer's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("CXR_REVIEW_HOME", str(home / "cxr"))
    monkeypatch.setenv("CXR_REVIEW_ASK_REVIEWER", "0")  # no name dialog waiting for a person
    if "PySide6.QtCore" in sys.modules:  # Qt reads XDG_CONFIG_HOME once per process
        from PySide6.QtCore import QSettings

        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "config"))
    yield
