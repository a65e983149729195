"""Classification of the open folder: starts and stops the folder pass, feeds the session."""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QObject, Signal

from desktop.messages import Batch, KnownAttention, ModelReady
from desktop.session import ReviewSession
from desktop.ui.workers import classify_folder


class ClassificationController(QObject):
    model_ready = Signal(object)  # ModelReady
    changed = Signal(object)  # list[int] of entries that got results
    progress = Signal(int, int)  # done, total
    failed = Signal(str)  # the bundle was refused (one line)
    finished = Signal()

    def __init__(self, session: ReviewSession) -> None:
        super().__init__()
        self.session = session
        self._worker = None

    def start(self) -> None:
        s = self.session
        self.stop()
        if s.bundle is None or not s.entries:
            return
        s.start_classification()
        self.progress.emit(0, len(s.entries))
        worker = classify_folder(s.bundle, s.folder_items(), s.cache_path, _ignore_errors=True)
        worker.yielded.connect(lambda msg, w=worker: self._on_message(w, msg))
        worker.errored.connect(lambda exc, w=worker: self._on_error(w, exc))
        worker.finished.connect(lambda w=worker: self._on_finished(w))
        self._worker = worker
        worker.start()

    def set_inverted(self, i: int, invert: bool) -> str:
        """The reviewer says image ``i`` is (not) inverted: remembered, and the folder pass
        runs again (every other image comes from the cache; this one is another input, so
        it is classified afresh). Returns the status line."""
        text = self.session.set_inverted(i, invert)
        if self.session.bundle is not None:
            self.start()
        return text

    def stop(self) -> None:
        """Abort the running pass and release what its generator holds.

        superqt stops calling an aborted generator but never closes it; closing it
        releases its ONNX session, thread pool and cache connection.
        """
        worker, self._worker = self._worker, None
        self.session.classifying = False
        if worker is None:
            return
        worker.quit()

        def close_generator(w=worker) -> None:
            gen = getattr(w, "_gen", None)
            if gen is not None:
                with contextlib.suppress(RuntimeError, ValueError):  # running: ends at its yield
                    gen.close()

        worker.finished.connect(close_generator)

    def _on_message(self, worker, msg) -> None:
        if worker is not self._worker:
            return
        if isinstance(msg, ModelReady):
            self.session.model_ready(msg)
            self.model_ready.emit(msg)
            return
        if isinstance(msg, Batch | KnownAttention):
            changed = self.session.apply(msg)
            self.changed.emit(changed)
            if isinstance(msg, Batch):
                done = sum(e.classified for e in self.session.entries)
                self.progress.emit(done, len(self.session.entries))

    def _on_error(self, worker, exc) -> None:
        if worker is not self._worker:
            return
        self.session.classifying = False
        from export.bundle import BundleError

        text = exc.reason if isinstance(exc, BundleError) else f"{type(exc).__name__}: {exc}"
        self.failed.emit(text)

    def _on_finished(self, worker) -> None:
        if worker is not self._worker:
            return
        self.session.classifying = False
        if self.session.manifest is not None:
            self.finished.emit()
