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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.messages import Batch, Classified, KnownAttention, ModelReady
from export.explain import ATTENTION_METHOD, ImageInput
from export.image_input import ImageDecodeError, InputSpec, to_model_tensor
from export.results import FileKey

log = logging.getLogger(__name__)

#: errors that depend only on the file's bytes: safe to remember until the file changes
CACHEABLE_ERRORS = frozenset({"empty", "unrecognised", "truncated", "no_pixels", "unreadable"})
#: images kept for the attention pass (about 100 KB each)
KEEP_IMAGES = 512


@dataclass(frozen=True)
class FolderItem:
    path: Path
    rel_path: str
    file: FileKey


def prepare(path: Path, spec: InputSpec) -> tuple[ImageInput | None, str | None, bool]:
    """(image input, error, whether the outcome may be cached)."""
    try:
        return ImageInput.from_path(path, spec), None, True
    except ImageDecodeError as exc:
        return None, exc.reason, exc.kind in CACHEABLE_ERRORS
    except Exception as exc:  # a bad file must never stop the folder
        log.exception("decoding %s failed", path)
        return None, f"unexpected error: {type(exc).__name__}: {exc}", False


def classify_items(
    bundle: Path,
    items: list[FolderItem],
    cache_path: Path | None = None,
    batch_size: int = 16,
    prefer: str = "auto",
) -> Iterator[ModelReady | Batch | KnownAttention]:
    """:class:`ModelReady`, then :class:`Batch` es (cached ones first) and the cached
    :class:`KnownAttention`. Results are added to the prediction cache as they come."""
    from desktop.prediction_cache import PredictionCache
    from export.onnx_runtime import OnnxClassifier
    from export.results import Bundle

    b = Bundle.open(bundle)
    clf = OnnxClassifier(b.root, b.manifest, prefer=prefer)
    yield ModelReady(b.manifest, clf.provider)
    sha = b.onnx_sha256
    cache = PredictionCache(cache_path) if cache_path is not None else None
    try:
        todo: list[int] = []
        hits: list[Classified] = []
        for i, it in enumerate(items):
            got = cache.get(it.rel_path, it.file.size, it.file.mtime_ns, sha) if cache else None
            if got is None:
                todo.append(i)
            else:
                hits.append(Classified(i, got[0], got[1]))
        if hits:
            yield Batch(tuple(hits), from_cache=True)
        if cache:
            known = []
            for i, it in enumerate(items):
                att = cache.get_attention(
                    it.rel_path, it.file.size, it.file.mtime_ns, sha, ATTENTION_METHOD
                )
                if att is not None:
                    known.append((i, att))
            if known:
                yield KnownAttention(tuple(known))
        yield from _infer(clf, items, todo, b.manifest.input, cache, sha, batch_size)
    finally:
        if cache:
            cache.close()


def _infer(clf, items, todo, spec, cache, sha, batch_size) -> Iterator[Batch]:
    """Decode the next batch in two threads while this one is classified."""
    batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    kept = 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cxr-prep") as pool:

        def submit(batch: list[int]):
            return [pool.submit(prepare, items[i].path, spec) for i in batch]

        pending = submit(batches[0]) if batches else []
        for k, batch in enumerate(batches):
            results = [f.result() for f in pending]
            pending = submit(batches[k + 1]) if k + 1 < len(batches) else []
            good = [(i, r[0]) for i, r in zip(batch, results, strict=True) if r[0] is not None]
            out = [
                Classified(i, None, r[1])
                for i, r in zip(batch, results, strict=True)
                if r[0] is None
            ]
            keep = {i for i, r in zip(batch, results, strict=True) if r[2]}
            if good:
                x = to_model_tensor(np.stack([g.model_gray for _, g in good]), spec)
                probs, verdicts = clf.classify(x)
                for (i, image), p, nv in zip(good, probs, verdicts, strict=True):
                    keep_image = image if kept < KEEP_IMAGES else None
                    out.append(Classified(i, p, None, keep_image, novelty=nv))
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
                        )
                        for c in out
                        if c.index in keep
                    ]
                )
            yield Batch(tuple(out), from_cache=False)
