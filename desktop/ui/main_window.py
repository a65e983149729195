"""Main window: file table, image + heatmap, AI result, the reviewer's decision.

The GUI thread only paints and reacts: scanning and decoding run in a small
pool, classification in a superqt generator worker, Grad-CAM in its own
thread (latest request wins). Each request carries a generation number and
stale answers are dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.folder_model import (
    SORTS,
    Entry,
    attention_summary,
    file_key,
    filter_names,
    visible_rows,
)
from desktop.review_store import ReviewStore, default_reviewer
from desktop.ui.file_table import FileTableModel
from desktop.ui.image_view import ImageView
from desktop.ui.side_panel import SidePanel
from desktop.ui.workers import (
    ATTENTION_METHOD,
    CamRequest,
    CamService,
    classify_folder,
    preload_native_libraries,
)
from export.attention import DEFAULT_MIN_LUNG_SHARE, describe, flag
from export.image_input import DecodedImage, ImageDecodeError, read_image, windowed

log = logging.getLogger(__name__)

BANNER = (
    "RESEARCH USE ONLY — not a medical device. AI output must be checked by a qualified reader."
)
UNCERTAIN_BELOW = 0.6  # default of the low-confidence band (Settings)


def _float_setting(settings, key: str, default: float) -> float:
    """A 0..1 setting; anything unreadable falls back to the default."""
    try:
        value = float(settings.value(key, default))
    except (TypeError, ValueError):
        return default
    return value if 0.0 <= value <= 1.0 else default


CAM_CACHE_SIZE = 32  # overlays are up to 768² float32 (2.3 MB): keep the recent ones only
RECENT_MAX = 8
#: (label, centre, width) on the [0, 1] windowed image
WINDOW_PRESETS = (
    ("Full range", 0.5, 1.0),
    ("Lung", 0.35, 0.7),
    ("Mediastinum / soft tissue", 0.65, 0.5),
    ("Bone", 0.8, 0.4),
)


class _Bridge(QObject):
    """Carries pool results to the GUI thread (queued connections)."""

    loaded = Signal(int, object, object)  # generation, (DecodedImage, windowed) | None, error
    scanned = Signal(int, object, object)  # generation, list[Path] | None, error | None


class MainWindow(QMainWindow):
    first_image_shown = Signal()
    folder_failed = Signal(str)
    classification_finished = Signal()
    heatmap_shown = Signal()
    attention_checked = Signal()  # every classified image of the folder has its lung share
    bundle_failed = Signal(str)
    export_finished = Signal(str)
    export_failed = Signal(str)

    def __init__(self) -> None:
        preload_native_libraries()  # before anything is on screen; see its docstring
        super().__init__()
        self.setWindowTitle("cxr-review — Research use only")
        self.resize(1440, 880)
        self.settings = QSettings()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cxr-decode")
        self._bridge = _Bridge()
        self._bridge.loaded.connect(self._on_loaded)
        self._bridge.scanned.connect(self._on_scanned)
        self._cam = CamService()
        self._cam.done.connect(self._on_cam)
        self._cam.attention_done.connect(self._on_attention)
        self.destroyed.connect(self._cam.shutdown)  # a window never shut down still ends its thread
        self._cam.status.connect(lambda t: self.side.cam_status.setText(t))
        self._generation = 0
        self._scan_generation = 0
        self._folder: Path | None = None
        self._bundle: Path | None = None
        self._manifest = None
        self._provider = ""
        self._class_names: tuple[str, ...] = ()
        self.entries: list[Entry] = []
        self._rows: list[int] = []
        self._current: int | None = None
        self._decoded: DecodedImage | None = None
        self._worker = None
        self._classifying = False
        self._cam_cache: OrderedDict[tuple, dict] = OrderedDict()  # LRU, CAM_CACHE_SIZE entries
        self._cam_wanted: tuple | None = None
        self.store: ReviewStore | None = None
        self.reviewer = str(self.settings.value("reviewer", default_reviewer()))
        self.uncertain_below = _float_setting(self.settings, "uncertain_below", UNCERTAIN_BELOW)
        self.min_lung_share = _float_setting(
            self.settings, "min_lung_share", DEFAULT_MIN_LUNG_SHARE
        )
        self._attention_cache = None  # PredictionCache of the folder, for attention results
        self._attention_gen = 0  # bumped per folder/classification: late results are dropped
        self._attention_errors = 0  # consecutive background failures
        self._attention_announced = False
        self._shown_once = False
        self._is_shut_down = False
        self._note_owner: int | None = None  # entry whose note the note field shows
        self._export_proc = None
        self.cached_hits = 0  # results taken from the prediction cache (for the status and tests)

        self.banner = QLabel(BANNER)
        self.banner.setObjectName("banner")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setStyleSheet(
            "#banner { background: #f2c200; color: #1a1a1a; font-weight: 600; padding: 4px; }"
        )
        self.model_label = QLabel("No model bundle loaded — images only, no classification.")
        self.model_label.setStyleSheet("padding: 2px 6px;")

        top = QHBoxLayout()
        open_btn = QPushButton("Open folder…")
        open_btn.clicked.connect(self.choose_folder)
        self.filter_box = QComboBox()
        self.filter_box.addItems(filter_names(()))
        self.sort_box = QComboBox()
        self.sort_box.addItems(SORTS)
        self.filter_box.currentTextChanged.connect(lambda _t: self._refresh_table())
        self.sort_box.currentTextChanged.connect(lambda _t: self._refresh_table())
        top.addWidget(open_btn)
        top.addWidget(QLabel("Show"))
        top.addWidget(self.filter_box)
        top.addWidget(QLabel("Sort"))
        top.addWidget(self.sort_box)
        top.addStretch(1)

        self.table_model = FileTableModel(self.uncertain_below, self.min_lung_share)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c, width in ((1, 80), (2, 48), (3, 54), (4, 80)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(c, width)
        self.table.setMinimumWidth(300)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep folder and file end
        self.table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self._select_row(cur.row())
        )

        self.view = ImageView()
        self.side = SidePanel()
        self.side.opacity_changed.connect(self._set_opacity)
        self.side.heatmap_toggled.connect(self.view.set_overlay_visible)
        self.side.colormap_changed.connect(self._set_colormap)
        self.side.cam_choice_changed.connect(self._request_cam)
        self.side.outline_toggled.connect(self.view.set_outline_visible)
        self.view.set_outline_visible(False)
        self.side.decision_requested.connect(self.decide)
        self.side.note_committed.connect(self.save_note)

        # the "looked outside the lungs" warning, above the image it is about
        self.view_warning = QLabel("")
        self.view_warning.setWordWrap(True)
        self.view_warning.setStyleSheet(
            "background: #ffb000; color: #1a1a1a; font-weight: 600; padding: 4px 8px;"
        )
        self.view_warning.setVisible(False)
        self.view.cleared.connect(lambda: self._set_view_warning(None))
        view_box = QWidget()
        view_lay = QVBoxLayout(view_box)
        view_lay.setContentsMargins(0, 0, 0, 0)
        view_lay.setSpacing(0)
        view_lay.addWidget(self.view_warning)
        view_lay.addWidget(self.view, 1)

        self.splitter = QSplitter()
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(view_box)
        self.splitter.addWidget(self.side)
        self.splitter.setStretchFactor(1, 1)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.model_label)
        lay.addLayout(top)
        lay.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.provider_label = QLabel("Inference: —")
        self.attention_label = QLabel("")
        self.attention_label.setToolTip(
            "Images whose predicted-class Grad-CAM lies mostly outside the lung field "
            "(Settings ▸ Attention threshold); checked in the background after classification"
        )
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.attention_label)
        self.statusBar().addPermanentWidget(self.provider_label)
        self.statusBar().showMessage(
            "Open a folder of chest X-ray images (PNG, JPEG, TIFF, DICOM)."
        )

        self._restore_settings()
        self._shortcuts()
        self._menus()
        self.setAcceptDrops(True)

    # ------------------------------------------------------------------ set-up

    def _shortcuts(self) -> None:
        def key(seq: str, slot) -> None:
            QShortcut(QKeySequence(seq), self, activated=slot)

        for seq in ("Right", "PgDown"):
            key(seq, lambda: self.step(1))
        for seq in ("Left", "PgUp"):
            key(seq, lambda: self.step(-1))
        key("A", lambda: self.decide("agree", None))
        key("U", lambda: self.decide("uncertain", None))
        for i in range(1, 10):
            key(str(i), lambda i=i: self._decide_index(i - 1))
        key("H", lambda: self.side.show_heatmap.toggle())
        key("G", lambda: self.side.show_lungs.toggle())
        key("+", lambda: self.side.opacity.setValue(self.side.opacity.value() + 10))
        key("=", lambda: self.side.opacity.setValue(self.side.opacity.value() + 10))
        key("-", lambda: self.side.opacity.setValue(self.side.opacity.value() - 10))
        key("F", self.view.fit)
        key("I", self.view.toggle_invert)
        key("W", self.view.auto_window)
        key("Shift+W", self.view.reset_window)

    def _restore_settings(self) -> None:
        s = self.settings
        self.side.opacity.setValue(int(s.value("opacity", 40)))
        cmap = str(s.value("colormap", self.side.colormap.currentText()))
        if self.side.colormap.findText(cmap) >= 0:
            self.side.colormap.setCurrentText(cmap)
        geo = s.value("geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        split = s.value("splitter")
        if split is not None:
            self.splitter.restoreState(split)
        else:  # first start: file names readable, the image gets the rest
            self.splitter.setSizes([430, max(400, self.width() - 430 - 340), 340])
        self._set_opacity(self.side.opacity.value())

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("opacity", self.side.opacity.value())
        s.setValue("colormap", self.side.colormap.currentText())
        s.setValue("geometry", self.saveGeometry())
        s.setValue("splitter", self.splitter.saveState())
        s.setValue("reviewer", self.reviewer)
        if self._folder:
            s.setValue("last_folder", str(self._folder))
        if self._bundle:
            s.setValue("last_bundle", str(self._bundle))
        s.sync()

    def closeEvent(self, event) -> None:
        self._commit_note()
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work and cut its signals: late results must not reach dead widgets."""
        if self._is_shut_down:
            return
        self._is_shut_down = True
        self._stop_worker()
        for sig in (self._cam.done, self._cam.status, self._cam.attention_done):
            sig.disconnect()
        self._cam.shutdown()
        self._close_attention_cache()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.store is not None:
            self.store.close()
            self.store = None

    def _menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction("Open folder…", QKeySequence("Ctrl+O"), self.choose_folder)
        self.recent_folders_menu = file_menu.addMenu("Recent folders")
        file_menu.addSeparator()
        file_menu.addAction("Choose model bundle…", self.choose_bundle)
        self.recent_bundles_menu = file_menu.addMenu("Recent bundles")
        file_menu.addSeparator()
        file_menu.addAction("Export report (PDF)…", QKeySequence("Ctrl+E"), self.export_report)
        file_menu.addAction("Export results (CSV + heatmap PNGs)…", self.export_csv)
        file_menu.addSeparator()
        file_menu.addAction("Quit", QKeySequence("Ctrl+Q"), self.close)
        view = bar.addMenu("&View")
        view.addAction("Fit (F)", self.view.fit)
        view.addAction("1:1 pixels", QKeySequence("Ctrl+1"), self.view.one_to_one)
        view.addAction("Invert (I)", self.view.toggle_invert)
        view.addAction("Auto window (W)", self.view.auto_window)
        presets = view.addMenu("Window presets")
        for label, centre, width in WINDOW_PRESETS:
            presets.addAction(label, lambda c=centre, w=width: self.view.set_window(c, w))
        view.addSeparator()
        view.addAction("Right-drag on the image: window / level").setEnabled(False)
        settings = bar.addMenu("&Settings")
        settings.addAction("Reviewer name…", self.ask_reviewer)
        settings.addAction(
            "Attention threshold (looked outside the lungs)…", self.ask_min_lung_share
        )
        settings.addAction("Low-confidence band (uncertain AI)…", self.ask_uncertain_below)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction("Model card…", self.show_model_card)
        help_menu.addAction("Keyboard shortcuts", self.show_shortcuts)
        self._rebuild_recent()

    def _recent(self, key: str) -> list[str]:
        v = self.settings.value(key, [])
        return [str(x) for x in (v if isinstance(v, list) else [v] if v else [])]

    def _push_recent(self, key: str, value: str) -> None:
        items = [value, *[x for x in self._recent(key) if x != value]][:RECENT_MAX]
        self.settings.setValue(key, items)
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        for menu, key, slot in (
            (self.recent_folders_menu, "recent_folders", lambda p: self.open_folder(Path(p))),
            (self.recent_bundles_menu, "recent_bundles", lambda p: self.set_bundle(Path(p))),
        ):
            menu.clear()
            items = self._recent(key)
            for item in items:
                act = QAction(item, menu)
                act.triggered.connect(lambda _c=False, p=item, f=slot: f(p))
                menu.addAction(act)
            menu.setEnabled(bool(items))

    def choose_bundle(self) -> None:
        start = str(self.settings.value("last_bundle", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", start)
        if folder:
            self.set_bundle(Path(folder))

    def ask_reviewer(self) -> None:
        name, ok = QInputDialog.getText(self, "Reviewer", "Your name (stored with every decision):",
                                        text=self.reviewer)  # fmt: skip
        if ok and name.strip():
            self.reviewer = name.strip()
            self.settings.setValue("reviewer", self.reviewer)
            self.statusBar().showMessage(f"Reviewer: {self.reviewer}")

    def _ask_percent(self, title: str, text: str, value: float, lo: int, hi: int, setter) -> None:
        got, ok = QInputDialog.getInt(self, title, text, round(value * 100), lo, hi)
        if ok:
            setter(got / 100.0)

    def ask_min_lung_share(self) -> None:
        self._ask_percent(
            "Attention threshold",
            "Flag an image when less than this share (%) of the predicted class's heatmap\n"
            "lies in the lung field (Grad-CAM; default 50 %):",
            self.min_lung_share, 0, 100, self.set_min_lung_share,
        )  # fmt: skip

    def set_min_lung_share(self, value: float) -> None:
        self.min_lung_share = float(min(max(value, 0.0), 1.0))
        self.settings.setValue("min_lung_share", self.min_lung_share)
        self.table_model.min_lung_share = self.min_lung_share
        self._refresh_table()
        self._update_attention_summary()
        if self._current is not None:
            self._request_cam()

    def ask_uncertain_below(self) -> None:
        self._ask_percent(
            "Low-confidence band",
            "Mark the AI result uncertain when its top probability (calibrated, %) is below:",
            self.uncertain_below, 34, 99, self.set_uncertain_below,
        )  # fmt: skip

    def set_uncertain_below(self, value: float) -> None:
        self.uncertain_below = float(min(max(value, 0.0), 1.0))
        self.settings.setValue("uncertain_below", self.uncertain_below)
        self.table_model.uncertain_below = self.uncertain_below
        self._refresh_table()
        if self._current is not None:
            self._show_result(self._current)

    def show_model_card(self) -> None:
        from desktop.model_card import model_card_html

        dlg = QDialog(self)
        dlg.setWindowTitle("Model card")
        lay = QVBoxLayout(dlg)
        text = QTextBrowser()
        text.setHtml(
            model_card_html(self._manifest)
            if self._manifest is not None
            else "<p>No verified model bundle is loaded.</p>"
        )
        lay.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.reject)
        lay.addWidget(buttons)
        dlg.resize(640, 620)
        self.model_card_dialog = dlg
        dlg.show()

    def show_shortcuts(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.information(
            self,
            "Keyboard shortcuts",
            "←/→, PgUp/PgDn: previous/next image\n1/2/3: set class (override)\nA: agree with AI\n"
            "U: uncertain\nH: heatmap on/off\n+/−: heatmap opacity\nF: fit   I: invert\n"
            "W: auto window   Shift+W: reset window\nCtrl+1: 1:1 pixels   Ctrl+O: open folder",
        )

    # ------------------------------------------------------------------ exports (run the CLI)

    def _export_ready(self) -> bool:
        if self._folder is None or self._bundle is None or self._manifest is None:
            self.statusBar().showMessage("Open a folder with a verified model bundle first.")
            return False
        if self._export_proc is not None:
            self.statusBar().showMessage("An export is already running.")
            return False
        return True

    def export_report(self) -> None:
        """Ctrl+E: current image or whole folder, written by ``cxr report`` in a child process."""
        if not self._export_ready():
            return
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(self)
        box.setWindowTitle("Export report")
        box.setText("Which images should the PDF report include?")
        selected = self.selected_paths()
        accept = QMessageBox.ButtonRole.AcceptRole
        current = box.addButton("Current image", accept)
        chosen = box.addButton(f"Selected ({len(selected)})", accept) if len(selected) > 1 else None
        whole = box.addButton(f"Whole folder ({len(self.entries)})", accept)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked is None or clicked not in (current, chosen, whole):
            return
        only = None
        if clicked is current and self._current is not None:
            only = [self.entries[self._current].rel_path]
        elif clicked is chosen:
            only = selected
        default = str(self._folder.parent / f"{self._folder.name}-cxr-report.pdf")
        path, _ = QFileDialog.getSaveFileName(self, "Save report", default, "PDF (*.pdf)")
        if not path:
            return  # the dialog itself asked before overwriting an existing file
        self.export_report_to(path, only)

    def selected_paths(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.entries[self._rows[r]].rel_path for r in rows if r < len(self._rows)]

    def export_report_to(self, path: str, only: list[str] | None = None) -> None:
        """Write the PDF (after the user chose and confirmed ``path``)."""
        self._commit_note()
        args = ["report", str(self._folder), "--bundle", str(self._bundle), "--out", path, "--force",
                "--opacity", f"{self.side.opacity.value() / 100:.2f}",
                "--cam-method", self.side.cam_method.currentData(), "--reviewer", self.reviewer,
                "--min-lung-share", f"{self.min_lung_share:.3f}"]  # fmt: skip
        for rel in only or []:
            args += ["--only", rel]
        self._run_export(args, path)

    def export_csv(self) -> None:
        if not self._export_ready():
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save results", str(self._folder.parent / f"{self._folder.name}-cxr-results.csv"),
                                              "CSV (*.csv)")  # fmt: skip
        if not path:
            return
        self.export_csv_to(path)

    def export_csv_to(self, path: str) -> None:
        heat = str(Path(path).with_suffix("")) + "-heatmaps"
        args = ["classify", str(self._folder), "--bundle", str(self._bundle), "--out", path, "--force",
                "--heatmaps", heat, "--opacity", f"{self.side.opacity.value() / 100:.2f}",
                "--cam-method", self.side.cam_method.currentData(),
                "--min-lung-share", f"{self.min_lung_share:.3f}"]  # fmt: skip
        self._run_export(args, path)

    def _run_export(self, args: list[str], target: str) -> None:
        import sys

        from PySide6.QtCore import QProcess

        proc = QProcess(self)
        proc.setProgram(sys.executable)
        proc.setArguments(["-m", "desktop.cli", *args])
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        lines: list[str] = []

        def on_err() -> None:
            text = bytes(proc.readAllStandardError()).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith(("report:", "classify:", "cxr ")):
                    lines.append(line)
                    self.statusBar().showMessage(line)

        def on_done(code: int, _status) -> None:
            on_err()
            self._export_proc = None
            if code == 0:
                self.statusBar().showMessage(f"Exported {target}")
                self.export_finished.emit(target)
            else:
                why = next((x for x in reversed(lines) if "error" in x), f"exit code {code}")
                self.statusBar().showMessage(f"Export failed: {why} (nothing was overwritten)")
                self.export_failed.emit(why)

        proc.readyReadStandardError.connect(on_err)
        proc.finished.connect(on_done)
        self._export_proc = proc
        self.statusBar().showMessage("Exporting…")
        proc.start()

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            p = Path(url.toLocalFile())
            if p.is_dir():
                self.open_folder(p)
                return
            if p.is_file():
                self.open_folder(p.parent)
                return

    # ------------------------------------------------------------------ bundle & folder

    def set_bundle(self, path: Path) -> None:
        """Verification and loading happen in the classification worker, off this thread."""
        self._bundle = Path(path)
        self._push_recent("recent_bundles", str(self._bundle))
        self._manifest = None
        self._cam_cache.clear()
        self.model_label.setText(f"Model bundle {self._bundle.name}: verifying…")
        if self.entries:
            self._start_classification()

    def choose_folder(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        self._scan_generation += 1
        gen = self._scan_generation
        self.statusBar().showMessage(f"Scanning {folder} …")

        def scan() -> None:
            from desktop.folder_scan import iter_image_files

            try:
                if not Path(folder).is_dir():
                    raise NotADirectoryError(f"{folder} is not a folder")
                self._bridge.scanned.emit(gen, list(iter_image_files(folder)), None)
            except Exception as exc:
                self._bridge.scanned.emit(gen, None, str(exc))

        self._pending_folder = Path(folder)
        self._pool.submit(scan)

    def _on_scanned(self, gen: int, files: list[Path] | None, error: str | None) -> None:
        if gen != self._scan_generation:
            return
        if error is not None or files is None:
            self.statusBar().showMessage(f"Cannot open folder: {error}")
            self.folder_failed.emit(error or "unknown error")
            return
        folder = self._pending_folder
        self._commit_note()
        try:
            store = ReviewStore.for_folder(folder)
            reviews = store.all()
        except Exception as exc:  # locked/corrupt database, a share without WAL support…
            self.statusBar().showMessage(f"Cannot open the review database of {folder}: {exc}")
            self.folder_failed.emit(str(exc))
            return
        self._stop_worker()
        self._cam.set_background([])  # the old folder's attention pass
        self._attention_gen += 1
        self._close_attention_cache()
        if self.store is not None:
            self.store.close()
        self.store = store
        self._folder = folder
        self._note_owner = None
        self._push_recent("recent_folders", str(folder))
        self.entries = []
        for p in files:
            rel = p.relative_to(folder).as_posix()
            self.entries.append(Entry(p, rel, review=reviews.get(rel), cache_key=file_key(p)))
        self._current = None
        self._refresh_table()
        msg = f"{len(files)} images in {folder}"
        if self.store.fallback_reason:
            msg += f" — {self.store.fallback_reason}"
        self.statusBar().showMessage(msg)
        if not files:
            self.folder_failed.emit("no images")
            return
        if self._bundle is not None:
            self._start_classification()

    # ------------------------------------------------------------------ classification

    def _stop_worker(self) -> None:
        """Abort the running classification and release what its generator holds.

        superqt stops calling an aborted generator but never closes it, which kept
        its ONNX session, thread pool and cache connection alive.
        """
        worker, self._worker = self._worker, None
        if worker is None:
            return
        worker.quit()

        def close_generator(w=worker) -> None:
            gen = getattr(w, "_gen", None)
            if gen is not None:
                with contextlib.suppress(
                    RuntimeError, ValueError
                ):  # still running: ends at its yield
                    gen.close()

        worker.finished.connect(close_generator)

    def _start_classification(self) -> None:
        self._stop_worker()
        for e in self.entries:
            e.probabilities, e.error, e.attention = None, None, None
        self._cam.set_background([])
        self._attention_gen += 1
        self._attention_errors = 0
        self._attention_announced = False
        self._update_attention_summary()
        items = [(e.path, e.rel_path, e.cache_key[1], e.cache_key[2]) for e in self.entries]
        cache = self.store.path.parent / "predictions.sqlite" if self.store else None
        self._classifying = True
        self.progress.setRange(0, max(1, len(items)))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        worker = classify_folder(self._bundle, items, cache, _ignore_errors=True)  # handled below
        worker.yielded.connect(lambda msg, w=worker: self._on_classified(w, msg))
        worker.errored.connect(lambda exc, w=worker: self._on_classify_error(w, exc))
        worker.finished.connect(lambda w=worker: self._on_classify_finished(w))
        self._worker = worker
        worker.start()

    def _on_classified(self, worker, msg) -> None:
        if worker is not self._worker:
            return
        if msg[0] == "ready":
            _, manifest, provider = msg
            self._manifest = manifest
            self._provider = provider
            self._class_names = tuple(manifest.class_names)
            self.table_model.class_names = self._class_names
            self.side.set_classes(self._class_names)
            shown = self.filter_box.currentText()  # kept when the new bundle has it, else All
            self.filter_box.blockSignals(True)
            self.filter_box.clear()
            self.filter_box.addItems(filter_names(self._class_names))
            self.filter_box.setCurrentText(shown)
            self.filter_box.blockSignals(False)
            if self.filter_box.currentText() != shown:
                self._refresh_table()
            demo = (
                "  —  DEMO model trained on synthetic phantoms"
                if manifest.extra.get("demo")
                else ""
            )
            self.model_label.setText(
                f"Model: {manifest.model_name}  ·  T = {manifest.calibration_temperature:.2f}"
                f"{demo}   ·   Help ▸ Model card"
            )
            self.model_label.setStyleSheet(
                "padding: 2px 6px;" + (" background: #ffb000; font-weight: 600;" if demo else "")
            )
            self.provider_label.setText(f"Inference: ONNX Runtime {provider}")
            return
        if msg[0] == "attention":
            for i, att in msg[1]:
                self.entries[i].attention = att
                self._update_row(i)
            self._update_attention_summary()
            return
        if msg[2]:
            self.cached_hits += len(msg[1])
        for i, probs, err in msg[1]:
            e = self.entries[i]
            e.probabilities, e.error = (np.asarray(probs), None) if err is None else (None, err)
            self._update_row(i)
        done = sum(e.classified for e in self.entries)
        self.progress.setValue(done)
        if self._current is not None and self.entries[self._current].classified:
            self._show_result(self._current)

    def _on_classify_error(self, worker, exc) -> None:
        if worker is not self._worker:
            return
        self._classifying = False
        self.progress.setVisible(False)
        from export.bundle import BundleError

        text = exc.reason if isinstance(exc, BundleError) else f"{type(exc).__name__}: {exc}"
        self.model_label.setText(f"Model bundle refused: {text}")
        self.provider_label.setText("Inference: —")
        self.bundle_failed.emit(text)

    def _on_classify_finished(self, worker) -> None:
        if worker is not self._worker:
            return
        self._classifying = False
        self.progress.setVisible(False)
        n_err = sum(e.error is not None for e in self.entries)
        if self._manifest is not None:
            self.statusBar().showMessage(
                f"Classified {len(self.entries)} images ({n_err} unreadable) with {self._provider}"
            )
            self.classification_finished.emit()
            self._refresh_table()
            self._queue_attention()

    @property
    def classifying(self) -> bool:
        return self._classifying

    # ------------------------------------------------------------------ table

    def _refresh_table(self) -> None:
        keep = self._current
        self._rows = visible_rows(
            self.entries, self._class_names, filter_name=self.filter_box.currentText(),
            sort_name=self.sort_box.currentText(), uncertain_below=self.uncertain_below,
            min_lung_share=self.min_lung_share,
        )  # fmt: skip
        self.table_model.reset(self.entries, self._rows, self._class_names)
        if keep is not None and keep in self._rows:
            self._set_current_row(self._rows.index(keep))
        elif self._rows:
            self._set_current_row(0)

    def _set_current_row(self, r: int) -> None:
        self.table.setCurrentIndex(self.table_model.index(r, 0))
        self._select_row(r)  # no-op when the row's image is already the current one

    def _update_row(self, i: int) -> None:
        self.table_model.entry_changed(i)

    def step(self, delta: int) -> None:
        if self._rows:
            r = min(max(self.table.currentIndex().row() + delta, 0), len(self._rows) - 1)
            self.table.setCurrentIndex(self.table_model.index(r, 0))

    def _select_row(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            return
        i = self._rows[row]
        if i == self._current:
            return
        self._commit_note()
        self._current = i
        self._generation += 1
        gen, path = self._generation, self.entries[i].path
        self.view.clear_overlay()
        self.side.show_attention("", False)

        def work() -> None:
            if gen != self._generation:  # superseded before it started
                return
            try:
                decoded = read_image(path)
                self._bridge.loaded.emit(gen, (decoded, windowed(decoded)), None)
            except ImageDecodeError as exc:
                self._bridge.loaded.emit(gen, None, exc.reason)
            except Exception as exc:
                log.exception("decoding %s failed", path)
                self._bridge.loaded.emit(gen, None, f"unexpected error: {exc}")

        self._pool.submit(work)
        self._show_result(i)

    # ------------------------------------------------------------------ current image

    def _on_loaded(self, gen: int, loaded: tuple | None, error: str | None) -> None:
        if gen != self._generation or self._current is None:
            return
        e = self.entries[self._current]
        decoded, image01 = loaded if loaded is not None else (None, None)
        if decoded is None:
            self._decoded = None
            self.view.show_message(f"Cannot show this file:\n{error}")
            self.statusBar().showMessage(f"{e.rel_path}: {error}")
            return
        self._decoded = decoded
        self.view.set_image(image01)
        self.view.fit()
        self._show_view_warning()
        m = decoded.meta
        self.statusBar().showMessage(
            f"{e.rel_path} — {m.width}×{m.height}, {m.bit_depth}-bit {m.source_format.upper()} "
            f"{m.photometric}   [{self._rows.index(self._current) + 1}/{len(self._rows)}]"
        )
        self._request_cam()
        if not self._shown_once:
            self._shown_once = True
            self.first_image_shown.emit()

    def _show_result(self, i: int) -> None:
        e = self.entries[i]
        names = self._class_names
        self.side.show_probabilities(names, e.probabilities, self.uncertain_below)
        r = e.review
        if r is None or r.decision is None:
            self.side.review_state.setText("Not reviewed")
        else:
            what = {"agree": f"Agreed ({r.reviewer_class})", "override": f"Overridden → {r.reviewer_class}",
                    "uncertain": "Marked uncertain"}[r.decision]  # fmt: skip
            self.side.review_state.setText(f"{what} by {r.reviewer}, {r.updated_at[:19]} UTC")
        note = r.note if r else ""
        if i != self._note_owner:  # another image: show its note
            self._note_owner = i
            self.side.note.setPlainText(note)
        elif not self._note_dirty() and self.side.note.toPlainText() != note:
            self.side.note.setPlainText(note)  # refreshed from the store, nothing typed meanwhile
        if e.classified and self._decoded is not None:
            self._request_cam()

    # ------------------------------------------------------------------ heatmap

    def _cam_key(self) -> tuple | None:
        if self._current is None or self._bundle is None or self._manifest is None:
            return None
        e = self.entries[self._current]
        if e.probabilities is None:
            return None
        chosen = self.side.cam_class.currentData()
        cls = int(np.argmax(e.probabilities)) if chosen is None else int(chosen)
        return (*e.cache_key, str(self._bundle), cls, self.side.cam_method.currentData())

    def _request_cam(self) -> None:
        key = self._cam_key()
        if key is None or self._decoded is None:
            return
        self._cam_wanted = key
        hit = self._cam_cache.get(key)
        if hit is not None:
            self._cam_cache.move_to_end(key)
            self._apply_cam(hit)
            return
        self.side.cam_status.setText("Computing heatmap…")
        e = self.entries[self._current]
        model_sha = self._manifest.files.get(self._manifest.onnx.file, "")
        self._cam.request(CamRequest(self._bundle, e.path, key[-2], key[-1], key, model_sha))

    def _on_cam(self, gen: int, result: dict) -> None:
        if "error" not in result:
            self._cam_cache[result["key"]] = result
            while len(self._cam_cache) > CAM_CACHE_SIZE:
                self._cam_cache.popitem(last=False)
        if gen != self._cam.generation or result.get("key") != self._cam_wanted:
            return  # a newer request is on its way
        if "error" in result:
            self.side.cam_status.setText(f"Heatmap failed: {result['error']}")
            return
        self._apply_cam(result)

    def _apply_cam(self, result: dict) -> None:
        self.view.set_overlay(result["overlay"], result["image_size"])
        self.view.set_overlay_visible(self.side.show_heatmap.isChecked())
        name = (
            self._class_names[result["class_index"]] if self._class_names else result["class_index"]
        )
        method = self.side.cam_method.currentText()
        prec = f", {result['precision']}" if result.get("precision") else ""
        self.side.cam_status.setText(f"{method} for {name}, layer {result['layer']}{prec}")
        self.view.set_outline(result.get("lung_mask"), result.get("marker_mask"),
                              result["image_size"])  # fmt: skip
        att = result.get("attention")
        e = self.entries[self._current] if self._current is not None else None
        is_list_measure = (
            e is not None and e.probabilities is not None and e.attention is not None
            and result["method"] == ATTENTION_METHOD
            and result["class_index"] == int(np.argmax(e.probabilities))
        )  # fmt: skip
        if is_list_measure:  # the list's float32 figures, so panel, list and report agree
            att = e.attention
        if att is not None:
            self.side.show_attention(describe(att, self.min_lung_share),
                                     flag(att, self.min_lung_share))  # fmt: skip
        else:
            self.side.show_attention("", False)
        self._show_view_warning()
        self.heatmap_shown.emit()

    def _show_view_warning(self) -> None:
        """The bar above the image follows the list's measure (predicted class, Grad-CAM),
        whatever heatmap is shown, so list, image and report agree."""
        e = self.entries[self._current] if self._current is not None else None
        if e is None or not e.flagged(self.min_lung_share):
            self._set_view_warning(None)
            return
        text = describe(e.attention, self.min_lung_share)
        self._set_view_warning(
            f"⚠ The model {text[0].lower()}{text[1:]} (Grad-CAM of its class). "
            "Its result may rest on text, borders or devices rather than the lungs."
        )
        self.heatmap_shown.emit()

    # ------------------------------------------------------------------ attention audit

    def _set_view_warning(self, text: str | None) -> None:
        self.view_warning.setText(text or "")
        self.view_warning.setVisible(bool(text))

    def _queue_attention(self) -> None:
        """Grad-CAM of every classified image not yet checked, behind the reviewer's requests."""
        if self._bundle is None or self._manifest is None:
            return
        sha = self._manifest.files.get(self._manifest.onnx.file, "")
        gen = self._attention_gen
        reqs = [
            CamRequest(
                self._bundle,
                e.path,
                int(np.argmax(e.probabilities)),  # ONNX Runtime's class, the one the list shows
                ATTENTION_METHOD,
                ("attention", gen, i, e.cache_key),
                sha,
            )
            for i, e in enumerate(self.entries)
            if e.probabilities is not None and e.attention is None
        ]
        self._cam.set_background(reqs)
        self._update_attention_summary()
        self._announce_if_checked()

    def _on_attention(self, key: tuple, att: dict) -> None:
        if self._is_shut_down or not key or key[0] != "attention":
            return
        _, gen, i, cache_key = key
        if gen != self._attention_gen or i >= len(self.entries):
            return  # another folder or model by now
        if self.entries[i].cache_key != cache_key:
            return
        if "error" in att:
            self._attention_errors += 1
            # counted as checked (shown as "—" with the reason), never retried in a loop
            self.entries[i].attention = {"lung_share": None, "error": str(att["error"])[:300]}
            self._update_row(i)
            if self._attention_errors >= 3:  # the model or the process, not this image
                self._cam.set_background([])
                self.statusBar().showMessage(f"Attention check stopped: {att['error']}")
                for e in self.entries:
                    if e.probabilities is not None and e.attention is None:
                        e.attention = {"lung_share": None, "error": "attention check stopped"}
            self._update_attention_summary()
            self._announce_if_checked()
            return
        self._attention_errors = 0
        self._store_attention(i, att)

    def _announce_if_checked(self) -> None:
        if self._classifying or self._attention_announced:
            return
        _flagged, checked, total = attention_summary(self.entries, self.min_lung_share)
        if checked == total:
            self._attention_announced = True
            self.attention_checked.emit()

    def _store_attention(self, i: int, att: dict) -> None:
        e = self.entries[i]
        if e.attention == att:
            return
        e.attention = att
        self._update_row(i)
        self._update_attention_summary()
        if i == self._current:
            self._show_view_warning()
            want = self._cam_wanted
            if (want is not None and want[-1] == ATTENTION_METHOD and e.probabilities is not None
                    and want[-2] == int(np.argmax(e.probabilities))):  # fmt: skip
                self.side.show_attention(describe(att, self.min_lung_share),
                                         flag(att, self.min_lung_share))  # fmt: skip
        if self.filter_box.currentText() == "Looked outside lungs" and e.flagged(
            self.min_lung_share
        ):
            self._refresh_table()
        self._announce_if_checked()
        if self.store is None or self._manifest is None:
            return
        try:
            if self._attention_cache is None:
                from desktop.prediction_cache import PredictionCache

                self._attention_cache = PredictionCache(
                    self.store.path.parent / "predictions.sqlite"
                )
            _, size, mtime = e.cache_key
            sha = self._manifest.files.get(self._manifest.onnx.file, "")
            self._attention_cache.put_attention(e.rel_path, size, mtime, sha, ATTENTION_METHOD, att)
        except Exception as exc:  # a cache is worth a retry next time, never an error dialog
            log.warning("attention not cached: %s", exc)

    def _close_attention_cache(self) -> None:
        if self._attention_cache is not None:
            self._attention_cache.close()
            self._attention_cache = None

    def _update_attention_summary(self) -> None:
        flagged, checked, total = attention_summary(self.entries, self.min_lung_share)
        if total == 0:
            self.attention_label.setText("")
            return
        text = f"Looked outside lungs: {flagged} of {checked}"
        if checked < total:
            text += f" (checking {checked}/{total}…)"
        self.attention_label.setText(text)
        self.attention_label.setStyleSheet(
            "background: #ffb000; color: #1a1a1a; padding: 0 4px;" if flagged else ""
        )

    def _set_opacity(self, value: int) -> None:
        self.view.set_opacity(value / 100.0)

    def _set_colormap(self, name: str) -> None:
        self.view.set_colormap(name)

    # ------------------------------------------------------------------ review

    def _decide_index(self, k: int) -> None:
        if 0 <= k < len(self._class_names):
            self.decide("override", self._class_names[k])

    def decide(self, decision: str, reviewer_class: str | None) -> None:
        if self._current is None or self.store is None:
            return
        self._commit_note()  # the note typed so far is saved before the decision refreshes the panel
        e = self.entries[self._current]
        ai = e.predicted(self._class_names) if self._class_names else None
        if decision == "agree" and ai is None:
            self.statusBar().showMessage("Nothing to agree with yet: the image is not classified.")
            return
        if decision == "override" and reviewer_class == ai:
            decision = "agree"
        try:
            e.review = self.store.set_decision(
                e.rel_path, decision, reviewer=self.reviewer, reviewer_class=reviewer_class,
                ai_class=ai, ai_probability=e.confidence,
            )  # fmt: skip
        except Exception as exc:
            self.statusBar().showMessage(f"Could not save the review: {exc}")
            return
        self._update_row(self._current)
        self._show_result(self._current)
        self.statusBar().showMessage(f"Saved: {e.rel_path} {e.status_text()}")

    def _note_dirty(self) -> bool:
        """The note field holds text the store does not have yet."""
        if self._note_owner is None or self._note_owner >= len(self.entries):
            return False
        e = self.entries[self._note_owner]
        return self.side.note.toPlainText() != (e.review.note if e.review else "")

    def _commit_note(self) -> None:
        if self._note_owner is None or self.store is None or not self._note_dirty():
            return
        self._save_note_for(self._note_owner, self.side.note.toPlainText())

    def save_note(self, text: str) -> None:
        if self._note_owner is not None:
            self._save_note_for(self._note_owner, text)

    def _save_note_for(self, i: int, text: str) -> None:
        if self.store is None or i >= len(self.entries):
            return
        e = self.entries[i]
        if text == (e.review.note if e.review else ""):
            return
        try:
            e.review = self.store.set_note(e.rel_path, text, reviewer=self.reviewer)
        except Exception as exc:
            self.statusBar().showMessage(f"Could not save the note: {exc}")
            return
        self.statusBar().showMessage(f"Note saved for {e.rel_path}")
