"""Heatmaps and the attention pass: requests to the Grad-CAM thread, the heatmap cache,
and the background check of where the model looked, written to the prediction cache (by
a writer thread: a disk write never waits on the GUI thread)."""

from __future__ import annotations

import logging
from collections import OrderedDict

from PySide6.QtCore import QObject, Signal

from desktop.cache_writer import CacheWriter
from desktop.messages import AttentionDone, HeatmapDone, HeatmapKey, HeatmapRequest
from desktop.session import ReviewSession
from desktop.ui.workers import CamService
from export.explain import ATTENTION_METHOD, Heatmap, ImageInput
from export.results import FileKey

log = logging.getLogger(__name__)

#: heatmaps kept for paging back and for exports (overlays are up to 768² float32, 2.3 MB)
CAM_CACHE_SIZE = 32


class HeatmapController(QObject):
    heatmap_ready = Signal(object)  # Heatmap of the current request
    status = Signal(str)
    attention_updated = Signal(int)  # entry index
    attention_stopped = Signal(str)
    attention_checked = Signal()  # every classified image has its lung share (said once)

    def __init__(self, session: ReviewSession) -> None:
        super().__init__()
        self.session = session
        self.cam = CamService()
        self.cam.done.connect(self._on_done)
        self.cam.attention_done.connect(self._on_attention)
        self.cam.status.connect(self.status)
        self._cache: OrderedDict[HeatmapKey, Heatmap] = OrderedDict()
        self._wanted: HeatmapKey | None = None
        self._writer = CacheWriter()  # attention results into the folder's prediction cache
        self._announced = False
        self._closed = False

    # ------------------------------------------------------------------ the reviewer's heatmap

    def key_for(self, i: int, class_choice: int | None, method: str) -> HeatmapKey | None:
        s = self.session
        if s.bundle is None or s.manifest is None or i >= len(s.entries):
            return None
        e = s.entries[i]
        if e.probabilities is None:
            return None
        cls = e.predicted_index if class_choice is None else int(class_choice)
        inverted = e.rel_path in s.inverted
        return HeatmapKey(
            e.rel_path, e.key or FileKey.of(e.path), s.model_sha, cls, method, inverted
        )

    def request(self, i: int, image: ImageInput, class_choice: int | None, method: str) -> None:
        """Show the cached heatmap at once, or ask the Grad-CAM thread (latest request wins)."""
        key = self.key_for(i, class_choice, method)
        if key is None:
            return
        self._wanted = key
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self.heatmap_ready.emit(hit)
            return
        self.status.emit("Computing heatmap…")
        self.cam.request(HeatmapRequest(self.session.bundle, key, image))

    def cancel(self) -> None:
        self._wanted = None

    def cached(self, key: HeatmapKey) -> Heatmap | None:
        return self._cache.get(key)

    def clear(self) -> None:
        self._cache.clear()
        self._wanted = None

    def _on_done(self, done: HeatmapDone) -> None:
        if self._closed:
            return
        key = done.request.key
        if done.heatmap is not None:
            self._cache[key] = done.heatmap
            while len(self._cache) > CAM_CACHE_SIZE:
                self._cache.popitem(last=False)
        if done.generation != self.cam.generation or key != self._wanted:
            return  # a newer request is on its way
        if done.heatmap is None:
            self.status.emit(f"Heatmap failed: {done.error}")
            return
        self.heatmap_ready.emit(done.heatmap)

    def is_list_measure(self, heat: Heatmap, i: int) -> bool:
        """Is ``heat`` the list's measure for entry ``i`` (Grad-CAM of the predicted class)?"""
        e = self.session.entries[i]
        return heat.method == ATTENTION_METHOD and heat.class_index == e.predicted_index

    # ------------------------------------------------------------------ attention pass

    def queue_attention(self) -> None:
        """Grad-CAM of every classified image not yet checked, behind the reviewer's requests."""
        self.cam.set_background(self.session.attention_requests())
        self._announce_if_checked()

    def reset_attention(self) -> None:
        """A new folder or model: the old pass and its cache connection go."""
        self.cam.set_background([])
        self._announced = False
        self._close_store_cache()

    def _on_attention(self, done: AttentionDone) -> None:
        if self._closed:
            return
        update = self.session.apply_attention(done)
        if update.index is None:
            return
        if update.stopped:
            self.cam.set_background([])
            self.attention_stopped.emit(update.stopped)
        elif not done.failed:
            self._remember(update.index, done)
        self.attention_updated.emit(update.index)
        self._announce_if_checked()

    def announce_if_checked(self) -> None:
        self._announce_if_checked()

    def _announce_if_checked(self) -> None:
        if not self._announced and self.session.entries and self.session.all_checked():
            self._announced = True
            self.attention_checked.emit()

    def _remember(self, i: int, done: AttentionDone) -> None:
        s = self.session
        cache_path = s.cache_path
        if cache_path is None:
            return
        f = done.request.file
        self._writer.put_attention(
            cache_path,
            done.request.rel_path,
            f.size,
            f.mtime_ns,
            done.request.model_sha,
            ATTENTION_METHOD,
            done.attention,
            invert=done.request.invert,
        )

    def _close_store_cache(self) -> None:
        self._writer.close_cache()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sig in (self.cam.done, self.cam.status, self.cam.attention_done):
            sig.disconnect()
        self.cam.shutdown()
        self._writer.shutdown()
