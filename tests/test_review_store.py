"""Review decisions persist at once, keep a history, and survive two writers."""

from __future__ import annotations

import pytest

import desktop.review_db as rs
from desktop.review_store import ReviewStore


def test_decisions_notes_history_and_reopen(tmp_path):
    with ReviewStore.for_folder(tmp_path) as store:
        assert store.path == tmp_path.resolve() / ".cxr-review" / "review.sqlite"
        assert store.fallback_reason is None
        r = store.set_decision(
            "a.png", "agree", reviewer="ann", ai_class="Normal", ai_probability=0.93
        )
        assert r.reviewer_class == "Normal" and r.decision == "agree"
        store.set_decision(
            "a.png",
            "override",
            reviewer="bob",
            reviewer_class="Pneumonia",
            ai_class="Normal",
            ai_probability=0.93,
        )
        store.set_note("a.png", "subtle right lower zone opacity", reviewer="bob")
        store.set_decision("b.png", "uncertain", reviewer="ann", ai_class="COVID-19")
    with ReviewStore.for_folder(tmp_path) as again:
        a = again.get("a.png")
        assert (a.decision, a.reviewer_class, a.reviewer) == ("override", "Pneumonia", "bob")
        assert a.note == "subtle right lower zone opacity"
        fields = [(f, old, new, who) for f, old, new, who, _ in again.history("a.png")]
        assert fields == [
            ("decision", None, "agree", "ann"),
            ("reviewer_class", None, "Normal", "ann"),
            ("decision", "agree", "override", "bob"),
            ("reviewer_class", "Normal", "Pneumonia", "bob"),
            ("note", "", "subtle right lower zone opacity", "bob"),
        ]
        assert set(again.all()) == {"a.png", "b.png"}
        assert again.integrity_ok()


def test_invalid_decisions_are_refused(tmp_path):
    with ReviewStore.for_folder(tmp_path) as store:
        with pytest.raises(ValueError):
            store.set_decision("a.png", "maybe", reviewer="x")
        with pytest.raises(ValueError, match="reviewer's class"):
            store.set_decision("a.png", "override", reviewer="x")
        assert store.get("a.png") is None  # nothing half-written


def test_two_instances_last_write_wins_history_keeps_both(tmp_path):
    one, two = ReviewStore.for_folder(tmp_path), ReviewStore.for_folder(tmp_path)
    one.set_note("x.png", "from one", reviewer="one")
    two.set_note("x.png", "from two", reviewer="two")
    assert one.get("x.png").note == "from two"
    assert [h[2] for h in one.history("x.png")] == ["from one", "from two"]
    one.close()
    two.close()


def test_read_only_folder_falls_back_to_user_data(tmp_path, monkeypatch):
    # Tests run as root here, where chmod cannot make a folder read-only; simulate the probe.
    monkeypatch.setattr(rs, "_writable", lambda folder: False)
    with ReviewStore.for_folder(tmp_path) as store:
        assert "read-only" in store.fallback_reason
        assert tmp_path not in store.path.parents
        store.set_note("a.png", "kept elsewhere", reviewer="x")
    with ReviewStore.for_folder(tmp_path) as again:
        assert again.get("a.png").note == "kept elsewhere"


def test_read_only_reader_and_reviews_carried_to_the_fallback(tmp_path, monkeypatch):
    import sqlite3

    with ReviewStore.for_folder(tmp_path) as store:
        store.set_note("a.png", "made while writable", reviewer="x")
    reader = ReviewStore(tmp_path / ".cxr-review" / "review.sqlite", read_only=True)
    assert reader.get("a.png").note == "made while writable"
    with pytest.raises(sqlite3.OperationalError):
        reader.set_note("a.png", "no", reviewer="x")
    reader.close()
    monkeypatch.setattr(rs, "_writable", lambda folder: False)  # the folder is now read-only
    with ReviewStore.for_folder(tmp_path) as store:
        assert "copied" in store.fallback_reason
        assert store.get("a.png").note == "made while writable"
        store.set_note("a.png", "continued elsewhere", reviewer="x")


def test_write_probe_survives_concurrent_openers(tmp_path):
    """Two instances opening one folder at once: neither may take it for read-only (a shared
    probe name let one delete the other's probe, and its reviews went to the fallback store)."""
    import threading

    from desktop.review_db import _writable

    results = []

    def probe():
        results.extend(_writable(tmp_path) for _ in range(200))

    threads = [threading.Thread(target=probe) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1200 and all(results)
