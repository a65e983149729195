"""``cxr evaluate BUNDLE DATA``: the run's metrics, recomputed on any data set with ONNX Runtime."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="model bundle folder")
    p.add_argument("data", help="class folders, CSV manifest or trainx.npy folder")
    p.add_argument("--json", dest="json_out", help="write all metrics to this JSON file")
    p.add_argument(
        "--split",
        choices=("all", "train", "val", "test"),
        default="all",
        help="only the rows of this split (CSV manifests with a split column)",
    )
    p.add_argument("--class-map", default=None, help="extra FOLDER=CLASS pairs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--workers", type=int, default=None, help="decode processes")


def checked_chunk(
    args: tuple[list[str], dict[str, Any], str | None],
) -> list[tuple[Any, str, tuple[str, ...]]]:
    """``training.cache.decode_chunk`` plus the reasons of the checks that need no model, from
    the same decode (the model input comes from :class:`export.explain.ImageInput`, the one
    image-input contract)."""
    from export.explain import ImageInput
    from export.image_input import ImageDecodeError, InputSpec
    from training.cache import decode_source

    sources, spec_d, npy = args
    spec = InputSpec.from_dict(spec_d)
    out: list[tuple[Any, str, tuple[str, ...]]] = []
    for src in sources:
        try:
            decoded = decode_source(src, npy)
            image = ImageInput.from_decoded(decoded, spec)
            out.append((image.model_gray, "", image.checks))
        except ImageDecodeError as exc:
            out.append((None, exc.reason, ()))
        except Exception as exc:  # a bad file must never stop the data set
            out.append((None, f"{type(exc).__name__}: {exc}", ()))
    return out


def unlike_summary(reasons: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    """The share of images unlike the training data, from (path, reasons) of every image read,
    with a few examples."""
    flagged = [(p, r) for p, r in reasons if r]
    n = len(reasons)
    return {
        "n": len(flagged),
        "fraction": round(len(flagged) / n, 4) if n else None,
        "examples": [{"path": p, "reasons": list(r)} for p, r in flagged[:20]],
        # rule: the checks that need no model only, until the bundle's own score joins them
        "model_based": False,
    }


def evaluate_bundle(
    bundle: str, data: str, *, split: str = "all", class_map: str | None = None,
    batch_size: int = 32, provider: str = "auto", workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    from export.image_input import to_model_tensor
    from export.onnx_runtime import OnnxClassifier
    from training.data_sources import DataError, load_dataset, parse_class_map
    from training.evaluation import evaluate_logits

    clf = OnnxClassifier(bundle, prefer=provider)
    m = clf.manifest
    names = m.class_names  # the data's labels are read as the bundle's classes
    ds = load_dataset(data, class_map=parse_class_map(class_map, names), classes=names)
    samples = [s for s in ds.samples if split == "all" or s.split == split]
    if not samples:
        raise DataError(f"no images in split {split!r}")
    index = {c: i for i, c in enumerate(m.class_names)}
    if any(s.label not in index for s in samples):
        raise DataError(f"data set classes do not match the bundle's {m.class_names}")
    npy = str(ds.npy_images) if ds.npy_images else None
    jobs = [
        ([s.source for s in samples[i : i + batch_size]], m.input.to_dict(), npy)
        for i in range(0, len(samples), batch_size)
    ]
    t0 = time.perf_counter()
    logits, labels, skipped = [], [], []
    unlike: list[tuple[str, tuple[str, ...]]] = []
    n_workers = max(1, min(workers or os.cpu_count() or 1, 32))
    pool = ProcessPoolExecutor(n_workers) if n_workers > 1 and len(jobs) > 1 else None
    try:
        results = pool.map(checked_chunk, jobs) if pool else map(checked_chunk, jobs)
        done = 0
        for batch in results:
            grays, ys = [], []
            for arr, err, checks in batch:
                s = samples[done]
                done += 1
                if arr is None:
                    skipped.append({"path": s.source, "error": err})
                    continue
                unlike.append((s.source, checks))
                grays.append(arr)
                ys.append(index[s.label])
            if grays:
                logits.append(clf.logits(to_model_tensor(np.stack(grays), m.input)))
                labels.extend(ys)
            if progress:
                progress(done, len(samples))
    finally:
        if pool:
            pool.shutdown()
    if not labels:
        raise DataError("no readable images")
    metrics = evaluate_logits(
        np.array(labels), np.concatenate(logits), m.class_names, m.calibration_temperature
    )
    metrics.update(
        bundle=str(bundle),
        model_name=m.model_name,
        data=ds.describe(),
        split=split,
        provider=clf.provider,
        skipped=skipped,
        unlike_training_data=unlike_summary(unlike),
        seconds=round(time.perf_counter() - t0, 2),
    )
    return metrics


def run(args: argparse.Namespace) -> int:
    from export.progress import throttled_progress

    metrics = evaluate_bundle(
        args.bundle, args.data, split=args.split, class_map=args.class_map,
        batch_size=args.batch_size, provider=args.provider, workers=args.workers,
        progress=throttled_progress("evaluate"),
    )  # fmt: skip
    cal = metrics["calibration"]
    print(
        f"evaluate: accuracy {metrics['accuracy']:.4f} on {metrics['n']} images "
        f"(macro F1 {metrics['macro']['f1']:.4f}, macro AUC {metrics['macro']['roc_auc']:.4f}, "
        f"ECE {cal['ece_after']:.4f}; {len(metrics['skipped'])} unreadable; {metrics['provider']})"
    )
    un = metrics["unlike_training_data"]
    print(
        f"evaluate: unlike the training data: {un['n']} of {metrics['n']} images "
        f"({(un['fraction'] or 0.0):.1%})"
    )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(metrics, indent=2, default=float), encoding="utf-8"
        )
    return 0
