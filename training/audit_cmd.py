"""``cxr audit BUNDLE DATA --json OUT``: did the model look at the lungs?

Runs the bundle's Grad-CAM over a data set (TensorFlow ``cam`` signature,
batched) and measures, per image and overall, how much of the heatmap of the
*predicted* class (what the reviewer sees) lies in the lung field, on the
image border and on burned-in text, and how many images the app would flag
as "looked outside the lungs". Where the data set has ground-truth lesion
masks (phantoms: ``lesion_masks/`` next to ``images/``), the heatmap of the
*true* class is scored against them: pointing game (is the maximum on the
lesion, 15 px tolerance at 224) and the share of its energy on the lesion.

Lung and marker masks: ``--masks estimated`` (the default, what the app
uses) finds them in the image; ``dataset`` uses the data set's ``masks/`` and
``marker_masks/`` folders (the COVID-19 Radiography Database ships lung masks)
and fails when one is missing; ``auto`` uses them where present. Whenever
dataset lung masks exist, the estimate's Dice against them is reported too.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

KEYS = ("accuracy", "lung_share_mean", "flagged_fraction", "marker_share_mean",
        "pointing_game", "lesion_energy_share")  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    from export.attention import DEFAULT_MIN_LUNG_SHARE
    from export.cam import DEFAULT_METHOD, METHODS

    p.add_argument("bundle", help="model bundle folder")
    p.add_argument("data", help="class folders, CSV manifest or trainx.npy folder")
    p.add_argument("--json", dest="json_out", required=True, help="write the audit to this file")
    p.add_argument("--csv", dest="csv_out", help="also write one row per image")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=tuple(METHODS))
    p.add_argument("--masks", default="estimated", choices=("estimated", "dataset", "auto"))
    p.add_argument(
        "--min-lung-share",
        type=float,
        default=DEFAULT_MIN_LUNG_SHARE,
        help=f"flag below this share of heatmap energy in the lungs (default {DEFAULT_MIN_LUNG_SHARE})",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="only N images, spread evenly over the set"
    )
    p.add_argument("--class-map", default=None, help="extra FOLDER=CLASS pairs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--force", action="store_true", help="overwrite existing output files")


def sibling_mask(source: str, folder: str) -> Path | None:
    """``X/images/f.png`` -> ``X/<folder>/f.png`` (Radiography-DB layout) when that file exists."""
    p = Path(source)
    if p.parent.name != "images":
        return None
    cand = p.parent.parent / folder / p.name
    return cand if cand.is_file() else None


def _read_mask(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    import cv2

    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        from training.data_sources import DataError

        raise DataError(f"{path}: mask cannot be read")
    return m >= 128


def _rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def unlike_columns(decoded, spec) -> dict[str, Any]:
    """Whether the image is unlike the training data, with the reasons in words."""
    from export.attention import analysis_image
    from export.image_checks import image_reasons

    # rule: the checks that need no model only, until the bundle's own score joins them
    reasons = image_reasons(decoded.meta, analysis_image(decoded, spec))
    return {"unlike_training_data": bool(reasons), "unlike_reasons": "; ".join(reasons)}


def audit(
    bundle: str, data: str, *, method: str = "gradcam", masks: str = "estimated",
    min_lung_share: float | None = None, limit: int | None = None,
    class_map: str | None = None, batch_size: int = 16, progress=None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """The audit dict (keys of :data:`KEYS` and more) and one dict per image."""
    from export import attention as A
    from export.cam import compute_cam, onto_image
    from export.cam_runtime import CamRunner
    from export.image_input import ImageDecodeError, model_gray, read_image, to_model_tensor
    from export.results import ImageResult
    from training.data_sources import DataError, load_dataset, parse_class_map

    threshold = A.DEFAULT_MIN_LUNG_SHARE if min_lung_share is None else float(min_lung_share)
    if not 0.0 <= threshold <= 1.0:
        raise DataError(f"--min-lung-share must be within 0..1, not {threshold}")
    from export.bundle import read_manifest

    names = read_manifest(bundle).class_names  # the data's labels are read as the bundle's classes
    ds = load_dataset(data, class_map=parse_class_map(class_map, names), classes=names)
    if ds.kind == "npy":
        raise DataError("cxr audit needs image files (class folders or a CSV), not a .npy pair")
    samples = sorted(ds.samples, key=lambda s: s.source)
    if limit is not None and 0 < limit < len(samples):  # spread over the set: every class shows
        samples = [samples[round(k * len(samples) / limit)] for k in range(limit)]
    t0 = time.perf_counter()
    runner = CamRunner(bundle, precision="fp32")  # exact figures; the app may use bfloat16
    m = runner.manifest
    index = {c: i for i, c in enumerate(m.class_names)}
    if any(s.label not in index for s in samples):
        raise DataError(f"data set classes do not match the bundle's {list(m.class_names)}")
    rows: list[dict[str, Any]] = []
    dices: list[float] = []
    skipped: list[dict[str, str]] = []
    for start in range(0, len(samples), batch_size):
        batch = []
        for s in samples[start : start + batch_size]:
            try:
                decoded = read_image(s.source)
            except (ImageDecodeError, OSError) as exc:
                skipped.append({"path": s.source, "error": str(exc)})
                continue
            batch.append((s, decoded, model_gray(decoded, m.input)))
        if not batch:
            continue
        x = to_model_tensor(np.stack([g for _, _, g in batch]), m.input)
        truth = [index[s.label] for s, _, _ in batch]
        acts, grads, probs = runner.run(x, truth)
        cam_true = compute_cam(method, acts, grads)
        pred = probs.argmax(axis=1)
        cam_pred = cam_true.copy()
        wrong = np.flatnonzero(pred != np.asarray(truth))
        if wrong.size:
            a2, g2, _ = runner.run(x[wrong], pred[wrong])
            cam_pred[wrong] = compute_cam(method, a2, g2)
        for k, (s, decoded, _) in enumerate(batch):
            ds_lungs = _read_mask(sibling_mask(s.source, "masks"))
            ds_markers = _read_mask(sibling_mask(s.source, "marker_masks"))
            if masks == "dataset" and ds_lungs is None:
                raise DataError(f"{s.source}: no lung mask in a masks/ folder next to images/")
            # each kind of mask from the data set where it has one (the Radiography Database
            # ships lung masks only: its text is then detected)
            use_ds = masks != "estimated" and ds_lungs is not None
            use_ds_markers = masks != "estimated" and ds_markers is not None
            att, _c, lungs, _mk = A.image_attention(
                decoded, cam_pred[k], m.input,
                lungs=ds_lungs if use_ds else None,
                markers=ds_markers if use_ds_markers else None,
                lung_mask_source="dataset" if use_ds else "estimated",
            )  # fmt: skip
            res = ImageResult(Path(s.source), s.source, probabilities=probs[k], attention=att)
            row: dict[str, Any] = {
                "path": s.source,
                "label": s.label,
                "predicted": res.predicted(m.class_names),
                "p_predicted": round(res.confidence, 4),
                **_rounded(att.as_dict()),
                "flagged": res.flagged(threshold),
                "markers_present": bool(_mk.any()),
                **unlike_columns(decoded, m.input),
            }
            if ds_lungs is not None:
                est = A.estimate_lungs(A.analysis_image(decoded, m.input)) if use_ds else lungs
                dices.append(A.dice(est, A.resize_mask(ds_lungs, est.shape)))
            lesion = _read_mask(sibling_mask(s.source, "lesion_masks"))
            if lesion is not None and lesion.any():
                h, w = decoded.meta.height, decoded.meta.width
                ct = onto_image(cam_true[k], (h, w), m.input, A.ANALYSIS_SIDE)
                les = A.resize_mask(lesion, ct.shape)
                row["pointing_hit"] = A.pointing_hit(ct, les)
                row["lesion_energy_share"] = A.lesion_energy_share(ct, les)
            rows.append(row)
        if progress:
            progress(min(start + batch_size, len(samples)), len(samples))
    if not rows:
        raise DataError("no image of the data set could be read")
    lesion_rows = [r for r in rows if "pointing_hit" in r]
    marker_rows = [r for r in rows if r["markers_present"]]
    flagged = [r for r in rows if r["flagged"]]
    unlike = [r for r in rows if r["unlike_training_data"]]
    out: dict[str, Any] = {
        "accuracy": round(sum(r["label"] == r["predicted"] for r in rows) / len(rows), 4),
        "lung_share_mean": _mean([r["lung_share"] for r in rows]),
        "flagged_fraction": round(len(flagged) / len(rows), 4),
        "marker_share_mean": _mean([r["marker_share"] for r in marker_rows]),
        "pointing_game": round(sum(r["pointing_hit"] for r in lesion_rows) / len(lesion_rows), 4)
        if lesion_rows
        else None,
        "lesion_energy_share": _mean([r["lesion_energy_share"] for r in lesion_rows]),
        "border_share_mean": _mean([r["border_share"] for r in rows]),
        "n_images": len(rows),
        "n_flagged": len(flagged),
        "unlike_fraction": round(len(unlike) / len(rows), 4),
        "n_unlike": len(unlike),
        "n_with_markers": len(marker_rows),
        "n_lesion_images": len(lesion_rows),
        "n_no_lung_field": sum(not r["lung_field_found"] for r in rows),
        "lung_mask_dice_mean": _mean(dices),
        "min_lung_share": threshold,
        "method": method,
        "masks": masks,
        "lung_mask_sources": sorted({r["lung_mask_source"] for r in rows}),
        "per_class": {
            c: {
                "n": sum(r["label"] == c for r in rows),
                "flagged": sum(r["label"] == c and r["flagged"] for r in rows),
                "lung_share_mean": _mean([r["lung_share"] for r in rows if r["label"] == c]),
            }
            for c in m.class_names
        },
        "bundle": str(bundle),
        "model_name": m.model_name,
        "data": str(data),
        "unreadable": skipped,
        "seconds": round(time.perf_counter() - t0, 1),
        "definitions": {
            "lung_share": "share of the predicted class's CAM energy inside the lung field "
            "(widened by one CAM cell, at least 3 % of the side)",
            "flagged": f"lung_share < {threshold}",
            "marker_share_mean": "mean share on burned-in text (widened like the lungs), "
            "over images where text was found",
            "pointing_game": "true-class CAM maximum within 15/224 of the side of the lesion "
            "mask; lesion images only",
            "lesion_energy_share": "share of the true-class CAM energy inside the lesion mask",
            "unlike_fraction": "share of images unlike the training data (checks that need "
            "no model: colour, not a radiograph, DICOM header, inverted polarity)",
        },
    }
    return out, rows


def run(args: argparse.Namespace) -> int:
    from export.atomic import atomic_write_bytes
    from export.progress import throttled_progress
    from training.data_sources import DataError

    outputs = [Path(args.json_out)] + ([Path(args.csv_out)] if args.csv_out else [])
    for o in outputs:
        if o.exists() and not args.force:
            raise DataError(f"{o} exists; use --force to replace it")
        if not o.parent.is_dir():
            raise DataError(f"folder {o.parent} does not exist")

    result, rows = audit(
        args.bundle, args.data, method=args.method, masks=args.masks,
        min_lung_share=args.min_lung_share, limit=args.limit, class_map=args.class_map,
        batch_size=max(1, args.batch_size), progress=throttled_progress("audit"),
    )  # fmt: skip
    atomic_write_bytes(Path(args.json_out), (json.dumps(result, indent=2) + "\n").encode())
    if args.csv_out:
        import io

        fields = sorted({k for r in rows for k in r}, key=lambda k: (k not in rows[0], k))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(Path(args.csv_out), buf.getvalue().encode("utf-8"))
    summary = ", ".join(f"{k} {result[k]}" for k in KEYS if result[k] is not None)
    print(f"audit of {result['n_images']} images in {result['seconds']} s: {summary}")
    print(
        f"unlike the training data: {result['n_unlike']} of {result['n_images']} "
        f"({result['unlike_fraction']:.1%})"
    )
    print(f"wrote {args.json_out}")
    return 0
