"""Architecture rules that import-linter cannot see: lazy TensorFlow, Qt-free core at runtime."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import desktop
import export
import training

ROOT = Path(__file__).resolve().parents[1]


def _modules(pkg) -> list[str]:
    names = [pkg.__name__]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(' '.join(sorted(k.split('.')[0] for k in sys.modules)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_core_imports_neither_qt_nor_tensorflow():
    core = [
        m
        for pkg in (export, training, desktop)
        for m in _modules(pkg)
        if not m.startswith("desktop.ui")
    ]
    assert "export.image_input" in core and "desktop.cli" in core
    loaded = _imported_after(core)
    assert not loaded & {"PySide6", "pyqtgraph", "superqt", "shiboken6"}
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_app_modules_do_not_import_tensorflow_at_module_level():
    ui = [m for m in _modules(desktop) if m.startswith("desktop.ui")]
    assert "desktop.ui.main_window" in ui
    loaded = _imported_after(["desktop.launcher", *ui])
    assert "tensorflow" not in loaded and "keras" not in loaded
