"""The heatmap's class, chosen per image: each image starts at its predicted class unless the
reviewer pinned a class, and the panel says how likely the mapped class is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from desktop.heatmap_choice import map_note
from export.explain import Heatmap

if TYPE_CHECKING:
    from desktop.ui.main_window import MainWindow


class CamChoice(QObject):
    """Connected after the window's own slots: a new image is already being loaded when the
    class goes back to the predicted one, and the heatmap is on screen when it is described."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.session, self.side = window.session, window.side
        window.files.current_changed.connect(lambda _i: self.side.new_image())
        window.heatmaps.heatmap_ready.connect(self.describe)

    def describe(self, heat: Heatmap) -> None:
        """The map's class with this image's probability (the list's, where it has one)."""
        s, i = self.session, self.session.current
        if i is None or i >= len(s.entries):
            return
        e = s.entries[i]
        probs = e.probabilities if e.probabilities is not None else heat.probabilities
        self.side.show_map_note(
            *map_note(s.class_names, probs, heat.class_index, e.predicted_index)
        )
