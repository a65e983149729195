"""Model construction: VGG19 (or a compact CNN) with preprocessing inside the graph.

The graph takes what the image-input contract produces, float32 NHWC in
[0, 255], so ONNX, the SavedModel and training all see the same tensor. The
head ends in a linear ``logits`` layer followed by softmax, so Grad-CAM
differentiates the class score rather than a saturated probability.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: ImageNet channel means in BGR order (the "caffe" preprocessing VGG was trained with).
VGG_MEAN_BGR = (103.939, 116.779, 123.68)
VGG_CAM_LAYER = "block5_conv4"
COMPACT_CAM_LAYER = "cam_conv"
WEIGHTS_HINT = (
    "could not get the ImageNet VGG19 weights ({why}). This machine may be offline: "
    "download vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 on another machine and "
    "pass --weights PATH, or train from scratch with --weights none"
)


class TrainError(RuntimeError):
    """An expected training failure, shown to the user as one line."""


@dataclass(frozen=True)
class ModelSpec:
    backbone: str = "vgg19"  # "vgg19" or "compact"
    image_size: int = 224
    n_classes: int = 3
    weights: str = "imagenet"  # "imagenet", "none", or a local weights file
    dropout: float = 0.3

    @property
    def cam_layer(self) -> str:
        return VGG_CAM_LAYER if self.backbone == "vgg19" else COMPACT_CAM_LAYER

    @property
    def weights_source(self) -> str:
        if self.weights in ("imagenet", "none"):
            return self.weights
        return Path(self.weights).name


def quiet_tensorflow() -> None:
    """Keep TF's C++ start-up chatter (CUDA probing on CPU machines) out of the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _vgg_preprocess(keras, x):
    """RGB [0, 255] -> BGR minus the ImageNet mean, as a frozen 1x1 convolution.

    A plain Conv2D (not a Lambda) so the model saves and loads without
    executing Python code, and tf2onnx maps it to one ONNX Conv.
    """
    import numpy as np

    perm = np.zeros((1, 1, 3, 3), np.float32)
    for out_c, in_c in enumerate((2, 1, 0)):  # BGR <- RGB
        perm[0, 0, in_c, out_c] = 1.0
    layer = keras.layers.Conv2D(3, 1, use_bias=True, trainable=False, name="vgg_preprocess")
    y = layer(x)
    layer.set_weights([perm, -np.asarray(VGG_MEAN_BGR, np.float32)])
    return y


def _vgg19_base(keras, x, spec: ModelSpec):
    """VGG19 convolutional layers applied to ``x``, weights from ImageNet, a file, or none.

    The layers are created on our preprocessed tensor (one flat graph, so
    ``block5_conv4`` is directly reachable for Grad-CAM). Weights are loaded
    into a standalone VGG19 first, exactly as Keras saved them, then copied
    across layer by layer by name.
    """
    if spec.weights not in ("imagenet", "none") and not Path(spec.weights).is_file():
        raise TrainError(f"--weights file {spec.weights} does not exist")
    base = keras.applications.VGG19(include_top=False, weights=None, input_tensor=x)
    if spec.weights == "none":
        return base.output
    size = spec.image_size
    try:
        source = keras.applications.VGG19(
            include_top=False,
            weights="imagenet" if spec.weights == "imagenet" else None,
            input_shape=(size, size, 3),
        )
    except Exception as exc:  # URLError, HTTPError, OSError, ValueError from get_file/h5py
        if spec.weights == "imagenet":
            raise TrainError(WEIGHTS_HINT.format(why=type(exc).__name__)) from None
        raise
    if spec.weights != "imagenet":
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a partial load must fail, not warn
                source.load_weights(spec.weights)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainError(f"cannot load VGG19 weights from {spec.weights}: {first}") from None
    for layer in source.layers:
        if layer.weights:
            base.get_layer(layer.name).set_weights(layer.get_weights())
    return base.output


def _compact_base(keras, x):
    """A small CNN for the demo and fast tests: three batch-normalised blocks and a CAM conv."""
    L = keras.layers
    x = L.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(x)
    for i, width in enumerate((16, 32, 64)):
        for j in (1, 2):
            x = L.Conv2D(width, 3, padding="same", use_bias=False, name=f"c{i}_conv{j}")(x)
            # momentum 0.9: small data sets give few steps; 0.99 leaves the moving
            # statistics at their initial values and inference collapses to one class
            x = L.BatchNormalization(momentum=0.9, name=f"c{i}_bn{j}")(x)
            x = L.Activation("relu", name=f"c{i}_relu{j}")(x)
        x = L.MaxPooling2D(2, name=f"c{i}_pool")(x)
    x = L.Conv2D(96, 3, padding="same", activation="relu", name=COMPACT_CAM_LAYER)(x)
    return x


def build_model(spec: ModelSpec):
    """Functional Keras model: image -> (logits, probabilities), all layers in one flat graph."""
    quiet_tensorflow()
    import keras

    if spec.backbone not in ("vgg19", "compact"):
        raise TrainError(f"unknown backbone {spec.backbone!r} (vgg19 or compact)")
    if spec.backbone == "vgg19" and spec.image_size < 32:
        raise TrainError("VGG19 needs --image-size of at least 32")
    L = keras.layers
    inp = keras.Input((spec.image_size, spec.image_size, 3), name="image", dtype="float32")
    if spec.backbone == "vgg19":
        feat = _vgg19_base(keras, _vgg_preprocess(keras, inp), spec)
    else:
        feat = _compact_base(keras, inp)
    x = L.GlobalAveragePooling2D(name="gap")(feat)
    x = L.Dropout(spec.dropout, name="head_dropout")(x)
    x = L.Dense(256, activation="relu", name="head_dense")(x)
    logits = L.Dense(spec.n_classes, name="logits")(x)
    probs = L.Activation("softmax", name="probabilities", dtype="float32")(logits)
    return keras.Model(inp, [logits, probs], name=f"cxr_{spec.backbone}")


def set_base_trainable(model, fine_tune_from: str | None) -> int:
    """Freeze the backbone (None) or unfreeze it from the first layer named ``fine_tune_from``.

    Returns the number of trainable backbone layers. The preprocessing layer
    always stays frozen.
    """
    backbone = [
        lyr for lyr in model.layers if lyr.name.startswith("block") or lyr.name == "vgg_preprocess"
    ]
    unfrozen = False
    count = 0
    for lyr in backbone:
        if fine_tune_from and lyr.name.startswith(fine_tune_from):
            unfrozen = True
        lyr.trainable = unfrozen and lyr.name != "vgg_preprocess"
        count += int(lyr.trainable and bool(lyr.weights))
    if fine_tune_from and not unfrozen:
        raise TrainError(f"--fine-tune-from {fine_tune_from!r} matches no VGG19 layer")
    return count
