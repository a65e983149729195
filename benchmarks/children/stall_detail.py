"""Opt-in detail for the GUI-stall figure (``CXR_BENCH_STALL_DETAIL=1``): for the longest
stalls, how the GUI thread spent them and where its Python code was.

Per timer tick the GUI thread's own CPU time and its time waiting for a core
(Linux ``/proc/thread-self/schedstat``) are read; the rest of a stall is time
it was blocked (on the GIL, a lock or the disk). A watchdog thread samples the
GUI thread's Python stack while a tick is overdue. Reading these costs the GUI
thread a little, so the plain figure is measured without them.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback

ENV = "CXR_BENCH_STALL_DETAIL"
#: a tick this late (seconds) is sampled by the watchdog
LATE = 0.025


def _schedstat() -> tuple[float, float]:
    """(CPU ms, ms waiting for a core) of the calling thread; zeros where unknown."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            cpu, wait = f.read().split()[:2]
        return int(cpu) / 1e6, int(wait) / 1e6
    except (OSError, ValueError):
        return 0.0, 0.0


class StallDetail:
    """Call :meth:`tick` from the GUI thread's timer; :meth:`top` after the run."""

    def __init__(self) -> None:
        self._gui = threading.get_ident()
        self._last = (time.perf_counter(), *_schedstat())
        self._ticks: list[tuple[float, float, float, float]] = []  # end, gap, cpu, queue (ms)
        self._stacks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="stall-watchdog", daemon=True).start()

    def tick(self) -> None:
        now, cpu, wait = time.perf_counter(), *_schedstat()
        t0, cpu0, wait0 = self._last
        self._ticks.append((now, (now - t0) * 1000, cpu - cpu0, wait - wait0))
        self._last = (now, cpu, wait)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            if time.perf_counter() - self._last[0] > LATE:
                frame = sys._current_frames().get(self._gui)
                if frame is not None:
                    where = traceback.extract_stack(frame)[-4:]
                    text = " < ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                                      for f in reversed(where))  # fmt: skip
                    self._stacks.append((time.perf_counter(), text))

    def top(self, t0: float, n: int = 5) -> list[dict]:
        """The ``n`` longest stalls (the first ticks left out, as in the figure): when (s
        after ``t0``), how long, the GUI thread's CPU, its wait for a core, the rest
        (blocked), and the GUI stacks sampled meanwhile."""
        self._stop.set()
        out = []
        for end, gap, cpu, queue in sorted(self._ticks[3:], key=lambda x: -x[1])[:n]:
            start = end - gap / 1000
            stacks = sorted({s for t, s in self._stacks if start <= t <= end})
            out.append(
                {
                    "at_s": round(start - t0, 2),
                    "ms": round(gap, 1),
                    "gui_cpu_ms": round(cpu, 1),
                    "waiting_for_core_ms": round(queue, 1),
                    "blocked_ms": round(max(0.0, gap - cpu - queue), 1),
                    "gui_stacks": stacks[:3],
                }
            )
        return out
