"""Bundle manifest: round trip, and every kind of tampering is refused with the file named."""

from __future__ import annotations

import json
import os

import pytest

from desktop.paths import DEMO_BUNDLE
from export.bundle import (
    FORMAT_VERSION,
    BundleError,
    Manifest,
    OnnxInfo,
    TrainingSummary,
    load_bundle,
    read_manifest,
    write_manifest,
)
from export.image_input import InputSpec


def _make_bundle(root, **overrides):
    (root / "savedmodel" / "variables").mkdir(parents=True)
    # real model files: load_bundle parses them (export/bundle_safety.py)
    (root / "model.onnx").write_bytes((DEMO_BUNDLE / "model.onnx").read_bytes())
    pb = DEMO_BUNDLE / "savedmodel" / "saved_model.pb"
    (root / "savedmodel" / "saved_model.pb").write_bytes(pb.read_bytes())
    (root / "savedmodel" / "variables" / "variables.data-00000-of-00001").write_bytes(b"w" * 999)
    m = Manifest(
        model_name="phantom-compact",
        input=InputSpec(height=64, width=64, resize="pad"),
        onnx=OnnxInfo(opset=17),
        calibration_temperature=1.7,
        training=TrainingSummary(
            backbone="compact",
            weights_source="none",
            epochs=3,
            class_counts={"COVID-19": 10, "Normal": 10, "Pneumonia": 10},
            split_sizes={"train": 24, "val": 3, "test": 3},
            metrics={"accuracy": 0.9},
        ),
        parity={"max_abs_prob_diff": 1e-6},
        versions={"numpy": "2"},
        **overrides,
    )
    return write_manifest(root, m)


def test_round_trip(tmp_path):
    written = _make_bundle(tmp_path)
    loaded = load_bundle(tmp_path)
    assert loaded == written
    assert loaded.input == InputSpec(height=64, width=64, resize="pad")
    assert set(loaded.files) == {
        "model.onnx",
        "savedmodel/saved_model.pb",
        "savedmodel/variables/variables.data-00000-of-00001",
    }
    assert loaded.format_version == FORMAT_VERSION and loaded.created
    assert "Research use only" in loaded.intended_use
    assert load_bundle(tmp_path / "manifest.json") == written  # the manifest path works too


@pytest.mark.parametrize(
    "victim", ["model.onnx", "savedmodel/variables/variables.data-00000-of-00001"]
)
def test_tampered_file_is_named(tmp_path, victim):
    _make_bundle(tmp_path)
    p = tmp_path / victim
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path)
    assert e.value.file == victim and victim in str(e.value) and "sha256" in str(e.value)


def test_missing_and_unlisted_files(tmp_path):
    _make_bundle(tmp_path)
    pb = tmp_path / "savedmodel" / "saved_model.pb"
    kept = pb.read_bytes()
    pb.unlink()
    with pytest.raises(BundleError, match=r"saved_model\.pb' listed in the manifest is missing"):
        load_bundle(tmp_path)
    pb.write_bytes(kept)
    load_bundle(tmp_path)
    (tmp_path / "savedmodel" / "evil.py").write_text("import os")
    with pytest.raises(BundleError, match=r"evil\.py' is not listed"):
        load_bundle(tmp_path)


def test_symlink_in_bundle_refused(tmp_path):
    _make_bundle(tmp_path)
    os.symlink("/etc/passwd", tmp_path / "link")
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(tmp_path)


def _edit(tmp_path, fn):
    path = tmp_path / "manifest.json"
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="something-else"), "format"),
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer cxr-review"),
        (lambda d: d.update(format_version="1"), "format_version"),
        (lambda d: d.pop("class_names"), "class_names"),
        (lambda d: d.update(class_names=["A", "A", "B"]), "class_names"),
        (lambda d: d.update(class_names=["only"]), "class_names"),
        (lambda d: d.update(calibration_temperature=-1), "calibration_temperature"),
        (lambda d: d.update(calibration_temperature=True), "calibration_temperature"),
        (lambda d: d["input"].update(resize="crop"), "input"),
        (lambda d: d["input"].update(height="tall"), "input"),
        (lambda d: d.update(onnx=[]), "onnx"),
        (lambda d: d["files"].update({"../../etc/passwd": "0" * 64}), "unsafe path"),
        (lambda d: d["files"].update({"/abs": "0" * 64}), "unsafe path"),
        (lambda d: d["files"].update({"model.onnx": "abc"}), "sha256"),
        (lambda d: d["files"].pop("model.onnx"), "model.onnx"),
        (lambda d: d.update(model_name=""), "model_name"),
    ],
)
def test_edited_manifest_refused(tmp_path, edit, message):
    _make_bundle(tmp_path)
    _edit(tmp_path, edit)
    with pytest.raises(BundleError) as e:
        load_bundle(tmp_path)
    assert message in str(e.value)


def test_unknown_keys_are_ignored(tmp_path):
    written = _make_bundle(tmp_path)
    _edit(tmp_path, lambda d: d.update(future_field={"x": 1}))
    assert load_bundle(tmp_path) == written


def test_not_json_not_a_folder_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BundleError, match="not a folder"):
        load_bundle(tmp_path / "file.txt")
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="not a JSON object"):
        read_manifest(tmp_path)


def test_write_requires_model_file(tmp_path):
    with pytest.raises(BundleError, match=r"model\.onnx"):
        write_manifest(tmp_path, Manifest(model_name="x"))


def test_cuda_session_is_strict_fp32_unless_asked(monkeypatch, tmp_path):
    """CUDA answers must not depend on the GPU: TF32 is off unless CXR_CUDA_TF32=1."""
    import onnxruntime as ort

    from export import onnx_runtime as rt

    seen = []

    class FakeSession:
        def __init__(self, path, opts, providers):
            seen.append(providers)

        def get_providers(self):
            return [rt.CUDA if isinstance(seen[-1][0], tuple) else rt.CPU]

    monkeypatch.setattr(ort, "get_available_providers", lambda: [rt.CUDA, rt.CPU])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(rt, "_driver_problem", lambda major: None)  # as if a GPU were here
    monkeypatch.setattr(rt, "_library_problem", lambda major: None)
    monkeypatch.delenv(rt.TF32_ENV, raising=False)
    _sess, provider = rt.make_session(tmp_path / "m.onnx", "auto")
    assert provider == "CUDA" and seen[-1][0] == (rt.CUDA, {"prefer_nhwc": "1", "use_tf32": "0"})
    monkeypatch.setenv(rt.TF32_ENV, "1")
    rt.make_session(tmp_path / "m.onnx", "cuda")
    assert seen[-1][0][1]["use_tf32"] == "1"
    _sess, provider = rt.make_session(tmp_path / "m.onnx", "cpu")
    assert provider == "CPU" and seen[-1] == [rt.CPU]
