"""Background work yields the CPU to the window.

On a machine with few cores the folder pass (decode threads, ONNX Runtime's
threads) and the Grad-CAM child keep every core busy; at the same priority the
GUI thread waits its turn in the scheduler's queue each time it wakes, and
the window stalls. A thread that only does background work lowers its own
priority; the threads and processes it starts afterwards inherit it.

Linux only: there a priority belongs to a thread. Elsewhere (macOS) it belongs
to the whole process, and lowering it would slow the window too, so nothing
changes there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

#: the folder pass (decoding, ONNX Runtime): below the window, above Grad-CAM
FOLDER_PASS_NICE = 5


def lower_this_thread(nice: int) -> bool:
    """Set the calling thread's nice value to at least ``nice`` (never raise its priority).

    True when the thread now runs at that nice value or lower priority."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        return os.getpriority(os.PRIO_PROCESS, tid) >= nice
    return False


@contextlib.contextmanager
def below_window(nice: int):
    """Run the block with this thread at ``nice``, and try to give the thread its priority
    back afterwards: a pooled thread (Qt's global pool) would otherwise carry the lowered
    priority into whatever runs on it next. Raising a priority again needs the privilege
    to (RLIMIT_NICE); where that is missing the thread stays lowered, which only ever
    slows later background work."""
    tid = threading.get_native_id()
    before = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            before = os.getpriority(os.PRIO_PROCESS, tid)
    lower_this_thread(nice)
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, before)


def lower_this_process(nice: int) -> None:
    """Set the calling thread's nice value to at least ``nice``: on Linux the threads it
    starts afterwards inherit it; elsewhere ``os.nice`` lowers the whole process (for a
    child process that only does background work)."""
    if sys.platform.startswith("linux"):
        lower_this_thread(nice)
        return
    with contextlib.suppress(AttributeError, OSError):  # os.nice: POSIX only
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < nice:
            os.nice(nice - current)
