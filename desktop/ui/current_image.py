"""The image on screen: decoded off the GUI thread, shown with its heatmap and warning.

The display decode is the image's second and last: the Grad-CAM child gets
the small :class:`export.explain.ImageInput` made from these pixels (or the
one the folder pass kept), never the path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.folder_model import format_probability, is_unlike
from desktop.session import ReviewSession
from desktop.ui.image_view import ImageView
from desktop.ui.layout import novelty_bar
from desktop.ui.side_panel import SidePanel
from desktop.view_state import ViewState
from desktop.viewer_info import PixelSource, window_title
from export.attention import describe, flag
from export.explain import Heatmap, ImageInput
from export.image_checks import inverted
from export.image_input import (
    DecodedImage,
    ImageDecodeError,
    InputSpec,
    display_limits,
    read_image,
    windowed,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Decoded:
    """A display decode's answer: pixels, the windowed image, the model input (if the
    model's input spec was known), the spec it was made for; or the reason it failed."""

    decoded: DecodedImage | None = None
    image01: np.ndarray | None = None
    input: ImageInput | None = None
    spec: InputSpec | None = None
    error: str = ""
    limits: tuple[float, float] = (0.0, 1.0)  # the file's values shown as 0 and 1


class CurrentImage(QObject):
    shown = Signal()  # the image is on screen and its ImageInput ready (a heatmap may follow)
    message = Signal(str)
    title_changed = Signal(str)  # the window's title: app, folder, the file chosen
    #: the entry whose pixels are on screen now (its marks are shown), None while none is
    pixels_changed = Signal(object)
    _loaded = Signal(int, object)  # generation, _Decoded
    _input_ready = Signal(int, object, object)  # generation, ImageInput, the InputSpec it used

    def __init__(self, session: ReviewSession, state: ViewState) -> None:
        super().__init__()
        self.session = session
        self.state = state
        self.view = ImageView()
        self.view.set_outline_visible(False)
        self.warning = QLabel("")  # "looked outside the lungs", above the image it is about
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "background: #ffb000; color: #1a1a1a; font-weight: 600; padding: 4px 8px;"
        )
        self.warning.setVisible(False)
        keep = self.warning.sizePolicy()  # its room (two lines) stays: the image never jumps
        keep.setRetainSizeWhenHidden(True)
        self.warning.setSizePolicy(keep)
        self.warning.setMinimumHeight(2 * self.warning.fontMetrics().lineSpacing() + 8)
        self.view.cleared.connect(lambda: self._set_warning(None))
        #: "unlike the training data", with its reasons: above the attention warning
        self.novelty_bar = novelty_bar()
        self.view.cleared.connect(lambda: self._set_novelty(None))
        self.widget = QWidget()
        lay = QVBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.novelty_bar)
        lay.addWidget(self.warning)
        lay.addWidget(self.view, 1)
        self._list_measure = False  # the heatmap shown is the list's measure
        self.index: int | None = None  # entry whose pixels are on screen
        #: (row of an entry, rows shown) for the status line; the window sets the list's
        self.position: Callable[[int], tuple[int, int]] = lambda i: (i + 1, len(session.entries))
        self.decoded: DecodedImage | None = None
        self.input: ImageInput | None = None
        self._gen = 0
        self._preparing = -1  # generation whose ImageInput is being made
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxr-display")
        self._loaded.connect(self._on_loaded)
        self._input_ready.connect(self._on_input)

    def set_state(self, state: ViewState) -> None:
        self.state = state
        self.update_warning(None)

    def load(self, i: int) -> None:
        """Decode entry ``i`` for display; answers for an earlier ``load`` are dropped."""
        self._gen += 1
        gen, path = self._gen, self.session.entries[i].path
        invert = self.session.entries[i].rel_path in self.session.inverted
        self.index, self.decoded, self.input = None, None, None
        self._list_measure = False
        self.view.clear_overlay()
        self.pixels_changed.emit(None)
        spec = self.session.manifest.input if self.session.manifest is not None else None
        kept = self.session.image_input(i)

        def work() -> None:
            if gen != self._gen:  # superseded before it started
                return
            try:
                decoded = read_image(path)
                if invert:  # as the model sees it: the reviewer said the file is inverted
                    decoded = inverted(decoded)
                inp = kept or (ImageInput.from_decoded(decoded, spec) if spec else None)
                limits = display_limits(decoded)
                image01 = windowed(decoded, limits=limits)
                self._loaded.emit(gen, _Decoded(decoded, image01, inp, spec, limits=limits))
            except ImageDecodeError as exc:
                self._loaded.emit(gen, _Decoded(error=exc.reason))
            except Exception as exc:
                log.exception("decoding %s failed", path)
                self._loaded.emit(gen, _Decoded(error=f"unexpected error: {exc}"))

        self._pool.submit(work)
        self._target = i
        self.title_changed.emit(window_title(self.session.folder, self.session.entries[i].rel_path))

    def clear(self) -> None:
        """Another folder: whatever is still being decoded for the old one is dropped."""
        self._gen += 1
        self.index, self.decoded, self.input = None, None, None
        self.view.clear_overlay()
        self.pixels_changed.emit(None)
        self.title_changed.emit(window_title())

    def _spec(self):
        return self.session.manifest.input if self.session.manifest is not None else None

    def _on_loaded(self, gen: int, got: _Decoded) -> None:
        i = self._target
        if gen != self._gen or self.session.current != i or i >= len(self.session.entries):
            return
        e = self.session.entries[i]
        if got.decoded is None:
            self.view.show_message(f"Cannot show this file:\n{got.error}")
            self.message.emit(f"{e.rel_path}: {got.error}")
            return
        decoded, image01 = got.decoded, got.image01
        inp = got.input if got.spec == self._spec() else None  # made for another model
        self.index, self.decoded, self.input = i, decoded, inp
        self.view.set_image(image01, PixelSource(decoded.pixels, got.limits, decoded.meta.tags))
        self.view.fit()
        self.pixels_changed.emit(i)
        self.update_warning(None)
        m = decoded.meta
        k, n = self.position(i)
        flipped = ", inverted for the model" if e.rel_path in self.session.inverted else ""
        self.message.emit(
            f"{e.rel_path} — {m.width}×{m.height}, {m.bit_depth}-bit "
            f"{m.source_format.upper()} {m.photometric}{flipped}   [{k}/{n}]"
        )
        if inp is None:
            self.prepare_input()
        self.shown.emit()

    def forget_input(self) -> None:
        """Another model (its input size may differ): the shown pixels' input is made again."""
        self.input = None
        self._preparing = -1

    def prepare_input(self) -> None:
        """The model input of the shown pixels, once the model's input spec is known."""
        if self.decoded is None or self.input is not None or self.session.manifest is None:
            return
        if self._preparing == self._gen:  # already on its way
            return
        self._preparing = self._gen
        gen, decoded, spec = self._gen, self.decoded, self.session.manifest.input
        self._pool.submit(
            lambda: self._input_ready.emit(gen, ImageInput.from_decoded(decoded, spec), spec)
        )

    def _on_input(self, gen: int, inp: ImageInput, spec) -> None:
        if gen != self._gen or self.decoded is None:
            return
        if spec != self._spec():  # the model changed meanwhile: made again for the new one
            self._preparing = -1
            self.prepare_input()
            return
        self.input = inp
        self.shown.emit()

    # ------------------------------------------------------------------ heatmap and warning

    def show_heatmap(self, heat: Heatmap, side: SidePanel, list_measure: bool) -> None:
        self.view.set_overlay(heat.overlay, heat.image_size)
        self.view.set_overlay_visible(side.show_heatmap.isChecked())
        names = self.session.class_names
        name = names[heat.class_index] if heat.class_index < len(names) else heat.class_index
        p = (
            heat.probabilities[heat.class_index]
            if heat.class_index < len(heat.probabilities)
            else None
        )
        prob = f" ({format_probability(float(p))})" if p is not None else ""
        prec = f", {heat.precision}" if heat.precision else ""
        side.cam_status.setText(
            f"{side.cam_method.currentText()} for {name}{prob}, layer {heat.layer}{prec}"
        )
        self.view.set_outline(heat.lung_mask, heat.marker_mask, heat.image_size)
        e = self.session.entries[self.session.current]
        # the list's float32 figure when this is its measure, so panel, list and report agree
        att = e.attention if list_measure and e.attention is not None else heat.attention
        t = self.state.min_lung_share
        side.show_attention(describe(att, t), flag(att, t))
        self._list_measure = list_measure
        self.update_warning(None)

    def update_warning(self, side: SidePanel | None) -> None:
        """The bar above the image follows the list's measure (predicted class, Grad-CAM),
        whatever heatmap is shown, so list, image and report agree."""
        i = self.session.current
        e = self.session.entries[i] if i is not None and i < len(self.session.entries) else None
        self._set_novelty(e if e is not None and self.index == i else None)
        t = self.state.min_lung_share
        if side is not None and e is not None and e.attention is not None and self._list_measure:
            side.show_attention(describe(e.attention, t), flag(e.attention, t))
        if e is None or not e.flagged(t):
            self._set_warning(None)
            return
        text = describe(e.attention, t)
        self._set_warning(
            f"⚠ The model {text[0].lower()}{text[1:]} (Grad-CAM of its class). "
            "Its result may rest on text, borders or devices rather than the lungs."
        )

    def _set_novelty(self, e) -> None:
        """The bar says why the image is unlike the training data; the prediction is
        unchanged and shown beside it."""
        unlike = e is not None and is_unlike(e)
        if unlike:
            reasons = "; ".join(e.novelty.reasons)
            self.novelty_bar.setText(
                f"⚠ Unlike the model's training data: {reasons}. "
                "Its probabilities may mean little for this image."
            )
        self.novelty_bar.setVisible(unlike)
        # the attention warning's empty room stays only while nothing else is above the
        # image: under this bar it would be a blank strip (the image has moved anyway)
        keep = self.warning.sizePolicy()
        if keep.retainSizeWhenHidden() == unlike:  # changed only when it must: a new policy
            keep.setRetainSizeWhenHidden(not unlike)  # lays the column out again
            self.warning.setSizePolicy(keep)

    def _set_warning(self, text: str | None) -> None:
        self.warning.setText(text or "")
        self.warning.setVisible(bool(text))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
