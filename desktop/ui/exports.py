"""Exports from the app: the PDF report and the CSV with heatmap PNGs.

They run as ``cxr report`` / ``cxr classify`` in a child process (a crash
or a slow disk never touches the window), handed what the app already
computed through a ``--reuse`` file: predictions, attention figures and the
heatmaps in the cache, so the child classifies nothing again and runs
Grad-CAM only for the images the reviewer never viewed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

from desktop.batch import Known, write_known
from desktop.session import ReviewSession
from desktop.ui.heatmaps import HeatmapController
from desktop.view_state import ViewState
from export.results import FileKey


class ExportController(QObject):
    message = Signal(str)
    finished = Signal(str)  # target path
    failed = Signal(str)  # one line

    def __init__(self, session: ReviewSession, heatmaps: HeatmapController) -> None:
        super().__init__()
        self.session = session
        self.heatmaps = heatmaps
        self._proc: QProcess | None = None
        self._reuse: Path | None = None

    def ready(self) -> bool:
        s = self.session
        if s.folder is None or s.bundle is None or s.manifest is None:
            self.message.emit("Open a folder with a verified model bundle first.")
            return False
        if self._proc is not None:
            self.message.emit("An export is already running.")
            return False
        return True

    @property
    def running(self) -> bool:
        return self._proc is not None

    def known(self, cam_method: str) -> dict[str, Known]:
        """What the app computed: every result, and the cached heatmaps of ``cam_method``."""
        out = {}
        for i, e in enumerate(self.session.entries):
            if not e.classified:
                continue
            cam = None
            key = self.heatmaps.key_for(i, None, cam_method)
            heat = self.heatmaps.cached(key) if key is not None else None
            if heat is not None:
                cam = heat.cam
            att = e.attention if e.attention is not None and e.attention.error is None else None
            out[e.rel_path] = Known(
                e.key or FileKey.of(e.path),
                e.probabilities,
                e.error,
                att,  # a check that failed in the app is tried again
                cam,
                cam_method if cam is not None else None,
                e.novelty,
                e.rel_path in self.session.inverted,
            )
        return out

    def ask_report(self, parent, state: ViewState, reviewer: str) -> None:
        """Ctrl+E: which images and where, then :meth:`report`."""
        from desktop.ui.export_dialogs import ask_report_scope

        if self.ready() and (chosen := ask_report_scope(parent)) is not None:
            self.report(chosen[0], chosen[1], state, reviewer)

    def ask_csv(self, parent, state: ViewState) -> None:
        from desktop.ui.export_dialogs import ask_csv_path

        if self.ready() and (path := ask_csv_path(parent)):
            self.csv(path, state)

    def report(self, path: str, only: list[str] | None, state: ViewState, reviewer: str) -> None:
        """The PDF as the reviewer sees the images: opacity, colormap, method, threshold."""
        if not self.ready():
            return
        args = ["report", "--out", path, "--reviewer", reviewer]
        for rel in only or []:
            args += ["--only", rel]
        self._run(args, path, state)

    def csv(self, path: str, state: ViewState) -> None:
        if not self.ready():
            return
        heat = str(Path(path).with_suffix("")) + "-heatmaps"
        done = f"Exported {path} and the heatmap PNGs in {heat}{os.sep}"
        self._run(["classify", "--out", path, "--heatmaps", heat], path, state, done)

    def _run(self, args: list[str], target: str, state: ViewState, done: str = "") -> None:
        """``done``: the status line on success (default: the target's name)."""
        s = self.session
        fd, name = tempfile.mkstemp(prefix="cxr-reuse-", suffix=".json")
        os.close(fd)
        self._reuse = Path(name)
        try:
            write_known(self._reuse, s.model_sha, self.known(state.cam_method))
        except OSError as exc:  # the child then computes everything itself
            self.message.emit(f"Results not handed over ({exc}); the export recomputes them")
            self._reuse.unlink(missing_ok=True)
            self._reuse = None
        cmd, *rest = args
        view = [
            "--opacity",
            f"{state.opacity:.2f}",
            "--colormap",
            state.colormap,
            "--cam-method",
            state.cam_method,
            "--min-lung-share",
            f"{state.min_lung_share:.3f}",
        ]
        full = [cmd, str(s.folder), "--bundle", str(s.bundle), *rest, "--force", *view]
        if self._reuse is not None:
            full += ["--reuse", str(self._reuse)]
        self._start(full, target, done or f"Exported {target}")

    def _start(self, args: list[str], target: str, done: str) -> None:
        proc = QProcess(self)
        proc.setProgram(sys.executable)
        proc.setArguments(["-m", "desktop.cli", *args])
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        lines: list[str] = []

        def on_err() -> None:
            text = bytes(proc.readAllStandardError()).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith(("report:", "classify:", "cxr ")):
                    lines.append(line)
                    self.message.emit(line)

        def on_done(code: int, _status) -> None:
            on_err()
            self._proc = None
            if self._reuse is not None:
                self._reuse.unlink(missing_ok=True)
                self._reuse = None
            if code == 0:
                self.message.emit(done)
                self.finished.emit(target)
            else:
                why = next((x for x in reversed(lines) if "error" in x), f"exit code {code}")
                self.message.emit(f"Export failed: {why} (nothing was overwritten)")
                self.failed.emit(why)

        def on_error(err) -> None:
            if err == QProcess.ProcessError.FailedToStart:  # no finished signal follows
                on_done(-1, None)

        proc.readyReadStandardError.connect(on_err)
        proc.finished.connect(on_done)
        proc.errorOccurred.connect(on_error)
        self._proc = proc
        self.message.emit("Exporting…")
        proc.start()

    def shutdown(self) -> None:
        if self._proc is not None:  # asked to stop, the child removes its temporary files
            proc, self._proc = self._proc, None
            proc.finished.disconnect()
            proc.terminate()
            if not proc.waitForFinished(3000):
                proc.kill()
                proc.waitForFinished(2000)
        if self._reuse is not None:
            self._reuse.unlink(missing_ok=True)
            self._reuse = None
