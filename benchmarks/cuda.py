"""CUDA figures, when CUDA really runs: VGG19 224² latency, CUDA vs CPU agreement.

Needs neither TensorFlow nor Qt (it also runs on the GPU check machine):
the VGG19 graph is written with ``onnx.helper`` (NHWC input as our
tf2onnx graphs take it, random He-scaled weights: timing does not depend
on the weights), and sessions come from :func:`export.onnx_runtime.make_session`,
so the provider options are the app's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.inference import median_ms

#: VGG19's convolutions per stage (each stage ends in a 2x2 max pool)
VGG19_STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))


def why_no_cuda() -> str | None:
    """None when a CUDA session really runs here, else one line saying why not."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return f"onnxruntime missing ({exc})"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime has no CUDA provider (onnxruntime-gpu not installed)"
    from desktop.paths import DEMO_BUNDLE
    from export.onnx_runtime import OnnxClassifier

    try:
        clf = OnnxClassifier(DEMO_BUNDLE, prefer="cuda")
    except Exception as exc:  # any failure is the reason to report
        return f"CUDA session failed: {type(exc).__name__}: {exc}"
    if clf.provider != "CUDA":
        return "CUDA provider listed but the session fell back to CPU (driver or libraries)"
    return None


def write_vgg19(
    path: Path,
    classes: int = 3,
    seed: int = 0,
    *,
    stages: tuple[tuple[int, int], ...] = VGG19_STAGES,
    dense: tuple[int, ...] = (4096, 4096),
) -> Path:
    """VGG19 224² (NHWC in; ``logits`` and ``probabilities`` out) with random weights.
    ``stages``/``dense``: a narrower net of the same shape (the tests' stand-in)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def weight(name: str, shape: tuple[int, ...], fan_in: int) -> str:
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        inits.append(numpy_helper.from_array(w, name))
        return name

    def bias(name: str, n: int) -> str:
        inits.append(numpy_helper.from_array(np.zeros(n, np.float32), name))
        return name

    x, c_in, k = "nchw", 3, 0
    nodes.append(helper.make_node("Transpose", ["image"], [x], perm=[0, 3, 1, 2]))
    for s, (c_out, convs) in enumerate(stages):
        for _ in range(convs):
            w = weight(f"conv{k}_w", (c_out, c_in, 3, 3), c_in * 9)
            b = bias(f"conv{k}_b", c_out)
            nodes.append(helper.make_node("Conv", [x, w, b], [f"c{k}"], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [f"c{k}"], [f"r{k}"]))
            x, c_in, k = f"r{k}", c_out, k + 1
        nodes.append(
            helper.make_node("MaxPool", [x], [f"p{s}"], kernel_shape=[2, 2], strides=[2, 2])
        )
        x = f"p{s}"
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    side = 224 // 2 ** len(stages)
    x, n_in = "flat", c_in * side * side
    last = len(dense)
    for j, n_out in enumerate((*dense, classes)):
        w = weight(f"fc{j}_w", (n_in, n_out), n_in)
        b = bias(f"fc{j}_b", n_out)
        out = "logits" if j == last else f"fc{j}"
        nodes.append(helper.make_node("Gemm", [x, w, b], [out]))
        if out != "logits":
            nodes.append(helper.make_node("Relu", [out], [f"fr{j}"]))
            x = f"fr{j}"
        n_in = n_out
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "vgg19",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 224, 224, 3])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def vgg19_cuda_ms(work: Path) -> dict:
    """Batch 1 and 32 on CUDA through the app's session options (strict fp32 by default)."""
    from export.onnx_runtime import make_session

    path = write_vgg19(work / "vgg19.onnx")
    sess, provider = make_session(path, "cuda")
    if provider != "CUDA":
        return {"cuda_error": "VGG19 session fell back to CPU"}
    out = {}
    rng = np.random.default_rng(1)
    for bs in (1, 32):
        x = rng.uniform(0, 255, (bs, 224, 224, 3)).astype(np.float32)
        out[f"cuda_vgg19_b{bs}_ms"] = round(
            median_ms(lambda x=x: sess.run(None, {"image": x}), 20, warmup=5), 3
        )
    path.unlink(missing_ok=True)
    return out


def cuda_vs_cpu_max_dp(bundle: Path, images: list[Path]) -> float:
    """Largest |probability difference| between CUDA and CPU on these images (the bundle's
    own input contract)."""
    from export.image_input import load_model_input
    from export.onnx_runtime import OnnxClassifier

    cuda = OnnxClassifier(bundle, prefer="cuda")
    cpu = OnnxClassifier(bundle, prefer="cpu")
    spec = cpu.manifest.input
    xs = []
    for p in images:
        try:
            xs.append(load_model_input(p, spec))
        except ValueError:
            continue
    x = np.stack(xs)
    return float(np.abs(cuda.probabilities(x) - cpu.probabilities(x)).max())


def run_cuda(work: Path) -> dict:
    """The CUDA keys, or ``{"cuda": reason}`` when CUDA does not run here."""
    reason = why_no_cuda()
    if reason is not None:
        return {"cuda": reason}
    from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES

    out: dict = {"cuda": "ok"}
    images = sorted(p for p in Path(DEMO_IMAGES).rglob("*.png"))
    out["cuda_vs_cpu_max_dp"] = cuda_vs_cpu_max_dp(DEMO_BUNDLE, images)
    out["cuda_vs_cpu_images"] = len(images)
    out.update(vgg19_cuda_ms(work))
    return out
