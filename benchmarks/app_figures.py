"""Start-up time, folder throughput vs raw ONNX Runtime, int8 accuracy, training memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def startup_ms(repeats: int = 3) -> dict:
    """Process start to main window shown (offscreen), median; TF must not be loaded by then."""
    times, tf_loaded = [], False
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CXR_REVIEW_STARTUP_PROBE": "1"}
    with tempfile.TemporaryDirectory() as d:
        env["XDG_CONFIG_HOME"] = env["CXR_REVIEW_HOME"] = d
        for _ in range(repeats):
            t0 = time.time()
            r = subprocess.run(
                [sys.executable, "-m", "desktop", "--demo"],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                cwd=ROOT,
            )
            line = next((x for x in r.stdout.splitlines() if x.startswith("window-shown")), None)
            if line is None:
                return {"startup_error": r.stderr[-300:]}
            times.append((float(line.split()[1]) - t0) * 1000)
            tf_loaded |= "tensorflow=True" in line
    return {"startup_ms": round(float(np.median(times)), 0), "startup_tf_loaded": tf_loaded}


def raw_ort_img_per_s(bundle: Path, batch: int = 16, repeats: int = 10) -> float:
    from export.onnx_runtime import OnnxClassifier

    clf = OnnxClassifier(bundle, prefer="cpu")
    m = clf.manifest.input
    x = np.random.default_rng(0).uniform(0, 255, (batch, m.height, m.width, 3)).astype(np.float32)
    clf.logits(x)
    t = time.perf_counter()
    for _ in range(repeats):
        clf.logits(x)
    return batch * repeats / (time.perf_counter() - t)


def int8_demo(bundle: Path, n: int = 300) -> dict:
    """Quantise the demo model and compare accuracy with fp32 on fresh phantoms."""
    import shutil

    from export.bundle import load_bundle
    from export.image_input import load_model_gray, to_model_tensor
    from export.onnx_runtime import make_session
    from export.quantize import quantize_int8
    from training.phantom_dataset import write_phantoms
    from training.phantoms import CLASSES

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_phantoms(d / "p", n, size=256, bit_depth=16, seed=321, flat=True, masks=False)
        import csv

        rows = list(csv.DictReader((d / "p" / "labels.csv").open()))
        m = load_bundle(bundle)
        x = np.stack(
            [to_model_tensor(load_model_gray(d / "p" / r["path"], m.input), m.input) for r in rows]
        )
        y = np.array([CLASSES.index(r["label"]) for r in rows])
        shutil.copy(bundle / m.onnx.file, d / "fp32.onnx")
        quantize_int8(d / "fp32.onnx", d / "int8.onnx", x[:64])
        acc = {}
        for name in ("fp32", "int8"):
            sess, _ = make_session(d / f"{name}.onnx", "cpu")
            pred = np.concatenate(
                [
                    sess.run(["logits"], {"image": x[i : i + 32]})[0].argmax(1)
                    for i in range(0, len(x), 32)
                ]
            )
            acc[name] = float((pred == y).mean())
    return {
        "int8_demo_accuracy": round(acc["int8"], 4),
        "fp32_demo_accuracy": round(acc["fp32"], 4),
        "int8_accuracy_delta": round(100 * (acc["int8"] - acc["fp32"]), 2),
    }


def train_peak_rss(n: int = 600) -> dict:
    """Cache build + one epoch (compact, 128²) in a child; its peak RSS."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("CXR_BENCH_TMP")) as d:
        t_gen = time.perf_counter()
        phantoms = ["phantoms", f"{d}/p", "--n", str(n), "--size", "512", "--bit-depth", "16"]
        cli = [sys.executable, "-m", "desktop.cli"]
        subprocess.run([*cli, *phantoms], check=True, capture_output=True, cwd=ROOT)
        gen_s = time.perf_counter() - t_gen
        t = time.perf_counter()
        options = "--backbone compact --weights none --image-size 128 --epochs 1 --batch-size 32"
        train_args = ["train", f"{d}/p", "--out", f"{d}/run", *options.split()]
        # a fresh child of its own, so its peak is that of the training alone
        child = [sys.executable, "-m", "benchmarks.children.train_rss", *train_args]
        r = subprocess.run(child, capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            return {"train_error": r.stderr[-300:]}
        line = next(x for x in r.stdout.splitlines() if x.startswith("peak-rss-kb"))
        self_kb, child_kb = (int(v) for v in line.split()[1:])
    return {
        "train_images": n,
        "train_peak_rss_mb": round(self_kb / 1024, 0),
        "train_decode_worker_peak_rss_mb": round(child_kb / 1024, 0),
        "train_seconds": round(time.perf_counter() - t, 1),
        "train_phantoms_s": round(gen_s, 1),
    }
