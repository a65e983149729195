"""The file list: folder scan off the GUI thread, filters and sort, keyboard paging.

The highlighted row is always the image shown: the table's current row is
the one source of the current image.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView, QTableView

from desktop.folder_model import SORTS, filter_names
from desktop.session import ReviewSession
from desktop.ui.file_table import FileTableModel, PathDelegate
from desktop.view_state import ViewState


class FileList(QObject):
    current_changed = Signal(int)  # entry index now shown
    current_cleared = Signal()  # no row left (a filter matches nothing): no image is current
    scanned = Signal(object, object)  # folder, list[Path]
    scan_failed = Signal(str)
    _scan_done = Signal(int, object, object, object)  # generation, folder, files, error

    def __init__(self, session: ReviewSession, state: ViewState) -> None:
        super().__init__()
        self.session = session
        self.state = state
        self.rows: list[int] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxr-scan")
        self._scan_gen = 0
        self._scan_done.connect(self._on_scan_done)
        self.filter_box = QComboBox()
        self.filter_box.addItems(filter_names(()))
        self.sort_box = QComboBox()
        self.sort_box.addItems(SORTS)
        self.filter_box.currentTextChanged.connect(lambda _t: self.refresh())
        self.sort_box.currentTextChanged.connect(lambda _t: self.refresh())
        self.model = FileTableModel(state.uncertain_below, state.min_lung_share)
        t = self.table = QTableView()
        t.setModel(self.model)
        t.verticalHeader().setVisible(False)
        t.verticalHeader().setDefaultSectionSize(22)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = t.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c, width in ((1, 80), (2, 48), (3, 54), (4, 54), (5, 80)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(c, width)
        t.setMinimumWidth(300)
        t.setWordWrap(False)
        t.setItemDelegateForColumn(0, PathDelegate(t))  # shortens paths keeping names apart
        t.setTextElideMode(Qt.TextElideMode.ElideRight)  # other columns: keep the start
        t.setTabKeyNavigation(False)  # Tab leaves the list; it never walks its cells
        sm = t.selectionModel()
        sm.currentRowChanged.connect(lambda cur, _p: self._row_changed(cur.row()))
        sm.selectionChanged.connect(lambda *_a: self._keep_current_selected())
        for box in (self.filter_box, self.sort_box):  # arrows never change a filter or sort
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    # ------------------------------------------------------------------ scanning

    def scan(self, folder: Path) -> None:
        """Scan in the background; ``scanned`` or ``scan_failed`` answers the latest call."""
        self._scan_gen += 1
        gen = self._scan_gen

        def work() -> None:
            from desktop.folder_scan import iter_image_files

            try:
                if not folder.is_dir():
                    raise NotADirectoryError(f"{folder} is not a folder")
                self._scan_done.emit(gen, folder, list(iter_image_files(folder)), None)
            except Exception as exc:
                self._scan_done.emit(gen, folder, None, str(exc))

        self._pool.submit(work)

    def _on_scan_done(self, gen: int, folder: Path, files, error) -> None:
        if gen != self._scan_gen:
            return
        if error is not None or files is None:
            self.scan_failed.emit(error or "unknown error")
        else:
            self.scanned.emit(folder, files)

    # ------------------------------------------------------------------ rows

    def set_classes(self, names: tuple[str, ...]) -> None:
        """The model's classes become filters; a filter it lacks falls back to All."""
        keep = self.filter_box.currentText()
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        self.filter_box.addItems(filter_names(names))
        self.filter_box.setCurrentText(keep if keep in filter_names(names) else "All")
        self.filter_box.blockSignals(False)
        self.refresh()

    def set_state(self, state: ViewState) -> None:
        self.state = state
        self.model.uncertain_below = state.uncertain_below
        self.model.min_lung_share = state.min_lung_share
        self.refresh()

    def refresh(self) -> None:
        s, st = self.session, self.state
        keep = s.current
        shown = self.filter_box.currentText()
        if shown not in filter_names(s.class_names):  # a class of the previous model
            shown = "All"
        self.rows = s.rows(
            shown,
            self.sort_box.currentText(),
            st.uncertain_below,
            st.min_lung_share,
        )
        self.model.reset(s.entries, self.rows, s.class_names)
        if keep is not None and keep in self.rows:
            self._set_row(self.rows.index(keep))
        elif self.rows:
            self._set_row(0)
        elif keep is not None:  # nothing listed: nothing may be shown or decided
            self.model.set_current(None)
            self.current_cleared.emit()

    def entry_changed(self, i: int, refilter: bool = False) -> None:
        self.model.entry_changed(i)
        if refilter and self.filter_box.currentText() == "Looked outside lungs":
            e = self.session.entries[i]
            if e.flagged(self.state.min_lung_share) and i not in self.rows:
                self.refresh()

    def _set_row(self, r: int) -> None:
        self.table.setCurrentIndex(self.model.index(r, 0))
        self._row_changed(r)  # no-op when the row's image is already the current one

    def _row_changed(self, r: int) -> None:
        self._keep_current_selected()
        self.model.set_current(self.rows[r] if 0 <= r < len(self.rows) else None)
        if 0 <= r < len(self.rows) and self.rows[r] != self.session.current:
            self.current_changed.emit(self.rows[r])

    def _keep_current_selected(self) -> None:
        """The highlighted row is the image shown: a current row outside the selection (a
        Ctrl+arrow move, a Ctrl+click that unselected it) becomes the only selected row."""
        sm = self.table.selectionModel()
        cur = self.table.currentIndex()
        if cur.isValid() and not sm.isRowSelected(cur.row()):
            flags = sm.SelectionFlag.ClearAndSelect | sm.SelectionFlag.Rows
            sm.select(cur, flags)

    def step(self, delta: int) -> None:
        """Page by ``delta`` rows (clamped at both ends); the selection follows."""
        if self.rows:
            r = min(max(self.table.currentIndex().row() + delta, 0), len(self.rows) - 1)
            self.go_to_row(r)

    def go_to_row(self, r: int) -> None:
        if 0 <= r < len(self.rows):
            self.table.setCurrentIndex(self.model.index(r, 0))  # selects it (plain move)
            self.table.scrollTo(self.model.index(r, 0))

    def next_unreviewed(self) -> bool:
        """Move to the next row without a decision after the current one; False if none."""
        start = self.table.currentIndex().row()
        ents = self.session.entries
        for r in range(start + 1, len(self.rows)):
            rev = ents[self.rows[r]].review
            if rev is None or rev.decision is None:
                self.go_to_row(r)
                return True
        return False

    def position(self, i: int) -> tuple[int, int]:
        """(1-based row of entry ``i``, rows shown)."""
        return (self.rows.index(i) + 1 if i in self.rows else 0), len(self.rows)

    def selected_paths(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        ents = self.session.entries
        return [ents[self.rows[r]].rel_path for r in rows if r < len(self.rows)]

    def shutdown(self) -> None:
        self._scan_gen += 1  # a scan still running answers no one
        self._pool.shutdown(wait=False, cancel_futures=True)
