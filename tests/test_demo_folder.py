"""The demo opens a copy in the user data folder; the bundled set is only ever read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from source_guard import changes, snapshot

from desktop.demo_folder import prepare_demo_images
from desktop.paths import DEMO_IMAGES, demo_copy_dir, user_data_dir
from desktop.review_store import ReviewStore


def _files(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and ".cxr-review" not in p.parts and "__pycache__" not in p.parts
    }


@pytest.fixture
def bundled(tmp_path) -> Path:
    src = tmp_path / "bundled"
    (src / "8-bit").mkdir(parents=True)
    (src / "8-bit" / "a.png").write_bytes(b"a" * 10)
    (src / "8-bit" / "b.png").write_bytes(b"b" * 20)
    (src / "labels.csv").write_text("path,label\n")
    return src


def test_the_demo_copy_lives_in_the_user_data_folder_and_matches_the_bundled_set():
    before = snapshot(DEMO_IMAGES)
    copy = prepare_demo_images()
    assert copy == demo_copy_dir()
    assert copy.is_relative_to(user_data_dir())
    assert copy.is_relative_to(Path(os.environ["CXR_REVIEW_HOME"]))
    assert _files(copy) == _files(DEMO_IMAGES)
    assert sum(n.endswith(".png") for n in _files(copy)) == 24
    assert changes(before, snapshot(DEMO_IMAGES)) == []


def test_review_state_of_the_demo_goes_into_the_copy():
    copy = prepare_demo_images()
    store = ReviewStore.for_folder(copy)
    try:
        assert store.path.is_relative_to(copy.resolve())
        assert store.fallback_reason is None
    finally:
        store.close()
    assert not (DEMO_IMAGES / ".cxr-review").exists()


def test_refresh_recopies_changed_files_and_keeps_the_reviewers_state(bundled, tmp_path):
    target = tmp_path / "data" / "demo" / "images"
    prepare_demo_images(bundled, target)
    assert _files(target) == _files(bundled)
    state = target / ".cxr-review" / "review.sqlite"
    state.parent.mkdir()
    state.write_bytes(b"reviews")
    mine = target / "8-bit" / "my-notes.txt"
    mine.write_text("kept")

    (bundled / "8-bit" / "a.png").write_bytes(b"A" * 15)  # regenerated: another size
    (bundled / "8-bit" / "b.png").unlink()  # dropped from the set
    (bundled / "16-bit").mkdir()
    (bundled / "16-bit" / "c.png").write_bytes(b"c" * 5)  # added to the set
    prepare_demo_images(bundled, target)

    assert (target / "8-bit" / "a.png").read_bytes() == b"A" * 15
    assert not (target / "8-bit" / "b.png").exists()
    assert (target / "16-bit" / "c.png").read_bytes() == b"c" * 5
    assert state.read_bytes() == b"reviews"
    assert mine.read_text() == "kept"


def test_a_file_damaged_or_deleted_in_the_copy_is_restored(bundled, tmp_path):
    target = tmp_path / "copy"
    prepare_demo_images(bundled, target)
    (target / "8-bit" / "a.png").write_bytes(b"x")
    (target / "labels.csv").unlink()
    prepare_demo_images(bundled, target)
    assert _files(target) == _files(bundled)
    assert (target / "8-bit" / "a.png").read_bytes() == b"a" * 10


def test_the_copy_is_writable_when_the_bundled_files_are_not(bundled, tmp_path):
    for p in bundled.rglob("*.png"):
        p.chmod(0o444)
    target = tmp_path / "copy"
    prepare_demo_images(bundled, target)
    copied = target / "8-bit" / "a.png"
    assert os.access(copied, os.W_OK)
    prepare_demo_images(bundled, target)  # unchanged: nothing copied again, no error
    assert copied.read_bytes() == b"a" * 10


def test_a_tampered_stamp_removes_nothing_outside_the_copy(bundled, tmp_path):
    target = tmp_path / "d" / "images"
    outside = tmp_path / "d" / "precious.txt"
    prepare_demo_images(bundled, target)
    outside.write_text("keep")
    stamp = target.parent / "images-copied.json"
    stamp.write_text('{"files": ["../precious.txt", "/etc/hostname", ".cxr-review/x"]}')
    prepare_demo_images(bundled, target)
    assert outside.read_text() == "keep"


def test_missing_bundled_images_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundled demo images are missing"):
        prepare_demo_images(tmp_path / "nowhere", tmp_path / "copy")


def test_source_guard_names_every_changed_path(tmp_path):
    (tmp_path / "keep.txt").write_text("same")
    (tmp_path / "grow.txt").write_text("1")
    (tmp_path / "gone.txt").write_text("x")
    before = snapshot(tmp_path)
    (tmp_path / "grow.txt").write_text("12")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / ".cxr-review").mkdir()
    (tmp_path / ".cxr-review" / "review.sqlite").write_bytes(b"")
    assert changes(before, snapshot(tmp_path)) == [
        "added .cxr-review",
        "added .cxr-review/review.sqlite",
        "removed gone.txt",
        "modified grow.txt",
    ]
