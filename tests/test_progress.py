"""Throttled progress lines of the command-line tools."""

from __future__ import annotations

import io

from export import progress as progress_mod


def test_first_last_and_at_most_one_line_per_interval(monkeypatch):
    clock = iter([0.0, 0.5, 1.0, 2.5, 3.0, 3.1])
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    p = progress_mod.throttled_progress("audit", every_s=2.0, stream=out)
    for done in range(1, 7):
        p(done, 6)
    assert out.getvalue().splitlines() == ["audit: 1/6", "audit: 4/6", "audit: 6/6"]


def test_default_stream_is_stderr(capsys):
    progress_mod.throttled_progress("classify")(1, 1)
    captured = capsys.readouterr()
    assert captured.err == "classify: 1/1\n" and captured.out == ""
