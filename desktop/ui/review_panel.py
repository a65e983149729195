"""The reviewer's side of the panel: AI result, decision buttons and keys, the note.

The note belongs to the image it was typed for: it is saved when the
reviewer leaves the field, changes image, decides or exports, and a panel
refresh never overwrites text that is not saved yet.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from desktop.folder_model import is_unlike, review_summary
from desktop.session import ReviewSession
from desktop.ui.side_panel import SidePanel


class ReviewController(QObject):
    message = Signal(str)  # for the status bar
    entry_changed = Signal(int)
    about_to_decide = Signal()  # a decision is about to be stored under self.reviewer
    decided = Signal(int)  # a decision was saved for this entry (the window may advance)

    def __init__(self, session: ReviewSession, panel: SidePanel, reviewer: str) -> None:
        super().__init__()
        self.session = session
        self.panel = panel
        self.reviewer = reviewer
        self.uncertain_below = 0.6
        #: the entry whose pixels are on screen; a decision is only ever recorded on it
        self.shown_index: Callable[[], int | None] = lambda: session.current
        self._note_owner: int | None = None  # entry whose note the field shows
        panel.decision_requested.connect(self.decide)
        panel.note_committed.connect(self.save_note)

    def forget_note(self) -> None:
        """Another folder: the field belongs to no entry."""
        self._note_owner = None

    def clear(self) -> None:
        """No image is current: nothing to show, decide or annotate."""
        self.commit_note()
        self._note_owner = None
        self.panel.show_probabilities(self.session.class_names, None, self.uncertain_below)
        self.panel.review_state.setText("No image selected")
        self.panel.show_decision(None, None)
        self.panel.note.setPlainText("")
        self.panel.note.setEnabled(False)

    def show(self, i: int) -> None:
        self.panel.note.setEnabled(True)
        s = self.session
        e = s.entries[i]
        self.panel.show_probabilities(
            s.class_names, e.probabilities, self.uncertain_below, is_unlike(e)
        )
        self.panel.review_state.setText(review_summary(e.review))
        r = e.review
        self.panel.show_decision(r.decision if r else None, r.reviewer_class if r else None)
        note = s.saved_note(i)
        if i != self._note_owner:  # another image: show its note
            self._note_owner = i
            self.panel.note.setPlainText(note)
        elif not self.note_dirty() and self.panel.note.toPlainText() != note:
            self.panel.note.setPlainText(note)  # refreshed from the store, nothing typed

    def decide_index(self, k: int) -> None:
        """Key k+1: override to the model's k-th class."""
        names = self.session.class_names
        if 0 <= k < len(names):
            self.decide("override", names[k])

    def decide(self, decision: str, reviewer_class: str | None) -> None:
        """Record ``decision`` on the image on screen, never on one still loading."""
        i = self.session.current
        if i is None or self.session.store is None:
            return
        if self.shown_index() != i:
            e = self.session.entries[i]
            self.message.emit(
                f"Not saved: {e.rel_path} is not on screen (still loading or unreadable)"
            )
            self.show(i)
            return
        self.commit_note()  # the note typed so far is saved before the panel refreshes
        self.about_to_decide.emit()
        before = self.session.entries[i].review
        self.message.emit(self.session.decide(i, decision, reviewer_class, self.reviewer))
        self.entry_changed.emit(i)
        self.show(i)
        after = self.session.entries[i].review
        if after is not before and after is not None and after.decision is not None:
            self.decided.emit(i)

    def note_dirty(self) -> bool:
        """The note field holds text the store does not have yet."""
        i = self._note_owner
        if i is None or i >= len(self.session.entries):
            return False
        return self.panel.note.toPlainText() != self.session.saved_note(i)

    def commit_note(self) -> None:
        if self._note_owner is not None and self.note_dirty():
            self._save(self._note_owner, self.panel.note.toPlainText())

    def save_note(self, text: str) -> None:
        if self._note_owner is not None:
            self._save(self._note_owner, text)

    def _save(self, i: int, text: str) -> None:
        msg = self.session.save_note(i, text, self.reviewer)
        if msg:
            self.message.emit(msg)
