"""Checks that need no model: is this file a frontal chest radiograph at all?

Computed once per decode from what the decoder already has (the header facts in
:class:`export.image_input.ImageMeta` and the small analysis image), so they cost
a few hundred microseconds. Each check that fires gives its reason in words; the
reasons join the model-based verdict in :class:`export.novelty.Novelty`. A check
never changes the prediction: the reviewer sees both.

The thresholds are deliberately loose: a check is a "look again" for images that
are plainly not what a chest classifier was trained on, and must stay silent on
ordinary 8- and 16-bit radiographs (the demo phantoms are the regression set).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from export.image_input import DecodedImage, ImageMeta

#: 90th percentile of a pixel's channel spread (max - min of R, G, B, over the full scale)
#: from which an RGB file is a colour picture: radiographs saved as RGB have R = G = B (JPEG
#: leaves a few levels), a coloured arrow or label covers far less than a tenth of the image
COLOUR_CHROMA = 0.08
#: fewer distinct grey levels than this in the analysis image: a drawing, a chart or a
#: document, not a radiograph (an 8-bit film shows well over a hundred)
MIN_GREY_LEVELS = 24
#: the most common grey level covering more than this share of the analysis image: mostly
#: a flat fill (a blank page, a screenshot), not a film
MAX_FLAT_SHARE = 0.6
#: polarity: the central column (mediastinum, spine) is darker than both lateral lung zones
#: by at least this many grey levels of the analysis image (0..255), and the border is
#: brighter than the central column. A frontal film shows the reverse: a white mediastinum
#: between darker lungs.
INVERTED_MARGIN = 20.0
#: DICOM ViewPosition values that are not a frontal (PA/AP) view
LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LLO", "RLO", "RLD", "LLD"})
#: DICOM modalities whose images are radiographs (a CT or MR slice is not)
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "RF", "RG", "XA", "DR", "PX", "OT", "SC"})


def colour_chroma(rgb: np.ndarray, full_scale: float) -> float:
    """How coloured an (H, W, 3) image is: the 90th percentile of max - min over the channels,
    as a share of ``full_scale``, on a strided sample (~250k pixels whatever the size)."""
    h, w = rgb.shape[:2]
    step = max(1, int(np.sqrt(h * w / 250_000)))
    s = np.asarray(rgb[::step, ::step, :3], dtype=np.float32)
    spread = s.max(axis=2) - s.min(axis=2)
    return float(np.percentile(spread, 90)) / max(float(full_scale), 1e-6)


def header_reasons(meta: ImageMeta) -> list[str]:
    """What the file says about itself that rules out a frontal chest radiograph."""
    out: list[str] = []
    if meta.chroma >= COLOUR_CHROMA:
        out.append("a colour picture (a photograph?), not a greyscale radiograph")
    tags = meta.tags
    view = tags.get("View", "").strip().upper()
    if view in LATERAL_VIEWS:
        out.append(f"DICOM view position {view}: not a frontal (PA/AP) view")
    part = tags.get("Body part", "").strip().upper()
    if part and "CHEST" not in part and "THORAX" not in part and "LUNG" not in part:
        out.append(f"DICOM body part {part}: not a chest")
    modality = tags.get("Modality", "").strip().upper()
    if modality and modality not in RADIOGRAPH_MODALITIES:
        out.append(f"DICOM modality {modality}: not a radiograph")
    return out


def pixel_reasons(analysis: np.ndarray) -> list[str]:
    """What the analysis image (uint8, windowed as the model sees it) says."""
    a = np.asarray(analysis)
    if a.size == 0:
        return []
    counts = np.bincount(a.ravel().astype(np.uint8), minlength=256)
    levels = int((counts > 0).sum())
    if levels < MIN_GREY_LEVELS:
        return [f"only {levels} grey levels: a drawing or a document, not a radiograph"]
    flat = float(counts.max()) / a.size
    if flat > MAX_FLAT_SHARE:
        return [f"{flat:.0%} of the image is one flat grey: not a radiograph"]
    if looks_inverted(a):
        return [
            "inverted polarity (bright lungs, dark mediastinum): a MONOCHROME1 film saved "
            "without inversion? Invert it for the model if so"
        ]
    return []


def polarity_zones(analysis: np.ndarray) -> tuple[float, float, float, float]:
    """Mean grey of (left lung zone, right lung zone, central column, border) on the middle
    half of the rows; the zones sit where a frontal film's lungs and mediastinum are."""
    a = np.asarray(analysis, dtype=np.float32)
    h, w = a.shape
    rows = slice(int(0.25 * h), max(int(0.75 * h), int(0.25 * h) + 1))

    def cols(lo: float, hi: float) -> slice:
        return slice(int(lo * w), max(int(hi * w), int(lo * w) + 1))

    left = float(a[rows, cols(0.15, 0.35)].mean())
    right = float(a[rows, cols(0.65, 0.85)].mean())
    centre = float(a[rows, cols(0.45, 0.55)].mean())
    b = max(1, int(0.04 * min(h, w)))
    edge = np.concatenate([a[:b].ravel(), a[-b:].ravel(), a[:, :b].ravel(), a[:, -b:].ravel()])
    return left, right, centre, float(edge.mean())


def looks_inverted(analysis: np.ndarray) -> bool:
    """A dark central column between brighter lung zones, inside a bright border."""
    left, right, centre, border = polarity_zones(analysis)
    return min(left, right) - centre >= INVERTED_MARGIN and border > centre


def image_reasons(meta: ImageMeta, analysis: np.ndarray) -> tuple[str, ...]:
    """Every check that fires, header facts first; empty when none does."""
    return tuple(header_reasons(meta) + pixel_reasons(analysis))


def inverted(decoded: DecodedImage) -> DecodedImage:
    """The same image with its polarity flipped in the file's own units (around its nominal
    range), so windowing, the model input and the display all see the reviewer's choice."""
    lo, hi = decoded.nominal_range
    pixels = np.float32(lo + hi) - decoded.pixels
    whole = decoded.integer_valued and float(lo + hi).is_integer()
    return replace(
        decoded, pixels=np.ascontiguousarray(pixels, dtype=np.float32), integer_valued=whole
    )
