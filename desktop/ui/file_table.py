"""The file list as a model/view table: O(1) per updated row, fine for thousands of files.

A row changes without re-measuring the others: the columns have fixed widths
and the model reports only the changed row.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from desktop.folder_model import (
    elide_path,
    format_probability,
    is_unlike,
    novelty_status,
    novelty_text,
    review_status,
)
from export.attention import describe
from export.results import ImageResult

HEADERS = ("File", "AI", "p", "Lungs", "Unlike", "Review")
#: the column saying whether the image is unlike the model's training data
UNLIKE_COLUMN = 4
#: a probability of an image unlike the training data: shown, greyed (it may mean little)
GREY = QColor("#8a8a8a")
LOW = QColor("#b07800")
ERR = QColor("#c0392b")
WARN_BG = QColor("#ffe2a8")
#: the roles :meth:`FileTableModel.data` answers
_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.FontRole,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.BackgroundRole,
        Qt.ItemDataRole.ToolTipRole,
    }
)


class FileTableModel(QAbstractTableModel):
    def __init__(self, uncertain_below: float, min_lung_share: float = 0.5) -> None:
        super().__init__()
        self.entries: list[ImageResult] = []
        self.rows: list[int] = []
        self.class_names: tuple[str, ...] = ()
        self.uncertain_below = uncertain_below
        self.min_lung_share = min_lung_share
        self.current: int | None = None  # entry shown: its row is drawn bold

    def set_current(self, index: int | None) -> None:
        old, self.current = self.current, index
        for i in {old, index} - {None}:
            self.entry_changed(i)

    def reset(
        self, entries: list[ImageResult], rows: list[int], class_names: tuple[str, ...]
    ) -> None:
        self.beginResetModel()
        self.entries, self.rows, self.class_names = entries, rows, class_names
        self.endResetModel()

    def entry_changed(self, index: int) -> None:
        try:
            r = self.rows.index(index)
        except ValueError:
            return
        self.dataChanged.emit(self.index(r, 0), self.index(r, len(HEADERS) - 1))

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        # called for every role of every painted cell, on the GUI thread: roles this model
        # does not answer return at once, and nothing is computed that the role does not need
        if role not in _ROLES or not index.isValid():
            return None
        e = self.entries[self.rows[index.row()]]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return e.rel_path
            if col == 1:
                return "error" if e.error else (e.predicted(self.class_names) or self._pending())
            if col == 2:
                conf = e.confidence
                return "" if conf is None else format_probability(conf, 0)
            if col == 3:
                return self._lung_text(e)
            if col == UNLIKE_COLUMN:
                return novelty_status(e)
            return review_status(e.review)
        if role == Qt.ItemDataRole.FontRole:
            if self.rows[index.row()] != self.current:
                return None
            bold = QFont()
            bold.setBold(True)
            return bold
        if role == Qt.ItemDataRole.ForegroundRole:
            if e.error:
                return ERR
            if col in (1, 2):
                if is_unlike(e):
                    return GREY
                conf = e.confidence
                return LOW if conf is not None and conf < self.uncertain_below else None
            if col == 3 and e.flagged(self.min_lung_share):
                return ERR
            if col == UNLIKE_COLUMN and is_unlike(e):
                return ERR
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if col == 3 and e.flagged(self.min_lung_share):
                return WARN_BG
            if col == UNLIKE_COLUMN and is_unlike(e):
                return WARN_BG
            return None
        return self._tooltip(e, col)  # ToolTipRole

    def _tooltip(self, e: ImageResult, col: int) -> str:
        """The full relative path on every column (the list elides long names), then what
        the row's colour or sign means."""
        conf = e.confidence
        note = ""
        if e.error:
            note = e.error
        elif col == 3 and e.attention is not None:
            note = describe(e.attention, self.min_lung_share)
        elif col == UNLIKE_COLUMN or (col in (1, 2) and is_unlike(e)):
            note = novelty_text(e)
        elif conf is not None and conf < self.uncertain_below:
            note = "low AI confidence"
        return f"{e.rel_path}\n{note}" if note else e.rel_path

    def _pending(self) -> str:
        """ "…" while a model is working on the folder; nothing when there is no model."""
        return "…" if self.class_names else ""

    def _lung_text(self, e: ImageResult) -> str:
        """Share of the heatmap in the lung field; a warning sign when below the threshold."""
        a = e.attention
        if a is None:
            return "" if e.probabilities is None else "…"
        share = a.lung_share
        if not a.judged or share is None:
            return "—"
        return f"⚠ {share:.0%}" if e.flagged(self.min_lung_share) else f"{share:.0%}"


class PathDelegate(QStyledItemDelegate):
    """The File column: a path too long for its cell is shortened where the files of a
    folder stay told apart (:func:`desktop.folder_model.elide_path`): the folder before the
    file's name, the start of the name before its end. The tooltip has the whole path."""

    #: shortened paths by (path, room, font): a repaint measures nothing it measured before
    CACHE_SIZE = 4096

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._short: dict[tuple[str, int, str], str] = {}

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        style = option.widget.style() if option.widget is not None else None
        margin = (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 1) if style else 3
        room = option.rect.width() - 2 * margin
        key = (option.text, room, option.font.key())
        short = self._short.get(key)
        if short is None:
            # the row's own font (the current row is bold), measured unrounded: Qt elides
            # again, at the end, any text whose exact width is over the room
            metrics = QFontMetricsF(option.font)
            short = elide_path(option.text, lambda s: metrics.horizontalAdvance(s) <= room)
            if len(self._short) >= self.CACHE_SIZE:
                self._short.clear()
            self._short[key] = short
        option.text = short
