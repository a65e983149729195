"""Progress lines on stderr for the command-line tools (desktop and training share it).

One ``label: done/total`` line for the first step, then at most one every
``every_s`` seconds, and always the last: a log file stays short and a
terminal still shows that work goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def throttled_progress(
    label: str, *, every_s: float = 2.0, stream: TextIO | None = None
) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that prints throttled ``label: done/total`` lines."""
    last: float | None = None

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or last is None or now - last >= every_s:
            last = now
            print(f"{label}: {done}/{total}", file=stream or sys.stderr, flush=True)

    return progress
