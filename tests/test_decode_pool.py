"""The folder engine: worker and batch sizing, order, errors, bounded work, cancellation."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from imaging_factory import png_bytes

import export.decode_pool as dp
from export.decode_pool import (
    BATCH_SIZES,
    WorkerPlan,
    batch_size_for,
    plan_workers,
    prepared_batches,
    usable_cores,
)
from export.explain import ImageInput
from export.image_input import InputSpec

SPEC = InputSpec(height=32, width=32)


def _folder(tmp_path, n: int) -> list:
    rng = np.random.default_rng(3)
    paths = []
    for k in range(n):
        p = tmp_path / f"im{k:03d}.png"
        p.write_bytes(png_bytes(rng.integers(0, 4096, (40, 30)).astype(np.uint16)))
        paths.append(p)
    return paths


def test_workers_follow_the_usable_cores(monkeypatch):
    monkeypatch.setattr(dp.os, "sched_getaffinity", lambda _pid: {0, 2, 5}, raising=False)
    assert usable_cores() == 3
    assert plan_workers(1000) == WorkerPlan(3, False)  # under PROCESS_MIN_CORES: threads


def test_processes_only_with_enough_cores_and_files():
    assert plan_workers(1000, cores=16) == WorkerPlan(16, True)
    assert plan_workers(1000, cores=2) == WorkerPlan(2, False)
    assert plan_workers(10, cores=16) == WorkerPlan(10, False)  # a pool's start-up costs more
    assert plan_workers(1000, cores=16, keep_decoded=True).processes is False
    assert plan_workers(0, cores=16).workers == 1


def test_batch_size_is_larger_on_cuda():
    assert batch_size_for("CUDA") == BATCH_SIZES["CUDA"] > batch_size_for("CPU")
    assert batch_size_for("something else") == batch_size_for("CPU")


@pytest.mark.parametrize("processes", [False, True])
def test_batches_come_in_order_and_match_the_reference(tmp_path, processes):
    paths = _folder(tmp_path, 5)
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    todo = [paths[0], None, tmp_path / "bad.png", *paths[1:]]
    batches = list(prepared_batches(todo, SPEC, 3, plan=WorkerPlan(2, processes)))
    assert [len(b) for b in batches] == [3, 3, 1]
    got = [p for b in batches for p in b]
    assert [p.index for p in got] == list(range(len(todo)))
    assert got[1].image is None and got[1].error is None  # not asked for
    assert got[2].image is None and "not an image" in got[2].error and got[2].cacheable
    for p, path in zip([got[0], *got[3:]], paths, strict=True):
        ref = ImageInput.from_path(path, SPEC)
        assert np.array_equal(p.image.model_gray, ref.model_gray)
        assert np.array_equal(p.image.analysis, ref.analysis)
        assert p.decoded is None  # the full-resolution image stays in the worker


def test_decode_processes_import_neither_qt_nor_tensorflow():
    pool = dp.process_pool(1)
    assert pool.submit(dp.heavy_modules).result(timeout=120) == []


def test_keep_decoded_returns_the_image(tmp_path):
    paths = _folder(tmp_path, 2)
    got = [p for b in prepared_batches(paths, SPEC, 4, keep_decoded=True) for p in b]
    assert [p.decoded.pixels.shape for p in got] == [(40, 30), (40, 30)]


class _Counting:
    """A stand-in decoder that counts the files started (no real decoding)."""

    def __init__(self) -> None:
        self.started = 0
        self.lock = threading.Lock()

    def __call__(self, path, spec, keep_decoded=False, invert=False):
        with self.lock:
            self.started += 1
        return None, "stand-in", False, None


def test_work_in_flight_is_bounded_whatever_the_folder_size(monkeypatch):
    fake = _Counting()
    monkeypatch.setattr(dp, "prepare", fake)
    paths = [f"/nowhere/{k}.png" for k in range(10_000)]
    it = prepared_batches(paths, SPEC, 8, plan=WorkerPlan(2, False))
    first = next(it)
    assert len(first) == 8
    assert fake.started <= 8 + 8 + 2 * 2  # this batch, then one batch and 2 x workers ahead
    seen = 8 + sum(len(b) for b in it)
    assert seen == 10_000 and fake.started == 10_000


def test_closing_stops_the_work(monkeypatch):
    fake = _Counting()
    monkeypatch.setattr(dp, "prepare", fake)
    paths = [f"/nowhere/{k}.png" for k in range(10_000)]
    it = prepared_batches(paths, SPEC, 8, plan=WorkerPlan(2, False))
    next(it)
    it.close()  # what the app does when the folder changes or the window closes
    started = fake.started
    assert started < 100


def test_closing_the_folder_pass_stops_its_decoding(monkeypatch, tmp_path):
    """The app closes classify_items' generator when the folder changes or the window closes."""
    from desktop.folder_pass import FolderItem, classify_items
    from desktop.messages import Batch
    from desktop.paths import DEMO_BUNDLE
    from export.results import FileKey

    fake = _Counting()
    monkeypatch.setattr(dp, "prepare", fake)
    items = [FolderItem(tmp_path / f"{k}.png", f"{k}.png", FileKey(1, 1)) for k in range(2000)]
    gen = classify_items(DEMO_BUNDLE, items, None, prefer="cpu")
    first = next(m for m in gen if isinstance(m, Batch))
    assert [c.error for c in first.items][:1] == ["stand-in"]
    gen.close()
    assert fake.started < 200


def test_a_crashed_decode_process_does_not_stop_the_folder(tmp_path):
    import os
    from concurrent.futures.process import BrokenProcessPool

    paths = _folder(tmp_path, 3)
    crash = dp.process_pool(1).submit(os._exit, 1)  # a decoder that takes its process down
    assert isinstance(crash.exception(timeout=120), BrokenProcessPool)
    got = [p for b in prepared_batches(paths, SPEC, 2, plan=WorkerPlan(1, True)) for p in b]
    assert [p.image is not None for p in got] == [True, True, True]  # threads took over
