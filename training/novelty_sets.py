"""Out-of-distribution images as model inputs, for choosing the guard's score at export.

Each set is one style of ``training/phantom_styles.py``, rendered in memory and
passed through the same image-input contract as files (grey conversion,
percentile window, resize, quantisation), so the export compares the scores on
what the model would really be given. The seed differs from the one
``training/novelty_eval.py`` uses, so the evidence is not measured on the
images the choice was made on.
"""

from __future__ import annotations

import numpy as np

from export.image_input import InputSpec, from_array, model_gray, to_model_tensor
from training.phantom_styles import OOD_STYLES, render_styled
from training.phantoms import CLASSES

#: the seed of the sets the export chooses on (novelty_eval uses others)
SELECTION_SEED = 4242


def style_inputs(style: str, n: int, spec: InputSpec, *, seed: int, size: int = 256) -> np.ndarray:
    """``n`` images of ``style`` as float32 model inputs (N, H, W, C)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        ph = render_styled(CLASSES[i % len(CLASSES)], size, rng, style)
        pixels = np.rint(ph.image * 255.0).astype(np.uint8)
        out.append(model_gray(from_array(pixels), spec))
    return to_model_tensor(np.stack(out), spec)


def selection_sets(
    spec: InputSpec, n: int = 48, seed: int = SELECTION_SEED
) -> dict[str, np.ndarray]:
    """One set per out-of-distribution style, for :class:`export.build.ReferenceData`."""
    return {s: style_inputs(s, n, spec, seed=seed + k) for k, s in enumerate(OOD_STYLES)}


def reference_data(cache, spec: InputSpec):
    """The guard's fitting data for a training run: its train and validation splits from the
    cache (no augmentation) and the selection sets."""
    from export.build import ReferenceData
    from training.pipeline import tensor_batches

    train = cache.rows("train")
    return ReferenceData(
        train=tensor_batches(cache, train),
        train_labels=cache.labels[train],
        val=tensor_batches(cache, cache.rows("val")),
        ood=selection_sets(spec),
    )
