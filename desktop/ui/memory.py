"""What the app remembers between sessions besides the view state: the list's sort and
filter, the last folder and, per folder, the image the reviewer was on.

Everything goes to QSettings as it changes, so a session that ends without a
clean close is remembered too. The view state (CAM method, colormap, opacity)
is written as it changes for the same reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from desktop.folder_model import SORTS, filter_names
from desktop.session_memory import folder_key, recall, remember
from desktop.ui.menus import save_view_state

if TYPE_CHECKING:
    from desktop.ui.main_window import MainWindow

SORT_KEY = "list/sort"
FILTER_KEY = "list/filter"
LAST_IMAGES_KEY = "last_images"  # JSON {absolute folder: rel_path of its last image}


class SessionMemory(QObject):
    """Connected after the window's own slots, so a folder's entries exist when its last
    image is looked up, and the window's view state is current when it is written."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w, s, files = window, window.settings, window.files
        self._restored: str | None = None  # folder whose last image was looked up
        sort = str(s.value(SORT_KEY, ""))
        if sort in SORTS:
            files.sort_box.setCurrentText(sort)
        #: a class filter waits for a bundle that has the class
        self._pending_filter: str | None = str(s.value(FILTER_KEY, "")) or None
        self._apply_filter()
        files.sort_box.currentTextChanged.connect(lambda t: s.setValue(SORT_KEY, t))
        files.filter_box.currentTextChanged.connect(self._filter_chosen)
        files.scanned.connect(self._folder_opened)
        files.current_changed.connect(self._image_changed)
        window.classifier.model_ready.connect(lambda _m: self._apply_filter())
        side = window.side
        for sig in (side.opacity_changed, side.colormap_changed, side.cam_choice_changed):
            sig.connect(lambda *_a: save_view_state(s, self.w.state))

    def _apply_filter(self) -> None:
        want, box = self._pending_filter, self.w.files.filter_box
        if want and want in filter_names(self.w.session.class_names):
            self._pending_filter = None
            box.setCurrentText(want)

    def _filter_chosen(self, text: str) -> None:
        self._pending_filter = None
        self.w.settings.setValue(FILTER_KEY, text)

    def _folder_opened(self, folder: Path, _files) -> None:
        """The window has opened ``folder`` (or refused it): show its last image."""
        w = self.w
        if w.session.folder is None or folder_key(w.session.folder) != folder_key(folder):
            return  # the review database could not be opened
        key = folder_key(folder)
        w.settings.setValue("last_folder", key)
        rel = recall(w.settings.value(LAST_IMAGES_KEY, ""), key)
        self._restored = key
        rows, ents = w.files.rows, w.session.entries
        r = next((r for r, i in enumerate(rows) if ents[i].rel_path == rel), None)
        if rel is not None and r is not None:
            w.files.table.setCurrentIndex(w.files.model.index(r, 0))

    def _image_changed(self, i: int) -> None:
        s = self.w.session
        if s.folder is None or folder_key(s.folder) != self._restored or i >= len(s.entries):
            return  # the first row shown while a folder opens is not the reviewer's choice
        settings = self.w.settings
        text = remember(settings.value(LAST_IMAGES_KEY, ""), s.folder, s.entries[i].rel_path)
        settings.setValue(LAST_IMAGES_KEY, text)
