"""TensorFlow paths: VGG19 weights, offline message, training end to end, export parity.

Small on purpose: 32² inputs, a few dozen phantoms, one VGG19 export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from export.bundle import BundleError, Manifest, load_bundle, write_manifest
from export.image_input import InputSpec
from training.model import ModelSpec, TrainError, build_model

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    d = tmp_path_factory.mktemp("weights")
    ref = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    ref.save_weights(str(d / "vgg19_notop.weights.h5"))
    with h5py.File(d / "vgg19_notop.h5", "w") as fh:  # the layout of Keras' own ImageNet file
        legacy_h5_format.save_weights_to_hdf5_group(fh, ref)
    return ref, d


@pytest.mark.parametrize("name", ["vgg19_notop.weights.h5", "vgg19_notop.h5"])
def test_vgg19_from_a_local_weights_file(vgg_files, name):
    ref, folder = vgg_files
    model = build_model(ModelSpec("vgg19", 32, 3, str(folder / name)))
    for layer in ("block1_conv1", "block5_conv4"):
        assert np.array_equal(
            model.get_layer(layer).get_weights()[0], ref.get_layer(layer).get_weights()[0]
        )
    assert model.get_layer("block5_conv4").output.shape[1:] == (2, 2, 512)
    assert len(model.outputs) == 2
    assert model.outputs[0] is model.get_layer("logits").output
    assert model.outputs[1] is model.get_layer("probabilities").output


def test_bad_weights_file_and_offline_imagenet(tmp_path, monkeypatch):
    with pytest.raises(TrainError, match="does not exist"):
        build_model(ModelSpec("vgg19", 32, 3, str(tmp_path / "missing.h5")))
    (tmp_path / "junk.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(TrainError, match="cannot load VGG19 weights"):
        build_model(ModelSpec("vgg19", 32, 3, str(tmp_path / "junk.weights.h5")))
    import urllib.error

    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(TrainError) as e:
        build_model(ModelSpec("vgg19", 32, 3, "imagenet"))
    assert "--weights PATH" in str(e.value) and "\n" not in str(e.value)


def test_vgg_preprocessing_is_in_the_graph():
    """The graph takes [0, 255] RGB: BGR flip and ImageNet mean subtraction happen inside."""
    model = build_model(ModelSpec("vgg19", 32, 3, "none"))
    pre = keras.Model(model.inputs, model.get_layer("vgg_preprocess").output)
    x = np.zeros((1, 32, 32, 3), np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 10.0, 20.0, 30.0  # R, G, B
    y = np.asarray(pre(x))[0, 0, 0]
    np.testing.assert_allclose(y, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-5)


def test_vgg19_export_parity_and_cam_signature(tmp_path):
    from export.build import write_bundle

    model = build_model(ModelSpec("vgg19", 32, 3, "none"))
    manifest = Manifest(model_name="vgg19-test", input=InputSpec(height=32, width=32))
    images = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype(np.float32)
    written = write_bundle(model, tmp_path / "b", manifest, parity_images=images)
    assert written.parity["max_abs_prob_diff"] <= 1e-4
    assert written.parity["cam_activation_shape"] == [2, 2, 512]
    assert written.savedmodel.cam_layer == "block5_conv4"
    assert load_bundle(tmp_path / "b").files == written.files


def test_augmented_batches_keep_shape_range_and_labels(tmp_path):
    """The augmentation path (the trained fixture runs without it, for fixed weights)."""
    from training.cache import Cache
    from training.pipeline import make_dataset

    n, size = 6, 32
    images = np.random.default_rng(0).integers(0, 256, (n, size, size), dtype=np.uint8)
    images.tofile(tmp_path / "cache.u8")
    labels = np.arange(n, dtype=np.int64) % 3
    cache = Cache(
        tmp_path / "cache.u8",
        size,
        [f"{i}.png" for i in range(n)],
        labels,
        np.array(["train"] * n),
        [],
    )
    rows = np.arange(n)
    plain = make_dataset(cache, rows, 3, n, training=False)
    aug = make_dataset(cache, rows, 3, n, training=True, flip=True, augment=True, seed=1)
    (x0, y0), (x1, y1) = next(iter(plain)), next(iter(aug))
    assert x1.shape == x0.shape == (n, size, size, 3) and x1.dtype == x0.dtype
    assert float(np.min(x1)) >= 0.0 and float(np.max(x1)) <= 255.0
    assert sorted(np.argmax(y1, axis=1)) == sorted(np.argmax(y0, axis=1))
    assert not np.allclose(np.sort(np.asarray(x1).ravel()), np.sort(np.asarray(x0).ravel()))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from training.phantom_dataset import write_phantoms
    from training.train import TrainConfig, train

    root = tmp_path_factory.mktemp("e2e")
    write_phantoms(root / "data", 30, size=64, bit_depth=16, seed=3, workers=1)
    # the same weights on every run: fixed data and seed, and no augmentation (its random
    # layers run in a parallel tf.data map, so the order of their draws varies run to run;
    # TF's op-determinism switch would fix that but makes the XLA `cam` export fail)
    cfg = TrainConfig(
        data=str(root / "data"),
        out=str(root / "run"),
        backbone="compact",
        weights="none",
        image_size=32,
        epochs=2,
        batch_size=8,
        distribute="mirrored",
        workers=1,
        seed=0,
        augment=False,
    )
    summary = train(cfg)
    return root, summary


def test_training_run_writes_everything(trained_run):
    root, summary = trained_run
    run = root / "run"
    for name in (
        "metrics.json",
        "report.md",
        "curves.png",
        "roc.png",
        "reliability.png",
        "split.csv",
        "training_log.csv",
        "config.json",
    ):
        assert (run / name).is_file(), name
    m = load_bundle(run / "bundle")
    assert m.parity["max_abs_prob_diff"] <= 1e-4 and m.parity["n_images"] >= 1
    assert m.training.backbone == "compact" and m.training.split_sizes["test"] >= 1
    assert m.savedmodel.cam_layer == "cam_conv" and m.calibration_temperature > 0
    assert "tensorflow" in m.versions and "Research use only" in m.intended_use
    metrics = json.loads((run / "metrics.json").read_text())
    t = metrics["test"]
    assert set(t["per_class"]) == {"COVID-19", "Normal", "Pneumonia"}
    assert {"ece_before", "ece_after", "temperature"} <= set(t["calibration"])
    assert "roc_auc" in t["macro"]
    assert "Test split" in (run / "report.md").read_text()
    assert summary["epochs_run"] >= 1 and summary["test"]["n"] == m.training.split_sizes["test"]


def test_evaluate_and_reexport_int8_and_tamper(trained_run, tmp_path):
    from training.evaluate_cmd import evaluate_bundle
    from training.export_cmd import export_run

    root, _ = trained_run
    ev = evaluate_bundle(str(root / "run" / "bundle"), str(root / "data"), workers=1)
    assert ev["n"] == 30 and ev["provider"] == "CPU" and not ev["skipped"]
    m = export_run(str(root / "run"), str(tmp_path / "b2"), quantize="int8")
    assert "int8" in m.extra and (tmp_path / "b2" / "model.int8.onnx").is_file()
    assert "model.int8.onnx" in m.files
    victim = tmp_path / "b2" / "model.onnx"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.onnx"):
        load_bundle(tmp_path / "b2")


def test_onnx_is_cross_checked_against_the_manifest(trained_run, tmp_path):
    import shutil

    from export.onnx_runtime import OnnxClassifier

    root, _ = trained_run
    b = tmp_path / "b"
    shutil.copytree(root / "run" / "bundle", b)
    m = load_bundle(b)
    write_manifest(b, replace(m, class_names=("A", "B", "C", "D")))
    with pytest.raises(BundleError, match="3 classes but the manifest lists 4"):
        OnnxClassifier(b)
    write_manifest(b, replace(m, input=replace(m.input, height=64, width=64)))
    with pytest.raises(BundleError, match="ONNX input"):
        OnnxClassifier(b)


def test_cli_train_bad_weights_is_one_line(tmp_path):
    from training.phantom_dataset import write_phantoms

    write_phantoms(tmp_path / "d", 30, size=48, bit_depth=8, workers=1)  # 10 a class: splittable
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "desktop.cli",
            "train",
            str(tmp_path / "d"),
            "--out",
            str(tmp_path / "run"),
            "--weights",
            str(tmp_path / "nope.h5"),
            "--image-size",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("cxr train: error: --weights file")


def test_cam_runner_on_a_trained_bundle(trained_run):
    from export.cam import compute_cam
    from export.cam_runtime import CamRunner

    root, _ = trained_run
    runner = CamRunner(root / "run" / "bundle")
    x = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    for method in ("gradcam", "gradcam++", "hirescam"):
        acts, grads, _ = runner.run(x[None], [1])
        cam = compute_cam(method, acts, grads)[0]
        assert cam.shape == (4, 4) and cam.min() >= 0.0 and cam.max() <= 1.0
    acts, grads, probs = runner.run(np.stack([x, x]), [0, 2])
    assert acts.shape == grads.shape == (2, 4, 4, 96)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(grads[0], grads[1])  # gradients of different class scores


def _copy_bundle(trained_run, tmp_path):
    import shutil

    root, _ = trained_run
    b = tmp_path / "b"
    shutil.copytree(root / "run" / "bundle", b)
    return b, load_bundle(b)


def test_hostile_bundles_are_refused_with_a_reason(trained_run, tmp_path):
    """Re-hashed manifests (an attacker or a careless script) must still not get through."""
    from export.build import export_savedmodel
    from export.cam_runtime import CamRunner
    from export.onnx_runtime import OnnxClassifier

    b, m = _copy_bundle(trained_run, tmp_path)
    # truncated ONNX, manifest re-hashed so the hash check passes
    onnx_bytes = (b / "model.onnx").read_bytes()
    (b / "model.onnx").write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
    write_manifest(b, m)
    with pytest.raises(BundleError, match="ONNX model cannot be loaded"):
        OnnxClassifier(b)
    (b / "model.onnx").write_bytes(onnx_bytes)
    # class names swapped in the manifest: the models carry their own order
    swapped = write_manifest(b, replace(m, class_names=("Normal", "COVID-19", "Pneumonia")))
    with pytest.raises(BundleError, match="exported for classes"):
        OnnxClassifier(b)
    with pytest.raises(BundleError, match="exported for classes"):
        CamRunner(b, swapped)
    # a SavedModel from another (4-class) model
    import shutil

    other = build_model(ModelSpec("compact", 32, 4, "none"))
    shutil.rmtree(b / "savedmodel")
    export_savedmodel(other, b / "savedmodel", "cam_conv", ("A", "B", "C", "D"))
    m2 = write_manifest(b, m)
    with pytest.raises(BundleError):
        CamRunner(b, m2)
    # a SavedModel without the cam signature
    import tensorflow as tf

    class ServeOnly(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def serve(self, image):
            return {"logits": self.model(image)[0]}

    shutil.rmtree(b / "savedmodel")
    mod = ServeOnly(build_model(ModelSpec("compact", 32, 3, "none")))
    tf.saved_model.save(mod, str(b / "savedmodel"), signatures={"serving_default": mod.serve})
    m3 = write_manifest(b, m)
    with pytest.raises(BundleError, match="no 'cam' signature"):
        CamRunner(b, m3)


@pytest.mark.parametrize("name", ["model.pkl", "savedmodel/extra.keras", "helper.py"])
def test_code_bearing_files_are_refused_even_when_listed(trained_run, tmp_path, name):
    b, m = _copy_bundle(trained_run, tmp_path)
    (b / name).write_bytes(b"\x80\x04K\x01.")  # a tiny pickle
    write_manifest(b, m)  # listed, with a correct hash
    with pytest.raises(BundleError, match="could run code"):
        load_bundle(b)


def test_bfloat16_cam_path_agrees_with_float32(trained_run, tmp_path, monkeypatch):
    """The plain-graph twin of `cam` in bfloat16 (oneDNN; the app's Grad-CAM child on CPUs with
    bf16) against float32, on the same weights. Run in a child: TF's switch is global.

    What holds for any model: bfloat16 keeps 8 significant bits (unit roundoff 2**-8, 0.4 %),
    so rounding the inputs of the compact CNN's seven convolutions moves the CAM layer's
    activations by about 1 % of their largest value; the bound is 4 % (ten roundoffs). The
    heatmap is not continuous in the arithmetic (a head ReLU that flips changes the gradients
    by a step, and a map whose float32 positive part is a near-cancellation is rescaled to
    [0, 1]), so single maps can differ a lot; the median over eight maps stays within 3 %.
    """
    from export.cam import compute_cam
    from export.cam_runtime import PRECISION_ENV, cpu_has_bf16, use_bfloat16

    assert not use_bfloat16() and not use_bfloat16("fp32") and use_bfloat16("bf16")
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert not use_bfloat16("auto")
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert use_bfloat16("auto")
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ValueError):
        use_bfloat16("auto")
    monkeypatch.delenv(PRECISION_ENV)
    root, _ = trained_run
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    cls = [i % 3 for i in range(8)]
    np.savez(tmp_path / "in.npz", x=x, cls=cls)
    code = (
        "import sys, numpy as np\n"
        "from export.cam_runtime import CamRunner\n"
        "d = np.load(sys.argv[2] + '/in.npz'); x, cls = d['x'], d['cls']\n"
        "r = CamRunner(sys.argv[1], precision='bf16')\n"
        "out = {'fast': r.run(x, cls), 'exact': r.run(x, cls, exact=True),\n"
        "       'ref': CamRunner(sys.argv[1]).run(x, cls)}\n"
        "np.savez(sys.argv[2] + '/out.npz', **{f'{k}_{i}': v[i] for k, v in out.items()\n"
        "                                     for i in (0, 1)})\n"
        "print(r.precision)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(root / "run" / "bundle"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1].startswith("bfloat16")
    out = np.load(tmp_path / "out.npz")
    (a_fast, g_fast), (a_exact, g_exact), (a_ref, g_ref) = (
        (out[f"{k}_0"], out[f"{k}_1"]) for k in ("fast", "exact", "ref")
    )
    # exact=True is the float32 XLA path, switch or not
    assert np.abs(a_exact - a_ref).max() < 1e-5 and np.abs(g_exact - g_ref).max() < 1e-5
    scale = np.abs(a_exact).max(axis=(1, 2, 3))
    rel = np.abs(a_fast - a_exact).max(axis=(1, 2, 3)) / np.maximum(scale, 1e-12)
    assert rel.max() < 0.04, rel
    if cpu_has_bf16():  # the rewrite really ran
        assert rel.max() > 0
    maps = [compute_cam("gradcam", a, g) for a, g in ((a_fast, g_fast), (a_exact, g_exact))]
    per_map = np.abs(maps[0] - maps[1]).mean(axis=(1, 2))
    assert np.isfinite(per_map).all() and np.median(per_map) < 0.03, per_map


def test_gradcam_child_process_displays_fast_and_flags_exact(trained_run, tmp_path):
    """The app's Grad-CAM child gets the image's small inputs (it never decodes): heatmaps
    for display in bfloat16 where the CPU has it; the attention figures (overlay=False,
    exact=True) in float32, as reports and `cxr audit`."""
    from desktop.cam_process import CamProcess
    from desktop.messages import CamFailure, CamJob
    from export.bundle import load_bundle
    from export.cam_runtime import cpu_has_bf16
    from export.explain import Heatmap, ImageInput
    from export.image_input import from_array

    root, _ = trained_run
    bundle = root / "run" / "bundle"
    m = load_bundle(bundle)
    pixels = np.random.default_rng(1).uniform(0, 255, (48, 40)).astype(np.uint8)
    image = ImageInput.from_decoded(from_array(pixels), m.input)
    proc = CamProcess()
    try:
        shown = proc.compute(CamJob(str(bundle), "sha", image, None, "gradcam"))
        assert isinstance(shown, Heatmap), getattr(shown, "trace", shown)
        assert shown.overlay.shape == (48, 40) and shown.attention.lung_mask_source == "estimated"
        assert shown.precision.startswith("bfloat16" if cpu_has_bf16() else "fp32")
        assert shown.precision.endswith((" on CPU", " on GPU"))  # where Grad-CAM ran
        flag = proc.compute(
            CamJob(str(bundle), "sha", image, 1, "gradcam", overlay=False, exact=True)
        )
        assert isinstance(flag, Heatmap) and flag.precision.startswith("fp32 (XLA)")
        assert flag.overlay is None and flag.lung_mask is None and flag.class_index == 1
        bad = proc.compute(CamJob(str(tmp_path / "nope"), "sha", image, None, "gradcam"))
        assert isinstance(bad, CamFailure) and "nope" in bad.error
    finally:
        proc.close()
