"""Who decides: the reviewer's name, stored with every decision and note, always on screen.

A name the reviewer never chose (the login name, often ``root`` on a shared workstation)
would otherwise reach the review store and the reports unnoticed: the first decision of a
session asks for the name once when none was ever stored. ``CXR_REVIEW_ASK_REVIEWER=0``
turns the question off for runs without a person at the screen (tests, scripted runs),
where a modal dialog would wait forever.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

if TYPE_CHECKING:
    from desktop.ui.main_window import MainWindow

ASK_ENV = "CXR_REVIEW_ASK_REVIEWER"
SETTINGS_KEY = "reviewer"


class ReviewerName(QObject):
    changed = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        """The question is the window's Settings ▸ Reviewer name… dialog (``menus``), which
        calls :meth:`set_name` when a name is given."""
        super().__init__(window)
        self.w = window
        self.settings = window.settings
        self.reviews = window.reviews
        self._asked = self.settings.contains(SETTINGS_KEY) or os.environ.get(ASK_ENV) == "0"
        self.label = QLabel()
        self.label.setToolTip(
            "Stored with every decision and note; Settings ▸ Reviewer name… changes it"
        )
        window.statusBar().addPermanentWidget(self.label)
        self.reviews.about_to_decide.connect(self.ask_once)
        self._show()

    @property
    def name(self) -> str:
        return self.reviews.reviewer

    def ask_once(self) -> None:
        """Before the session's first decision: the name dialog, unless a name was stored.
        Cancelled, the login name stays for this session and the next one asks again."""
        if self._asked:
            return
        self._asked = True
        self.w.menus.ask_reviewer()

    def set_name(self, name: str) -> None:
        """The reviewer's own choice: used from now on and stored at once."""
        self._asked = True
        self.reviews.reviewer = name
        self.settings.setValue(SETTINGS_KEY, name)
        self._show()
        self.changed.emit(name)

    def _show(self) -> None:
        self.label.setText(f"Reviewer: {self.reviews.reviewer}")
