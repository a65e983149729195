"""``python -m benchmarks.gpu_check [--phantoms N] [--films N] [--json FILE]``: the GPU figures.

Runs where only the ONNX path's dependencies are (no TensorFlow, no Qt):
the folder engine's decoding on one core and on all cores, the headless
folder pass (what ``cxr classify`` runs) on 512² phantoms and on
2,500x2,048 16-bit films, threads against processes on this machine, and
when CUDA runs the VGG19 latencies and the CUDA/CPU agreement. Without CUDA
it says so in one line, writes the CPU figures and exits 0.
``benchmarks/gpu_check.sh`` sets up onnxruntime-gpu on the GPU test machine
and runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _scaling(files: list[Path], spec, workers: list[int]) -> dict:
    """Decode throughput with threads and with processes (the engine's rule, checked)."""
    from benchmarks.decoding import decode_img_s
    from export.decode_pool import WorkerPlan

    out = {}
    for processes in (False, True):
        for w in workers:
            if processes and w == 1:
                continue
            rate = decode_img_s(files, spec, plan=WorkerPlan(w, processes))
            out[f"films_decode_{'proc' if processes else 'thr'}{w}_img_s"] = round(rate, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    p.add_argument("--phantoms", type=int, default=2000, help="512² 16-bit phantoms (2000)")
    p.add_argument("--films", type=int, default=400, help="2,500x2,048 16-bit PNGs (400)")
    p.add_argument("--scaling", type=int, default=96, help="films for threads vs processes")
    p.add_argument("--json", dest="json_out", default=os.path.join(os.environ.get("OUT", "."),
                                                                    "gpu-check.json"))  # fmt: skip
    args = p.parse_args(argv)

    from benchmarks.__main__ import check_bars, machine

    out: dict = {"machine": machine(), "args": vars(args)}
    t0 = time.perf_counter()

    def save() -> None:
        out["check_seconds"] = round(time.perf_counter() - t0, 1)
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")

    def step(name: str, fn) -> None:
        t = time.perf_counter()
        print(f"gpu_check: {name} …", file=sys.stderr, flush=True)
        try:
            out.update(fn())
        except Exception as exc:  # a failed step is recorded, the rest runs
            out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:600]
        out.setdefault("step_seconds", {})[name] = round(time.perf_counter() - t, 1)
        save()

    import onnxruntime as ort

    out["onnxruntime"] = ort.__version__
    out["providers"] = ort.get_available_providers()
    from export.onnx_runtime import _pip_library_dirs

    if hasattr(ort, "preload_dlls") and _pip_library_dirs():
        try:
            ort.preload_dlls()  # CUDA and cuDNN from the nvidia pip packages, when present
        except Exception as exc:  # recorded; the CUDA step says what it means
            out["preload_dlls_error"] = str(exc)[:300]

    from benchmarks.cuda import run_cuda
    from benchmarks.decoding import (
        folder_figures,
        one_core_figures,
        write_big_png,
        write_big_pngs,
    )
    from desktop.paths import DEMO_BUNDLE
    from export.bundle import load_bundle
    from export.decode_pool import usable_cores

    spec = load_bundle(DEMO_BUNDLE).input
    out["usable_cores"] = usable_cores()
    with tempfile.TemporaryDirectory(prefix="cxr-gpu-check-") as d:
        work = Path(d)

        def one_core() -> dict:
            return one_core_figures(write_big_png(work / "one.png"), spec)

        def data() -> dict:
            """Both folders first: their writers fork, which is safe before CUDA starts."""
            from training.phantom_dataset import write_phantoms

            t = time.perf_counter()
            write_phantoms(work / "phantoms", args.phantoms, size=512, bit_depth=16, seed=2,
                           flat=True, masks=False)  # fmt: skip
            write_big_pngs(work / "films", args.films)
            return {"data_s": round(time.perf_counter() - t, 1)}

        def films() -> dict:
            res = folder_figures(work / "films")
            got = {f"films_{k}": v for k, v in res.items()}
            got["films_projected_10000_s"] = round(10000 / res["folder_engine_img_s"], 1)
            return got

        def scaling() -> dict:
            files = sorted((work / "films").glob("*.png"))[: args.scaling]
            cores = usable_cores()
            counts = sorted({1, 4, max(1, cores // 2), cores})
            return _scaling(files, spec, counts)

        step("data", data)
        step("one_core", one_core)
        step("cuda", lambda: run_cuda(work))
        if out.get("cuda") != "ok":
            print(f"gpu_check: CUDA does not run here: {out.get('cuda')}", flush=True)
        step("phantoms", lambda: folder_figures(work / "phantoms"))
        step("films", films)
        step("scaling", scaling)
    out["bars_met"] = check_bars(out)
    save()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
