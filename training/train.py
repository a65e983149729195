"""``cxr train``: data set -> cache -> two-stage fine-tuning -> honest evaluation -> bundle.

The checkpoint is chosen on the validation split; the temperature is
fitted on the validation split; the test split is touched once, at the end.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from export.bundle import CLASS_NAMES, Manifest, SavedModelInfo, TrainingSummary
from export.image_input import InputSpec
from training.cache import Cache, build_cache
from training.data_sources import (
    DEFAULT_CLASS_MAP,
    DataError,
    DataSet,
    load_dataset,
    parse_class_map,
    parse_classes,
)
from training.model import ModelSpec, TrainError, build_model, quiet_tensorflow, set_base_trainable
from training.splits import (
    assign_splits,
    check_class_sizes,
    parse_fractions,
    save_splits,
    split_sizes,
)

DEMO_INTENDED_USE = (
    "DEMO MODEL trained on synthetic phantoms, not on patient images. For trying the "
    "software only: never for diagnosis, triage or any clinical or research conclusion."
)


@dataclass
class TrainConfig:
    data: str
    out: str
    backbone: str = "vgg19"
    weights: str = "imagenet"
    image_size: int = 224
    epochs: int = 40
    stage1_epochs: int | None = None
    batch_size: int = 16
    lr: float = 1e-3
    fine_tune_lr: float = 1e-5
    fine_tune_from: str = "block5"
    split: str = "80/10/10"
    seed: int = 0
    class_map: str | None = None
    classes: str | None = None  # "A,B,..." in class-index order; None: the classes in the data
    balance: str = "weights"  # or "oversample"
    flip: bool = False
    augment: bool = True
    patience: int = 8
    resize: str = "stretch"
    distribute: str = "auto"  # auto | mirrored | none
    workers: int | None = None
    model_name: str | None = None
    demo: bool = False
    force: bool = False


def _say(msg: str) -> None:
    print(f"train: {msg}", file=sys.stderr, flush=True)


def _strategy(mode: str):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if mode == "mirrored" or (mode == "auto" and len(gpus) > 1):
        devices = None if gpus else ["/cpu:0"]
        return tf.distribute.MirroredStrategy(devices=devices), len(gpus)
    return tf.distribute.get_strategy(), len(gpus)


def _epoch_logger(path: Path, stage: int):
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            new = not path.exists()
            lr = self.model.optimizer.learning_rate
            row = {
                "epoch": epoch,
                "stage": stage,
                "loss": logs.get("loss"),
                "accuracy": logs.get("accuracy"),
                "val_loss": logs.get("val_loss"),
                "val_accuracy": logs.get("val_accuracy"),
                "lr": float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr)),
            }
            with open(path, "a", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list(row))
                if new:
                    w.writeheader()
                w.writerow(row)

    return EpochLog()


def _predict_logits(model, cache: Cache, rows: np.ndarray, n_classes: int) -> np.ndarray:
    from training.pipeline import tensor_batches

    out = [np.asarray(model(x, training=False)[0]) for x in tensor_batches(cache, rows)]
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


def _say_classes(ds: DataSet, named: bool, class_map: str | None) -> None:
    """The class set and everything the class map did to the labels, said before training."""
    source = "from --classes" if named else "from the data"
    _say(f"classes ({source}, in index order): {', '.join(ds.class_names)}")
    if ds.renamed:
        _say("labels read as: " + ", ".join(f"{r!r} -> {n}" for r, n in sorted(ds.renamed.items())))
    user = {p.split("=", 1)[0].strip().lower() for p in (class_map or "").split(",") if "=" in p}
    for raw, n in sorted(ds.left_out.items()):
        if raw.strip().lower() in DEFAULT_CLASS_MAP and raw.strip().lower() not in user:
            _say(
                f"left out {raw} ({n} images) by default: not one of the classes; include it "
                f"by naming it in --classes or with --class-map '{raw}=CLASS'"
            )
        else:
            _say(f"left out {raw} ({n} images) as --class-map asks")


def train(cfg: TrainConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    run = Path(cfg.out)
    if (run / "bundle").exists() and not cfg.force:
        raise TrainError(f"{run} already holds a trained bundle; use --force or another --out")
    if cfg.epochs < 1:
        raise TrainError("--epochs must be at least 1")
    if cfg.balance not in ("weights", "oversample"):
        raise TrainError("--balance must be 'weights' or 'oversample'")
    run.mkdir(parents=True, exist_ok=True)

    classes = parse_classes(cfg.classes)
    fractions = parse_fractions(cfg.split)
    ds = load_dataset(cfg.data, class_map=parse_class_map(cfg.class_map, classes), classes=classes)
    _say(ds.describe())
    _say_classes(ds, classes is not None, cfg.class_map)
    check_class_sizes(ds.samples, ds.class_names, fractions, named=classes is not None)
    samples = assign_splits(ds.samples, fractions, cfg.seed)
    save_splits(samples, run / "split.csv")

    spec = InputSpec(height=cfg.image_size, width=cfg.image_size, resize=cfg.resize)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if done == total or time.perf_counter() - last[0] > 5:
            last[0] = time.perf_counter()
            _say(f"caching images {done}/{total}")

    cache = build_cache(ds, samples, spec, run / "cache", workers=cfg.workers, progress=progress)
    if cache.skipped:
        _say(
            f"skipped {len(cache.skipped)} unreadable images (listed in {run / 'cache' / 'skipped.csv'})"
        )
    rows = {s: cache.rows(s) for s in ("train", "val", "test")}
    if len(rows["train"]) == 0 or len(rows["val"]) == 0:
        raise DataError(
            f"need images in both train and validation splits (have {len(rows['train'])} "
            f"and {len(rows['val'])}); add data or change --split"
        )
    sizes = {k: len(v) for k, v in rows.items()}
    _say(f"split sizes {sizes}")

    quiet_tensorflow()
    import keras

    from training.pipeline import class_weights, make_dataset

    keras.utils.set_random_seed(cfg.seed)
    strategy, n_gpus = _strategy(cfg.distribute)
    _say(
        f"{n_gpus} GPU(s) visible; {strategy.num_replicas_in_sync} replica(s) "
        f"({type(strategy).__name__})"
    )
    n_classes = len(ds.class_names)
    mspec = ModelSpec(cfg.backbone, cfg.image_size, n_classes, cfg.weights)
    with strategy.scope():
        model = build_model(mspec)
        train_model = keras.Model(model.inputs, model.outputs[0], name="train_logits")

    oversample = cfg.balance == "oversample"
    train_ds = make_dataset(
        cache, rows["train"], n_classes, cfg.batch_size, training=True, seed=cfg.seed,
        flip=cfg.flip, augment=cfg.augment, oversample=oversample,
    )  # fmt: skip
    val_ds = make_dataset(cache, rows["val"], n_classes, cfg.batch_size, training=False)
    weights = None if oversample else class_weights(cache.labels[rows["train"]], n_classes)

    ckpt = run / "checkpoints" / "best.weights.h5"
    ckpt.parent.mkdir(exist_ok=True)
    log_csv = run / "training_log.csv"
    log_csv.unlink(missing_ok=True)
    two_stage = cfg.backbone == "vgg19" and cfg.epochs >= 2
    stage1 = cfg.stage1_epochs or (max(1, round(cfg.epochs * 0.25)) if two_stage else cfg.epochs)
    stage1 = min(stage1, cfg.epochs)
    stages = [(1, stage1, cfg.lr, None if cfg.backbone == "vgg19" else "all")]
    if two_stage and cfg.epochs > stage1:
        stages.append((2, cfg.epochs, cfg.fine_tune_lr, cfg.fine_tune_from))

    best = math.inf
    epochs_run = 0
    for stage, end_epoch, lr, unfreeze in stages:
        with strategy.scope():
            if cfg.backbone == "vgg19":
                n_train = set_base_trainable(model, unfreeze)
                _say(f"stage {stage}: {n_train} trainable backbone layers, lr {lr:g}")
            train_model.compile(
                optimizer=keras.optimizers.Adam(lr),
                loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            )
        callbacks = [
            keras.callbacks.ModelCheckpoint(
                str(ckpt), monitor="val_loss", save_best_only=True, save_weights_only=True,
                initial_value_threshold=best if math.isfinite(best) else None,
            ),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=3, min_lr=1e-7),
            _epoch_logger(log_csv, stage),
        ]  # fmt: skip
        hist = train_model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=end_epoch,
            initial_epoch=epochs_run,
            class_weight=weights,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=2,
        )
        epochs_run += len(hist.history.get("loss", []))
        best = min(best, *hist.history.get("val_loss", [math.inf]))

    if not ckpt.exists():
        raise TrainError("no checkpoint was saved (validation loss was never finite)")
    train_model.load_weights(str(ckpt))
    best_epoch = _best_epoch(log_csv)

    from training.evaluation import evaluate_logits, fit_temperature

    val_logits = _predict_logits(model, cache, rows["val"], n_classes)
    temperature = fit_temperature(val_logits, cache.labels[rows["val"]])
    test_metrics = evaluate_logits(
        cache.labels[rows["test"]], _predict_logits(model, cache, rows["test"], n_classes),
        ds.class_names, temperature,
    )  # fmt: skip
    val_metrics = evaluate_logits(
        cache.labels[rows["val"]], val_logits, ds.class_names, temperature
    )
    _say(
        f"test accuracy {test_metrics['accuracy']:.4f} on {test_metrics['n']} images; "
        f"T={temperature:.3f}, ECE {test_metrics['calibration']['ece_before']:.4f} -> "
        f"{test_metrics['calibration']['ece_after']:.4f}"
    )
    config = asdict(cfg)
    (run / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    model.save_weights(str(run / "model.weights.h5"))

    summary: dict[str, Any] = {
        "model_name": cfg.model_name or f"cxr-{cfg.backbone}-{cfg.image_size}",
        "data": ds.describe(),
        "backbone": cfg.backbone,
        "weights_source": mspec.weights_source,
        "image_size": cfg.image_size,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "split_sizes": split_sizes(samples),
        "class_names": list(ds.class_names),
        "class_counts": ds.class_counts,
        "skipped": len(cache.skipped),
        "temperature": temperature,
        "test": test_metrics,
        "val": _compact(val_metrics),
        "seconds": None,
    }
    from export.build import write_bundle
    from training.novelty_sets import reference_data
    from training.report import plot_curves, plot_reliability, plot_roc, write_report

    # metrics first: a failed export must not lose the evaluation (cxr export can retry)
    (run / "metrics.json").write_text(
        json.dumps(summary, indent=2, default=float), encoding="utf-8"
    )
    manifest = make_manifest(cfg, summary, spec, mspec)
    parity = _parity_images(cache, rows["val"])
    written = write_bundle(
        model, run / "bundle", manifest, parity_images=parity, force=cfg.force,
        reference=reference_data(cache, spec),
    )  # fmt: skip
    summary["parity"] = written.parity
    _say(
        f"bundle written to {run / 'bundle'} (ONNX vs TF max |Δp| "
        f"{written.parity['max_abs_prob_diff']:.1e} on {written.parity['n_images']} images)"
    )
    plot_curves(log_csv, run / "curves.png")
    plot_roc(test_metrics, run / "roc.png")
    plot_reliability(test_metrics["calibration"], run / "reliability.png")
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    (run / "metrics.json").write_text(
        json.dumps(summary, indent=2, default=float), encoding="utf-8"
    )
    write_report(run, summary)
    return summary


def _best_epoch(log_csv: Path) -> int:
    with open(log_csv, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["val_loss"] not in ("", "None")]
    if not rows:
        return 0
    return int(min(rows, key=lambda r: float(r["val_loss"]))["epoch"]) + 1


def _compact(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in ("roc",)}


def _parity_images(cache: Cache, rows: np.ndarray, n: int = 32) -> np.ndarray:
    from training.pipeline import tensor_batches

    return next(tensor_batches(cache, rows[:n], n))


def _finite(v: Any) -> Any:
    """NaN (e.g. AUC of a class absent from the test split) -> None: the manifest is strict JSON."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


def _metrics_for_manifest(test: dict[str, Any]) -> dict[str, Any]:
    cal = test["calibration"]
    return _finite(
        {
            "split": "test",
            "n": test["n"],
            "accuracy": test["accuracy"],
            "macro": test["macro"],
            "weighted": test["weighted"],
            "per_class": test["per_class"],
            "confusion_matrix": test["confusion_matrix"],
            "ece_before": cal["ece_before"],
            "ece_after": cal["ece_after"],
        }
    )


def run_class_names(summary: dict[str, Any]) -> tuple[str, ...]:
    """A run's classes in index order (runs that predate the key had the default three)."""
    return tuple(summary.get("class_names") or summary.get("class_counts") or CLASS_NAMES)


def make_manifest(
    cfg: TrainConfig, summary: dict[str, Any], spec: InputSpec, mspec: ModelSpec
) -> Manifest:
    """The manifest for a run: what a reader of the bundle needs, nothing it must guess."""
    manifest = Manifest(
        model_name=summary["model_name"],
        class_names=run_class_names(summary),
        input=spec,
        savedmodel=SavedModelInfo(cam_layer=mspec.cam_layer),
        calibration_temperature=float(summary["temperature"]),
        training=TrainingSummary(
            backbone=cfg.backbone,
            weights_source=mspec.weights_source,
            epochs=int(summary["epochs_run"]),
            dataset=summary["data"],
            class_counts=summary["class_counts"],
            split_sizes=summary["split_sizes"],
            metrics=_metrics_for_manifest(summary["test"]),
        ),
        extra={"demo": bool(cfg.demo), "best_epoch": summary["best_epoch"], "seed": cfg.seed},
    )
    if cfg.demo:
        manifest = replace(manifest, intended_use=DEMO_INTENDED_USE)
    return manifest
