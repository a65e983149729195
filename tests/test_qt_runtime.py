"""Guards against Qt-binding bugs that would crash a long review session."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(int)


def test_emitting_signals_does_not_leak_references_to_true():
    """PySide6 6.12.0 decremented Py_True on each emit; a 5,000-file folder aborted the app."""
    e = _Emitter()
    got = []
    e.fired.connect(got.append)
    before = sys.getrefcount(True)
    for i in range(2000):
        e.fired.emit(i)
    assert len(got) == 2000
    assert abs(sys.getrefcount(True) - before) < 50
