"""Main window: lays out the file list, the image with its heatmap and the side panel,
and wires them to the controllers that do the work.

* :class:`~desktop.session.ReviewSession` (Qt-free): folder, model, results, reviews.
* :class:`~desktop.ui.classification.ClassificationController`: the folder pass.
* :class:`~desktop.ui.heatmaps.HeatmapController`: Grad-CAM and the attention pass.
* :class:`~desktop.ui.current_image.CurrentImage`: decoding and showing the chosen image.
* :class:`~desktop.ui.review_panel.ReviewController`: decisions and notes.
* :class:`~desktop.ui.marks.MarksController`: marks on the image on screen.
* :class:`~desktop.ui.exports.ExportController`: PDF and CSV exports.
* :class:`~desktop.ui.menus.MenuController`: menus, keys, recent lists, dialogs.

The GUI thread only paints and reacts; every answer from a worker carries
what it was for, and answers for something no longer shown are dropped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QMainWindow, QPushButton

from desktop.folder_model import novelty_summary
from desktop.provider_text import status_text
from desktop.review_store import default_reviewer
from desktop.session import ReviewSession
from desktop.ui.bundle_check import BundleCheck
from desktop.ui.cam_choice import CamChoice
from desktop.ui.classification import ClassificationController
from desktop.ui.current_image import CurrentImage
from desktop.ui.exports import ExportController
from desktop.ui.file_list import FileList
from desktop.ui.folder_control import FolderController
from desktop.ui.heatmaps import HeatmapController
from desktop.ui.layout import BANNER, StatusWidgets, build_central, show_model
from desktop.ui.marks import MarksController
from desktop.ui.memory import SessionMemory
from desktop.ui.menus import MenuController, load_view_state, save_view_state
from desktop.ui.review_panel import ReviewController
from desktop.ui.reviewer import ReviewerName
from desktop.ui.side_panel import SidePanel
from desktop.ui.workers import preload_native_libraries

__all__ = ["BANNER", "MainWindow"]


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
        preload_native_libraries()  # before anything is on screen
        super().__init__()
        self.setWindowTitle("cxr-review — Research use only")
        self.resize(1440, 880)
        self.settings = QSettings()
        self.state = load_view_state(self.settings)
        self.session = ReviewSession()
        self._is_shut_down = False

        self.side = SidePanel()
        self.files = FileList(self.session, self.state)
        self.table, self.table_model = self.files.table, self.files.model
        self.filter_box, self.sort_box = self.files.filter_box, self.files.sort_box
        self.image = CurrentImage(self.session, self.state)
        self.image.position = self.files.position
        self.view, self.view_warning = self.image.view, self.image.warning
        reviewer = str(self.settings.value("reviewer", default_reviewer()))
        self.reviews = ReviewController(self.session, self.side, reviewer)
        self.reviews.uncertain_below = self.state.uncertain_below
        self.marks = MarksController(self.session, self.image, lambda: self.reviews.reviewer)
        self.classifier = ClassificationController(self.session)
        self.heatmaps = HeatmapController(self.session)
        self.exports = ExportController(self.session, self.heatmaps)
        self.destroyed.connect(self.heatmaps.cam.shutdown)  # its thread ends with the window

        open_btn = QPushButton("Open folder…")
        open_btn.clicked.connect(lambda: self.menus.choose_folder())
        self.splitter = build_central(self, open_btn, self.files, self.image.widget, self.side)
        self.status = StatusWidgets(self.statusBar())
        self.progress, self.provider_label = self.status.progress, self.status.provider
        self.attention_label = self.status.attention
        self.bundle_check = BundleCheck(self.model_label)  # a bundle set while no folder is open
        self.statusBar().showMessage(
            "Open a folder of chest X-ray images (PNG, JPEG, TIFF, DICOM)."
        )

        self._wire()
        self.menus = MenuController(self)
        self.folders = FolderController(self)
        self.reviewer = ReviewerName(self)
        self.table.setFocus()  # the keyboard belongs to the list (and the note, on N)
        self.menus.restore_settings()
        self.memory, self.cam_choice = SessionMemory(self), CamChoice(self)
        self.setAcceptDrops(True)

    # ------------------------------------------------------------------ wiring

    def _wire(self) -> None:
        side, msg = self.side, self.statusBar().showMessage
        side.opacity_changed.connect(self._set_opacity)
        side.heatmap_toggled.connect(self.view.set_overlay_visible)
        side.colormap_changed.connect(self._set_colormap)
        side.cam_choice_changed.connect(self._cam_choice_changed)
        side.outline_toggled.connect(self.view.set_outline_visible)
        self.files.current_changed.connect(self._select)
        self.files.current_cleared.connect(self._unselect)
        self.image.shown.connect(self._image_shown)
        self.image.message.connect(msg)
        self.image.title_changed.connect(self.setWindowTitle)
        self.reviews.message.connect(msg)
        self.marks.message.connect(msg)
        self.reviews.entry_changed.connect(self.files.entry_changed)
        self.reviews.shown_index = lambda: self.image.index  # decisions only on the image shown
        self.reviews.decided.connect(
            lambda _i: self.menus.advance_action.isChecked() and self.files.next_unreviewed()
        )
        side.note.escaped.connect(self.table.setFocus)  # leaving the field saves the note
        c = self.classifier
        c.model_ready.connect(self._model_ready)
        c.changed.connect(self._results_changed)
        c.progress.connect(lambda d, t: self.status.show_progress(d, t, self.session.classifying))
        c.failed.connect(self._bundle_refused)
        c.finished.connect(self._classified)
        self.bundle_check.refused.connect(self._bundle_refused)
        h = self.heatmaps
        h.heatmap_ready.connect(self._heatmap_ready)
        h.status.connect(side.cam_status.setText)
        h.attention_updated.connect(self._attention_updated)
        h.attention_stopped.connect(lambda why: msg(f"Attention check stopped: {why}"))
        h.attention_checked.connect(self.attention_checked)
        self.exports.message.connect(msg)
        self.exports.finished.connect(self.export_finished)
        self.exports.failed.connect(self.export_failed)

    def closeEvent(self, event) -> None:
        self.reviews.commit_note()
        self.menus.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work and cut its signals: late results must not reach dead widgets."""
        if self._is_shut_down:
            return
        self._is_shut_down = True
        self.classifier.stop()
        self.bundle_check.cancel()
        self.heatmaps.shutdown()
        self.exports.shutdown()
        self.files.shutdown()
        self.image.shutdown()
        self.session.close()

    # ------------------------------------------------------------------ public face

    @property
    def entries(self):
        return self.session.entries

    @property
    def classifying(self) -> bool:
        return self.session.classifying

    def step(self, delta: int) -> None:
        """Page; leaving the image leaves its note (focus back on the list)."""
        self.files.step(delta)
        self.table.setFocus()

    def set_min_lung_share(self, value: float) -> None:
        self._set_state(min_lung_share=value, save=True)
        self.files.set_state(self.state)
        self.image.set_state(self.state)
        self.update_attention_summary()
        self._request_heatmap()

    def set_uncertain_below(self, value: float) -> None:
        self._set_state(uncertain_below=value, save=True)
        self.reviews.uncertain_below = self.state.uncertain_below
        self.marks = MarksController(self.session, self.image, lambda: self.reviews.reviewer)
        self.files.set_state(self.state)
        if self.session.current is not None:
            self.reviews.show(self.session.current)

    def _set_state(self, save: bool = False, **changes) -> None:
        """A settings-menu change is written at once; slider moves are written on close."""
        self.state = replace(self.state, **changes)
        if save:
            save_view_state(self.settings, self.state)

    # ------------------------------------------------------------------ folder and bundle

    def set_bundle(self, path: Path) -> None:
        self.folders.set_bundle(Path(path))

    def open_folder(self, folder: Path) -> None:
        self.folders.open_folder(Path(folder))

    def _model_ready(self, msg) -> None:
        self.files.set_classes(self.session.class_names)
        self.side.set_classes(self.session.class_names)
        self.side.apply(self.state)  # the remembered class, where this model has it
        show_model(self.model_label, msg.manifest)
        self.provider_label.setText(status_text(msg.provider_label or msg.provider))

    def _results_changed(self, indices: list[int]) -> None:
        for i in indices:
            self.files.entry_changed(i)
        self.update_attention_summary()
        cur = self.session.current
        if cur is not None and cur in indices:
            self.reviews.show(cur)
            self.image.update_warning(None)  # the "unlike the training data" bar
            self._request_heatmap()

    def _bundle_refused(self, text: str) -> None:
        self.progress.setVisible(False)
        self.model_label.setText(f"Model bundle refused: {text}")
        self.provider_label.setText(status_text(""))
        self.bundle_failed.emit(text)

    def _classified(self) -> None:
        self.progress.setVisible(False)
        n_err = sum(e.error is not None for e in self.session.entries)
        self.statusBar().showMessage(
            f"Classified {len(self.session.entries)} images "
            f"({n_err} unreadable) with {self.session.provider}"
        )
        self.classification_finished.emit()
        self.files.refresh()
        self.heatmaps.queue_attention()
        self.update_attention_summary()

    # ------------------------------------------------------------------ current image

    def _select(self, i: int) -> None:
        self.reviews.commit_note()
        self.session.current = i
        self.heatmaps.cancel()
        self.side.show_attention("", False)
        self.image.load(i)
        self.reviews.show(i)

    def _unselect(self) -> None:
        self.reviews.clear()
        self.session.current = None
        self.image.clear()
        self.view.show_message("No image matches this filter")

    def _image_shown(self) -> None:
        self._request_heatmap()
        if not getattr(self, "_shown_once", False):
            self._shown_once = True
            self.first_image_shown.emit()

    def _request_heatmap(self) -> None:
        i, image = self.session.current, self.image.input
        if i is None or self.image.index != i:
            return
        if image is None:  # the model's input spec came after the pixels: made, then shown
            self.image.prepare_input()
        else:
            self.heatmaps.request(
                i, image, self.side.cam_class.currentData(), self.state.cam_method
            )

    def _cam_choice_changed(self) -> None:
        self.state = self.side.to_state(self.state)
        self._request_heatmap()

    def _heatmap_ready(self, heat) -> None:
        i = self.session.current
        if i is None:
            return
        list_measure = self.heatmaps.is_list_measure(heat, i)
        self.image.show_heatmap(heat, self.side, list_measure)
        self.heatmap_shown.emit()

    def _attention_updated(self, i: int) -> None:
        self.files.entry_changed(i, refilter=True)
        self.update_attention_summary()
        if i == self.session.current:
            self.image.update_warning(self.side)
            self.heatmap_shown.emit()

    def update_attention_summary(self) -> None:
        self.status.show_attention(*self.session.attention_summary(self.state.min_lung_share))
        self.status.show_novelty(*novelty_summary(self.session.entries))

    def _set_opacity(self, fraction: float) -> None:
        self._set_state(opacity=fraction)
        self.view.set_opacity(self.state.opacity)

    def _set_colormap(self, name: str) -> None:
        self._set_state(colormap=name)
        self.view.set_colormap(self.state.colormap)

    # ------------------------------------------------------------------ exports

    def export_report(self) -> None:
        self.reviews.commit_note()
        self.exports.ask_report(self, self.state, self.reviews.reviewer)

    def export_report_to(self, path: str, only: list[str] | None = None) -> None:
        """Write the PDF (after the user chose and confirmed ``path``)."""
        self.reviews.commit_note()
        self.exports.report(path, only, self.state, self.reviews.reviewer)

    def export_csv(self) -> None:
        self.exports.ask_csv(self, self.state)

    def export_csv_to(self, path: str) -> None:
        self.exports.csv(path, self.state)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            p = Path(url.toLocalFile())
            if p.is_dir() or p.is_file():
                self.open_folder(p if p.is_dir() else p.parent)
                return
