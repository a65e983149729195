"""Marks as COCO-style annotations (``cxr reviews export --coco``), for segmentation training.

Choices (documented in docs/REVIEWS.md):

* categories are the mark kinds (arrow, ellipse, rectangle, polyline, text):
  what a mark outlines is said by its label, and the reviewer's class is a
  verdict on the whole image, so it is kept on the image entry
  (``cxr_review``: decision, class, note) rather than on each region;
* ellipse, rectangle and a freehand outline of three or more points are
  regions: ``segmentation`` is one polygon (an ellipse sampled at
  :data:`ELLIPSE_POINTS` points), ``area`` its polygon area;
* arrows and text labels are not regions: ``segmentation`` is empty, the
  points are ``keypoints`` (arrow: tail, head; text: anchor, all visible,
  v = 2), ``area`` is 0;
* every annotation carries ``attributes.text`` (the label, maybe empty).

Coordinates are pixels of the original file, origin top-left, as in COCO.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from desktop.annotations import KINDS, Annotation

ELLIPSE_POINTS = 32
KEYPOINTS = {"arrow": ["tail", "head"], "text": ["anchor"]}


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header when Pillow knows the format, else by decoding."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # DICOM and the formats Pillow lacks
        from export.image_input import ImageDecodeError, read_image

        try:
            meta = read_image(path).meta
        except ImageDecodeError:
            return None
        return meta.width, meta.height


def polygon(m: Annotation) -> list[float]:
    """The region's outline as [x1, y1, x2, y2, ...]; [] when the mark is not a region."""
    if m.kind == "rectangle":
        x0, y0, x1, y1 = m.bbox()
        pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    elif m.kind == "ellipse":
        x0, y0, x1, y1 = m.bbox()
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        pts = [
            (cx + rx * math.cos(t), cy + ry * math.sin(t))
            for t in (2 * math.pi * k / ELLIPSE_POINTS for k in range(ELLIPSE_POINTS))
        ]
    elif m.kind == "polyline" and len(m.points) >= 3:
        pts = list(m.points)
    else:
        return []
    return [round(v, 2) for p in pts for v in p]


def polygon_area(flat: list[float]) -> float:
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    return abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))) / 2


def to_coco(folder: Path, reviews: list[dict[str, Any]]) -> dict[str, Any]:
    """COCO dict from the entries of :func:`desktop.reviews_io.collect` (images with marks)."""
    cat_ids = {k: i + 1 for i, k in enumerate(KINDS)}
    categories = [
        {"id": cat_ids[k], "name": k, "supercategory": "mark", "keypoints": KEYPOINTS.get(k, [])}
        for k in KINDS
    ]
    images, annotations = [], []
    for entry in reviews:
        marks = [Annotation.from_dict(d) for d in entry.get("annotations") or []]
        if not marks:
            continue
        size = image_size(Path(folder) / entry["path"])
        if size is None:
            continue
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": entry["path"],
                "width": size[0],
                "height": size[1],
                "cxr_review": {
                    k: entry.get(k) for k in ("sha256", "reviewer", "decision", "class", "note")
                },
            }
        )
        for m in marks:
            x0, y0, x1, y1 = m.bbox()
            seg = polygon(m)
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cat_ids[m.kind],
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "segmentation": [seg] if seg else [],
                "area": round(polygon_area(seg), 2) if seg else 0.0,
                "iscrowd": 0,
                "attributes": {"text": m.text},
            }
            if m.kind in KEYPOINTS:
                ann["keypoints"] = [round(v, 2) for p in m.points for v in (*p, 2)]
                ann["num_keypoints"] = len(m.points)
            if m.kind == "polyline" and not seg:
                ann["attributes"]["open_outline"] = [round(v, 2) for p in m.points for v in p]
            annotations.append(ann)
    return {
        "info": {"description": "cxr-review reviewer marks", "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
