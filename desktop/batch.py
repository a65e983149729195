"""Headless classification of a folder (``cxr classify`` and reports), Qt-free.

One record per candidate file, in scan order: status ``ok`` or ``error``
with a reason, probabilities, and, when asked, the Grad-CAM map. Reviews
are read from the folder's store if it has one (never created here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.folder_scan import iter_image_files
from desktop.review_store import Review, ReviewStore, existing_store
from export.bundle import Manifest, load_bundle
from export.image_input import (
    DecodedImage,
    ImageDecodeError,
    model_gray,
    read_image,
    to_model_tensor,
)


@dataclass
class Record:
    path: Path
    rel_path: str
    status: str = "ok"
    error: str = ""
    probabilities: np.ndarray | None = None
    decoded: DecodedImage | None = None
    heat: np.ndarray | None = None  # CAM mapped onto the image frame, [0, 1]
    cam_class: int | None = None
    attention: dict | None = None  # where the heatmap lay (export.attention shares)
    review: Review | None = None
    provider: str = ""

    def predicted(self, names) -> str:
        return "" if self.probabilities is None else names[int(np.argmax(self.probabilities))]


def read_reviews(folder: Path) -> dict[str, Review]:
    """Reviews made in the app, if any; a folder without them is left untouched."""
    path = existing_store(folder)
    if path is None:
        return {}
    with ReviewStore(path, read_only=True) as store:
        return store.all()


def scan(folder: str | os.PathLike[str], only: set[str] | None = None) -> list[tuple[Path, str]]:
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    out = [(p, p.relative_to(root).as_posix()) for p in iter_image_files(root)]
    return [x for x in out if only is None or x[1] in only]


def _decode(path: Path, manifest: Manifest) -> tuple[DecodedImage | None, np.ndarray | None, str]:
    try:
        d = read_image(path)
        return d, model_gray(d, manifest.input), ""
    except ImageDecodeError as exc:
        return None, None, exc.reason
    except Exception as exc:  # one bad file never stops the folder
        return None, None, f"unexpected error: {type(exc).__name__}: {exc}"


def run_folder(
    folder: str | os.PathLike[str],
    bundle: str | os.PathLike[str],
    *,
    cam_method: str | None = None,
    only: set[str] | None = None,
    keep_images: bool = False,
    prefer: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Record]:
    """Yield one Record per file, streaming (nothing accumulates)."""
    from export.onnx_runtime import OnnxClassifier

    manifest = load_bundle(bundle)
    clf = OnnxClassifier(bundle, manifest, prefer=prefer)
    runner = None
    if cam_method:
        from export.cam_runtime import CamRunner

        runner = CamRunner(bundle, manifest)
    files = scan(folder, only)
    reviews = read_reviews(Path(folder))
    ahead = 4  # decode a few files ahead, never the whole folder: memory stays flat
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_decode, p, manifest) for p, _ in files[:ahead]]
        for k, (path, rel) in enumerate(files):
            decoded, gray, err = futures[k].result()
            futures[k] = None  # let the decoded image go once used
            if k + ahead < len(files):
                futures.append(pool.submit(_decode, files[k + ahead][0], manifest))
            rec = Record(path, rel, review=reviews.get(rel), provider=clf.provider)
            if decoded is None:
                rec.status, rec.error = "error", err
            else:
                x = to_model_tensor(gray, manifest.input)
                rec.probabilities = clf.probabilities(x)[0]
                if runner is not None:
                    from desktop.cam_process import ATTENTION_METHOD, heatmap_for

                    cls = int(np.argmax(rec.probabilities))
                    res = heatmap_for(runner, decoded, cls, cam_method, x=x[None])
                    rec.heat, rec.cam_class = res["overlay"], res["class_index"]
                    rec.attention = res["attention"]
                    if cam_method != ATTENTION_METHOD:  # the flag is the app list's measure
                        rec.attention = heatmap_for(runner, decoded, cls, ATTENTION_METHOD,
                                                    x=x[None], overlay=False)["attention"]  # fmt: skip
                if keep_images or runner is not None:
                    rec.decoded = decoded
            if progress:
                progress(k + 1, len(files))
            yield rec
