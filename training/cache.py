"""One pass over the data set into a uint8 grey cache at the training size.

Every image goes through the image-input contract exactly once (in worker
processes), then training streams from a memory-mapped file, so memory
does not grow with the data set: 20,000 images at 224² are a 1 GB file, not
13 GB of float arrays in RAM. The cache is written with plain file writes
(not through a writable memory map) so the builder's resident memory stays
flat too. Unreadable images are skipped and listed, never fatal.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.image_input import (
    DecodedImage,
    ImageDecodeError,
    InputSpec,
    from_array,
    model_gray,
    read_image,
)
from training.data_sources import DataSet, Sample, open_npy

CACHE_VERSION = 1


@dataclass
class Cache:
    """Rows of the cache file, their labels (class indices) and splits."""

    path: Path
    size: int
    sources: list[str]
    labels: np.ndarray  # int64 class index per row
    splits: np.ndarray  # "train" / "val" / "test" per row
    skipped: list[tuple[str, str]]

    def images(self) -> np.ndarray:
        n = len(self.sources)
        if n == 0:
            return np.zeros((0, self.size, self.size), np.uint8)
        return np.memmap(self.path, np.uint8, "r", shape=(n, self.size, self.size))

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == split)


_NPY: dict[str, np.ndarray] = {}


def decode_source(source: str, npy: str | None) -> DecodedImage:
    """A sample's image: a file, or ``npy:K``, row K of the data set's array file (opened
    once per process)."""
    if source.startswith("npy:"):
        if npy is None:
            raise ImageDecodeError("NumPy sample without its array file", "unreadable")
        arr = _NPY.get(npy)
        if arr is None:
            arr = _NPY[npy] = open_npy(Path(npy))
        return from_array(np.asarray(arr[int(source[4:])]))
    return read_image(source)


def _decode_one(source: str, spec: InputSpec, npy: str | None) -> np.ndarray:
    return model_gray(decode_source(source, npy), spec)


def decode_chunk(args: tuple[list[str], dict[str, Any], str | None]) -> list[tuple[Any, str]]:
    sources, spec_d, npy = args
    spec = InputSpec.from_dict(spec_d)
    out: list[tuple[Any, str]] = []
    for src in sources:
        try:
            out.append((_decode_one(src, spec, npy), ""))
        except ImageDecodeError as exc:
            out.append((None, exc.reason))
        except Exception as exc:  # a bad file must never stop the data set
            out.append((None, f"{type(exc).__name__}: {exc}"))
    return out


def _fingerprint(ds: DataSet, samples: list[Sample], spec: InputSpec) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": CACHE_VERSION, "spec": spec.to_dict(), "kind": ds.kind}).encode())
    if ds.npy_images is not None:
        st = ds.npy_images.stat()
        h.update(f"{ds.npy_images}|{st.st_size}|{st.st_mtime_ns}".encode())
    for s in samples:
        h.update(f"{s.source}|{s.label}|{s.split}".encode())
        if not s.source.startswith("npy:"):
            try:
                st = os.stat(s.source)
                h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
            except OSError:
                h.update(b"|missing")
    return h.hexdigest()


def build_cache(
    ds: DataSet,
    samples: list[Sample],
    spec: InputSpec,
    folder: str | os.PathLike[str],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Cache:
    """Decode every sample once into ``folder``; reuse an identical earlier cache."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    class_index = {c: i for i, c in enumerate(ds.class_names)}
    size = spec.height
    fp = _fingerprint(ds, samples, spec)
    meta_path = folder / "cache.json"
    data_path = folder / f"images_{size}.u8"
    if meta_path.is_file() and data_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp:
            return _load_cache(folder, meta, data_path, class_index)

    meta_path.unlink(missing_ok=True)  # a rebuild killed halfway must not look valid
    npy = str(ds.npy_images) if ds.npy_images else None
    workers = max(1, min(workers or os.cpu_count() or 1, 32))
    chunk = 32
    jobs = [
        ([s.source for s in samples[i : i + chunk]], spec.to_dict(), npy)
        for i in range(0, len(samples), chunk)
    ]
    kept: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    done = 0
    tmp = data_path.with_suffix(".partial")
    with open(tmp, "wb") as fh:
        if workers == 1 or len(jobs) == 1:
            results = map(decode_chunk, jobs)
            done = _drain(results, samples, fh, kept, skipped, progress)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                done = _drain(pool.map(decode_chunk, jobs), samples, fh, kept, skipped, progress)
    assert done == len(samples)
    os.replace(tmp, data_path)
    with open(folder / "index.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "path", "label", "split"])
        for i, s in enumerate(kept):
            w.writerow([i, s.source, s.label, s.split])
    with open(folder / "skipped.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "error"])
        w.writerows(skipped)
    meta = {"fingerprint": fp, "size": size, "rows": len(kept), "skipped": len(skipped)}
    meta_path.write_text(json.dumps(meta))
    return _load_cache(folder, meta, data_path, class_index)


def _drain(results, samples, fh, kept, skipped, progress) -> int:
    done = 0
    for batch in results:
        for arr, err in batch:
            s = samples[done]
            done += 1
            if arr is None:
                skipped.append((s.source, err))
                continue
            fh.write(np.ascontiguousarray(arr, np.uint8).tobytes())
            kept.append(s)
        if progress:
            progress(done, len(samples))
    return done


def open_cache(folder: str | os.PathLike[str], class_names: tuple[str, ...]) -> Cache:
    """Re-open a cache written earlier by :func:`build_cache` (``cxr export`` uses it)."""
    folder = Path(folder)
    meta = json.loads((folder / "cache.json").read_text())
    data_path = folder / f"images_{meta['size']}.u8"
    return _load_cache(folder, meta, data_path, {c: i for i, c in enumerate(class_names)})


def _load_cache(folder: Path, meta: dict, data_path: Path, class_index: dict[str, int]) -> Cache:
    with open(folder / "index.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with open(folder / "skipped.csv", newline="", encoding="utf-8") as fh:
        skipped = [(r["path"], r["error"]) for r in csv.DictReader(fh)]
    return Cache(
        path=data_path,
        size=int(meta["size"]),
        sources=[r["path"] for r in rows],
        labels=np.array([class_index[r["label"]] for r in rows], np.int64),
        splits=np.array([r["split"] for r in rows]),
        skipped=skipped,
    )
