"""Hostile bundles, built here as an attacker would (model files changed, manifest re-hashed):
each is refused with its reason before TensorFlow or ONNX Runtime loads it, and nothing
is written or read."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from desktop.cli import main as cli_main
from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES
from export.bundle import BundleError, load_bundle, read_manifest, write_manifest
from export.graph_ops import all_ops, read_saved_model

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="no demo bundle"
)
SIZE = 64  # the demo bundle's input


def _rehash(bundle: Path) -> Path:
    """What an attacker does after changing files: a manifest that vouches for them."""
    write_manifest(bundle, read_manifest(bundle))
    return bundle


def _copy_demo(dst: Path) -> Path:
    shutil.copytree(DEMO_BUNDLE, dst)
    return dst


@pytest.fixture(scope="module")
def tf():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _module(tf, side_effect):
    """A tiny model with the bundle's signatures whose ``cam`` also runs ``side_effect()``."""
    image = tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="image")
    index = tf.TensorSpec([None], tf.int32, name="class_index")

    class Evil(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable(1.0)  # stateful calls, as in our exports

        @tf.function(input_signature=[image])
        def serve(self, image):
            logits = tf.reduce_mean(image, [1, 2]) * self.scale
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

        @tf.function(input_signature=[image, index])
        def cam(self, image, class_index):
            side_effect()
            probs = tf.nn.softmax(tf.reduce_mean(image, [1, 2]) * self.scale)
            return {"activations": image, "gradients": image, "probabilities": probs}

    m = Evil()
    return m, {"serving_default": m.serve, "cam": m.cam}


@pytest.fixture(scope="module")
def arena(tmp_path_factory, tf):
    """Where the attacks aim: a target that must never appear and a file that must not be read."""
    root = tmp_path_factory.mktemp("arena")
    secret = root / "secret.txt"
    secret.write_text("reviewer's secret\n")
    return {"root": root, "secret": secret, "targets": []}


def _evil_bundle(tf, arena, name: str, side_effect, signatures_extra=None) -> Path:
    bundle = _copy_demo(arena["root"] / name)
    shutil.rmtree(bundle / "savedmodel")
    m, sigs = _module(tf, side_effect)
    if signatures_extra:
        sigs.update(signatures_extra(m))
    tf.saved_model.save(m, str(bundle / "savedmodel"), signatures=sigs)
    return _rehash(bundle)


@pytest.fixture(scope="module")
def bundles(tf, arena):
    root = arena["root"]
    write_target = root / "written-by-bundle.txt"
    print_target = root / "printed-by-bundle.txt"
    save_target = root / "saved-by-bundle"
    control_target = root / "control-written.txt"
    arena["targets"] += [write_target, print_target, save_target]
    b = {
        "write_file": _evil_bundle(
            tf, arena, "write", lambda: tf.io.write_file(str(write_target), "pwned")
        ),
        "read_file": _evil_bundle(
            tf, arena, "read", lambda: tf.print(tf.io.read_file(str(arena["secret"])))
        ),
        "print_to_file": _evil_bundle(
            tf,
            arena,
            "print",
            lambda: tf.print("pwned", output_stream=f"file://{print_target}"),
        ),
        "checkpoint_op": _evil_bundle(
            tf,
            arena,
            "save",
            lambda: tf.raw_ops.SaveV2(
                prefix=str(save_target),
                tensor_names=["x"],
                shape_and_slices=[""],
                tensors=[tf.constant([1.0])],
            ),
        ),
        # the same attack, loaded straight into TensorFlow: proves the attack works
        "control": _evil_bundle(
            tf, arena, "control", lambda: tf.io.write_file(str(control_target), "pwned")
        ),
    }
    return b, control_target


def _demo_with_pb(arena, name: str, edit) -> Path:
    """The demo bundle with its graph edited through TensorFlow's own protobuf classes."""
    from tensorflow.core.protobuf import saved_model_pb2

    bundle = _copy_demo(arena["root"] / name)
    pb = bundle / "savedmodel" / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb.read_bytes())
    edit(sm.meta_graphs[0])
    pb.write_bytes(sm.SerializeToString())
    return _rehash(bundle)


def _refused(bundle: Path, *words: str) -> BundleError:
    with pytest.raises(BundleError) as e:
        load_bundle(bundle)
    msg = str(e.value)
    assert "\n" not in msg and "refused" in msg
    for w in words:
        assert w in msg, msg
    return e.value


def test_the_attack_works_when_nothing_checks(bundles, tf):
    b, control_target = bundles
    sm = tf.saved_model.load(str(b["control"] / "savedmodel"))
    x = np.zeros((1, SIZE, SIZE, 3), np.float32)
    sm.signatures["cam"](image=tf.constant(x), class_index=tf.constant([0]))
    assert control_target.read_text() == "pwned"


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("write_file", ("WriteFile", "__inference_cam")),
        ("read_file", ("ReadFile", "__inference_cam")),
        ("print_to_file", ("PrintV2",)),
        ("checkpoint_op", ("SaveV2",)),
    ],
)
def test_a_signature_that_touches_files_is_refused(bundles, arena, kind, words):
    b, _ = bundles
    err = _refused(b[kind], "savedmodel/saved_model.pb", *words)
    assert err.file == "savedmodel/saved_model.pb"


def test_a_function_hidden_in_the_library_is_refused(arena):
    def hide(mg):
        fn = mg.graph_def.library.function.add()
        fn.signature.name = "hidden_writer"
        node = fn.node_def.add()
        node.name, node.op = "w", "WriteFile"

    _refused(_demo_with_pb(arena, "hidden", hide), "WriteFile", "hidden_writer")


def test_a_second_function_under_a_known_name_is_refused(arena):
    def twin(mg):
        lib = mg.graph_def.library
        fn = lib.function.add()
        fn.CopyFrom(next(f for f in lib.function if "cam" in f.signature.name))
        node = fn.node_def.add()
        node.name, node.op = "w", "WriteFile"

    _refused(_demo_with_pb(arena, "twin", twin), "two library functions named")


def test_an_op_named_by_a_call_attribute_is_refused(arena):
    """TensorFlow runs a function name it does not find in the library as a primitive op."""

    def call(mg):
        node = mg.graph_def.node.add()
        node.name, node.op = "sneaky", "StatefulPartitionedCall"
        node.attr["f"].func.name = "ReadFile"

    _refused(_demo_with_pb(arena, "attr-call", call), "ReadFile", "sneaky")


def test_extra_signatures_and_asset_files_are_refused(arena, tf):
    extra = _evil_bundle(tf, arena, "extra-sig", lambda: None, lambda m: {"backdoor": m.serve})
    _refused(extra, "backdoor")
    assets = _copy_demo(arena["root"] / "assets")
    (assets / "savedmodel" / "assets").mkdir()
    (assets / "savedmodel" / "assets" / "vocab.txt").write_text("x\n")
    _refused(_rehash(assets), "savedmodel/assets/vocab.txt", "asset")
    stray = _copy_demo(arena["root"] / "stray-var")
    (stray / "savedmodel" / "variables" / "extra.bin").write_bytes(b"\0" * 16)
    _refused(_rehash(stray), "savedmodel/variables/extra.bin")


def _edit_onnx(arena, name: str, edit) -> Path:
    import onnx

    bundle = _copy_demo(arena["root"] / name)
    model = onnx.load(str(bundle / "model.onnx"))
    edit(model)
    onnx.save(model, str(bundle / "model.onnx"))
    return _rehash(bundle)


def test_onnx_custom_domain_and_external_data_are_refused(arena):
    from onnx import TensorProto, helper

    def custom(model):
        model.opset_import.append(helper.make_opsetid("com.evil", 1))
        model.graph.node.append(
            helper.make_node("Exfiltrate", ["image"], ["stolen"], domain="com.evil")
        )

    _refused(_edit_onnx(arena, "onnx-custom", custom), "com.evil", "model.onnx")

    def external(model):
        t = model.graph.initializer[0]
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", str(arena["secret"])

    _refused(_edit_onnx(arena, "onnx-external", external), "external", str(arena["secret"]))


def test_cli_classify_with_heatmaps_refuses_in_one_line(bundles, arena, tmp_path, capsys):
    b, _ = bundles
    folder = tmp_path / "images"
    folder.mkdir()
    src = next(p for p in sorted(DEMO_IMAGES.rglob("*")) if p.is_file())
    shutil.copy(src, folder / src.name)
    for kind in ("write_file", "print_to_file", "read_file", "checkpoint_op"):
        out, heat = tmp_path / f"{kind}.csv", tmp_path / f"heat-{kind}"
        code = cli_main(
            [
                "classify",
                str(folder),
                "--bundle",
                str(b[kind]),
                "--out",
                str(out),
                "--heatmaps",
                str(heat),
            ]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2
        assert len(err.splitlines()) == 1 and "refused" in err, err
        assert not out.exists()
    for target in arena["targets"]:  # what the signatures would have written
        assert not list(target.parent.glob(target.name + "*")), target


def test_reader_agrees_with_tensorflows_own_parser(tf):
    """The field numbers of export/graph_ops.py, checked against TensorFlow's protobuf."""
    from tensorflow.core.protobuf import saved_model_pb2

    data = (DEMO_BUNDLE / "savedmodel" / "saved_model.pb").read_bytes()
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(data)
    lib = sm.meta_graphs[0].graph_def.library
    expected = {n.op for n in sm.meta_graphs[0].graph_def.node}
    expected |= {n.op for f in lib.function for n in f.node_def}
    expected -= {f.signature.name for f in lib.function}
    mine = read_saved_model(data)
    assert all_ops(mine) == expected
    assert set(mine[0].functions) == {f.signature.name for f in lib.function}
    assert set(mine[0].signatures) == set(sm.meta_graphs[0].signature_def)


def test_demo_and_a_fresh_compact_export_pass(tmp_path):
    from export.build import write_bundle
    from export.bundle import Manifest, SavedModelInfo
    from export.image_input import InputSpec
    from training.model import ModelSpec, build_model

    assert load_bundle(DEMO_BUNDLE).model_name
    spec = ModelSpec("compact", 32, 3, "none")
    manifest = Manifest(
        model_name="fresh",
        input=InputSpec(height=32, width=32),
        savedmodel=SavedModelInfo(cam_layer=spec.cam_layer),
    )
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    write_bundle(build_model(spec), tmp_path / "b", manifest, parity_images=images)
    assert load_bundle(tmp_path / "b").model_name == "fresh"


@pytest.mark.parametrize("cut", ["half", "noise"])
def test_a_damaged_graph_file_is_one_clear_refusal(tmp_path, cut):
    bundle = _copy_demo(tmp_path / "b")
    pb = bundle / "savedmodel" / "saved_model.pb"
    data = pb.read_bytes()
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    pb.write_bytes(data[: len(data) // 2] if cut == "half" else noise)
    with pytest.raises(BundleError, match=r"saved_model\.pb' cannot be read \("):
        load_bundle(_rehash(bundle))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.update(format_version=10**12), "newer cxr-review"),
        (lambda m: m["onnx"].update(file=["model.onnx"]), "'onnx.file' must be text"),
        (lambda m: m["savedmodel"].update(directory=5), "'savedmodel.directory' must be text"),
        (
            lambda m: m["training"].update(metrics="accuracy 1.0"),
            "'training.metrics' must be an object",
        ),
        (lambda m: m.update(intended_use=None), "'intended_use' must be text"),
        (lambda m: m["onnx"].update(opset=10**20), "'onnx.opset' must be an integer"),
    ],
)
def test_manifest_values_of_the_wrong_kind_are_refused_in_one_line(tmp_path, change, reason):
    import json
    import shutil

    from desktop.paths import DEMO_BUNDLE
    from export.bundle import BundleError, load_bundle

    b = tmp_path / "b"
    shutil.copytree(DEMO_BUNDLE, b)
    m = json.loads((b / "manifest.json").read_text())
    change(m)
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=re.escape(reason)):
        load_bundle(b)


def test_a_deeply_nested_manifest_is_refused(tmp_path):
    import shutil

    from desktop.paths import DEMO_BUNDLE
    from export.bundle import BundleError, load_bundle

    b = tmp_path / "b"
    shutil.copytree(DEMO_BUNDLE, b)
    (b / "manifest.json").write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(BundleError, match="nested too deeply"):
        load_bundle(b)
    (b / "manifest.json").write_text(
        '{"format": "cxr-review-bundle", "format_version": ' + "9" * 5000 + "}"
    )
    with pytest.raises(BundleError, match="number too long"):
        load_bundle(b)
    (b / "manifest.json").write_bytes(b" " * (2 << 20))  # over the size cap
    with pytest.raises(BundleError, match="cannot be read"):
        load_bundle(b)
