"""Main window: file list, image view with window/level, research-use banner.

Decoding runs in a thread pool; the GUI thread only paints. Each request
carries a generation number and stale results are dropped, so paging fast
through a folder never queues old work in front of the image on screen.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from export.image_input import DecodedImage, ImageDecodeError, read_image, windowed

log = logging.getLogger(__name__)
pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)

BANNER = (
    "RESEARCH USE ONLY — not a medical device. AI output must be checked by a qualified reader."
)


class _Bridge(QObject):
    """Carries worker results to the GUI thread (queued connection)."""

    loaded = Signal(int, object, object)  # generation, DecodedImage | None, error text | None
    scanned = Signal(int, object, object)  # generation, list[Path] | None, error | None


class MainWindow(QMainWindow):
    first_image_shown = Signal()
    folder_failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("cxr-review — Research use only")
        self.resize(1280, 820)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cxr-decode")
        self._bridge = _Bridge()
        self._bridge.loaded.connect(self._on_loaded)
        self._bridge.scanned.connect(self._on_scanned)
        self._generation = 0
        self._scan_generation = 0
        self._files: list[Path] = []
        self._shown_once = False
        self._inverted = False
        self._current: DecodedImage | None = None

        self.banner = QLabel(BANNER)
        self.banner.setObjectName("banner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setStyleSheet(
            "#banner { background: #f2c200; color: #1a1a1a; font-weight: 600; padding: 4px; }"
        )
        self.model_label = QLabel("No model bundle loaded — images only, no classification.")
        self.model_label.setStyleSheet("padding: 2px 6px;")

        self.file_list = QListWidget()
        self.file_list.setMinimumWidth(220)
        self.file_list.currentRowChanged.connect(self._show_row)

        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("k")
        self.viewbox = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem()
        self.viewbox.addItem(self.image_item)
        self.message = pg.TextItem("", color="w", anchor=(0.5, 0.5))
        self.viewbox.addItem(self.message)

        split = QSplitter()
        split.addWidget(self.file_list)
        split.addWidget(self.view)
        split.setStretchFactor(1, 1)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.model_label)
        lay.addWidget(split, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage(
            "Open a folder of chest X-ray images (PNG, JPEG, TIFF, DICOM)."
        )

        for keys, slot in (
            (("Right", "PgDown"), lambda: self._step(1)),
            (("Left", "PgUp"), lambda: self._step(-1)),
            (("F",), self.fit),
            (("I",), self.toggle_invert),
        ):
            for k in keys:
                sc = QShortcut(QKeySequence(k), self)
                sc.activated.connect(slot)

    # ------------------------------------------------------------------ public API

    def set_bundle(self, path: Path) -> None:
        """Show which model is in use; a refused bundle says why (nothing runs yet)."""
        from export.bundle import BundleError, load_bundle

        try:
            manifest = load_bundle(path)
        except BundleError as exc:
            self.model_label.setText(f"Model bundle refused: {exc.reason}")
            return
        demo = " — DEMO model trained on synthetic phantoms" if manifest.extra.get("demo") else ""
        self.model_label.setText(f"Model: {manifest.model_name}{demo}")

    def open_folder(self, folder: Path) -> None:
        """Scan in the pool; the list fills when the scan returns."""
        self._scan_generation += 1
        gen = self._scan_generation
        self.statusBar().showMessage(f"Scanning {folder} …")

        def scan() -> None:
            from desktop.folder_scan import iter_image_files

            try:
                if not Path(folder).is_dir():
                    raise NotADirectoryError(f"{folder} is not a folder")
                files = list(iter_image_files(folder))
                self._bridge.scanned.emit(gen, files, None)
            except Exception as exc:
                self._bridge.scanned.emit(gen, None, str(exc))

        self._pool.submit(scan)

    def fit(self) -> None:
        self.viewbox.autoRange(padding=0.01)

    def toggle_invert(self) -> None:
        self._inverted = not self._inverted
        if self._current is not None:
            self._paint(self._current)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals

    def _on_scanned(self, gen: int, files: list[Path] | None, error: str | None) -> None:
        if gen != self._scan_generation:
            return
        if error is not None or files is None:
            self.statusBar().showMessage(f"Cannot open folder: {error}")
            self.folder_failed.emit(error or "unknown error")
            return
        self._files = files
        self.file_list.clear()
        for p in files:
            self.file_list.addItem(QListWidgetItem(p.name))
        if not files:
            self.statusBar().showMessage("No images found in this folder.")
            self.folder_failed.emit("no images")
            return
        self.statusBar().showMessage(f"{len(files)} images")
        self.file_list.setCurrentRow(0)

    def _step(self, delta: int) -> None:
        if self._files:
            row = min(max(self.file_list.currentRow() + delta, 0), len(self._files) - 1)
            self.file_list.setCurrentRow(row)

    def _show_row(self, row: int) -> None:
        if not 0 <= row < len(self._files):
            return
        self._generation += 1
        gen, path = self._generation, self._files[row]

        def work() -> None:
            if gen != self._generation:  # superseded before it started
                return
            try:
                self._bridge.loaded.emit(gen, read_image(path), None)
            except ImageDecodeError as exc:
                self._bridge.loaded.emit(gen, None, exc.reason)
            except Exception as exc:
                log.exception("decoding %s failed", path)
                self._bridge.loaded.emit(gen, None, f"unexpected error: {exc}")

        self._pool.submit(work)

    def _on_loaded(self, gen: int, decoded: DecodedImage | None, error: str | None) -> None:
        if gen != self._generation:
            return
        row = self.file_list.currentRow()
        if decoded is None:
            self._current = None
            self.image_item.clear()
            self.message.setText(f"Cannot show this file:\n{error}")
            self.message.setPos(0, 0)
            item = self.file_list.item(row)
            if item is not None:
                item.setToolTip(error or "")
                item.setForeground(Qt.GlobalColor.red)
            self.statusBar().showMessage(f"{self._files[row].name}: {error}")
            return
        self.message.setText("")
        self._current = decoded
        self._paint(decoded)
        self.fit()
        m = decoded.meta
        self.statusBar().showMessage(
            f"{self._files[row].name} — {m.width}×{m.height}, {m.bit_depth}-bit "
            f"{m.source_format.upper()} {m.photometric}   [{row + 1}/{len(self._files)}]"
        )
        if not self._shown_once:
            self._shown_once = True
            self.first_image_shown.emit()

    def _paint(self, decoded: DecodedImage) -> None:
        img = windowed(decoded)
        if self._inverted:
            img = 1.0 - img
        self.image_item.setImage(np.ascontiguousarray(img), levels=(0.0, 1.0), autoLevels=False)
