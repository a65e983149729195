"""The app's child processes end when the app is killed (kill -9), busy or idle, instead of
holding their memory for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="parent pid semantics of Linux")

#: a stand-in app: starts children, prints their pids, then waits to be killed
APP = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from export.decode_pool import process_pool
from export.parent_watch import exit_with_parent

if __name__ == "__main__":
    pool = process_pool(2)  # the folder engine's decode processes, idle after one task
    pool.submit(time.sleep, 0.01).result()
    busy = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=exit_with_parent)
    busy.submit(time.sleep, 0.01).result()
    busy.submit(time.sleep, 120)  # a child in the middle of a long job
    time.sleep(0.5)
    kids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().split(") ")[1].split()[1]) == os.getpid():
                    kids.append(entry)
        except (OSError, ValueError, IndexError):
            pass
    print(" ".join(kids), flush=True)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its new parent is gone
        return f.read().split(") ")[1][0] != "Z"


def test_children_end_when_the_app_is_killed():
    app = subprocess.Popen([sys.executable, "-c", APP], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        kids = [int(p) for p in app.stdout.readline().split()]
        assert len(kids) >= 3, kids  # two decode processes and the busy one (+ tracker)
        assert all(_alive(k) for k in kids)
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    left = [k for k in kids if _alive(k)]
    for k in left:  # leave nothing behind, whatever the outcome
        os.kill(k, signal.SIGKILL)
    assert not left, f"children still running after the app was killed: {left}"


def test_nothing_to_watch_under_init(monkeypatch):
    from export import parent_watch

    monkeypatch.setattr(os, "getppid", lambda: 1)
    assert parent_watch.exit_with_parent() is False
