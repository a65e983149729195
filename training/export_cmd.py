"""``cxr export RUN --out BUNDLE [--quantize int8]``: (re)write a bundle from a training run."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="training run folder (written by cxr train)")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument(
        "--quantize",
        choices=("int8",),
        default=None,
        help="also write an int8 ONNX model (static, per-channel, QDQ)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing bundle")


def export_run(run: str, out: str, *, quantize: str | None = None, force: bool = False) -> Any:
    from export.build import write_bundle
    from export.bundle import load_bundle
    from export.image_input import InputSpec
    from training.cache import open_cache
    from training.model import ModelSpec, TrainError, build_model
    from training.novelty_sets import reference_data
    from training.pipeline import tensor_batches
    from training.train import TrainConfig, make_manifest, run_class_names

    run_p = Path(run)
    try:
        cfg = TrainConfig(**json.loads((run_p / "config.json").read_text()))
        summary = json.loads((run_p / "metrics.json").read_text())
    except FileNotFoundError as exc:
        raise TrainError(
            f"{run_p} is not a finished training run ({Path(exc.filename).name} missing)"
        ) from None
    names = run_class_names(summary)
    mspec = ModelSpec(cfg.backbone, cfg.image_size, len(names), "none")
    model = build_model(mspec)
    model.load_weights(str(run_p / "model.weights.h5"))
    cache = open_cache(run_p / "cache", names)
    spec = InputSpec(height=cfg.image_size, width=cfg.image_size, resize=cfg.resize)
    manifest = make_manifest(cfg, summary, spec, mspec)
    val = cache.rows("val")
    written = write_bundle(
        model,
        out,
        manifest,
        parity_images=next(tensor_batches(cache, val[:32], 32)),
        reference=reference_data(cache, spec),
        force=force,
    )
    if quantize == "int8":
        written = _add_int8(Path(out), written, cache)
    return load_bundle(out) if written else None


def _add_int8(bundle: Path, manifest, cache) -> Any:
    from export.bundle import write_manifest
    from export.onnx_runtime import OnnxClassifier
    from export.quantize import quantize_int8
    from training.pipeline import tensor_batches

    train_rows = cache.rows("train")
    rng = np.random.default_rng(0)
    calib_rows = np.sort(rng.choice(train_rows, min(64, len(train_rows)), replace=False))
    calib = np.concatenate(list(tensor_batches(cache, calib_rows)))
    quantize_int8(bundle / manifest.onnx.file, bundle / "model.int8.onnx", calib)
    test = cache.rows("test")
    y = cache.labels[test]
    acc = {}
    for name, f in (("fp32", manifest.onnx.file), ("int8", "model.int8.onnx")):
        clf = OnnxClassifier(bundle, manifest, prefer="cpu", onnx_file=f)
        pred = np.concatenate([clf.logits(x).argmax(1) for x in tensor_batches(cache, test)])
        acc[name] = float((pred == y).mean()) if len(y) else float("nan")
    info = {
        "file": "model.int8.onnx",
        "method": "ONNX Runtime static QDQ, per-channel int8 weights, uint8 activations, MinMax on 64 train images",
        "accuracy_fp32": acc["fp32"],
        "accuracy_int8": acc["int8"],
        "accuracy_delta_points": 100 * (acc["int8"] - acc["fp32"]),
        "n_test": len(y),
    }
    return write_manifest(bundle, replace(manifest, extra={**manifest.extra, "int8": info}))


def run(args: argparse.Namespace) -> int:
    m = export_run(args.run, args.out, quantize=args.quantize, force=args.force)
    msg = f"export: wrote {args.out} (parity max |Δp| {m.parity['max_abs_prob_diff']:.1e})"
    if "int8" in m.extra:
        i8 = m.extra["int8"]
        msg += f"; int8 accuracy {i8['accuracy_int8']:.4f} vs fp32 {i8['accuracy_fp32']:.4f}"
    print(msg)
    return 0
