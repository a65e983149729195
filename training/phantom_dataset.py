"""Write phantom data sets in the COVID-19 Radiography Database layout (``cxr phantoms``).

Layout (what the public data set looks like, plus our extra ground truth)::

    OUT/COVID/images/COVID-1.png          OUT/COVID/masks/COVID-1.png (lungs)
    OUT/COVID/lesion_masks/COVID-1.png    OUT/COVID/marker_masks/COVID-1.png
    OUT/Normal/...   OUT/Viral Pneumonia/...
    OUT/labels.csv   (path,label,patient_id: the CSV manifest training reads)
    OUT/phantoms.json (settings and per-image truth: class, lesion side/lobe, marker)

Every image has its own RNG stream ``(seed, index)``, so the output is the
same whatever the number of worker processes.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.phantoms import CLASSES, CONFOUND_MARKERS, CONFOUND_P, CORNERS, MARKER_TEXTS

#: none: random markers (``marker_prob``); markers: each class's own marker on ``confound_p``
#: of its images; shuffled: those same markers on every image, independent of the class
#: (the test of whether a model learned them)
CONFOUNDS = ("none", "markers", "shuffled")
FOLDER_FOR_CLASS = {"COVID-19": "COVID", "Normal": "Normal", "Pneumonia": "Viral Pneumonia"}
MASK_FOLDERS = ("masks", "lesion_masks", "marker_masks")
GENERATOR_VERSION = 1


class PhantomError(ValueError):
    """Unusable arguments for the phantom writer (shown as one line by the CLI)."""


@dataclass(frozen=True)
class Item:
    index: int
    label: str
    marker: tuple[str, str] | None
    rel_path: str


@dataclass(frozen=True)
class Settings:
    out: str
    size: int
    bit_depth: int
    seed: int
    masks: bool
    flat: bool
    style: str = "standard"


def parse_ratio(text: str) -> tuple[float, float, float]:
    """'2:1:1' -> COVID-19 : Normal : Pneumonia weights."""
    try:
        parts = tuple(float(v) for v in text.split(":"))
    except ValueError:
        raise PhantomError(f"--class-ratio must look like 1:1:1, not {text!r}") from None
    if len(parts) != 3 or any(v < 0 for v in parts) or sum(parts) <= 0:
        raise PhantomError(f"--class-ratio needs three non-negative numbers, not {text!r}")
    return parts  # type: ignore[return-value]


def class_counts(n: int, ratio: Iterable[float]) -> dict[str, int]:
    """Largest-remainder split of n images by the ratio (balanced by default)."""
    w = np.asarray(list(ratio), float)
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return {c: int(k) for c, k in zip(CLASSES, counts, strict=True)}


def plan(
    n: int,
    *,
    seed: int = 0,
    ratio: Iterable[float] = (1, 1, 1),
    confound: str = "none",
    marker_prob: float = 0.7,
    flat: bool = False,
    confound_p: float = CONFOUND_P,
) -> list[Item]:
    """Decide every image's class, marker and file name before any rendering."""
    if confound not in CONFOUNDS:
        raise PhantomError(f"--confound must be one of {', '.join(CONFOUNDS)}, not {confound!r}")
    counts = class_counts(n, ratio)
    labels = [c for c in CLASSES for _ in range(counts[c])]
    np.random.default_rng([seed, 0xC1A55]).shuffle(labels)
    seen = dict.fromkeys(CLASSES, 0)
    items = []
    for i, label in enumerate(labels):
        seen[label] += 1
        rng = np.random.default_rng([seed, i, 0x3A12])
        marker: tuple[str, str] | None = None
        if confound == "markers":
            if rng.random() < confound_p:
                marker = CONFOUND_MARKERS[label]
            else:
                marker = (str(rng.choice(MARKER_TEXTS)), str(rng.choice(CORNERS)))
        elif confound == "shuffled":  # the classes' markers, each on a random class
            marker = CONFOUND_MARKERS[CLASSES[int(rng.integers(len(CLASSES)))]]
        elif rng.random() < marker_prob:
            marker = (str(rng.choice(MARKER_TEXTS)), str(rng.choice(CORNERS)))
        folder = FOLDER_FOR_CLASS[label]
        rel = f"phantom-{i + 1:05d}.png" if flat else f"{folder}/images/{folder}-{seen[label]}.png"
        items.append(Item(i, label, marker, rel))
    return items


def _encode_png(arr: np.ndarray) -> bytes:
    """Fast PNG for noisy images: 'up' filter + RLE takes 6 ms at 512² (the default 20 ms)
    and the file is smaller too."""
    import cv2

    params = [
        cv2.IMWRITE_PNG_COMPRESSION,
        1,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_RLE,
        cv2.IMWRITE_PNG_FILTER,
        cv2.IMWRITE_PNG_FILTER_UP,
    ]
    ok, buf = cv2.imencode(".png", arr, params)
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def _encode_mask(mask: np.ndarray) -> bytes:
    """0/255 8-bit masks like the public data set's; no filter is fastest for flat areas."""
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255, params)
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def _mask_path(out: Path, rel: str, kind: str) -> Path:
    p = Path(rel)
    return out / p.parent.parent / kind / p.name


def render_item(item: Item, settings: Settings) -> dict[str, Any]:
    """Render one phantom, write image (+ masks), return its record for phantoms.json."""
    from training.phantom_styles import render_styled

    rng = np.random.default_rng([settings.seed, item.index])
    ph = render_styled(item.label, settings.size, rng, settings.style, marker=item.marker)
    out = Path(settings.out)
    if settings.bit_depth == 16:
        # a different sub-range of the 16-bit container per image, as DICOM conversions do
        offset = float(rng.integers(0, 2048))
        span = float(rng.choice([4095.0, 16383.0, 65535.0 - offset]))
        pixels = np.rint(offset + ph.image * span).astype(np.uint16)
    else:
        pixels = np.rint(ph.image * 255.0).astype(np.uint8)
    (out / item.rel_path).write_bytes(_encode_png(pixels))
    if settings.masks and not settings.flat:
        for kind, mask in zip(MASK_FOLDERS, (ph.lungs, ph.lesion, ph.markers), strict=True):
            _mask_path(out, item.rel_path, kind).write_bytes(_encode_mask(mask))
    return {
        "path": item.rel_path,
        "label": item.label,
        "marker_text": item.marker[0] if item.marker else None,
        "marker_corner": item.marker[1] if item.marker else None,
        "lesion_pixels": int(ph.lesion.sum()),
        **ph.info,
    }


def _render_chunk(args: tuple[list[Item], Settings]) -> list[dict[str, Any]]:
    items, settings = args
    return [render_item(it, settings) for it in items]


def write_phantoms(
    out: str | os.PathLike[str],
    n: int,
    *,
    size: int = 512,
    bit_depth: int = 16,
    confound: str = "none",
    seed: int = 0,
    ratio: Iterable[float] = (1, 1, 1),
    marker_prob: float = 0.7,
    confound_p: float = CONFOUND_P,
    flat: bool = False,
    masks: bool = True,
    force: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    style: str = "standard",
) -> dict[str, Any]:
    """Generate ``n`` phantoms into ``out``; returns the summary also written to phantoms.json."""
    from training.phantom_styles import STYLES

    if style not in STYLES:
        raise PhantomError(f"--style must be one of {', '.join(STYLES)}, not {style!r}")
    if n < 1:
        raise PhantomError("--n must be at least 1")
    if not 32 <= size <= 4096:
        raise PhantomError("--size must be between 32 and 4096")
    if bit_depth not in (8, 16):
        raise PhantomError("--bit-depth must be 8 or 16")
    if not 0.0 <= marker_prob <= 1.0:
        raise PhantomError("--marker-prob must be between 0 and 1")
    if not 0.0 <= confound_p <= 1.0:
        raise PhantomError("--confound-p must be between 0 and 1")
    ratio = tuple(ratio)
    out_p = Path(out)
    if out_p.exists() and not out_p.is_dir():
        raise PhantomError(f"{out_p} exists and is not a folder")
    if out_p.exists() and any(out_p.iterdir()) and not force:
        raise PhantomError(f"{out_p} is not empty; use --force to write into it")
    items = plan(
        n,
        seed=seed,
        ratio=ratio,
        confound=confound,
        marker_prob=marker_prob,
        flat=flat,
        confound_p=confound_p,
    )
    try:
        for it in items:
            folder = (out_p / it.rel_path).parent
            folder.mkdir(parents=True, exist_ok=True)
            if masks and not flat:
                for kind in MASK_FOLDERS:
                    _mask_path(out_p, it.rel_path, kind).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PhantomError(f"cannot create folders under {out_p}: {exc.strerror or exc}") from None

    settings = Settings(str(out_p), size, bit_depth, seed, masks, flat, style)
    workers = max(1, min(workers or os.cpu_count() or 1, 32))
    chunk = max(1, min(16, n // (workers * 4) or 1))
    chunks = [(items[i : i + chunk], settings) for i in range(0, n, chunk)]
    records: list[dict[str, Any]] = []
    if workers == 1 or n <= chunk:
        results: Iterable[list[dict[str, Any]]] = map(_render_chunk, chunks)
        records = _collect(results, n, progress)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            records = _collect(pool.map(_render_chunk, chunks), n, progress)

    summary = {
        "generator": "cxr-review phantoms",
        "generator_version": GENERATOR_VERSION,
        "note": "Synthetic test objects, not anatomy. Never present them as patient images.",
        "n": n,
        "size": size,
        "bit_depth": bit_depth,
        "seed": seed,
        "confound": confound,
        "style": style,
        "class_ratio": list(ratio),
        "marker_prob": marker_prob if confound == "none" else None,
        "confound_p": confound_p if confound == "markers" else None,
        "class_counts": class_counts(n, ratio),
        "folders": FOLDER_FOR_CLASS,
        "images": records,
    }
    (out_p / "phantoms.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    with open(out_p / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "patient_id"])
        for rec, it in zip(records, items, strict=True):
            w.writerow([rec["path"], rec["label"], f"phantom-{it.index + 1:05d}"])
    return summary


def _collect(results, n, progress) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for batch in results:
        records.extend(batch)
        if progress:
            progress(len(records), n)
    return records


# --------------------------------------------------------------------------- CLI


def add_arguments(p) -> None:
    p.add_argument("out", help="output folder (COVID-19 Radiography Database layout)")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=16, help="PNG bit depth")
    p.add_argument(
        "--confound",
        choices=CONFOUNDS,
        default="none",
        help="'markers': burned-in marker text and corner follow the class (a shortcut to learn); "
        "'shuffled': the same class markers on every image, unrelated to its class",
    )
    p.add_argument(
        "--style",
        default="standard",
        help="standard (adult PA chest), or images unlike it for testing the 'unlike the "
        "training data' guard: lateral, paediatric, collimated, inverted, noisy, non-chest, "
        "natural (colour pictures)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic)")
    p.add_argument(
        "--class-ratio", default="1:1:1", help="COVID-19:Normal:Pneumonia (default 1:1:1)"
    )
    p.add_argument(
        "--marker-prob",
        type=float,
        default=0.7,
        help="with --confound none: chance of a random marker unrelated to the class",
    )
    p.add_argument(
        "--confound-p",
        type=float,
        default=CONFOUND_P,
        help=f"with --confound markers: share of images with their class's marker (default "
        f"{CONFOUND_P}; 1.0 = class and marker always together, as source and class were in "
        "the public COVID-19 collections)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--flat", action="store_true", help="all images in OUT, no class folders")
    p.add_argument("--no-masks", action="store_true", help="skip the ground-truth masks")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")


def run(args) -> int:
    from export.progress import throttled_progress

    t0 = time.perf_counter()
    progress = throttled_progress("phantoms")
    summary = write_phantoms(
        args.out,
        args.n,
        size=args.size,
        bit_depth=args.bit_depth,
        confound=args.confound,
        seed=args.seed,
        ratio=parse_ratio(args.class_ratio),
        marker_prob=args.marker_prob,
        confound_p=args.confound_p,
        flat=args.flat,
        masks=not args.no_masks,
        force=args.force,
        workers=args.workers,
        progress=progress,
        style=args.style,
    )
    dt = time.perf_counter() - t0
    counts = ", ".join(f"{k} {v}" for k, v in summary["class_counts"].items())
    print(
        f"phantoms: wrote {args.n} images ({counts}) to {args.out} "
        f"in {dt:.1f} s ({args.n / dt:.0f} images/s)",
        file=sys.stderr,
    )
    return 0
