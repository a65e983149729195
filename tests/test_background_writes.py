"""The window's background work: cache writes in a writer thread, background threads below
the window's CPU priority."""

from __future__ import annotations

import logging
import os
import sys
import threading

import pytest

from desktop.cache_writer import CacheWriter
from desktop.prediction_cache import PredictionCache
from export.attention import Attention


def test_writer_thread_writes_in_order_and_everything_by_shutdown(tmp_path):
    path = tmp_path / "p.sqlite"
    w = CacheWriter()
    first, second = Attention(0.3, 0.4, 0.2, "estimated"), Attention(0.9, 0.05, 0.0, "estimated")
    w.put_attention(path, "a.png", 10, 5, "sha1", "gradcam", first)
    w.put_attention(path, "a.png", 10, 5, "sha1", "gradcam", second)  # the later one stays
    assert w.flush(timeout=10)
    c = PredictionCache(path)
    assert c.get_attention("a.png", 10, 5, "sha1", "gradcam") == second
    w.close_cache()  # a new folder: the next write opens the cache it names
    other = tmp_path / "other" / "p.sqlite"
    w.put_attention(other, "b.png", 1, 1, "sha1", "gradcam", first, invert=True)
    w.shutdown()
    assert PredictionCache(other).get_attention("b.png", 1, 1, "sha1", "gradcam", invert=True)
    assert c.get_attention("b.png", 1, 1, "sha1", "gradcam", invert=True) is None
    c.close()
    w.put_attention(path, "c.png", 1, 1, "sha1", "gradcam", first)  # after shutdown: ignored
    assert w.flush(timeout=1)


def test_a_failed_write_is_logged_and_the_writer_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    good = tmp_path / "p.sqlite"
    w = CacheWriter()
    att = Attention(0.3, 0.4, 0.2, "estimated")
    with caplog.at_level(logging.WARNING):
        w.put_attention(blocker / "p.sqlite", "a.png", 1, 1, "sha1", "gradcam", att)
        w.put_attention(good, "a.png", 1, 1, "sha1", "gradcam", att)
        assert w.flush(timeout=10)
    assert "attention not cached" in caplog.text
    assert PredictionCache(good).get_attention("a.png", 1, 1, "sha1", "gradcam") == att
    w.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority: Linux")
def test_background_thread_lowers_only_itself_and_what_it_starts():
    from desktop.priority import lower_this_thread

    seen: dict[str, int] = {}

    def child() -> None:
        seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def background() -> None:
        seen["lowered"] = lower_this_thread(7)
        seen["self"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        lower_this_thread(3)  # never raises a priority again
        seen["again"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        t = threading.Thread(target=child)
        t.start()
        t.join()

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert seen["lowered"] and seen["self"] == max(7, before) == seen["again"]
    assert seen["child"] == seen["self"]  # inherited by the threads it starts
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # not the GUI's


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority: Linux")
def test_a_pooled_thread_gets_its_priority_back_where_allowed():
    import os
    import threading

    from desktop.priority import below_window

    seen = {}

    def work():
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        with below_window(seen["before"] + 3):
            seen["inside"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["inside"] == seen["before"] + 3
    privileged = os.geteuid() == 0  # without it RLIMIT_NICE decides whether it may go back up
    assert seen["after"] == seen["before"] or (
        not privileged and seen["after"] == seen["before"] + 3
    )
