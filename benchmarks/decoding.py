"""Decode and folder figures of the folder engine (``export.decode_pool``), without Qt or TF.

* ``decode_ms_2500x2048_16bit``: one 2,500x2,048 16-bit PNG, file to
  :class:`~export.explain.ImageInput`, on one core (OpenCV held to one thread);
  ``..._zlib`` the same without ISA-L's inflate (:mod:`export.png_inflate`).
* ``decode_img_s_all_cores``: the engine's decoding alone over a phantom
  folder, with the workers it picks for this machine (warm, so a process pool's
  start-up is not counted).
* ``folder_engine_img_s``: the headless folder pass (``desktop.batch.run_folder``,
  what ``cxr classify`` runs) over the same folder with the demo bundle and the best
  provider: decoding plus inference. ``folder_vs_decode`` is its ratio to the decode
  capacity: where the model is not the bottleneck (a GPU, or the small demo model) the
  folder should run at the speed of decoding.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def write_big_png(path: Path, seed: int = 0, height: int = 2500, width: int = 2048) -> Path:
    """A 16-bit film-sized PNG: smooth anatomy-like field, detector noise, a burnt-in marker
    (about 6-8 MB, as real ones)."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.normal(30000, 9000, (height // 64, width // 64)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field += rng.normal(0, 250, (height, width)).astype(np.float32)
    field[60:160, 80:300] = 65535
    cv2.imwrite(str(path), np.clip(field, 0, 65535).astype(np.uint16))
    return path


def write_big_pngs(folder: Path, n: int, workers: int | None = None) -> list[Path]:
    from concurrent.futures import ProcessPoolExecutor

    from export.decode_pool import usable_cores

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"film-{k:05d}.png" for k in range(n)]
    with ProcessPoolExecutor(workers or usable_cores()) as pool:
        list(pool.map(write_big_png, paths, range(n), chunksize=4))
    return paths


def decode_one_core_ms(path: Path, spec, repeats: int = 5) -> float:
    """Median wall time of file -> ImageInput in this thread, OpenCV on one thread."""
    import cv2

    from export.decode_pool import prepare

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        prepare(path, spec)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            image, error, _c, _d = prepare(path, spec)
            times.append((time.perf_counter() - t) * 1000)
            if image is None:
                raise RuntimeError(f"benchmark image not decoded: {error}")
    finally:
        cv2.setNumThreads(before)
    return float(np.median(times))


def one_core_figures(big: Path, spec, rounds: int = 4) -> dict:
    """``decode_ms_2500x2048_16bit`` as installed, and without ISA-L's inflate in the same
    run (``..._zlib``: libpng's own), with which one the first used. The two alternate, so
    a noisy spell of the machine falls on both."""
    from export import png_inflate

    installed = png_inflate.AVAILABLE
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for _ in range(rounds if installed else 1):
            for use in (True, False) if installed else (False,):
                png_inflate.AVAILABLE = use
                times[use].append(decode_one_core_ms(big, spec))
    finally:
        png_inflate.AVAILABLE = installed
    out = {
        "decode_ms_2500x2048_16bit": round(float(np.median(times[installed])), 1),
        "png_inflate": "isal" if installed else "zlib",
        "big_png_mb": round(big.stat().st_size / 1e6, 2),
    }
    if installed:
        out["decode_ms_2500x2048_16bit_zlib"] = round(float(np.median(times[False])), 1)
    return out


def decode_img_s(files: list[Path], spec, batch: int = 32, plan=None) -> float:
    """The engine's decode throughput over ``files`` with the workers it picks here (the
    pool started on a few files first, so its start-up is not counted)."""
    from export.decode_pool import plan_workers, prepared_batches

    plan = plan or plan_workers(len(files))
    for _ in prepared_batches(files[: 2 * plan.workers], spec, batch, plan=plan,
                              release_pool=False):  # fmt: skip
        pass
    t = time.perf_counter()
    n = 0
    for b in prepared_batches(files, spec, batch, plan=plan):
        n += sum(p.image is not None for p in b)
    return n / (time.perf_counter() - t)


def folder_img_s(folder: Path, bundle: Path, prefer: str = "auto") -> tuple[float, str, int]:
    """(images/s, provider, pages) of ``run_folder``, in steady state: from the end of its
    first batch to the last page, so the session's and the pool's start-up are left out
    (the whole run when the folder is too small for that)."""
    from desktop.batch import run_folder
    from export.decode_pool import batch_size_for
    from export.results import Bundle

    b = Bundle.open(bundle)
    t0 = time.perf_counter()
    stamps: list[float] = []
    provider = ""
    for page in run_folder(folder, b, prefer=prefer):
        stamps.append(time.perf_counter())
        provider = page.result.provider or provider
    n = len(stamps)
    first = batch_size_for(provider or "CPU")
    if n > 3 * first:
        return (n - first) / (stamps[-1] - stamps[first - 1]), provider, n
    return n / max(stamps[-1] - t0, 1e-9) if n else 0.0, provider, n


def folder_figures(folder: Path, bundle: Path | None = None, prefer: str = "auto") -> dict:
    """Decode capacity and headless folder throughput over one folder, in this run."""
    from desktop.batch import scan
    from desktop.paths import DEMO_BUNDLE
    from export.bundle import load_bundle
    from export.decode_pool import plan_workers

    bundle = bundle or DEMO_BUNDLE
    spec = load_bundle(bundle).input
    files = [p for p, _ in scan(folder)]
    plan = plan_workers(len(files))
    decode = decode_img_s(files, spec)
    folder_rate, provider, n = folder_img_s(folder, bundle, prefer)
    out = {
        "decode_img_s_all_cores": round(decode, 1),
        "decode_workers": f"{plan.workers} {'processes' if plan.processes else 'threads'}",
        "folder_engine_img_s": round(folder_rate, 1),
        "folder_engine_provider": provider,
        "folder_engine_images": n,
        "folder_vs_decode": round(folder_rate / decode, 3),
    }
    if provider == "CUDA":
        out["folder_cuda_img_s"] = out["folder_engine_img_s"]
    return out


def run_decoding(n_images: int, work: Path) -> dict:
    """``decode_ms_2500x2048_16bit`` and the folder figures on ``n_images`` 512² phantoms."""
    from desktop.paths import DEMO_BUNDLE
    from export.bundle import load_bundle
    from training.phantom_dataset import write_phantoms

    big = write_big_png(work / "film.png")
    out = one_core_figures(big, load_bundle(DEMO_BUNDLE).input)
    big.unlink()
    folder = work / "decode-phantoms"
    write_phantoms(folder, n_images, size=512, bit_depth=16, seed=2, flat=True, masks=False)
    out.update(folder_figures(folder))
    return out
