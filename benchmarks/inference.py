"""VGG19 224² (weights=None) through our own export path: ORT vs TF vs the FLOP limit, and CAM."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    ms = median_ms(lambda: a @ b, repeats, warmup=2)
    return 2 * n**3 / (ms / 1000) / 1e9


def onnx_gflop(path: Path) -> float:
    """Multiply-adds x 2 of every Conv and MatMul/Gemm, from the graph's inferred shapes."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    for inp in model.graph.input:  # fix the batch to 1 for shape inference
        d = inp.type.tensor_type.shape.dim
        if d and not d[0].dim_value:
            d[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        shapes[vi.name] = [x.dim_value for x in vi.type.tensor_type.shape.dim]
    inits = {i.name: numpy_helper.to_array(i).shape for i in model.graph.initializer}
    flops = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = inits.get(node.input[1])
            out = shapes.get(node.output[0])
            if w is not None and out and all(out):
                # out NCHW: N, M, H, W; w: M, C/groups, kh, kw
                flops += 2 * int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            w = inits.get(node.input[1])
            out = shapes.get(node.output[0])
            if w is not None and out and all(out):
                flops += 2 * int(np.prod(out)) * int(w[0] if node.op_type == "MatMul" else w[-1])
    return flops / 1e9


def int8_latency(fp32: Path, out_dir: Path, reps: int) -> dict:
    """Static int8 (QDQ, per channel) of the same VGG19, through the app's session options."""
    from export.image_input import InputSpec, load_model_gray, to_model_tensor
    from export.onnx_runtime import make_session
    from export.quantize import quantize_int8
    from training.phantom_dataset import write_phantoms

    spec = InputSpec()
    write_phantoms(
        out_dir / "calib", 8, size=256, bit_depth=16, seed=5, flat=True, masks=False, workers=1
    )
    calib = np.stack(
        [
            to_model_tensor(load_model_gray(f, spec), spec)
            for f in sorted((out_dir / "calib").glob("*.png"))
        ]
    )
    t = time.perf_counter()
    quantize_int8(fp32, out_dir / "int8.onnx", calib)
    quant_s = time.perf_counter() - t
    x1 = calib[:1]
    res = {}
    for name, path in (("fp32_app", fp32), ("int8", out_dir / "int8.onnx")):
        sess, _ = make_session(path, "cpu")
        res[name] = median_ms(lambda s=sess: s.run(["logits"], {"image": x1}), reps)
    return {
        "int8_b1_ms": round(res["int8"], 1),
        "fp32_app_session_b1_ms": round(res["fp32_app"], 1),
        "int8_speedup": round(res["fp32_app"] / res["int8"], 2),
        "int8_quantize_s": round(quant_s, 1),
    }


def bundle_check_ms(bundle: Path, reps: int = 5) -> float:
    """What opening a bundle pays for ``export.bundle_safety`` (op allow-list of the
    SavedModel, ONNX domains and external data), on the bytes the hash check has read."""
    from export.bundle import read_manifest
    from export.bundle_safety import check_model_files, model_file_limits

    manifest = read_manifest(bundle)
    blobs = {rel: (bundle / rel).read_bytes() for rel in model_file_limits(manifest)}
    return median_ms(lambda: check_model_files(bundle, manifest, blobs), reps, warmup=1)


def ood_overhead_ms(bundle: Path, reps: int = 20) -> dict:
    """The guard's cost per image on top of classification: one ``classify`` (logits and
    features from the same run, then the score) against ``probabilities`` alone, batch 1,
    CPU; and the score by itself on outputs already computed."""
    from export.onnx_runtime import OnnxClassifier

    clf = OnnxClassifier(bundle, prefer="cpu")
    if clf.reference is None:
        return {}
    m = clf.manifest
    x1 = np.random.default_rng(3).uniform(0, 255, (1, m.input.height, m.input.width, 3))
    x1 = x1.astype(np.float32)
    plain = median_ms(lambda: clf.probabilities(x1), reps)
    both = median_ms(lambda: clf.classify(x1), reps)
    logits, feats = clf.session.run([m.onnx.logits_name, m.novelty.features_name], {"image": x1})
    score = median_ms(lambda: clf.reference.verdicts(logits, feats), reps)
    return {
        "ood_overhead_ms": round(max(0.0, both - plain), 2),
        "ood_score_ms": round(score, 3),
        "ood_classify_b1_ms": round(both, 1),
    }


def run_inference(quick: bool = True, keep: Path | None = None) -> dict:
    """All VGG19 figures; the exported bundle is left in ``keep`` when given (for later steps)."""
    import onnxruntime as ort

    from export.build import ReferenceData, write_bundle
    from export.bundle import Manifest, SavedModelInfo
    from export.cam_runtime import CamRunner
    from export.image_input import InputSpec
    from training.model import ModelSpec, build_model

    reps = 10 if quick else 30
    out: dict = {}
    out["sgemm_gflops"] = round(sgemm_gflops(), 1)
    model = build_model(ModelSpec("vgg19", 224, 3, "none"))
    x1 = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    x16 = np.repeat(x1, 16, axis=0)
    tmp = keep or Path(tempfile.mkdtemp(prefix="cxr-bench-"))
    manifest = Manifest(model_name="bench-vgg19", input=InputSpec(), savedmodel=SavedModelInfo())
    t = time.perf_counter()
    x8 = np.concatenate([x1 * k for k in np.linspace(0.3, 1.0, 8)])  # the guard's fit
    ref = ReferenceData([x8], np.arange(8) % 3, [x8[::-1]])
    write_bundle(model, tmp / "b", manifest, parity_images=x1, reference=ref)
    out["export_s"] = round(time.perf_counter() - t, 1)
    out.update(ood_overhead_ms(tmp / "b", reps))
    out["bundle_check_ms"] = round(bundle_check_ms(tmp / "b"), 1)
    out["vgg19_gflop"] = round(onnx_gflop(tmp / "b" / "model.onnx"), 2)
    out["flop_limit_ms"] = round(out["vgg19_gflop"] / out["sgemm_gflops"] * 1000, 1)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(
        str(tmp / "b" / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    out["ort_b1_ms"] = round(median_ms(lambda: sess.run(["logits"], {"image": x1}), reps), 1)
    b16 = median_ms(lambda: sess.run(["logits"], {"image": x16}), max(3, reps // 3))
    out["ort_b16_img_per_s"] = round(16 / (b16 / 1000), 1)
    out["tf_b1_ms"] = round(median_ms(lambda: model(x1, training=False), reps), 1)
    out["ort_vs_tf"] = round(out["tf_b1_ms"] / out["ort_b1_ms"], 2)
    out["ort_vs_limit"] = round(out["ort_b1_ms"] / out["flop_limit_ms"], 2)
    # float32 through the XLA `cam` signature first (TF's bfloat16 switch is process-wide),
    # then what the app's Grad-CAM process uses ("auto": bfloat16 where the CPU has AMX)
    fp32 = CamRunner(tmp / "b", precision="fp32")
    out["cam_fp32_xla_ms"] = round(median_ms(lambda: fp32.run(x1, [0]), reps), 1)
    runner = CamRunner(tmp / "b", precision="auto")
    out["cam_precision"] = runner.precision
    out["cam_ms"] = round(median_ms(lambda: runner.run(x1, [0]), reps), 1)
    out["cam_vs_ort"] = round(out["cam_ms"] / out["ort_b1_ms"], 2)
    a32, g32, _ = fp32.run(x16[:4] * np.linspace(0.5, 1, 4)[:, None, None, None], [0, 1, 2, 0])
    a16, g16, _ = runner.run(x16[:4] * np.linspace(0.5, 1, 4)[:, None, None, None], [0, 1, 2, 0])
    from export.cam import compute_cam

    c32, c16 = compute_cam("gradcam", a32, g32), compute_cam("gradcam", a16, g16)
    out["cam_bf16_vs_fp32_max_abs"] = round(float(np.abs(c32 - c16).max()), 4)
    out.update(int8_latency(tmp / "b" / "model.onnx", tmp, reps))
    return out
