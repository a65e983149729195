"""The app's folder pass: cached results first, then batched ONNX inference, streamed.

A plain generator of :mod:`desktop.messages` (Qt-free, tested without a
window); ``desktop.ui.workers`` runs it in a superqt worker thread. Each
file is decoded once: the :class:`export.explain.ImageInput` made for the
model also feeds the background attention pass, so that pass decodes
nothing (up to :data:`KEEP_IMAGES` files; beyond that it decodes again
rather than hold a large folder in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.messages import Batch, Classified, KnownAttention, ModelReady
from export.decode_pool import batch_size_for, prepared_batches
from export.explain import ATTENTION_METHOD
from export.image_input import to_model_tensor
from export.results import FileKey

log = logging.getLogger(__name__)

#: images kept for the attention pass (about 100 KB each)
KEEP_IMAGES = 512


@dataclass(frozen=True)
class FolderItem:
    path: Path
    rel_path: str
    file: FileKey
    invert: bool = False  # the reviewer said the file's polarity is wrong


def classify_items(
    bundle: Path,
    items: list[FolderItem],
    cache_path: Path | None = None,
    batch_size: int | None = None,
    prefer: str = "auto",
) -> Iterator[ModelReady | Batch | KnownAttention]:
    """:class:`ModelReady`, then :class:`Batch` es (cached ones first) and the cached
    :class:`KnownAttention`. Results are added to the prediction cache as they come.

    ``batch_size``: the model batch, by default the provider's
    (:func:`export.decode_pool.batch_size_for`). Closing the generator stops the pass:
    files not yet decoding are dropped, and nothing more is cached."""
    from desktop.prediction_cache import PredictionCache
    from export.onnx_runtime import OnnxClassifier
    from export.results import Bundle

    b = Bundle.open(bundle)
    clf = OnnxClassifier(b.root, b.manifest, prefer=prefer)
    yield ModelReady(b.manifest, clf.provider, clf.provider_label)
    sha = b.results_key
    cache = PredictionCache(cache_path) if cache_path is not None else None
    try:
        todo: list[int] = []
        hits: list[Classified] = []
        for i, it in enumerate(items):
            f = it.file
            got = (
                cache.get_with_novelty(it.rel_path, f.size, f.mtime_ns, sha, invert=it.invert)
                if cache
                else None
            )
            if got is None:
                todo.append(i)
            else:
                hits.append(Classified(i, got[0], got[1], novelty=got[2]))
        if hits:
            yield Batch(tuple(hits), from_cache=True)
        if cache:
            known = []
            for i, it in enumerate(items):
                att = cache.get_attention(
                    it.rel_path,
                    it.file.size,
                    it.file.mtime_ns,
                    sha,
                    ATTENTION_METHOD,
                    invert=it.invert,
                )
                if att is not None:
                    known.append((i, att))
            if known:
                yield KnownAttention(tuple(known))
        size = batch_size or batch_size_for(clf.provider)
        yield from _infer(clf, items, todo, b.manifest.input, cache, sha, size)
    finally:
        if cache:
            cache.close()


def _infer(clf, items, todo, spec, cache, sha, batch_size) -> Iterator[Batch]:
    """Classify each batch while the engine decodes the next ones (``export.decode_pool``);
    closing this generator stops the engine's work at once."""
    paths = [items[i].path for i in todo]
    inverts = [items[i].invert for i in todo]
    with closing(prepared_batches(paths, spec, batch_size, inverts=inverts)) as batches:
        yield from _classify_batches(clf, items, todo, spec, cache, sha, batches)


def _classify_batches(clf, items, todo, spec, cache, sha, batches) -> Iterator[Batch]:
    kept = 0
    for prepared in batches:
        good = [(todo[r.index], r.image) for r in prepared if r.image is not None]
        out = [Classified(todo[r.index], None, r.error) for r in prepared if r.image is None]
        keep = {todo[r.index] for r in prepared if r.cacheable}
        if good:
            x = to_model_tensor(np.stack([g.model_gray for _, g in good]), spec)
            probs, verdicts = clf.classify(x)
            for (i, image), p, nv in zip(good, probs, verdicts, strict=True):
                # the model's verdict and the reasons that need no model, side by side
                keep_image = image if kept < KEEP_IMAGES else None
                out.append(Classified(i, p, None, keep_image, nv.with_reasons(image.checks)))
                kept += 1
        if cache:
            cache.put_many(
                [
                    (
                        items[c.index].rel_path,
                        items[c.index].file.size,
                        items[c.index].file.mtime_ns,
                        sha,
                        c.probabilities,
                        c.error,
                        c.novelty,
                        items[c.index].invert,
                    )
                    for c in out
                    if c.index in keep
                ]
            )
        yield Batch(tuple(out), from_cache=False)
