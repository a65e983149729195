"""Marks on the image on screen: tools, drawing, selecting, moving, editing, undo/redo.

The marks belong to the entry whose pixels are on screen
(``CurrentImage.pixels_changed``): paging hides them at once and shows the
next image's when its pixels arrive, so a mark is never drawn on one image
and stored on another. Every change goes to the review store at once
(``ReviewStore.set_annotations``, with history); one the store refuses is
taken back on screen and the status line says why. Points are image pixels
of the decoded file (the viewer shows it at full resolution, one view unit
per pixel), clamped onto the image.

With the select tool (the default) the left button pans and the wheel zooms
as before, except on a mark, where it selects and drags it; the drawing
tools draw with the left button, and right-drag stays window/level.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from desktop.annotations import MAX_POINTS, Annotation, AnnotationError
from desktop.marks_model import (
    MarksModel,
    clamp_move,
    clamp_point,
    distance_to_outline,
    save,
    thin_path,
)
from desktop.session import ReviewSession
from desktop.ui.current_image import CurrentImage
from desktop.ui.mark_items import MarkLayer, handle_points

#: (tool, menu label); the first is the default
TOOLS = (
    ("select", "Select / move"),
    ("arrow", "Arrow"),
    ("ellipse", "Ellipse"),
    ("rectangle", "Rectangle"),
    ("polyline", "Freehand outline"),
    ("text", "Text label"),
)
HIT_PX = 6  # how near (screen pixels) a press must be to a mark's outline to pick it
MIN_DRAG_PX = 4  # a shorter drag is a click, not a shape


class MarksController(QObject):
    message = Signal(str)  # for the status bar
    changed = Signal()  # the marks on screen changed (drawn, moved, edited, undone, paged)
    tool_changed = Signal(str)
    visibility_changed = Signal(bool)

    def __init__(
        self, session: ReviewSession, image: CurrentImage, reviewer: Callable[[], str]
    ) -> None:
        super().__init__()
        self.session, self.view, self.reviewer = session, image.view, reviewer
        self.layer = MarkLayer()
        self.view.viewbox.addItem(self.layer, ignoreBounds=True)
        self.view.pointer = self
        #: asks for a label: (title, current text) -> the text, or None when cancelled;
        #: tests put an answer here instead of a dialog
        self.ask_text: Callable[[str, str], str | None] = self._dialog
        self._tool = "select"
        self._models: dict[str, MarksModel] = {}  # per image, undo kept while the folder is
        self._store = None  # the store the models were read from
        self._rel: str | None = None  # the image on screen
        self._selected: int | None = None
        self._drag: dict | None = None
        image.pixels_changed.connect(self.show_entry)

    # ------------------------------------------------------------------ public face

    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        if tool not in dict(TOOLS):
            raise ValueError(f"unknown tool {tool!r}")
        self._drag = None
        self._tool = tool
        if tool != "select":
            self._selected = None
            self.set_visible(True)  # nobody draws blind
            self.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.view.viewport().unsetCursor()
        self._render()
        self.tool_changed.emit(tool)

    def marks(self) -> list[Annotation]:
        """The marks of the image on screen (empty while none is)."""
        model = self._model()
        return model.marks if model is not None else []

    def selected(self) -> Annotation | None:
        model = self._model()
        return model.get(self._selected) if model and self._selected else None

    def select(self, uid: int | None) -> None:
        self._selected = uid
        self._render()

    def is_visible(self) -> bool:
        return self.layer.isVisible()

    def set_visible(self, on: bool) -> None:
        if bool(on) != self.layer.isVisible():
            if not on:  # nothing unseen stays selected, to be moved or deleted by a key
                self._selected, self._drag = None, None
                self._render()
            self.layer.setVisible(bool(on))
            self.visibility_changed.emit(bool(on))

    def toggle_visible(self) -> bool:
        self.set_visible(not self.is_visible())
        return self.is_visible()

    def can_undo(self) -> bool:
        model = self._model()
        return model is not None and model.can_undo()

    def can_redo(self) -> bool:
        model = self._model()
        return model is not None and model.can_redo()

    def undo(self) -> None:
        """Take back the last change to the marks of the image on screen."""
        if not self.can_undo():
            self.message.emit("Nothing to undo on this image")
            return
        self._apply(MarksModel.undo, "Undone")

    def redo(self) -> None:
        if not self.can_redo():
            self.message.emit("Nothing to redo on this image")
            return
        self._apply(MarksModel.redo, "Redone")

    def delete_selected(self) -> bool:
        """Delete the selected mark; False when none is selected (the key does its other job)."""
        mark = self.selected()
        if mark is None:
            return False
        self._selected = None
        self._apply(lambda m: m.delete(mark.uid), f"Deleted the {mark.kind} mark")
        return True

    def edit_text(self, uid: int | None = None) -> None:
        """Ask for the label of mark ``uid`` (the selected one by default)."""
        model = self._model()
        mark = model.get(uid or self._selected or 0) if model else None
        if mark is None:
            self.message.emit("Select a mark to edit its label")
            return
        text = self.ask_text("Label", mark.text)
        if text is None or text == mark.text:
            return
        if mark.kind == "text" and not text.strip():
            self._apply(lambda m: m.delete(mark.uid), "Deleted the empty text mark")
            return
        self._apply(lambda m: m.set_text(mark.uid, text.strip()), "Label saved")

    def add(self, mark: Annotation) -> Annotation | None:
        """Add ``mark`` to the image on screen (what a finished drawing does) and select it;
        None when it could not be stored."""
        added: list[Annotation] = []
        self._apply(lambda m: added.append(m.add(mark)), f"Added a {mark.kind} mark")
        model = self._model()
        if not added or model is None or model.get(added[0].uid) is None:
            return None
        self.select(added[0].uid)
        return added[0]

    def show_entry(self, i: int | None) -> None:
        """The pixels of entry ``i`` are on screen (None: none are): show its marks."""
        store = self.session.store
        if store is not self._store:  # another folder: other images, other undo
            self._models, self._store = {}, store
        self._drag, self._selected = None, None
        self._rel = None
        if i is not None and store is not None and i < len(self.session.entries):
            rel = self.session.entries[i].rel_path
            if rel not in self._models:
                try:
                    self._models[rel] = MarksModel(store.annotations(rel))
                except (AnnotationError, ValueError) as exc:
                    self.message.emit(f"The stored marks of {rel} cannot be read: {exc}")
                    self._models[rel] = MarksModel()
            self._rel = rel
        self._render()
        self.changed.emit()

    # ------------------------------------------------------------------ changes

    def _model(self) -> MarksModel | None:
        return self._models.get(self._rel) if self._rel is not None else None

    def _apply(self, op: Callable[[MarksModel], object], done: str) -> None:
        """Run ``op`` on the image's marks and store the result at once; the store's
        refusal takes the change back."""
        model, store, rel = self._model(), self.session.store, self._rel
        if model is None or store is None or rel is None:
            self.message.emit("No image on screen to mark")
            return
        point = model.checkpoint()
        try:
            op(model)
        except AnnotationError as exc:  # e.g. a label over the length limit
            model.restore(point)
            self.message.emit(f"Not saved: {exc}")
            return
        error = save(store, rel, model.marks, self.reviewer())
        if error:
            model.restore(point)
            self.message.emit(error)
        else:
            self.message.emit(f"{done} — marks saved for {rel} (Ctrl+Z undoes)")
        if self._selected and model.get(self._selected) is None:
            self._selected = None
        self._render()
        self.changed.emit()

    def _render(self, preview: Annotation | None = None, shown: list | None = None) -> None:
        marks = shown if shown is not None else self.marks()
        self.layer.draw(marks, self._selected, preview)

    # ------------------------------------------------------------------ the mouse

    def _px(self) -> float:
        """Image pixels per screen pixel at the current zoom."""
        z = self.view.zoom()
        return 1.0 / z if z > 0 else 1.0

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.view.image_size() or (0, 0)
        return clamp_point((x, y), w, h)

    def _hit(self, x: float, y: float) -> Annotation | None:
        tol = HIT_PX * self._px()
        scene = self.view.viewbox.mapViewToScene(QPointF(x, y))
        for m in reversed(self.marks()):
            if self.layer.label_hit(m.uid, scene) or distance_to_outline(m, (x, y)) <= tol:
                return m
        return None

    def press(self, x: float, y: float) -> bool:
        if self._model() is None or not self.is_visible():
            return False  # hidden marks are neither picked nor drawn on
        p = self._clamp(x, y)
        if self._tool == "select":
            sel = self.selected()
            if sel is not None:
                tol = HIT_PX * self._px()
                for k, (hx, hy) in enumerate(handle_points(sel)):
                    if abs(hx - x) <= tol and abs(hy - y) <= tol:
                        self._drag = {"mode": "handle", "mark": sel, "index": k, "to": sel}
                        return True
            hit = self._hit(x, y)
            self.select(hit.uid if hit else None)
            if hit is None:
                return False  # pan, as without marks
            self._drag = {"mode": "move", "mark": hit, "start": (x, y), "to": hit}
            return True
        self._drag = {"mode": "draw", "points": [p]}
        return True

    def move(self, x: float, y: float) -> None:
        d = self._drag
        if d is None:
            return
        if d["mode"] == "draw":
            p = self._clamp(x, y)
            if self._tool == "polyline":
                if len(d["points"]) < MAX_POINTS:
                    d["points"] += thin_path([d["points"][-1], p], 2 * self._px())[1:]
            elif self._tool != "text":
                d["points"] = [d["points"][0], p]
            self._render(preview=self._drawn())
            return
        mark: Annotation = d["mark"]
        if d["mode"] == "move":
            w, h = self.view.image_size() or (0, 0)
            dx, dy = clamp_move(mark, x - d["start"][0], y - d["start"][1], w, h)
            d["to"] = mark.with_points(
                [(round(px + dx, 1), round(py + dy, 1)) for px, py in mark.points]
            )
        else:
            pts = list(mark.points)
            pts[d["index"]] = self._clamp(x, y)
            d["to"] = mark.with_points(pts)
        self._render(shown=[d["to"] if m.uid == mark.uid else m for m in self.marks()])

    def release(self, x: float, y: float) -> None:
        d, self._drag = self._drag, None
        if d is None:
            return
        if d["mode"] == "draw":
            self.move(x, y)
            mark = self._drawn(d)
            self._render()
            if self._tool == "text":
                text = self.ask_text("Text label", "")
                if text and text.strip():
                    try:
                        self.add(Annotation.make("text", d["points"][:1], text.strip()))
                    except AnnotationError as exc:
                        self.message.emit(f"Not saved: {exc}")
            elif mark is None:
                self.message.emit("Drag on the image to draw the mark (Esc: select tool)")
            else:
                self.add(mark)
            return
        mark, to = d["mark"], d["to"]
        if to.points == mark.points:
            self._render()
            return
        what = "Moved" if d["mode"] == "move" else "Reshaped"
        self._apply(lambda m: m.set_points(mark.uid, to.points), f"{what} the {mark.kind} mark")

    def double_click(self, x: float, y: float) -> bool:
        if self._tool != "select" or self._model() is None or not self.is_visible():
            return False
        hit = self._hit(x, y)
        if hit is None:
            return False
        self.select(hit.uid)
        self.edit_text(hit.uid)
        return True

    def _drawn(self, d: dict | None = None) -> Annotation | None:
        """The mark the drag so far draws; None while it is too small to be one."""
        d = d or self._drag
        if d is None or self._tool in ("select", "text"):
            return None
        pts = d["points"]
        if len(pts) < 2:
            return None
        x0, y0, x1, y1 = (
            min(p[0] for p in pts),
            min(p[1] for p in pts),
            max(p[0] for p in pts),
            max(p[1] for p in pts),
        )
        if max(x1 - x0, y1 - y0) < MIN_DRAG_PX * self._px():
            return None
        if self._tool in ("ellipse", "rectangle") and min(x1 - x0, y1 - y0) <= 0:
            return None
        if self._tool == "polyline" and len(pts) < 3:
            return None
        return Annotation.make(self._tool, pts)

    def _dialog(self, title: str, text: str) -> str | None:
        parent = QWidget.window(self.view)  # ImageView.window() is its window/level
        got, ok = QInputDialog.getText(parent, title, "Label:", text=text)
        return got if ok else None
