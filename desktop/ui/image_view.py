"""The image with its heatmap: pyqtgraph view, window/level, invert, overlay opacity.

The overlay is a second ImageItem scaled onto the image's rectangle. Its
lookup table is ``desktop.overlay.rgba_table`` (the table the PDF and PNG
exports blend with); the opacity slider only changes the item's opacity (no
recomputation) and a colormap change only swaps the table.

Two labels sit in the view's top corners, above the image and outside the
status bar (which other messages overwrite): window, zoom and the value under
the cursor on the left; the file's header tags (DICOM) on the right.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QLabel

from desktop.overlay import DEFAULT_COLORMAP, DEFAULT_OPACITY, rgba_table
from desktop.view_state import ViewState
from desktop.viewer_info import (
    PixelSource,
    drag_window,
    pixel_text,
    window_text,
    zoom_text,
)
from desktop.viewer_info import tags_text as format_tags

_LABEL_STYLE = (
    "color: #f0f0f0; background: rgba(0, 0, 0, 150); padding: 3px 6px;"
    "font-family: monospace; font-size: 11px;"
)
_MARGIN = 6


class Pointer(Protocol):
    """Who gets the left button first (the marks): positions in image pixels. A press it
    answers True to is its drag until the release; False leaves it to pan and zoom."""

    def press(self, x: float, y: float) -> bool: ...
    def move(self, x: float, y: float) -> None: ...
    def release(self, x: float, y: float) -> None: ...
    def double_click(self, x: float, y: float) -> bool: ...


class ImageView(pg.GraphicsLayoutWidget):
    """Base image (grey, [0, 1] windowed) plus a heatmap overlay item."""

    _labels_made = False
    window_changed = Signal(float, float)
    cleared = Signal()  # the overlay went away (another image): its warning goes too

    def __init__(self) -> None:
        super().__init__()
        self.setBackground("k")
        self.viewbox = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(10)
        self.viewbox.addItem(self.image_item)
        self.viewbox.addItem(self.overlay_item)
        self.outline_item = pg.ImageItem(axisOrder="row-major")  # lung field / text found
        self.outline_item.setZValue(20)
        self._outline: tuple | None = None  # (lungs, markers, image size) of the current heatmap
        self._outline_on = False
        self.viewbox.addItem(self.outline_item)
        self.message = pg.TextItem("", color="w", anchor=(0.5, 0.5))
        self.viewbox.addItem(self.message)
        self.message.setVisible(False)  # shown with a message only

        self._image: np.ndarray | None = None
        self._levels = (0.0, 1.0)
        self._inverted = False
        self._source = PixelSource()
        self._drag_from: tuple | None = None  # (press position, window) of a right-drag
        self._pixel_line = ""
        self._readout_on = True
        self._tags_on = True
        self.readout = self._corner_label()
        self.tags = self._corner_label()
        self._labels_made = True
        self._cursor: QPointF | None = None  # last mouse position over the view
        self.pointer: Pointer | None = None
        self._pointer_drag = False  # a left press went to the pointer
        self.viewbox.sigRangeChanged.connect(self._range_changed)
        self.viewbox.sigResized.connect(self._update_readout)
        self.setMouseTracking(True)
        self.set_colormap(DEFAULT_COLORMAP)
        self.set_opacity(DEFAULT_OPACITY)

    def _corner_label(self) -> QLabel:
        label = QLabel(self)
        label.setStyleSheet(_LABEL_STYLE)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        label.setVisible(False)
        return label

    # ---------------------------------------------------------------- base image

    def set_image(self, image01: np.ndarray, source: PixelSource | None = None) -> None:
        """Show ``image01`` ([0, 1]); ``source``: the file's pixels and the values 0 and 1
        stand for, so window and cursor read in the file's units, and its header tags."""
        self._image = image01
        self._source = source or PixelSource()
        self._pixel_line = ""
        self.message.setText("")
        self.message.setVisible(False)
        self._levels = (0.0, 1.0)
        self._paint_base()
        self.clear_overlay()
        self._update_readout()

    def show_message(self, text: str) -> None:
        self._image = None
        self._source = PixelSource()
        self.image_item.clear()
        self.clear_overlay()
        self.message.setText(text)
        self.message.setPos(0, 0)
        self.message.setVisible(True)
        self._update_readout()

    def _paint_base(self) -> None:
        if self._image is None:
            return
        lo, hi = self._levels
        lut = None
        if self._inverted:
            lut = np.arange(255, -1, -1, dtype=np.uint8)[:, None].repeat(3, axis=1)
        self.image_item.setImage(self._image, levels=(lo, hi), autoLevels=False, lut=lut)

    def set_window(self, centre: float, width: float) -> None:
        width = max(width, 1e-3)
        self._levels = (centre - width / 2, centre + width / 2)
        self._paint_base()
        self._update_readout()
        self.window_changed.emit(centre, width)

    def auto_window(self) -> None:
        if self._image is not None:
            lo, hi = np.percentile(self._image[::4, ::4], [1, 99])
            self.set_window((lo + hi) / 2, max(hi - lo, 1e-3))

    def reset_window(self) -> None:
        self.set_window(0.5, 1.0)

    def toggle_invert(self) -> bool:
        return self.set_inverted(not self._inverted)

    def set_inverted(self, on: bool) -> bool:
        self._inverted = bool(on)
        self._paint_base()
        self._update_readout()
        return self._inverted

    def window(self) -> tuple[float, float]:
        """(centre, width) of the current window."""
        lo, hi = self._levels
        return (lo + hi) / 2, hi - lo

    def is_inverted(self) -> bool:
        return self._inverted

    def apply(self, state: ViewState) -> None:
        """Opacity, colormap, window and inversion of ``state``."""
        self.set_opacity(state.opacity)
        self.set_colormap(state.colormap)
        self.set_inverted(state.inverted)
        self.set_window(state.window_centre, state.window_width)

    def image_size(self) -> tuple[int, int] | None:
        """(width, height) in pixels of the image shown, None without one."""
        if self._image is None:
            return None
        h, w = self._image.shape[:2]
        return w, h

    def to_image(self, pos: QPointF) -> QPointF:
        """Viewport position -> image pixels (x right, y down, origin at the top-left corner
        of the first pixel): the image item sits at the origin, one unit per pixel."""
        return self.viewbox.mapSceneToView(self.mapToScene(pos.toPoint()))

    def to_viewport(self, x: float, y: float) -> QPointF:
        """Image pixels -> viewport position (what a mouse event there carries)."""
        return self.viewbox.mapViewToDevice(QPointF(x, y))

    def fit(self) -> None:
        """The whole image in view. Only the image counts: the message and the overlays
        may have no bounds yet (a text item's are NaN before it is first painted)."""
        if self._image is not None:
            self.viewbox.autoRange(padding=0.01, items=[self.image_item])

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, centred on the current view."""
        if self._image is None:
            return
        vb = self.viewbox
        w, h = vb.width(), vb.height()
        c = vb.viewRect().center()
        vb.setRange(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    # ---------------------------------------------------------------- overlay

    def set_overlay(self, heat01: np.ndarray, image_hw: tuple[int, int]) -> None:
        self.overlay_item.setImage(heat01, levels=(0.0, 1.0), autoLevels=False, lut=self._lut)
        h, w = image_hw
        self.overlay_item.setRect(QRectF(0, 0, w, h))

    def clear_overlay(self) -> None:
        self.overlay_item.clear()
        self._outline = None
        self.outline_item.clear()
        self.cleared.emit()

    def set_outline(
        self, lungs: np.ndarray | None, markers: np.ndarray | None, image_hw: tuple[int, int]
    ) -> None:
        """The lung field (cyan) and detected burned-in text (magenta) the shares used; drawn
        only while the outlines are switched on (nothing is computed on the GUI thread else)."""
        self._outline = None if lungs is None else (lungs, markers, image_hw)
        self._paint_outline()

    def _paint_outline(self) -> None:
        if self._outline is None:
            self.outline_item.clear()
            return
        if not self._outline_on:
            return
        lungs, markers, (ih, iw) = self._outline
        h, w = lungs.shape
        rgba = np.zeros((h, w, 4), np.uint8)
        for mask, colour in ((lungs, (0, 230, 255, 255)), (markers, (255, 60, 220, 255))):
            if mask is None or not mask.any():
                continue
            m = np.pad(mask, 1)
            inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
            rgba[mask & ~inner] = colour
        self.outline_item.setImage(rgba, autoLevels=False)
        self.outline_item.setRect(QRectF(0, 0, iw, ih))

    def set_outline_visible(self, on: bool) -> None:
        self._outline_on = bool(on)
        self.outline_item.setVisible(on)
        self._paint_outline()

    def has_overlay(self) -> bool:
        return self.overlay_item.image is not None

    def set_opacity(self, fraction: float) -> None:
        self.overlay_item.setOpacity(float(np.clip(fraction, 0.0, 1.0)))

    def set_overlay_visible(self, on: bool) -> None:
        self.overlay_item.setVisible(on)

    def set_colormap(self, name: str) -> None:
        self._lut = rgba_table(name)
        if self.overlay_item.image is not None:
            self.overlay_item.setLookupTable(self._lut)

    # ---------------------------------------------------------------- corner labels

    def zoom(self) -> float:
        """Screen pixels per image pixel (1.0 after "1:1 pixels")."""
        rect = self.viewbox.viewRect()
        return self.viewbox.width() / rect.width() if rect.width() > 0 else 0.0

    def readout_text(self) -> str:
        """Window, zoom and (with the cursor on the image) its pixel; empty without an image."""
        return self.readout.text()

    def tags_text(self) -> str:
        """The header tags shown beside the image; empty when hidden or there are none."""
        return self.tags.text() if self.tags.isVisibleTo(self) else ""

    def set_readout_visible(self, on: bool) -> None:
        self._readout_on = bool(on)
        self._update_readout()

    def set_tags_visible(self, on: bool) -> None:
        self._tags_on = bool(on)
        self._update_readout()

    def toggle_tags(self) -> bool:
        """Show or hide the header tags (patient/study ids, date, view, modality)."""
        self.set_tags_visible(not self._tags_on)
        return self._tags_on

    def _update_readout(self, *_args) -> None:
        has_image = self._image is not None
        text = ""
        if has_image:
            lines = [
                window_text(*self.window(), self._source, self._inverted),
                zoom_text(self.zoom()),
            ]
            if self._pixel_line:
                lines.append(self._pixel_line)
            text = "\n".join(lines)
        self.readout.setText(text)
        self.readout.setVisible(has_image and self._readout_on)
        self.readout.adjustSize()
        tags = format_tags(self._source.tags) if has_image else ""
        self.tags.setText(tags)
        self.tags.setVisible(bool(tags) and self._tags_on)
        self.tags.adjustSize()
        self._place_labels()

    def _range_changed(self, *_args) -> None:
        """Zoom and pan move the image under a resting cursor: its pixel is read again."""
        if self._cursor is not None:
            self._probe(self._cursor)
        self._update_readout()

    def _place_labels(self) -> None:
        if not self._labels_made:  # a resize while the base class is being built
            return
        self.readout.move(_MARGIN, _MARGIN)
        self.tags.move(max(_MARGIN, self.width() - self.tags.width() - _MARGIN), _MARGIN)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self._place_labels()

    def _probe(self, pos: QPointF) -> None:
        """The image pixel under widget position ``pos`` and its value, in the readout."""
        line = ""
        if self._image is not None:
            p = self.viewbox.mapSceneToView(self.mapToScene(pos.toPoint()))
            x, y = int(np.floor(p.x())), int(np.floor(p.y()))
            h, w = self._image.shape[:2]
            if 0 <= x < w and 0 <= y < h:
                line = pixel_text(x, y, float(self._image[y, x]), self._source)
        if line != self._pixel_line:
            self._pixel_line = line
            self._update_readout()

    def leaveEvent(self, ev) -> None:
        self._cursor = None
        self._probe(QPointF(-1e6, -1e6))
        super().leaveEvent(ev)

    # ---------------------------------------------------------------- mouse window/level

    def mousePressEvent(self, ev) -> None:  # right-drag: window/level like a PACS viewer
        if ev.button() == Qt.MouseButton.LeftButton and self._image is not None and self.pointer:
            p = self.to_image(ev.position())
            if self.pointer.press(p.x(), p.y()):
                self._pointer_drag = True
                ev.accept()
                return
        if ev.button() == Qt.MouseButton.RightButton and self._image is not None:
            self._drag_from = (ev.position(), self.window())
            ev.accept()
            return
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev) -> None:
        self._cursor = ev.position()
        self._probe(ev.position())
        if self._pointer_drag and self.pointer is not None:
            p = self.to_image(ev.position())
            self.pointer.move(p.x(), p.y())
            ev.accept()
            return
        if ev.buttons() & Qt.MouseButton.RightButton and self._image is not None:
            if self._drag_from is None:  # the press went elsewhere (e.g. a label)
                self._drag_from = (ev.position(), self.window())
            start, (centre, width) = self._drag_from
            d = ev.position() - start
            vp = self.viewport()
            self.set_window(*drag_window(centre, width, d.x(), d.y(), vp.width(), vp.height()))
            ev.accept()
            return
        self._drag_from = None
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self._pointer_drag:
            self._pointer_drag = False
            if self.pointer is not None:
                p = self.to_image(ev.position())
                self.pointer.release(p.x(), p.y())
            ev.accept()
            return
        if ev.button() == Qt.MouseButton.RightButton and self._drag_from is not None:
            self._drag_from = None
            ev.accept()
            return
        self._drag_from = None
        super().mouseReleaseEvent(ev)

    def mouseDoubleClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self._image is not None and self.pointer:
            p = self.to_image(ev.position())
            if self.pointer.double_click(p.x(), p.y()):
                ev.accept()
                return
        super().mouseDoubleClickEvent(ev)
