"""tf.data streaming from the uint8 cache, with augmentation done on the fly.

Batches of row indices are shuffled, then each batch is read from the
memory-mapped cache (sorted, so reads are sequential) inside the pipeline.
Only a few batches are ever in memory, whatever the data set size.
"""

from __future__ import annotations

import numpy as np

from training.cache import Cache


def oversample_rows(rows: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Repeat minority-class rows (with a random remainder) until every class matches the largest."""
    rng = np.random.default_rng(seed)
    by_class = [rows[labels[rows] == c] for c in np.unique(labels[rows])]
    target = max(len(r) for r in by_class)
    out = []
    for r in by_class:
        reps, rem = divmod(target, len(r))
        out.append(np.concatenate([np.tile(r, reps), rng.choice(r, rem, replace=False)]))
    return np.concatenate(out)


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return {i: float(w[i]) for i in range(n_classes) if present[i]}


def augmenter(seed: int, flip: bool):
    """Small, radiograph-plausible changes. No flip by default: it moves the heart."""
    import keras

    L = keras.layers
    layers = [
        L.RandomRotation(0.02, fill_mode="constant", seed=seed),  # about ±7°
        L.RandomTranslation(0.05, 0.05, fill_mode="constant", seed=seed + 1),
        L.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
        L.RandomBrightness(0.1, value_range=(0.0, 255.0), seed=seed + 3),
        L.RandomContrast(0.15, value_range=(0.0, 255.0), seed=seed + 4),
    ]
    if flip:
        layers.append(L.RandomFlip("horizontal", seed=seed + 5))
    return keras.Sequential(layers, name="augment")


def make_dataset(
    cache: Cache,
    rows: np.ndarray,
    n_classes: int,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    flip: bool = False,
    augment: bool = True,
    oversample: bool = False,
):
    """(image float32 [0,255] NHWC with 3 channels, one-hot label) batches."""
    import tensorflow as tf

    images = cache.images()
    labels = cache.labels
    rows = np.asarray(rows, np.int64)
    if training and oversample:
        rows = oversample_rows(rows, labels, seed)
    size = cache.size

    def fetch(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(idx)
        return np.asarray(images[idx]), labels[idx]

    def load(idx):
        x, y = tf.numpy_function(fetch, [idx], (tf.uint8, tf.int64), stateful=False)
        x.set_shape([None, size, size])
        y.set_shape([None])
        return tf.cast(x, tf.float32)[..., None], tf.one_hot(y, n_classes)

    ds = tf.data.Dataset.from_tensor_slices(rows)
    if training:
        ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        aug = augmenter(seed, flip)
        ds = ds.map(
            lambda x, y: (tf.clip_by_value(aug(x, training=True), 0.0, 255.0), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    ds = ds.map(lambda x, y: (tf.repeat(x, 3, axis=-1), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def tensor_batches(cache: Cache, rows: np.ndarray, batch_size: int = 64):
    """Plain float32 NHWC batches for prediction (no augmentation)."""
    images = cache.images()
    for i in range(0, len(rows), batch_size):
        x = np.asarray(images[rows[i : i + batch_size]], np.float32)
        yield np.repeat(x[..., None], 3, axis=-1)
