"""Opening a folder and choosing a bundle: the review store, the session, the folder pass.

A folder opens only when its review store opens (a damaged one is moved aside and said so;
a locked one refuses the folder with one line), so reviews are never written elsewhere
by surprise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

if TYPE_CHECKING:
    from desktop.ui.main_window import MainWindow


class FolderController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        window.files.scanned.connect(self._on_scanned)
        window.files.scan_failed.connect(self._scan_failed)

    def set_bundle(self, path: Path) -> None:
        """Verified off the GUI thread: by the folder pass, or, with no folder, a bundle check."""
        w = self.w
        w.session.set_bundle(path)
        w.menus.push_recent("recent_bundles", str(path))
        w.heatmaps.clear()
        w.image.forget_input()
        w.files.set_classes(())  # the new model's classes come with ModelReady
        w.bundle_check.begin(path, check=not w.session.entries)
        if w.session.entries:
            self.start_classification()

    def open_folder(self, folder: Path) -> None:
        self.w.statusBar().showMessage(f"Scanning {folder} …")
        self.w.files.scan(folder)

    def _scan_failed(self, error: str) -> None:
        self.w.statusBar().showMessage(f"Cannot open folder: {error}")
        self.w.folder_failed.emit(error)

    def _on_scanned(self, folder: Path, files: list[Path]) -> None:
        from desktop.review_store import ReviewStore

        w = self.w
        w.reviews.commit_note()
        store = None
        try:
            store = ReviewStore.for_folder(folder)
            reviews = store.all()
        except Exception as exc:  # locked database, a share without WAL support…
            if store is not None:
                store.close()
            w.statusBar().showMessage(f"Cannot open the review database of {folder}: {exc}")
            w.folder_failed.emit(str(exc))
            return
        w.classifier.stop()
        w.heatmaps.reset_attention()
        w.image.clear()
        w.session.open_folder(folder, files, store, reviews)
        w.reviews.forget_note()
        w.menus.push_recent("recent_folders", str(folder))
        w.files.refresh()
        w.statusBar().showMessage(f"{len(files)} images in {folder}")
        notes = [n for n in (store.recovery_note, store.fallback_reason) if n]
        w.status.show_notice(" · ".join(notes))
        if not files:
            w.folder_failed.emit("no images")
            return
        if w.session.bundle is not None:
            self.start_classification()

    def start_classification(self) -> None:
        w = self.w
        w.heatmaps.reset_attention()
        w.bundle_check.cancel()  # the folder pass verifies the bundle for itself
        w.classifier.start()
        w.update_attention_summary()
