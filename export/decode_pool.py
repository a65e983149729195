"""The folder engine: files -> :class:`~export.explain.ImageInput` in order, in batches, with
decode workers sized to the machine. The app's folder pass (``desktop.folder_pass``) and
``cxr classify``/``cxr report`` (``desktop.batch.run_folder``) both read folders through
:func:`prepared_batches`.

Workers. Decoding a radiograph is CPU work partly under the GIL (Pillow's
inflate and OpenCV release it, NumPy windowing only in parts), so threads
stop scaling at about four, while processes scale with the cores. Measured
(decode + model input, 16-bit PNG, one process per worker):

======================  =========================  ==========================
machine                 threads                    processes
======================  =========================  ==========================
16 cores, 512²          1 / 8 / 16: 95/315/260/s   4 / 8 / 16: 337/595/977/s
16 cores, 2,500x2,048   1 / 8 / 16: 6.5/28/27/s    4 / 8 / 16: 21/42/67.5/s
2 cores, 512²           1 / 2: 135 / 145/s         2: 130/s (97/s with start-up)
======================  =========================  ==========================

Rule (:func:`plan_workers`): as many workers as usable cores
(``os.sched_getaffinity``); processes when there are at least
:data:`PROCESS_MIN_CORES` of them and the folder has at least
:data:`PROCESS_MIN_FILES` files to decode (a process pool costs about a
second to start, and on two cores it buys nothing over threads), else threads.
Processes are started with ``spawn`` (a Qt app is never forked) and import
only this module's decoding (no Qt, no TensorFlow); they send back the
prepared ~100 KB input, never the full-resolution image. Asking for the
decoded image too (``keep_decoded``, the report pages) uses threads.

Per image, one core (process time, 2,500x2,048, demo bundle), file -> ImageInput as a
decode process runs it: 16-bit PNG 116-123 -> 90-92 ms, 8-bit PNG 64-66 -> 55 ms, 12-bit
DICOM 50-51 -> 31-35 ms, through the grey-PNG decode of
:func:`export.decoders._decode_png_grey`, the block mean before the analysis image
(:mod:`export.attention`), the finite check of DICOM pixels and :func:`keep_freed_memory`;
then 16-bit PNG 91 -> 79-80 ms with ISA-L's inflate (:mod:`export.png_inflate`, OpenCV's
and Pillow's encodings alike). The model input is bit for bit what it was.

Memory stays flat: at most one batch plus ``2 x workers`` files are in flight
whatever the folder size. Closing the iterator (the app closes its generator
when the folder changes or the window closes) cancels what has not started;
the process pool is kept for the pass that follows, and shut down when a
pass completes (idle decode processes would hold ~100 MB each).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from export.explain import ImageInput
from export.image_input import DecodedImage, ImageDecodeError, InputSpec, read_image

log = logging.getLogger(__name__)

#: errors that depend only on the file's bytes: safe to remember until the file changes
CACHEABLE_ERRORS = frozenset({"empty", "unrecognised", "truncated", "no_pixels", "unreadable"})
#: processes only with this many usable cores (below, threads decode as fast, with no start-up)
PROCESS_MIN_CORES = 4
#: and only for this many files to decode (a pool costs about a second to start)
PROCESS_MIN_FILES = 64
#: model batch per provider: small on CPU (latency, cores shared with decoding), larger on CUDA
BATCH_SIZES = {"CUDA": 32, "CPU": 16}


@dataclass(frozen=True)
class Prepared:
    """One file's outcome: its model input or the reason it has none."""

    index: int
    image: ImageInput | None
    error: str | None
    cacheable: bool  # whether the outcome may be remembered until the file changes
    decoded: DecodedImage | None = None  # only with ``keep_decoded``


@dataclass(frozen=True)
class WorkerPlan:
    workers: int
    processes: bool


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def plan_workers(n_files: int, cores: int | None = None, keep_decoded: bool = False) -> WorkerPlan:
    """How many decode workers, and whether processes (see the module's rule)."""
    cores = usable_cores() if cores is None else max(1, cores)
    workers = max(1, min(cores, n_files)) if n_files else 1
    processes = cores >= PROCESS_MIN_CORES and n_files >= PROCESS_MIN_FILES and not keep_decoded
    return WorkerPlan(workers, processes)


def batch_size_for(provider: str) -> int:
    """The model batch for an ONNX Runtime provider ("CUDA" or "CPU")."""
    return BATCH_SIZES.get(provider.upper(), BATCH_SIZES["CPU"])


def prepare(
    path: str | os.PathLike[str], spec: InputSpec, keep_decoded: bool = False, invert: bool = False
) -> tuple[ImageInput | None, str | None, bool, DecodedImage | None]:
    """(image input, error, whether the outcome may be cached, decoded image if asked).

    ``invert``: the reviewer said the file's polarity is wrong; the model input and the kept
    image are inverted. Never raises: one bad file must never stop a folder."""
    try:
        decoded = read_image(path)
        image = ImageInput.from_decoded(decoded, spec, invert=invert)
        if not keep_decoded:
            return image, None, True, None
        if invert:
            from export.image_checks import inverted

            decoded = inverted(decoded)
        return image, None, True, decoded
    except ImageDecodeError as exc:
        return None, exc.reason, exc.kind in CACHEABLE_ERRORS, None
    except Exception as exc:
        log.exception("decoding %s failed", path)
        return None, f"unexpected error: {type(exc).__name__}: {exc}", False, None


def _init_process() -> None:
    """A decode process uses one core (OpenCV's own threads would fight the other workers)
    and ends with the app (:mod:`export.parent_watch`)."""
    from export.parent_watch import exit_with_parent

    exit_with_parent()
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    keep_freed_memory()


#: glibc's mallopt parameters (malloc.h) and the values a decode process sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64 bits; a 2,500x2,048 float32 image is 20 MiB
_TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Let this process reuse the memory of one image for the next (glibc only; False
    elsewhere). For a decode process, never for the app.

    By default glibc maps each array of megabytes afresh and unmaps it when freed, so every
    image pays for its pages again (the kernel zeroes them: ~2,500 page faults per 10 MB).
    Arrays up to 32 MiB from the heap, and a heap that keeps what was freed, cut a
    2,500x2,048 16-bit PNG's file -> ImageInput from 103-110 to 90-92 ms on one core (process
    time); the process keeps its largest working set (~100 MB for such films) until the
    pool ends.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError, TypeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    return ok and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1


def heavy_modules() -> list[str]:
    """Which of Qt and TensorFlow this process has imported (a decode worker: none)."""
    import sys

    return sorted(m for m in ("PySide6", "tensorflow") if m in sys.modules)


_PROCESS_POOL: tuple[int, Executor] | None = None


def process_pool(workers: int) -> Executor:
    """One spawn pool per app, kept between folder passes (its start-up is paid once)."""
    global _PROCESS_POOL
    if _PROCESS_POOL is None or _PROCESS_POOL[0] != workers:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        if _PROCESS_POOL is not None:
            _PROCESS_POOL[1].shutdown(wait=False, cancel_futures=True)
        ctx = mp.get_context("spawn")  # never fork: the app has Qt and threads
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_process)
        _PROCESS_POOL = (workers, pool)
    return _PROCESS_POOL[1]


def _drop_process_pool() -> None:
    global _PROCESS_POOL
    if _PROCESS_POOL is not None:
        _PROCESS_POOL[1].shutdown(wait=False, cancel_futures=True)
        _PROCESS_POOL = None


def prepared_batches(
    paths: Sequence[str | os.PathLike[str] | None],
    spec: InputSpec,
    batch_size: int,
    *,
    keep_decoded: bool = False,
    plan: WorkerPlan | None = None,
    release_pool: bool = True,
    inverts: Sequence[bool] | None = None,
) -> Iterator[list[Prepared]]:
    """Lists of :class:`Prepared` (at most ``batch_size``, in the order of ``paths``).

    A ``None`` path is not decoded (its ``Prepared`` has neither image nor error). The
    next files are decoded while the caller works on this batch. ``release_pool``: shut
    the decode processes down when all is done (False: keep them for a pass to follow).
    ``inverts[k]``: decode file k inverted (see :func:`prepare`).
    """
    todo = [k for k, p in enumerate(paths) if p is not None]
    plan = plan or plan_workers(len(todo), keep_decoded=keep_decoded)
    batch_size = max(1, batch_size)
    ahead = batch_size + 2 * plan.workers
    if keep_decoded:  # full-resolution images in flight: a few, not a batch of them
        ahead = min(ahead, plan.workers + 2)
    own: ThreadPoolExecutor | None = None
    pool: Executor
    if plan.processes:
        pool = process_pool(plan.workers)
    else:
        own = pool = ThreadPoolExecutor(plan.workers, thread_name_prefix="cxr-prep")
    pending: deque[tuple[int, Future | None]] = deque()
    order = iter(range(len(paths)))

    def fill() -> None:
        nonlocal own, pool
        while len(pending) < ahead:
            k = next(order, None)
            if k is None:
                return
            p = paths[k]
            if p is None:
                pending.append((k, None))
                continue
            inv = bool(inverts[k]) if inverts is not None else False
            try:
                fut = pool.submit(prepare, Path(p), spec, keep_decoded, inv)
            except (BrokenProcessPool, RuntimeError):  # the pool died: threads go on
                _drop_process_pool()
                own = pool = ThreadPoolExecutor(plan.workers, thread_name_prefix="cxr-prep")
                fut = pool.submit(prepare, Path(p), spec, keep_decoded, inv)
            pending.append((k, fut))

    try:
        fill()
        while pending:
            batch: list[Prepared] = []
            while pending and len(batch) < batch_size:
                k, fut = pending.popleft()
                batch.append(_outcome(k, fut))
            fill()
            yield batch
        if plan.processes and release_pool:  # done: idle decode processes free their memory
            _drop_process_pool()
    finally:
        for _k, fut in pending:
            if fut is not None:
                fut.cancel()
        if own is not None:
            own.shutdown(wait=False, cancel_futures=True)


def _outcome(k: int, fut: Future | None) -> Prepared:
    if fut is None:
        return Prepared(k, None, None, False)
    try:
        image, error, cacheable, decoded = fut.result()
    except BrokenProcessPool:  # a decoder crashed its process: that file and its neighbours
        _drop_process_pool()
        return Prepared(k, None, "the decoder stopped while reading this file", False)
    except CancelledError:  # the shared process pool was shut down under this pass
        return Prepared(k, None, "decoding was cancelled; open the folder again", False)
    return Prepared(k, image, error, cacheable, decoded)
