"""How marks look on the image: graphics items in image-pixel coordinates.

Shapes live in the view box's coordinates (one unit per image pixel), so zoom,
pan, window/level and window resizes move them with the anatomy. Their pens
are cosmetic and arrowheads, handles and labels ignore the view's scale, so
they keep one size on screen at any zoom.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
)

from desktop.annotations import Annotation

COLOUR = QColor(255, 214, 0)  # marks: yellow, seen on grey and on the heatmap's colours
SELECTED = QColor(0, 229, 255)  # the selected mark: cyan
PREVIEW = QColor(255, 255, 255)  # the mark being drawn
HANDLE_PX = 8  # handle size on screen
HEAD_PX = 16  # arrowhead length on screen
_IGNORE = QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations


def handle_points(mark: Annotation) -> list[tuple[float, float]]:
    """Points the reviewer can drag to reshape: both ends of an arrow, the two corners of
    an ellipse's or a rectangle's box (outlines and labels move whole)."""
    return list(mark.points) if mark.kind in ("arrow", "ellipse", "rectangle") else []


def _pen(colour: QColor, dashed: bool = False) -> QPen:
    pen = QPen(colour, 2)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _shape_path(mark: Annotation) -> QPainterPath:
    path = QPainterPath()
    pts = mark.points
    if mark.kind == "arrow":
        path.moveTo(*pts[0])
        path.lineTo(*pts[1])
    elif mark.kind in ("rectangle", "ellipse"):
        x0, y0, x1, y1 = mark.bbox()
        rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        path.addRect(rect) if mark.kind == "rectangle" else path.addEllipse(rect)
    elif mark.kind == "polyline":
        path.addPolygon(QPolygonF([QPointF(x, y) for x, y in pts]))
        path.closeSubpath()
    return path


class MarkLayer(QGraphicsRectItem):
    """An empty item holding every mark's items: hiding it hides the marks."""

    def __init__(self) -> None:
        super().__init__()
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setZValue(30)  # above the heatmap and the lung outline
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._labels: dict[int, QGraphicsRectItem] = {}

    def draw(
        self, marks: list[Annotation], selected: int | None, preview: Annotation | None = None
    ) -> None:
        """Replace the items with ``marks`` (``selected``: its uid) and the one being drawn."""
        for child in self.childItems():
            child.setParentItem(None)
            if child.scene() is not None:
                child.scene().removeItem(child)
        self._labels = {}
        for m in marks:
            self._add(m, SELECTED if m.uid == selected and selected else COLOUR)
            if m.uid == selected and selected:
                for x, y in handle_points(m):
                    self._handle(x, y)
        if preview is not None:
            self._add(preview, PREVIEW, dashed=True)

    def label_hit(self, uid: int, scene_pos: QPointF) -> bool:
        """Whether ``scene_pos`` falls on mark ``uid``'s label box."""
        box = self._labels.get(uid)
        return box is not None and box.sceneBoundingRect().contains(scene_pos)

    def _add(self, m: Annotation, colour: QColor, dashed: bool = False) -> None:
        if m.kind != "text":
            shape = QGraphicsPathItem(_shape_path(m), self)
            shape.setPen(_pen(colour, dashed))
            shape.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        if m.kind == "arrow":
            self._head(m, colour)
        if m.text:
            self._label(m, colour)

    def _head(self, m: Annotation, colour: QColor) -> None:
        (x0, y0), (x1, y1) = m.points
        tri = QPainterPath()
        tri.addPolygon(
            QPolygonF(
                [QPointF(0, 0), QPointF(-HEAD_PX, -HEAD_PX / 2.6), QPointF(-HEAD_PX, HEAD_PX / 2.6)]
            )
        )
        tri.closeSubpath()
        head = QGraphicsPathItem(tri, self)
        head.setFlag(_IGNORE)
        head.setPos(x1, y1)
        head.setRotation(math.degrees(math.atan2(y1 - y0, x1 - x0)))
        head.setPen(QPen(Qt.PenStyle.NoPen))
        head.setBrush(QBrush(colour))
        head.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def _label(self, m: Annotation, colour: QColor) -> None:
        box = QGraphicsRectItem(self)
        box.setFlag(_IGNORE)
        text = QGraphicsSimpleTextItem(m.text, box)
        font = QFont()
        font.setPointSize(11)
        text.setFont(font)
        text.setBrush(QBrush(colour))
        r = text.boundingRect().adjusted(-4, -2, 4, 2)
        # a text mark's anchor is its label's top-left corner; another mark's label sits
        # above its box (an arrow's at its tail, away from the point shown)
        if m.kind == "text":
            x, y = m.points[0]
            dx, dy = 4.0, 2.0
        elif m.kind == "arrow":
            x, y = m.points[0]
            dx, dy = 4.0 if m.points[0][0] >= m.points[1][0] else -r.width() + 4, -r.height()
        else:
            x0, y0, _x1, _y1 = m.bbox()
            x, y = x0, y0
            dx, dy = 4.0, -r.height() + 2
        text.setPos(dx, dy)
        box.setRect(r.translated(dx, dy))
        box.setPos(x, y)
        box.setPen(QPen(Qt.PenStyle.NoPen))
        box.setBrush(QBrush(QColor(0, 0, 0, 170)))
        box.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        if m.uid:
            self._labels[m.uid] = box

    def _handle(self, x: float, y: float) -> None:
        h = QGraphicsRectItem(-HANDLE_PX / 2, -HANDLE_PX / 2, HANDLE_PX, HANDLE_PX, self)
        h.setFlag(_IGNORE)
        h.setPos(x, y)
        h.setPen(QPen(SELECTED, 1))
        h.setBrush(QBrush(QColor(255, 255, 255)))
        h.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
