"""A child process of the app ends when the app is gone, whatever it was doing.

The app's children (the decode processes of the folder engine, the Grad-CAM process) wait
on pipes from the app. Killed or crashed, the app closes nothing in order: an idle decode
process then waits on its queue for ever (holding its ~100 MB), and a Grad-CAM process at
nice 19 on a busy machine can take minutes to finish the heatmap it was computing before it
notices. On Linux a process whose parent dies is handed to another (init or a subreaper),
so its parent pid changes: a watcher thread that sees the change ends the process at once.
"""

from __future__ import annotations

import os
import threading
import time

#: how often the watcher looks (seconds): an orphan lives at most about this long
POLL_S = 1.0


def exit_with_parent(poll_s: float = POLL_S) -> bool:
    """Start the watcher in this (child) process; False where there is nothing to watch
    (the parent is already init, or the platform keeps a dead parent's pid)."""
    parent = os.getppid()
    if parent <= 1 or os.name != "posix":
        return False

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(0)  # nothing of a child's is worth keeping once the app is gone

    threading.Thread(target=watch, name="cxr-parent-watch", daemon=True).start()
    return True
