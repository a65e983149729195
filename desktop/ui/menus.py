"""Menus, keyboard shortcuts, recent lists and the settings dialogs of the main window."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QInputDialog,
    QMessageBox,
    QTextBrowser,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.marks import TOOLS
from desktop.view_state import ViewState

if TYPE_CHECKING:
    from desktop.ui.main_window import MainWindow

RECENT_MAX = 8
#: keys of the marks tools (free of the paging, decision and view keys)
TOOL_KEYS = {
    "select": "V",
    "arrow": "L",
    "ellipse": "E",
    "rectangle": "R",
    "polyline": "P",
    "text": "T",
}
#: (label, centre, width) on the [0, 1] windowed image
WINDOW_PRESETS = (
    ("Full range", 0.5, 1.0),
    ("Lung", 0.35, 0.7),
    ("Mediastinum / soft tissue", 0.65, 0.5),
    ("Bone", 0.8, 0.4),
)
SHORTCUT_HELP = (
    "Images\n"
    "  ←/↑, PgUp: previous image     →/↓, PgDn: next image     Home/End: first/last\n"
    "Review (always on the image shown, never on one still loading)\n"
    "  A: agree with AI     1…9: the image shows class 1…9 (the model's order)\n"
    "  U: uncertain     Del: clear the decision (its history is kept)\n"
    "  N: write a note     Esc or Tab: leave the note (it is saved)\n"
    "  Settings ▸ Advance after a decision: go to the next image not reviewed\n"
    "Heatmap\n"
    "  H: on/off     +/−: opacity     G: lung field and text outlines\n"
    "View\n"
    "  F: fit     Ctrl+1: 1:1 pixels     I: invert     W: auto window     Shift+W: reset window\n"
    "  Shift+I: this file is stored inverted: invert it for the model too (remembered)\n"
    "  O: DICOM header tags on/off\n"
    "  right-drag on the image: window / level\n"
    "Marks (on the image shown, saved at once)\n"
    "  V or Esc: select / move (left-drag on a mark moves it, elsewhere pans)\n"
    "  L: arrow     E: ellipse     R: rectangle     P: freehand outline     T: text label\n"
    "  Del or Backspace: delete the selected mark (Del clears the decision when none is)\n"
    "  double-click a mark: edit its label     M: show/hide marks\n"
    "  Ctrl+Z: undo     Ctrl+Shift+Z or Ctrl+Y: redo (per image)\n"
    "Files\n"
    "  Ctrl+O: open folder     Ctrl+E: export report (PDF)     Ctrl+Q: quit"
)


class MenuController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.model_card_dialog: QDialog | None = None
        self._shortcuts()
        self._menus()

    def _shortcuts(self) -> None:
        w, side, view = self.w, self.w.side, self.w.view

        def key(seq: str, slot) -> None:
            QShortcut(QKeySequence(seq), w, activated=slot)

        # a reading workstation pages with all four arrows and PgUp/PgDn, whatever has focus
        # outside the note (where arrows move the text cursor)
        for seq in ("Right", "Down", "PgDown"):
            key(seq, lambda: w.step(1))
        for seq in ("Left", "Up", "PgUp"):
            key(seq, lambda: w.step(-1))
        key("Home", lambda: w.files.go_to_row(0))
        key("End", lambda: w.files.go_to_row(len(w.files.rows) - 1))
        key("A", lambda: w.reviews.decide("agree", None))
        key("U", lambda: w.reviews.decide("uncertain", None))
        # Del deletes the selected mark; with none selected it clears the decision
        key("Delete", lambda: w.marks.delete_selected() or w.reviews.decide("clear", None))
        key("Backspace", w.marks.delete_selected)
        key("Escape", self.escape)
        key("N", lambda: side.note.setFocus())
        for i in range(1, 10):
            key(str(i), lambda i=i: w.reviews.decide_index(i - 1))
        key("H", lambda: side.show_heatmap.toggle())
        key("G", lambda: side.show_lungs.toggle())
        for seq, step in (("+", 0.1), ("=", 0.1), ("-", -0.1)):
            key(seq, lambda s=step: side.step_opacity(s))
        key("F", view.fit)
        key("I", view.toggle_invert)
        key("W", view.auto_window)
        key("Shift+W", view.reset_window)
        key("Shift+I", self.toggle_model_invert)
        key("O", view.toggle_tags)

    def _menus(self) -> None:
        w = self.w
        bar = w.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction("Open folder…", QKeySequence("Ctrl+O"), self.choose_folder)
        self.recent_folders_menu = file_menu.addMenu("Recent folders")
        file_menu.addSeparator()
        file_menu.addAction("Choose model bundle…", self.choose_bundle)
        self.recent_bundles_menu = file_menu.addMenu("Recent bundles")
        file_menu.addSeparator()
        file_menu.addAction("Export report (PDF)…", QKeySequence("Ctrl+E"), w.export_report)
        file_menu.addAction("Export results (CSV + heatmap PNGs)…", w.export_csv)
        file_menu.addSeparator()
        file_menu.addAction("Quit", QKeySequence("Ctrl+Q"), w.close)
        view = bar.addMenu("&View")
        view.addAction("Fit (F)", w.view.fit)
        view.addAction("1:1 pixels", QKeySequence("Ctrl+1"), w.view.one_to_one)
        view.addAction("Invert (I)", w.view.toggle_invert)
        view.addAction("Auto window (W)", w.view.auto_window)
        view.addAction("DICOM header tags (O)", w.view.toggle_tags)
        view.addAction(
            "Image is inverted: invert it for the model too (Shift+I)", self.toggle_model_invert
        )
        presets = view.addMenu("Window presets")
        for label, centre, width in WINDOW_PRESETS:
            presets.addAction(label, lambda c=centre, wd=width: w.view.set_window(c, wd))
        view.addSeparator()
        view.addAction("Right-drag on the image: window / level").setEnabled(False)
        self._marks_menu(bar.addMenu("&Marks"))
        settings = bar.addMenu("&Settings")
        settings.addAction("Reviewer name…", self.ask_reviewer)
        settings.addAction(
            "Attention threshold (looked outside the lungs)…", self.ask_min_lung_share
        )
        settings.addAction("Low-confidence band (uncertain AI)…", self.ask_uncertain_below)
        self.advance_action = settings.addAction(
            "Advance to the next image not reviewed after a decision"
        )
        self.advance_action.setCheckable(True)
        self.advance_action.setChecked(
            str(w.settings.value("advance_after_decision", "false")).lower() == "true"
        )
        self.advance_action.toggled.connect(
            lambda on: w.settings.setValue("advance_after_decision", on)
        )
        help_menu = bar.addMenu("&Help")
        help_menu.addAction("Model card…", self.show_model_card)
        help_menu.addAction("Keyboard shortcuts", self.show_shortcuts)
        self.rebuild_recent()

    def toggle_model_invert(self) -> None:
        """The file's polarity is wrong (bright lungs): flip it for the model and the display,
        remembered per image; pressed again, it is used as stored."""
        w = self.w
        i = w.session.current
        if i is None:
            return
        on = w.session.entries[i].rel_path not in w.session.inverted
        text = w.classifier.set_inverted(i, on)
        w.image.load(i)
        w.statusBar().showMessage(text)

    def _marks_menu(self, menu) -> None:
        """Tools in the menu and a small toolbar (one action each, so they agree), the
        undo/redo and show/hide actions."""
        marks, w = self.w.marks, self.w
        group = QActionGroup(menu)
        self.tool_actions: dict[str, QAction] = {}
        bar = QToolBar("Marks")
        bar.setObjectName("marks_toolbar")
        bar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for tool, label in TOOLS:
            act = QAction(label, menu, checkable=True)
            act.setShortcut(QKeySequence(TOOL_KEYS[tool]))
            act.setToolTip(f"{label} ({TOOL_KEYS[tool]})")
            act.triggered.connect(lambda _c=False, t=tool: marks.set_tool(t))
            group.addAction(act)
            menu.addAction(act)
            bar.addAction(act)
            self.tool_actions[tool] = act
        self.tool_actions["select"].setChecked(True)
        marks.tool_changed.connect(lambda t: self.tool_actions[t].setChecked(True))
        menu.addSeparator()
        menu.addAction("Undo", QKeySequence("Ctrl+Z"), marks.undo)
        redo = menu.addAction("Redo", QKeySequence("Ctrl+Shift+Z"), marks.redo)
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        menu.addAction("Edit label… (double-click)", lambda: marks.edit_text())
        menu.addAction("Delete mark (Del, Backspace)", marks.delete_selected)
        menu.addSeparator()
        self.marks_visible_action = QAction("Show marks", menu, checkable=True)
        self.marks_visible_action.setShortcut(QKeySequence("M"))
        self.marks_visible_action.setChecked(marks.is_visible())
        self.marks_visible_action.toggled.connect(marks.set_visible)
        marks.visibility_changed.connect(self.marks_visible_action.setChecked)
        menu.addAction(self.marks_visible_action)
        bar.addSeparator()
        bar.addAction(self.marks_visible_action)
        for button in bar.findChildren(QWidget):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keyboard stays on the list
        w.addToolBar(bar)
        self.marks_toolbar = bar

    def escape(self) -> None:
        """Esc: back to the select tool; in the note it leaves the note (it is saved)."""
        if self.w.side.note.hasFocus():
            self.w.side.note.escaped.emit()
        self.w.marks.set_tool("select")
        self.w.marks.select(None)

    # ------------------------------------------------------------------ settings

    def restore_settings(self) -> None:
        w, s = self.w, self.w.settings
        w.side.apply(w.state)
        w.view.set_colormap(w.state.colormap)
        w.view.set_opacity(w.state.opacity)
        if (geo := s.value("geometry")) is not None:
            w.restoreGeometry(geo)
        if (split := s.value("splitter")) is not None:
            w.splitter.restoreState(split)
        else:  # first start: file names readable, the image gets the rest
            w.splitter.setSizes([430, max(400, w.width() - 430 - 340), 340])

    def save_settings(self) -> None:
        w, s = self.w, self.w.settings
        save_view_state(s, w.state)
        s.setValue("geometry", w.saveGeometry())
        s.setValue("splitter", w.splitter.saveState())
        if w.session.folder:
            s.setValue("last_folder", str(w.session.folder))
        if w.session.bundle:
            s.setValue("last_bundle", str(w.session.bundle))
        s.sync()

    def choose_folder(self) -> None:
        start = str(self.w.settings.value("last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self.w, "Open a folder of images", start)
        if folder:
            self.w.open_folder(Path(folder))

    def choose_bundle(self) -> None:
        start = str(self.w.settings.value("last_bundle", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self.w, "Choose a model bundle folder", start)
        if folder:
            self.w.set_bundle(Path(folder))

    # ------------------------------------------------------------------ recent lists

    def recent(self, key: str) -> list[str]:
        v = self.w.settings.value(key, [])
        return [str(x) for x in (v if isinstance(v, list) else [v] if v else [])]

    def push_recent(self, key: str, value: str) -> None:
        items = [value, *[x for x in self.recent(key) if x != value]][:RECENT_MAX]
        self.w.settings.setValue(key, items)
        self.rebuild_recent()

    def rebuild_recent(self) -> None:
        w = self.w
        for menu, key, slot in (
            (self.recent_folders_menu, "recent_folders", lambda p: w.open_folder(Path(p))),
            (self.recent_bundles_menu, "recent_bundles", lambda p: w.set_bundle(Path(p))),
        ):
            menu.clear()
            items = self.recent(key)
            for item in items:
                act = QAction(item, menu)
                act.triggered.connect(lambda _c=False, p=item, f=slot: f(p))
                menu.addAction(act)
            menu.setEnabled(bool(items))

    # ------------------------------------------------------------------ dialogs

    def ask_reviewer(self) -> None:
        w = self.w
        name, ok = QInputDialog.getText(
            w, "Reviewer", "Your name (stored with every decision):", text=w.reviews.reviewer
        )
        if ok and name.strip():
            w.reviewer.set_name(name.strip())

    def _ask_percent(self, title: str, text: str, value: float, lo: int, hi: int, setter) -> None:
        got, ok = QInputDialog.getInt(self.w, title, text, round(value * 100), lo, hi)
        if ok:
            setter(got / 100.0)

    def ask_min_lung_share(self) -> None:
        self._ask_percent(
            "Attention threshold",
            "Flag an image when less than this share (%) of the predicted class's heatmap\n"
            "lies in the lung field (Grad-CAM; default 50 %):",
            self.w.state.min_lung_share,
            0,
            100,
            self.w.set_min_lung_share,
        )

    def ask_uncertain_below(self) -> None:
        self._ask_percent(
            "Low-confidence band",
            "Mark the AI result uncertain when its top probability (calibrated, %) is below:",
            self.w.state.uncertain_below,
            34,
            99,
            self.w.set_uncertain_below,
        )

    def show_model_card(self) -> None:
        from desktop.model_card import model_card_html

        manifest = self.w.session.manifest
        dlg = QDialog(self.w)
        dlg.setWindowTitle("Model card")
        lay = QVBoxLayout(dlg)
        text = QTextBrowser()
        text.setHtml(
            model_card_html(manifest)
            if manifest is not None
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
        QMessageBox.information(self.w, "Keyboard shortcuts", SHORTCUT_HELP)


#: settings kept at the top level by earlier versions; the "view" group wins where both exist
_EARLIER_KEYS = ("opacity", "colormap", "min_lung_share", "uncertain_below")


def load_view_state(settings: QSettings) -> ViewState:
    values = {k: settings.value(k) for k in _EARLIER_KEYS if settings.contains(k)}
    settings.beginGroup("view")
    try:
        values.update({k: settings.value(k) for k in settings.childKeys()})
    finally:
        settings.endGroup()
    state = ViewState.from_dict(values)
    # the heatmap's class is chosen per image: a new session starts at the predicted class,
    # unpinned
    return replace(state, cam_class=None, pin_class=False)


def save_view_state(settings: QSettings, state: ViewState) -> None:
    settings.beginGroup("view")
    for k, v in state.to_dict().items():
        settings.setValue(k, v)
    settings.endGroup()
