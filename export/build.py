"""Write a bundle from a trained Keras model: SavedModel (+ ``cam``), ONNX, manifest.

TensorFlow and tf2onnx are imported inside the functions: ``export`` stays
cheap to import for the app. The export is *checked*, not assumed: the
SavedModel is loaded back and compared with ONNX Runtime on real images,
and a disagreement above ``PARITY_TOL`` aborts the export.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from export.bundle import Manifest, OnnxInfo, SavedModelInfo, write_manifest
from export.bundle_novelty import NoveltyInfo

PARITY_TOL = 1e-4
OPSET = 17


class ExportError(RuntimeError):
    """The bundle could not be written or failed its own checks."""


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in (
        "tensorflow",
        "keras",
        "tf2onnx",
        "onnx",
        "onnxruntime-gpu",
        "numpy",
        "cxr-review",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


CLASS_NAMES_KEY = "cxr_class_names"


#: the un-compiled twin of the ``cam`` signature (see export.cam_runtime: bfloat16 path)
GRAPH_CAM_SIGNATURE = "cam_graph"


def _serving_module(model, cam_layer: str, class_names: tuple[str, ...]):
    """A tf.Module with the bundle's signatures (``export/BUNDLE.md``): ``serving_default``,
    ``cam`` and its un-compiled twin :data:`GRAPH_CAM_SIGNATURE`."""
    import keras
    import tensorflow as tf

    h, w, c = model.inputs[0].shape[1:]
    cam_model = keras.Model(model.inputs, [model.get_layer(cam_layer).output, model.outputs[0]])
    image_spec = tf.TensorSpec([None, h, w, c], tf.float32, name="image")
    cam_spec = [image_spec, tf.TensorSpec([None], tf.int32, name="class_index")]

    class Exported(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.cam_model = cam_model
            # the class order travels inside the model too, so a manifest that swaps names is caught
            self.class_names = tf.Variable(json.dumps(list(class_names)), trainable=False)

        @tf.function(input_signature=[image_spec])
        def serve(self, image):
            logits, probs = self.model(image, training=False)
            return {"logits": logits, "probabilities": probs}

        def _cam(self, image, class_index):
            with tf.GradientTape() as tape:
                acts, logits = self.cam_model(image, training=False)
                tape.watch(acts)
                score = tf.gather(logits, class_index, batch_dims=1)
            grads = tape.gradient(score, acts)
            return {
                "activations": acts,
                "gradients": grads,
                "probabilities": tf.nn.softmax(logits),
            }

        # XLA: activations + gradients + probabilities in one compiled call (fp32).
        @tf.function(input_signature=cam_spec, jit_compile=True)
        def cam(self, image, class_index):
            return self._cam(image, class_index)

        # The same as a plain graph, so oneDNN can run it in bfloat16 on CPUs with
        # AMX/AVX512-BF16 when the loader asks for it: the display path must be fast, and on
        # such a CPU VGG19's Grad-CAM takes 72 ms this way against 185 ms in XLA float32.
        @tf.function(input_signature=cam_spec)
        def cam_graph(self, image, class_index):
            return self._cam(image, class_index)

    return Exported()


def export_savedmodel(model, path: Path, cam_layer: str, class_names: tuple[str, ...]) -> None:
    import tensorflow as tf

    module = _serving_module(model, cam_layer, class_names)
    tf.saved_model.save(
        module,
        str(path),
        signatures={
            "serving_default": module.serve,
            "cam": module.cam,
            GRAPH_CAM_SIGNATURE: module.cam_graph,
        },
    )


#: the layer whose output is the ``features`` output: the one the logits are computed from
FEATURES_LAYER = "head_dense"
FEATURES_NAME = "features"


def export_onnx(
    model,
    path: Path,
    class_names: tuple[str, ...],
    opset: int = OPSET,
    features_layer: str | None = FEATURES_LAYER,
) -> dict[str, Any]:
    """The ONNX model: logits, probabilities and (when ``features_layer``) the features the
    guard scores, all from one graph, so classification and guard take one run."""
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    h, w, c = model.inputs[0].shape[1:]
    spec = (tf.TensorSpec((None, h, w, c), tf.float32, name="image"),)
    want = ["logits", "probabilities"]
    if features_layer:
        feats = keras.layers.Identity(name=FEATURES_NAME)(model.get_layer(features_layer).output)
        model = keras.Model(model.inputs, [*model.outputs, feats], name=model.name)
        want.append(FEATURES_NAME)
    proto, _ = tf2onnx.convert.from_keras(
        model, input_signature=spec, opset=opset, output_path=str(path)
    )
    outputs = [o.name for o in proto.graph.output]
    inputs = [i.name for i in proto.graph.input]
    if inputs != ["image"] or outputs != want:
        raise ExportError(f"unexpected ONNX signature: inputs {inputs}, outputs {outputs}")
    onnx.helper.set_model_props(proto, {CLASS_NAMES_KEY: json.dumps(list(class_names))})
    onnx.save(proto, str(path))
    return {"input": inputs[0], "outputs": outputs}


def check_parity(bundle: Path, images: np.ndarray, onnx_file: str = "model.onnx") -> dict[str, Any]:
    """Max |p_ONNX - p_TF| on real images, using the files as written (not the live model)."""
    import onnxruntime as ort
    import tensorflow as tf

    sm = tf.saved_model.load(str(bundle / "savedmodel"))
    serve = sm.signatures["serving_default"]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(bundle / onnx_file), opts, providers=["CPUExecutionProvider"])
    worst_p = worst_l = 0.0
    for i in range(0, len(images), 16):
        batch = np.ascontiguousarray(images[i : i + 16], dtype=np.float32)
        tf_out = serve(image=tf.constant(batch))
        logits_o, probs_o = sess.run(["logits", "probabilities"], {"image": batch})
        worst_p = max(worst_p, float(np.abs(probs_o - tf_out["probabilities"].numpy()).max()))
        worst_l = max(worst_l, float(np.abs(logits_o - tf_out["logits"].numpy()).max()))
    cam = sm.signatures["cam"](
        image=tf.constant(images[:1].astype(np.float32)), class_index=tf.constant([0], tf.int32)
    )
    acts, grads = cam["activations"].numpy(), cam["gradients"].numpy()
    if acts.shape != grads.shape or acts.ndim != 4:
        raise ExportError(
            f"cam signature returned activations {acts.shape}, gradients {grads.shape}"
        )
    return {
        "max_abs_prob_diff": worst_p,
        "max_abs_logit_diff": worst_l,
        "n_images": len(images),
        "tolerance": PARITY_TOL,
        "runtime": f"onnxruntime {ort.__version__} CPU vs TF SavedModel serving_default",
        "cam_activation_shape": list(acts.shape[1:]),
    }


@dataclass
class ReferenceData:
    """Model inputs the guard's statistics are fitted on (``export/novelty_model.py``).

    ``train``: batches of the training split, in the order of ``train_labels``;
    ``val``: batches of the validation split (the threshold); ``ood``: named
    out-of-distribution sets on which the candidate scores are compared.
    """

    train: Iterable[np.ndarray]
    train_labels: np.ndarray
    val: Iterable[np.ndarray]
    ood: dict[str, np.ndarray] = field(default_factory=dict)


def _outputs(sess, batches: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    logits, feats = [], []
    for b in batches:
        lo, fe = sess.run(["logits", FEATURES_NAME], {"image": np.asarray(b, np.float32)})
        logits.append(lo)
        feats.append(fe.reshape(len(fe), -1))
    if not logits:
        raise ExportError("no images to fit the novelty reference on")
    return np.concatenate(logits), np.concatenate(feats)


def fit_novelty(bundle: Path, reference: ReferenceData, class_names: tuple[str, ...]):
    """Fit the guard with the ONNX model as written, store its arrays; the manifest section."""
    import onnxruntime as ort

    from export.novelty_model import fit_reference, write_arrays

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(
        str(bundle / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    _, train_f = _outputs(sess, reference.train)
    labels = np.asarray(reference.train_labels)
    if len(labels) != len(train_f):
        raise ExportError(f"{len(train_f)} training images but {len(labels)} labels")
    val = _outputs(sess, reference.val)
    ood = {
        name: _outputs(sess, (x[i : i + 32] for i in range(0, len(x), 32)))
        for name, x in reference.ood.items()
        if len(x)
    }
    ref, evidence = fit_reference(train_f, labels, len(class_names), val, ood)
    write_arrays(bundle, ref)
    return NoveltyInfo(
        score=ref.score,
        features_name=FEATURES_NAME,
        feature_dim=int(train_f.shape[1]),
        threshold=ref.threshold,
        evidence=evidence,
    )


def write_bundle(
    model,
    out: str | os.PathLike[str],
    manifest: Manifest,
    *,
    parity_images: np.ndarray,
    reference: ReferenceData | None = None,
    force: bool = False,
) -> Manifest:
    """Export everything into a temporary folder, check it, then move it into place.

    A failed export never leaves a half-written bundle where a good one was.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty; choose another folder or use --force")
    if len(parity_images) == 0:
        raise ExportError("no images for the ONNX/TF parity check")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        cam_layer = manifest.savedmodel.cam_layer
        export_savedmodel(model, tmp / "savedmodel", cam_layer, manifest.class_names)
        export_onnx(
            model,
            tmp / "model.onnx",
            manifest.class_names,
            features_layer=FEATURES_LAYER if reference is not None else None,
        )
        parity = check_parity(tmp, parity_images)
        if not parity["max_abs_prob_diff"] <= PARITY_TOL:
            raise ExportError(
                f"ONNX and TF disagree: max |Δp| = {parity['max_abs_prob_diff']:.2e} "
                f"> {PARITY_TOL:.0e} on {parity['n_images']} images; bundle not written"
            )
        novelty = None
        if reference is not None:
            novelty = fit_novelty(tmp, reference, manifest.class_names)
        manifest = replace(
            manifest,
            onnx=replace(manifest.onnx or OnnxInfo(), opset=OPSET),
            savedmodel=replace(manifest.savedmodel or SavedModelInfo(), cam_layer=cam_layer),
            parity=parity,
            novelty=novelty,
            versions={**library_versions(), **manifest.versions},
        )
        written = write_manifest(tmp, manifest)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        return written
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
