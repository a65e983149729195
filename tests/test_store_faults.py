"""Review stores that are read-only, damaged, empty or on a full disk: nothing reviewed is
lost, nothing is replaced silently, and the reviewer reads one plain line."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cxr
from imaging_factory import png_bytes
from PySide6.QtCore import Qt

from desktop.paths import DEMO_BUNDLE
from desktop.prediction_cache import PredictionCache
from desktop.review_store import ReviewStore, ReviewStoreError

ROOT = Path(__file__).resolve().parents[1]
needs_demo = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built"
)


def _folder(tmp_path: Path, n: int = 2) -> Path:
    f = tmp_path / "scans"
    f.mkdir()
    for k in range(n):
        f.joinpath(f"{k}.png").write_bytes(png_bytes(np.full((48, 48), 800 + k, np.uint16)))
    return f


def _mount(*args) -> bool:
    return subprocess.run(["mount", *map(str, args)], capture_output=True).returncode == 0


@pytest.fixture
def read_only_view(tmp_path):
    """A read-only bind mount of a folder with reviews (root only), unmounted afterwards."""
    src = _folder(tmp_path)
    with ReviewStore.for_folder(src) as store:
        store.set_decision("0.png", "uncertain", reviewer="first")
        store.set_note("1.png", "check the base", reviewer="first")
    view = tmp_path / "view"
    view.mkdir()
    if not (_mount("--bind", src, view) and _mount("-o", "remount,bind,ro", view)):
        subprocess.run(["umount", str(view)], capture_output=True)
        pytest.skip("read-only bind mounts need root")
    try:
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


@needs_demo
def test_read_only_folder_with_reviews(read_only_view, tmp_path):
    out = tmp_path / "r.csv"
    r = cxr("classify", read_only_view, "--bundle", DEMO_BUNDLE, "--out", out)
    assert r.returncode == 0, r.stderr
    rows = {row["path"]: row for row in csv.DictReader(out.open())}
    assert rows["0.png"]["reviewer_decision"] == "uncertain"
    assert rows["1.png"]["note"] == "check the base"
    with ReviewStore.for_folder(read_only_view) as store:  # the app's way in
        assert "read-only" in store.fallback_reason and "copied" in store.fallback_reason
        assert store.all()["1.png"].note == "check the base"
        store.set_decision("1.png", "uncertain", reviewer="second")
    with ReviewStore.for_folder(read_only_view) as store:  # reopened: both are there
        got = store.all()
        assert got["0.png"].decision == got["1.png"].decision == "uncertain"


@pytest.mark.parametrize("damage", ["garbage header", "overwritten pages", "truncated"])
def test_a_damaged_store_is_moved_aside_and_what_can_be_read_recovered(tmp_path, damage):
    folder = _folder(tmp_path)
    with ReviewStore.for_folder(folder) as store:
        for k in range(40):
            store.set_note(f"{k}.png", "n" * 200, reviewer="r")
    path = folder / ".cxr-review" / "review.sqlite"
    data = bytearray(path.read_bytes())
    if damage == "garbage header":
        data[:100] = b"x" * 100
    elif damage == "overwritten pages":
        data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    else:
        data = data[: len(data) // 3]
    path.write_bytes(bytes(data))
    with ReviewStore.for_folder(folder) as store:
        note = store.recovery_note or ""
        assert "damaged" in note and "recovered" in note
        aside = list(path.parent.glob("review.damaged-*.sqlite"))
        assert len(aside) == 1 and aside[0].name in note
        store.set_note("x.png", "after", reviewer="r")  # the fresh store works
        assert store.all()["x.png"].note == "after"


@needs_demo
def test_cli_reads_empty_and_damaged_stores_without_a_traceback(tmp_path):
    folder = _folder(tmp_path)
    state = folder / ".cxr-review"
    state.mkdir()
    (state / "review.sqlite").write_bytes(b"")
    r = cxr("classify", folder, "--bundle", DEMO_BUNDLE, "--out", tmp_path / "a.csv")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    (state / "review.sqlite").write_bytes(b"not a database at all" * 100)
    r = cxr("classify", folder, "--bundle", DEMO_BUNDLE, "--out", tmp_path / "b.csv")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "reviews left out" in r.stderr
    assert (state / "review.sqlite").read_bytes().startswith(b"not a database")  # untouched


def test_a_damaged_prediction_cache_is_rebuilt(tmp_path):
    path = tmp_path / "predictions.sqlite"
    c = PredictionCache(path)
    c.put_many([("a.png", 1, 1, "sha", np.array([0.5, 0.5], np.float32), None)])
    c.close()
    path.write_bytes(b"garbage" * 1000)
    c = PredictionCache(path)  # no error: it is only a cache
    assert c.get("a.png", 1, 1, "sha") is None
    c.close()


def test_a_full_disk_is_named_as_such(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=300k", "tmpfs", mnt):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        store = ReviewStore(mnt / "review.sqlite")
        store.set_note("a.png", "kept", reviewer="r")
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)  # fill what is left
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        with pytest.raises(ReviewStoreError, match="disk full"):
            for k in range(200):
                store.set_note(f"{k}.png", "x" * 4000, reviewer="r")
        assert store.get("a.png").note == "kept"  # nothing earlier was lost
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_stale_temporary_files_of_a_killed_writer_are_swept(tmp_path):
    from export.atomic import atomic_write_bytes

    target = tmp_path / "r.csv"
    old = tmp_path / ".r.csv.abcd1234.tmp"
    fresh = tmp_path / ".r.csv.efgh5678.tmp"  # maybe another writer at work right now
    other = tmp_path / ".other.tmp"
    for p in (old, fresh, other):
        p.write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    atomic_write_bytes(target, b"done")
    assert target.read_bytes() == b"done"
    assert not old.exists() and fresh.exists() and other.exists()


def test_copy_leaves_nothing_behind_when_it_fails(tmp_path, monkeypatch):
    """A read-only folder whose reviews cannot be copied: one clear error, no empty store
    that would hide them next time."""
    import desktop.review_db as rs

    folder = _folder(tmp_path)
    with ReviewStore.for_folder(folder) as store:
        store.set_note("0.png", "keep", reviewer="r")
    (folder / ".cxr-review" / "review.sqlite").write_bytes(b"damaged" * 100)
    monkeypatch.setattr(rs, "_writable", lambda f: False)
    with pytest.raises(ReviewStoreError, match="cannot be copied"):
        ReviewStore.for_folder(folder)
    fallback = rs._fallback_path(folder.resolve())
    assert not fallback.exists() and not list(fallback.parent.glob("*.copying"))
    shutil.rmtree(fallback.parent, ignore_errors=True)


@needs_demo
def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path, monkeypatch, capsys):
    """--out is checked again at the rename: another run's file is never silently replaced."""
    import desktop.batch as batch
    from desktop import cli

    folder = _folder(tmp_path)
    out = tmp_path / "r.csv"
    original = batch.run_folder

    def racing(*args, **kwargs):
        for k, page in enumerate(original(*args, **kwargs)):
            if k == 0:
                out.write_text("another run's results\n")
            yield page

    monkeypatch.setattr(batch, "run_folder", racing)
    code = cli.main(["classify", str(folder), "--bundle", str(DEMO_BUNDLE), "--out", str(out)])
    assert code == 2 and "created meanwhile" in capsys.readouterr().err
    assert out.read_text() == "another run's results\n"


def test_the_read_only_notice_stays_until_clicked_away(qtbot, tmp_path, monkeypatch):
    import desktop.review_db as rs
    from desktop.ui.main_window import MainWindow

    folder = _folder(tmp_path)
    monkeypatch.setattr(rs, "_writable", lambda f: False)
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.first_image_shown, timeout=20_000):
        w.open_folder(folder)
    notice = w.status.notice
    assert notice.isVisible() and "read-only" in notice.text()
    w.step(1)  # image messages come and go; the notice stays
    qtbot.wait(200)
    assert notice.isVisible()
    qtbot.mouseClick(notice, Qt.MouseButton.LeftButton)
    assert not notice.isVisible()
    w.shutdown()
