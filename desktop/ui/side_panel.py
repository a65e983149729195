"""Right-hand panel: probabilities, heatmap controls, the reviewer's decision and note.

The heatmap controls show the opacity, colormap, CAM method and class of a
:class:`~desktop.view_state.ViewState` (:meth:`SidePanel.apply`) and report
changes in its units: opacity as a fraction 0-1, names as the state's keys.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from desktop.folder_model import format_probability
from desktop.heatmap_choice import class_label
from desktop.overlay import COLORMAPS
from desktop.ui.style import set_bar_value, set_style
from desktop.view_state import ViewState
from export.cam import METHODS

OPACITY_STEPS = 100  # slider positions per full opacity


class NoteEdit(QPlainTextEdit):
    """A note field that says when the reviewer leaves it, so the note is saved then.

    Esc leaves it (``escaped``); Tab leaves it too instead of typing a tab.
    """

    left = Signal()
    escaped = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.left.emit()


class SidePanel(QWidget):
    opacity_changed = Signal(float)  # 0..1
    heatmap_toggled = Signal(bool)
    colormap_changed = Signal(str)
    cam_choice_changed = Signal()
    outline_toggled = Signal(bool)
    decision_requested = Signal(str, object)  # decision, reviewer class (or None)
    note_committed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumWidth(280)
        self.setMaximumWidth(380)
        lay = QVBoxLayout(self)

        ai = QGroupBox("AI result")
        ai_lay = QVBoxLayout(ai)
        self.prediction = QLabel("—")
        self.prediction.setStyleSheet("font-size: 15px; font-weight: 600;")
        ai_lay.addWidget(self.prediction)
        self.bars: dict[str, QProgressBar] = {}
        self._bar_box = QFormLayout()
        ai_lay.addLayout(self._bar_box)
        self.confidence_note = QLabel("")
        self.confidence_note.setWordWrap(True)
        ai_lay.addWidget(self.confidence_note)
        lay.addWidget(ai)

        heat = QGroupBox("Heatmap (where the model looked)")
        form = QFormLayout(heat)
        self.show_heatmap = QCheckBox("Show (H)")
        self.show_heatmap.setChecked(True)
        self.show_heatmap.toggled.connect(self.heatmap_toggled)
        form.addRow(self.show_heatmap)
        row = QHBoxLayout()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, OPACITY_STEPS)
        self.opacity_label = QLabel("")
        self.opacity.valueChanged.connect(self._opacity_moved)
        self.opacity.setValue(round(ViewState().opacity * OPACITY_STEPS))
        self._opacity_moved(self.opacity.value())
        row.addWidget(self.opacity, 1)
        row.addWidget(self.opacity_label)
        form.addRow("Opacity", row)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.currentTextChanged.connect(self.colormap_changed)
        form.addRow("Colormap", self.colormap)
        self.cam_class = QComboBox()
        self.cam_class.addItem("Predicted class", None)
        self.cam_class.currentIndexChanged.connect(lambda _i: self.cam_choice_changed.emit())
        self.pin_class = QCheckBox("Pin")
        self.pin_class.setToolTip(
            "Keep this class for the next images; unpinned, each image starts at its "
            "predicted class"
        )
        self.pin_class.toggled.connect(lambda _on: self.cam_choice_changed.emit())
        class_row = QHBoxLayout()
        class_row.addWidget(self.cam_class, 1)
        class_row.addWidget(self.pin_class)
        form.addRow("For class", class_row)
        self.map_note = QLabel("")  # whose map is shown, and how likely that class is
        self.map_note.setWordWrap(True)
        form.addRow(self.map_note)
        self.cam_method = QComboBox()
        for key, label in METHODS.items():
            self.cam_method.addItem(label, key)
        self.cam_method.currentIndexChanged.connect(lambda _i: self.cam_choice_changed.emit())
        form.addRow("Method", self.cam_method)
        self.show_lungs = QCheckBox("Lung field and text outlines (G)")
        self.show_lungs.toggled.connect(self.outline_toggled)
        form.addRow(self.show_lungs)
        self.cam_status = QLabel("")
        self.cam_status.setWordWrap(True)
        form.addRow(self.cam_status)
        self.attention_note = QLabel("")
        self.attention_note.setWordWrap(True)
        form.addRow(self.attention_note)
        lay.addWidget(heat)

        rev = self.review_box = QGroupBox("Your review   (keys A · U)")
        rlay = QVBoxLayout(rev)
        self.agree = QPushButton("Agree with AI")
        self.agree.clicked.connect(lambda: self.decision_requested.emit("agree", None))
        rlay.addWidget(self.agree)
        self.class_buttons: list[QPushButton] = []
        self._class_row = QHBoxLayout()
        rlay.addLayout(self._class_row)
        self.uncertain = QPushButton("Uncertain")
        self.uncertain.clicked.connect(lambda: self.decision_requested.emit("uncertain", None))
        rlay.addWidget(self.uncertain)
        self.clear_decision = QPushButton("Clear decision (Del)")
        self.clear_decision.clicked.connect(lambda: self.decision_requested.emit("clear", None))
        rlay.addWidget(self.clear_decision)
        self.review_state = QLabel("Not reviewed")
        self.review_state.setWordWrap(True)
        rlay.addWidget(self.review_state)
        self.note = NoteEdit()
        self.note.left.connect(lambda: self.note_committed.emit(self.note.toPlainText()))
        self.note.setPlaceholderText("Note (saved when you leave the field or change image)")
        self.note.setMaximumHeight(90)
        rlay.addWidget(self.note)
        save = QPushButton("Save note")
        save.clicked.connect(lambda: self.note_committed.emit(self.note.toPlainText()))
        rlay.addWidget(save)
        lay.addWidget(rev)
        lay.addStretch(1)
        self._keyboard_stays_with_the_list()

    def _keyboard_stays_with_the_list(self) -> None:
        """Only the note takes keyboard focus here: arrows and letters keep paging and
        deciding whatever the mouse last touched (combo boxes never take Up/Down)."""
        for w in self.findChildren(QWidget):
            if w is not self.note and w is not self.note.viewport():
                w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for b in (self.agree, self.uncertain):
            b.setCheckable(True)

    def show_decision(self, decision: str | None, reviewer_class: str | None) -> None:
        """The active decision's button is shown pressed."""
        self.agree.setChecked(decision == "agree")
        self.uncertain.setChecked(decision == "uncertain")
        for b in self.class_buttons:
            b.setChecked(decision == "override" and b.text() == reviewer_class)
        self.clear_decision.setEnabled(decision is not None)

    # ---------------------------------------------------------------- view state

    def _opacity_moved(self, value: int) -> None:
        self.opacity_label.setText(f"{value * 100 // OPACITY_STEPS} %")
        self.opacity_changed.emit(value / OPACITY_STEPS)

    def opacity_fraction(self) -> float:
        return self.opacity.value() / OPACITY_STEPS

    def set_opacity(self, fraction: float) -> None:
        """Move the slider (clamped to 0..1); emits ``opacity_changed`` when it moves."""
        self.opacity.setValue(round(min(max(fraction, 0.0), 1.0) * OPACITY_STEPS))

    def step_opacity(self, delta: float) -> None:
        self.set_opacity(self.opacity_fraction() + delta)

    def apply(self, state: ViewState) -> None:
        """Show ``state``'s heatmap settings. Opacity and colormap emit their signals when
        they change; a changed CAM method or class emits ``cam_choice_changed`` once. A
        class index this bundle lacks shows the predicted class."""
        self.set_opacity(state.opacity)
        self.colormap.setCurrentText(state.colormap)
        before = self._cam_choice()
        for box, value in ((self.cam_method, state.cam_method), (self.cam_class, state.cam_class)):
            box.blockSignals(True)
            box.setCurrentIndex(max(0, box.findData(value)))
            box.blockSignals(False)
        self.pin_class.blockSignals(True)
        self.pin_class.setChecked(state.pin_class)
        self.pin_class.blockSignals(False)
        if self._cam_choice() != before:
            self.cam_choice_changed.emit()

    def _cam_choice(self) -> tuple:
        return (
            self.cam_method.currentData(),
            self.cam_class.currentData(),
            self.pin_class.isChecked(),
        )

    def to_state(self, base: ViewState) -> ViewState:
        """``base`` with this panel's heatmap settings."""
        return dataclasses.replace(
            base,
            opacity=self.opacity_fraction(),
            colormap=self.colormap.currentText(),
            cam_method=self.cam_method.currentData(),
            cam_class=self.cam_class.currentData(),
            pin_class=self.pin_class.isChecked(),
        )

    def new_image(self) -> None:
        """Another image is shown: unless pinned, its heatmap is that of its own predicted
        class (emits ``cam_choice_changed`` when the choice changes)."""
        self.show_map_note("", False)
        if not self.pin_class.isChecked() and self.cam_class.currentIndex() != 0:
            self.cam_class.setCurrentIndex(0)

    def show_map_note(self, text: str, unlikely: bool) -> None:
        self.map_note.setText(text)
        set_style(
            self.map_note,
            "background: #e8e8e8; color: #1a1a1a; font-style: italic; padding: 3px;"
            if unlikely
            else "",
        )

    # ---------------------------------------------------------------- results

    def set_classes(self, names: tuple[str, ...]) -> None:
        for b in self.bars.values():
            b.setParent(None)
        while self._bar_box.rowCount():
            self._bar_box.removeRow(0)
        self.bars = {}
        for n in names:
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("—")
            bar.setTextVisible(True)
            self.bars[n] = bar
            self._bar_box.addRow(n, bar)
        keys = f"1–{min(len(names), 9)}" if len(names) > 1 else "1"
        self.review_box.setTitle(f"Your review   (keys A · {keys} · U)")
        for b in self.class_buttons:
            b.setParent(None)
        self.class_buttons = []
        for i, n in enumerate(names, start=1):
            b = QPushButton(n)
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(f"Override: the image shows {n} (key {i})")
            b.clicked.connect(
                lambda _c=False, name=n: self.decision_requested.emit("override", name)
            )
            self._class_row.addWidget(b)
            self.class_buttons.append(b)
        self.cam_class.blockSignals(True)
        while self.cam_class.count() > 1:
            self.cam_class.removeItem(1)
        for i, n in enumerate(names):
            self.cam_class.addItem(n, i)
        self.cam_class.blockSignals(False)

    def _label_classes(self, names: tuple[str, ...], probs) -> None:
        """The "For class" list shows this image's probability of each class."""
        for i, n in enumerate(names):
            row = self.cam_class.findData(i)
            if row > 0:
                p = None if probs is None or i >= len(probs) else float(probs[i])
                self.cam_class.setItemText(row, class_label(n, p))

    def show_probabilities(
        self, names: tuple[str, ...], probs, uncertain_below: float, unlike: bool = False
    ) -> None:
        """``unlike``: the image is unlike the model's training data; the probabilities are
        still shown (never silently changed), greyed and marked."""
        if probs is not None and len(probs) != len(names):  # results of another model
            probs = None
        self._label_classes(names, probs)
        unlike = unlike and probs is not None
        set_style(self.prediction, "color: #8a8a8a;" if unlike else "")
        for b in self.bars.values():
            b.setEnabled(not unlike)  # greyed, still readable
        if probs is None:
            self.prediction.setText("—")
            for b in self.bars.values():
                set_bar_value(b, 0)
                b.setFormat("—")
            self.confidence_note.setText("")
            return
        best = int(probs.argmax())
        mark = "⚠ " if unlike else ""
        self.prediction.setText(
            f"{mark}AI: {names[best]}  ({format_probability(float(probs[best]))})"
        )
        for n, p in zip(names, probs, strict=True):
            set_bar_value(self.bars[n], round(float(p) * 1000))
            self.bars[n].setFormat(format_probability(float(p)))
        low = float(probs[best]) < uncertain_below
        notes = ["Unlike the training data: these probabilities may mean little."] if unlike else []
        if low:
            notes.append(f"Low confidence (below {uncertain_below:.0%}): review with care.")
        self.confidence_note.setText(" ".join(notes))

    def show_attention(self, text: str, flagged: bool) -> None:
        self.attention_note.setText(text)
        set_style(
            self.attention_note,
            "background: #ffb000; color: #1a1a1a; font-weight: 600; padding: 3px;"
            if flagged
            else "",
        )
