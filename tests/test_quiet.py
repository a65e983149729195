"""The terminal shows the tool's own lines, not TensorFlow's or ONNX Runtime's native
start-up chatter (CUDA probing, absl, oneDNN), unless ``--verbose`` / CXR_VERBOSE=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_runner import cxr

from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES

ROOT = Path(__file__).resolve().parents[1]
#: TensorFlow's and ONNX Runtime's own start-up and CUDA-fallback lines
CHATTER = (
    "absl::InitializeLog",
    "cudart_stub",
    "cuInit",
    "oneDNN custom operations",
    "onnxruntime",
    "[E:",
    "[W:",
    "Failed to load",
    "CUDA failure",
    "TensorFlow binary",
)
needs_demo = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built"
)


def only_own_lines(stderr: str, prefix: str) -> list[str]:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert all(x.startswith(prefix) for x in lines), lines[:5]
    for word in CHATTER:
        assert word not in stderr, word
    return lines


@needs_demo
def test_classify_with_heatmaps_prints_only_its_own_lines(tmp_path):
    os.environ.pop("CXR_VERBOSE", None)
    r = cxr(
        "classify",
        DEMO_IMAGES,
        "--bundle",
        DEMO_BUNDLE,
        "--out",
        tmp_path / "r.csv",
        "--heatmaps",
        tmp_path / "m",
        env={"CXR_REVIEW_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    only_own_lines(r.stderr, "classify:")


@needs_demo
def test_cuda_asked_for_says_one_line_and_nothing_else(tmp_path):
    """Where CUDA cannot run (no driver, libraries missing) ONNX Runtime's fallback errors
    stay out; the one line naming the provider, and why not CUDA, is the tool's own."""
    os.environ.pop("CXR_VERBOSE", None)
    r = cxr(
        "classify",
        DEMO_IMAGES / "8-bit",
        "--bundle",
        DEMO_BUNDLE,
        "--out",
        tmp_path / "r.csv",
        "--provider",
        "cuda",
        env={"CXR_REVIEW_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = only_own_lines(r.stderr, "classify:")
    said = [x for x in lines if "ONNX Runtime" in x]
    assert len(said) == 1 and said[0].startswith(
        ("classify: ONNX Runtime CUDA", "classify: ONNX Runtime CPU, CUDA not used: ")
    )


@needs_demo
def test_report_prints_only_its_own_lines(tmp_path):
    os.environ.pop("CXR_VERBOSE", None)
    r = cxr(
        "report",
        DEMO_IMAGES / "8-bit",
        "--only",
        "phantom-00001.png",
        "--bundle",
        DEMO_BUNDLE,
        "--out",
        tmp_path / "r.pdf",
        env={"CXR_REVIEW_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = only_own_lines(r.stderr, "report:")
    assert sum(x.startswith("report: ONNX Runtime ") for x in lines) == 1


@needs_demo
def test_gradcam_child_is_quiet_and_says_its_device(capfd, monkeypatch):
    """The app's Grad-CAM child inherits the terminal: TensorFlow's start-up stays out of
    it, and the heatmap says where it was computed."""
    from desktop.cam_process import CamProcess
    from desktop.messages import CamJob
    from export.bundle import load_bundle
    from export.explain import Heatmap, ImageInput

    monkeypatch.delenv("CXR_VERBOSE", raising=False)
    image = ImageInput.from_path(
        DEMO_IMAGES / "8-bit" / "phantom-00001.png", load_bundle(DEMO_BUNDLE).input
    )
    proc = CamProcess()
    try:
        heat = proc.compute(CamJob(str(DEMO_BUNDLE), "sha", image, None, "gradcam"))
    finally:
        proc.close()
    assert isinstance(heat, Heatmap), getattr(heat, "trace", heat)
    assert heat.precision.endswith((" on CPU", " on GPU"))
    err = capfd.readouterr().err
    for word in CHATTER:
        assert word not in err, err[-2000:]
