"""A model bundle checked on its own, at once, when no folder is open to classify.

The folder pass verifies the bundle it uses for itself; without a folder nothing
would, and the model line would say "verifying…" for ever. This check reads the
manifest and verifies every file's hash (:meth:`export.results.Bundle.open`) in a
thread of its own, says on the model line what it is doing once it has taken
:data:`SLOW_AFTER_MS`, and reports the manifest or the reason for the refusal.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel

from desktop.ui.layout import show_model

SLOW_AFTER_MS = 5000  # a check still running then says what it is doing


def bundle_name(path: Path) -> str:
    """The bundle's folder with its parent ("demo/bundle"): a bare "bundle" says little."""
    parts = Path(path).parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(path)


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"


class BundleCheck(QObject):
    verified = Signal(object)  # the Manifest of the bundle last started
    refused = Signal(str)  # one line: why the bundle last started was refused
    _stage = Signal(int, str)  # generation, what the check is doing
    _done = Signal(int, object, str)  # generation, Manifest (None when refused), reason

    def __init__(self, label: QLabel) -> None:
        super().__init__()
        self.label = label
        self._gen = 0
        self._name = ""
        self._doing = ""
        self._slow = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._say_slow)
        self._stage.connect(self._on_stage)
        self._done.connect(self._on_done)

    @property
    def running(self) -> bool:
        return bool(self._doing)

    def begin(self, path: Path, check: bool) -> None:
        """A new bundle: the model line says it is being verified; with ``check`` this
        object verifies it (else the folder pass does, and this one stays quiet)."""
        self.cancel()
        self._name = bundle_name(path)
        self.label.setStyleSheet("padding: 2px 6px;")
        self.label.setText(f"Model bundle {self._name}: verifying…")
        if not check:
            return
        gen, self._doing, self._slow = self._gen, "starting", False
        self._timer.start(SLOW_AFTER_MS)
        threading.Thread(
            target=self._work, args=(gen, Path(path)), name="cxr-bundle-check", daemon=True
        ).start()

    def cancel(self) -> None:
        """Whatever a running check finds is dropped (another bundle, or the folder pass
        verifies this one)."""
        self._gen += 1
        self._doing = ""
        self._timer.stop()

    def _work(self, gen: int, path: Path) -> None:
        from export.bundle import BundleError, bundle_root, read_manifest
        from export.results import Bundle

        try:
            self._emit(self._stage, gen, "reading its manifest")
            root = bundle_root(path)
            manifest = read_manifest(root)
            sizes = [
                (root / rel).stat().st_size for rel in manifest.files if (root / rel).is_file()
            ]
            self._emit(
                self._stage, gen, f"verifying hashes of {_size(sum(sizes))} ({len(sizes)} files)"
            )
            bundle = Bundle.open(root)
            self._emit(self._done, gen, bundle.manifest, "")
        except BundleError as exc:
            self._emit(self._done, gen, None, exc.reason)
        except Exception as exc:  # an unreadable disk, a permission error…
            self._emit(self._done, gen, None, f"{type(exc).__name__}: {exc}")

    def _emit(self, signal, *args) -> None:
        if args[0] == self._gen:  # a superseded check keeps quiet
            with contextlib.suppress(RuntimeError):  # the window is gone
                signal.emit(*args)

    def _on_stage(self, gen: int, doing: str) -> None:
        if gen == self._gen and self._doing:
            self._doing = doing
            if self._slow:
                self._say_slow()

    def _say_slow(self) -> None:
        if self._doing:
            self._slow = True
            self.label.setText(f"Model bundle {self._name}: {self._doing}…")

    def _on_done(self, gen: int, manifest, reason: str) -> None:
        if gen != self._gen or not self._doing:
            return
        self._doing = ""
        self._timer.stop()
        if manifest is not None:
            show_model(self.label, manifest)
            self.verified.emit(manifest)
        else:
            self.refused.emit(reason)
