"""Headless classification of a folder (``cxr classify``, ``cxr report``), Qt-free.

One :class:`Page` per candidate file, in scan order, streamed: the file's
:class:`export.results.ImageResult` plus, when asked, its decoded image and
:class:`export.explain.Heatmap`. Work the app already did is reused: a
:class:`Known` result for the same file version skips inference, a known
CAM skips Grad-CAM, a known attention figure skips its float32 pass, and
the ONNX session and TensorFlow are started only when something is left to
compute. Reviews are read from the folder's store if it has one (never
created here).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.folder_scan import iter_image_files
from desktop.review_db import existing_store
from desktop.review_store import Review, ReviewStore, ReviewStoreError
from export.attention import Attention
from export.decode_pool import Prepared, batch_size_for, prepared_batches
from export.explain import ATTENTION_METHOD, Heatmap, ImageInput, attention_for
from export.files import safe_name
from export.image_input import DecodedImage
from export.novelty import Novelty
from export.results import Bundle, FileKey, ImageResult

KNOWN_FORMAT = "cxr-review-results"


@dataclass
class Page:
    result: ImageResult
    decoded: DecodedImage | None = None
    heatmap: Heatmap | None = None


@dataclass(frozen=True)
class Known:
    """What the app already computed for one file version (``--reuse`` file)."""

    file: FileKey
    probabilities: np.ndarray | None
    error: str | None
    attention: Attention | None = None
    cam: np.ndarray | None = None  # model-frame map of ``cam_method`` for the predicted class
    cam_method: str | None = None
    novelty: Novelty | None = None
    inverted: bool = False  # computed on the image inverted for the model


def write_known(path: Path, model_sha: str, known: dict[str, Known]) -> None:
    """JSON (no pickle): the app hands its results to an export child process."""
    rows = []
    for rel, k in known.items():
        rows.append(
            {
                "path": rel,
                "size": k.file.size,
                "mtime_ns": k.file.mtime_ns,
                "probabilities": None
                if k.probabilities is None
                else [float(p) for p in k.probabilities],
                "error": k.error,
                "attention": None if k.attention is None else k.attention.as_dict(),
                "cam": None if k.cam is None else np.asarray(k.cam, np.float32).round(5).tolist(),
                "cam_method": k.cam_method,
                "novelty": None if k.novelty is None else k.novelty.to_dict(),
                "inverted": k.inverted,
            }
        )
    doc = {"format": KNOWN_FORMAT, "format_version": 1, "model_sha256": model_sha, "files": rows}
    path.write_text(json.dumps(doc), encoding="utf-8")


def read_known(path: str | os.PathLike[str], model_sha: str) -> dict[str, Known]:
    """Results for this model only; a file for another model or a malformed one gives {}."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != KNOWN_FORMAT:
        return {}
    if doc.get("model_sha256") != model_sha:
        return {}
    out: dict[str, Known] = {}
    for r in doc.get("files") or []:
        try:
            probs = r["probabilities"]
            cam = r.get("cam")
            nov = r.get("novelty")
            out[str(r["path"])] = Known(
                FileKey(int(r["size"]), int(r["mtime_ns"])),
                None if probs is None else np.asarray(probs, np.float32),
                None if r.get("error") is None else str(r["error"]),
                Attention.from_dict(r.get("attention")),
                None if cam is None else np.asarray(cam, np.float32),
                r.get("cam_method"),
                None if nov is None else Novelty.from_dict(nov),
                bool(r.get("inverted", False)),
            )
        except (KeyError, TypeError, ValueError):
            continue  # that file is computed again
    return out


def read_reviews(folder: Path) -> dict[str, Review]:
    """Reviews made in the app, if any; a folder without them is left untouched."""
    return read_store(folder)[0]


def read_store(folder: Path) -> tuple[dict[str, Review], set[str]]:
    """Reviews and the images inverted for the model, if the app made any; a folder
    without them is left untouched."""
    path = existing_store(folder)
    if path is None:
        return {}, set()
    import sqlite3
    import sys

    try:
        with ReviewStore(path, read_only=True) as store:
            return store.all(), store.inverted_images()
    except (ReviewStoreError, sqlite3.DatabaseError) as exc:  # never stops a batch run
        print(
            f"warning: reviews left out, their database cannot be read ({exc}): {path}",
            file=sys.stderr,
        )
        return {}, set()


def scan(folder: str | os.PathLike[str], only: set[str] | None = None) -> list[tuple[Path, str]]:
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    out = [(p, safe_name(p.relative_to(root).as_posix())) for p in iter_image_files(root)]
    return [x for x in out if only is None or x[1] in only]


class _Lazy:
    """The ONNX session and the Grad-CAM runner, started on first use only."""

    def __init__(self, bundle: Bundle, prefer: str) -> None:
        self.bundle, self.prefer = bundle, prefer
        self._clf = self._runner = None

    @property
    def classifier(self):
        if self._clf is None:
            from export.onnx_runtime import OnnxClassifier

            self._clf = OnnxClassifier(self.bundle.root, self.bundle.manifest, prefer=self.prefer)
        return self._clf

    @property
    def provider(self) -> str:
        """The provider and why CUDA was not used, if it was wanted (the CSV's column)."""
        return "" if self._clf is None else self._clf.provider_label

    @property
    def runner(self):
        if self._runner is None:
            from export.cam_runtime import CamRunner

            self._runner = CamRunner(self.bundle.root, self.bundle.manifest)
        return self._runner


def run_folder(
    folder: str | os.PathLike[str],
    bundle: Bundle,
    *,
    cam_method: str | None = None,
    only: set[str] | None = None,
    keep_images: bool = False,
    prefer: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    known: dict[str, Known] | None = None,
) -> Iterator[Page]:
    """Yield one :class:`Page` per file, streaming (nothing accumulates)."""
    known = known or {}
    spec = bundle.manifest.input
    lazy = _Lazy(bundle, prefer)
    files = scan(folder, only)
    reviews, inverted = read_store(Path(folder))
    keys = [FileKey.of(p) for p, _ in files]
    usable = [
        _usable(known.get(rel), k, len(bundle.class_names), rel in inverted)
        for (_p, rel), k in zip(files, keys, strict=True)
    ]
    # a file the app could not read is read again (the reason may be gone); results are reused;
    # a result without its "unlike the training data" verdict is decoded for it
    needs = [
        keep_images
        or cam_method is not None
        or u is None
        or u.error is not None
        or u.novelty is None
        for u in usable
    ]
    # one engine with the app's folder pass: decoded ahead in order, memory flat
    todo = [path if need else None for (path, _rel), need in zip(files, needs, strict=True)]
    infer = any(u is None or u.error is not None or u.novelty is None for u in usable)
    size = batch_size_for(lazy.classifier.provider) if infer else 1
    keep = keep_images or cam_method is not None
    k = 0
    inverts = [rel in inverted for _path, rel in files]
    with closing(prepared_batches(todo, spec, size, keep_decoded=keep, inverts=inverts)) as batches:
        for batch in batches:  # closing the pages stops the engine's work at once
            pages = [
                _page(files[p.index], keys[p.index], reviews, usable[p.index], p) for p in batch
            ]
            _classify(lazy, spec, list(zip(pages, batch, strict=True)))
            for page, prep in zip(pages, batch, strict=True):
                res, u, image = page.result, usable[prep.index], prep.image
                if res.provider != "reused":
                    res.provider = lazy.provider
                if cam_method and image is not None and res.probabilities is not None:
                    page.heatmap = _heatmap(lazy, image, res, cam_method, u)
                    res.attention = page.heatmap.attention
                if keep:
                    page.decoded = prep.decoded
                k += 1
                if progress:
                    progress(k, len(files))
                yield page


def _page(file: tuple[Path, str], key: FileKey, reviews, u: Known | None, prep: Prepared) -> Page:
    """The page with what is known or was read; classification is :func:`_classify`'s."""
    path, rel = file
    res = ImageResult(path, rel, key, review=reviews.get(rel))
    needed = prep.image is not None or prep.error is not None
    # a result from before the "unlike the training data" verdict is classified again
    if (
        u is not None
        and u.error is None
        and u.novelty is not None
        and (not needed or prep.image is not None)
    ):
        res.set_outcome(u.probabilities, u.error)
        res.attention = u.attention
        res.novelty = u.novelty
        res.provider = "reused"
    elif prep.image is None:
        res.error = prep.error or "could not be read"
    return Page(res)


def _classify(lazy: _Lazy, spec, pages: list[tuple[Page, Prepared]]) -> None:
    """One ONNX Runtime call for the batch's files that have no result yet."""
    from export.image_input import to_model_tensor

    todo = [
        (pg.result, p.image)
        for pg, p in pages
        if p.image is not None and pg.result.probabilities is None and pg.result.error is None
    ]
    if not todo:
        return
    x = to_model_tensor(np.stack([image.model_gray for _r, image in todo]), spec)
    probs, verdicts = lazy.classifier.classify(x)
    for (res, image), p, nv in zip(todo, probs, verdicts, strict=True):
        res.set_outcome(p, None)
        # the model's verdict and the reasons that need no model, side by side
        res.novelty = nv.with_reasons(image.checks)


def _usable(k: Known | None, file: FileKey, n_classes: int, invert: bool) -> Known | None:
    """A handed-over result applies to this very file version, this model's classes and the
    image's polarity setting only."""
    if k is None or k.file != file or k.inverted != invert:
        return None
    if k.probabilities is not None and len(k.probabilities) != n_classes:
        return None
    return k


def _heatmap(
    lazy: _Lazy, image: ImageInput, res: ImageResult, method: str, u: Known | None
) -> Heatmap:
    """The page's heatmap (predicted class): the app's CAM when it has one, and the list's
    attention figure (float32 Grad-CAM), computed only when not known."""
    from export.cam import onto_image
    from export.explain import MAX_OVERLAY_SIDE, explain

    m = lazy.bundle.manifest
    cls = int(res.predicted_index)
    if u is not None and u.cam is not None and u.cam_method == method:
        att, _c, lungs, markers = attention_for(image, u.cam, m.input)
        heat = Heatmap(
            u.cam,
            onto_image(u.cam, image.size, m.input, MAX_OVERLAY_SIDE),
            image.size,
            cls,
            method,
            m.savedmodel.cam_layer,
            "reused from the app",
            res.probabilities,
            att,
            lungs,
            markers,
        )
    else:
        heat = explain(lazy.runner, image, cls, method, exact=method == ATTENTION_METHOD)
    fresh = heat.precision != "reused from the app"
    if u is not None and u.attention is not None:
        attention = u.attention
    elif method == ATTENTION_METHOD and fresh:  # computed above in float32
        attention = heat.attention
    else:  # the flag is the app list's measure
        attention = explain(
            lazy.runner, image, cls, ATTENTION_METHOD, overlay=False, exact=True
        ).attention
    from dataclasses import replace

    return replace(heat, attention=attention)
