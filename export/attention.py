"""Where did the model look? Lung field, burned-in text and CAM energy shares.

Models trained on chest X-rays often learn the hospital, the positioning or the
burned-in letters (``R``, ``B1``) instead of the lungs. This module measures
it for one image and its class activation map (CAM):

* :func:`estimate_lungs` finds the lung fields with classical image
  processing (no downloaded weights): the dark regions enclosed by the body,
  each completed by its convex hull, and a side whose dark part is much
  smaller than the other's (a whited-out, consolidated lobe) completed by the
  mirror image of the other side about the body's midline.
* :func:`detect_markers` finds burned-in text: thin, near-saturated strokes
  (white top-hat), grouped into words.
* :func:`attention_shares` splits the CAM's energy (its sum after
  normalisation to [0, 1]) into the lung field (with a tolerance margin, the
  CAM is coarse), the border band and the detected text.
* :func:`flag` applies the reviewer's threshold: "the model looked outside
  the lungs" when less than ``min_lung_share`` of the energy is in the lungs.

Everything runs in the image's own frame at :data:`ANALYSIS_SIDE` pixels on the
long side (a few milliseconds), NumPy and OpenCV only (no Qt, no TensorFlow).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: long side of the frame the masks and shares are computed in
ANALYSIS_SIDE = 256
#: default threshold: flag when less than this share of the CAM energy is in the lungs
DEFAULT_MIN_LUNG_SHARE = 0.5
#: the lung field is widened by this fraction of the image side (at least; see attention_shares)
LUNG_MARGIN = 0.03
#: width of the border band, as a fraction of the image side
BORDER_BAND = 0.08
#: detected text is widened by this fraction of the image side (the CAM is coarse)
MARKER_MARGIN = 0.03
#: pointing-game tolerance (fraction of the image side), as in Zhang et al.'s 15 px at 224
POINTING_TOLERANCE = 15 / 224


@dataclass(frozen=True)
class Attention:
    """CAM energy shares of one image, each in [0, 1].

    ``lung_share`` is None when the CAM is empty or no lung field was found
    (a lateral view, not a chest, a blank image): there is nothing to judge,
    so such an image is never flagged; :func:`describe` says why.
    """

    lung_share: float | None
    border_share: float | None
    marker_share: float | None
    lung_mask_source: str  # "estimated" or "dataset"
    lung_field_found: bool = True
    #: set when the check could not run (Grad-CAM failed): counted as checked, never flagged
    error: str | None = None

    @classmethod
    def not_checked(cls, reason: str) -> Attention:
        """The explicit "could not judge" result: shown as "—" with the reason."""
        return cls(None, None, None, "none", False, str(reason)[:300])

    @property
    def judged(self) -> bool:
        """A lung share exists, so the threshold applies."""
        return self.error is None and self.lung_share is not None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> Attention | None:
        """From :meth:`as_dict` (a cache row); anything malformed gives None (recompute)."""
        if not isinstance(d, dict):
            return None

        def share(key: str) -> float | None:
            v = d.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        return cls(
            share("lung_share"), share("border_share"), share("marker_share"),
            str(d.get("lung_mask_source", "estimated")), bool(d.get("lung_field_found", True)),
            str(d["error"]) if d.get("error") else None,
        )  # fmt: skip


def analysis_shape(height: int, width: int, side: int = ANALYSIS_SIDE) -> tuple[int, int]:
    s = min(1.0, side / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def _u8(image01: np.ndarray) -> np.ndarray:
    if image01.dtype == np.uint8:  # already quantised (``export.explain.ImageInput``)
        return image01
    return np.clip(np.asarray(image01, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _disk(radius: int) -> np.ndarray:
    import cv2

    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill regions not reachable from the image border."""
    import cv2

    m = mask.astype(np.uint8)
    h, w = m.shape
    flood = np.pad(m, 1).copy()
    ff = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff, (0, 0), 1)
    return mask | (flood[1:-1, 1:-1] == 0)


def _otsu(values: np.ndarray) -> float:
    import cv2

    v = np.asarray(values, np.uint8).reshape(-1, 1)
    if v.size == 0 or int(v.min()) == int(v.max()):
        return float(v.mean()) if v.size else 0.0
    t, _ = cv2.threshold(v, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t)


def _hull(mask: np.ndarray) -> np.ndarray:
    import cv2

    pts = cv2.findNonZero(mask.astype(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    if pts is not None and len(pts) >= 3:
        cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return out.astype(bool) | mask


def _lopsided(big: np.ndarray, other: np.ndarray, h: int) -> bool:
    """Is one side's dark field much smaller, or shorter at the top or bottom, than the other's?"""
    if other.sum() < 0.6 * big.sum():
        return True
    rb, ro = np.flatnonzero(big.any(axis=1)), np.flatnonzero(other.any(axis=1))
    return abs(int(rb[0]) - int(ro[0])) > 0.08 * h or abs(int(rb[-1]) - int(ro[-1])) > 0.08 * h


def estimate_lungs(image01: np.ndarray) -> np.ndarray:
    """Boolean lung-field mask of a windowed grey image in [0, 1] (any size; best at ~256 px).

    Steps: body = bright part (Otsu) with its holes filled; inside the body a
    second Otsu separates air (lungs) from soft tissue; dark components that
    touch the image border are outside air and dropped; the two largest
    remaining components in the upper four fifths are the lungs, one per side
    of the midline, each replaced by its convex hull (a consolidated patch
    inside the field does not cut it up). When one side's dark area is under
    60 % of the other's, the other side's mirror image fills it in.
    An empty mask means no lung field was found (the caller reports it).
    """
    import cv2

    g = cv2.GaussianBlur(_u8(image01), (0, 0), max(1.0, image01.shape[0] / 256))
    h, w = g.shape
    body = _fill_holes(g > _otsu(g))
    body = cv2.morphologyEx(body.astype(np.uint8), cv2.MORPH_OPEN, _disk(h // 100)).astype(bool)
    if body.sum() < 0.1 * h * w:
        return np.zeros((h, w), bool)
    inside = g[body]
    dark = body & (g < _otsu(inside))
    dark = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, _disk(h // 64))
    n, labels, stats, cents = cv2.connectedComponentsWithStats(dark, connectivity=8)
    keep = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches = x == 0 or y == 0 or x + bw >= w or y + bh >= h
        if touches or area < 0.01 * h * w or cents[i][1] > 0.8 * h:
            continue
        keep.append((area, i))
    if not keep:
        return np.zeros((h, w), bool)
    cols = np.flatnonzero(body.any(axis=0))
    mid = (cols[0] + cols[-1]) / 2.0
    sides: dict[str, np.ndarray] = {}
    for _area, i in sorted(keep, reverse=True):
        side = "left" if cents[i][0] < mid else "right"
        comp = labels == i
        sides[side] = sides[side] | comp if side in sides else comp
        if len(sides) == 2 and sum(m.sum() for m in sides.values()) > 0.95 * sum(
            a for a, _ in keep
        ):
            break
    hulls = {k: _hull(v) for k, v in sides.items()}
    areas = {k: int(v.sum()) for k, v in sides.items()}

    def mirrored(mask: np.ndarray) -> np.ndarray:
        out = np.zeros_like(mask)
        ys, xs = np.nonzero(mask)
        xm = np.round(2 * mid - xs).astype(int)
        ok = (xm >= 0) & (xm < w)
        out[ys[ok], xm[ok]] = True
        return _hull(cv2.morphologyEx(out.astype(np.uint8), cv2.MORPH_CLOSE, _disk(2)).astype(bool))

    big = max(areas, key=areas.get)
    other = "right" if big == "left" else "left"
    if other not in hulls or _lopsided(hulls[big], hulls[other], h):
        hulls[other] = hulls.get(other, np.zeros((h, w), bool)) | mirrored(hulls[big])
    lungs = np.zeros((h, w), bool)
    for m in hulls.values():
        lungs |= m
    return lungs & body


def detect_markers(image01: np.ndarray) -> np.ndarray:
    """Boolean mask of burned-in text and lead markers in a windowed grey image in [0, 1].

    Text is thin, near-saturated and much brighter than its surroundings: a
    white top-hat (radius ~ 2.5 % of the side) above 40 grey levels on pixels
    above 88 % of the range, grouped into words by a closing. Groups larger than
    3 % of the image, or whose strokes stand out by less than 50 levels on
    average (clavicles and other bone edges), are dropped.
    """
    import cv2

    g = _u8(image01)
    h, w = g.shape
    side = max(h, w)
    th = cv2.morphologyEx(g, cv2.MORPH_TOPHAT, _disk(max(2, round(side * 0.025))))
    strokes = ((th > 40) & (g > 225)).astype(np.uint8)
    words = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, _disk(max(1, round(side * 0.012))))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(words, connectivity=8)
    out = np.zeros((h, w), bool)
    for i in range(1, n):
        _x, _y, bw, bh, area = stats[i]
        if area < 4 or area > 0.03 * h * w or max(bw, bh) > 0.35 * side:
            continue
        comp = labels == i
        if float(th[comp & (strokes > 0)].mean()) < 50:  # bone edges: long and soft-edged
            continue
        out |= comp
    return out


def border_band(shape: tuple[int, int], fraction: float = BORDER_BAND) -> np.ndarray:
    h, w = shape
    b = max(1, round(max(h, w) * fraction))
    out = np.ones((h, w), bool)
    out[b : h - b, b : w - b] = False
    return out


def _dilate(mask: np.ndarray, fraction: float) -> np.ndarray:
    import cv2

    r = round(max(mask.shape) * fraction)
    if r < 1 or not mask.any():
        return mask
    return cv2.dilate(mask.astype(np.uint8), _disk(r)).astype(bool)


def _share(cam: np.ndarray, mask: np.ndarray, total: float) -> float | None:
    if total <= 0:
        return None
    return float(cam[mask].sum() / total)


def attention_shares(
    cam: np.ndarray,
    lungs: np.ndarray,
    markers: np.ndarray,
    *,
    lung_mask_source: str = "estimated",
    cell: float = 0.0,
) -> Attention:
    """CAM energy shares; ``cam`` (in [0, 1]) and the masks share one frame.

    ``cell`` is the CAM's own grid step as a fraction of the side (1/16 for a
    16x16 map): the lung field and the text are widened by at least one cell,
    because a coarse map upsampled bilinearly spreads a peripheral lesion's
    blob over the chest wall; without that margin a clean model is flagged on
    about half (47 %) of its peripheral COVID-19 cases.
    """
    c = np.clip(np.asarray(cam, np.float32), 0.0, None)
    if c.shape != lungs.shape or c.shape != markers.shape:
        raise ValueError(f"CAM {c.shape} and masks {lungs.shape}/{markers.shape} differ in shape")
    total = float(c.sum())
    return Attention(
        lung_share=_share(c, _dilate(lungs, max(LUNG_MARGIN, cell)), total)
        if lungs.any()
        else None,
        border_share=_share(c, border_band(c.shape), total),
        marker_share=_share(c, _dilate(markers, max(MARKER_MARGIN, cell)), total),
        lung_mask_source=lung_mask_source,
        lung_field_found=bool(lungs.any()),
    )


def flag(att: Attention | None, min_lung_share: float = DEFAULT_MIN_LUNG_SHARE) -> bool:
    """True when the model looked outside the lungs (not judged is never flagged)."""
    if att is None or not att.judged:
        return False
    share = att.lung_share
    return share is not None and not math.isnan(share) and share < min_lung_share


def describe(att: Attention, min_lung_share: float = DEFAULT_MIN_LUNG_SHARE) -> str:
    """One line for the reviewer: the lung share and where most of the rest went."""
    if att.error:
        return f"Attention not checked: {att.error}"
    if not att.lung_field_found:
        return "Attention not judged: no lung field found in this image (not a PA/AP chest view?)"
    lung = att.lung_share
    if lung is None:
        return "Attention: no heatmap energy (the class score does not depend on the image here)"
    text = f"{lung:.0%} of the heatmap inside the lung field"
    if lung < min_lung_share:
        text = f"Looked outside the lungs: {text} (threshold {min_lung_share:.0%})"
        parts = []
        if (att.marker_share or 0) >= 0.15:
            parts.append(f"{att.marker_share:.0%} on burned-in text")
        if (att.border_share or 0) >= 0.15:
            parts.append(f"{att.border_share:.0%} on the image border")
        if parts:
            text += "; " + ", ".join(parts)
    return text


def analysis_image(decoded, spec, *, image01: np.ndarray | None = None) -> np.ndarray:
    """The decoded image windowed as the model sees it, area-resized to :func:`analysis_shape`
    and quantised as the detectors quantise it: the one image the lung and marker estimates
    are computed on (app, reports and audit). ``image01``: ``windowed(decoded, spec)``."""
    import cv2

    from export.image_input import windowed

    frame = analysis_shape(decoded.meta.height, decoded.meta.width)
    full = windowed(decoded, spec) if image01 is None else image01
    return _u8(cv2.resize(_block_mean(full, frame), frame[::-1], interpolation=cv2.INTER_AREA))


#: the block mean leaves at least this many times the analysis frame on each side
BLOCK_MARGIN = 4


def _block_mean(image: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """``image`` averaged over k x k blocks, k the largest whole factor of both sides that
    leaves at least :data:`BLOCK_MARGIN` times ``frame`` (the image itself when there is none,
    e.g. an odd side: cropping a remainder would shift the whole frame).

    OpenCV's area resize takes a fast path for whole factors: on a 2,500x2,048 film
    (one core) the analysis image costs 10.6-11.2 ms straight and 3.7-4.4 ms through the
    2 x 2 block mean. Against the straight area resize (2,500x2,048 phantoms and films,
    2,100x1,700 to 4,002x3,000): mean change <= 0.09 grey levels, <= 0.1 % of pixels off
    by more than one level, up to 8 levels along a hard full-range edge (a burnt-in
    marker); lung estimate Dice >= 0.998, text-marker Dice >= 0.94, the pixel checks
    unchanged, the attention shares of a fixed CAM within 7e-4 (tests/test_decode_fast.py
    holds the grey-level bounds). Images under 1,024 px on a side (the demo and test
    phantoms) are not touched; the model input never is (:func:`export.image_input.model_gray`
    resizes the full image).
    """
    import cv2

    h, w = image.shape[:2]
    k_max = min(h // (BLOCK_MARGIN * frame[0]), w // (BLOCK_MARGIN * frame[1]))
    k = next((k for k in range(k_max, 1, -1) if h % k == 0 and w % k == 0), 1)
    if k == 1:
        return image
    return cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    if mask.shape == tuple(shape):
        return mask.astype(bool)
    m = cv2.resize(mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return m >= 128


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def pointing_hit(
    cam: np.ndarray, lesion: np.ndarray, tolerance: float = POINTING_TOLERANCE
) -> bool:
    """Pointing game: is the CAM's maximum within ``tolerance`` (of the side) of the lesion?"""
    c = np.asarray(cam, np.float32)
    if not lesion.any() or float(c.max()) <= 0:
        return False
    y, x = np.unravel_index(int(np.argmax(c)), c.shape)
    return bool(_dilate(lesion, tolerance)[y, x])


def lesion_energy_share(cam: np.ndarray, lesion: np.ndarray) -> float | None:
    c = np.clip(np.asarray(cam, np.float32), 0.0, None)
    return _share(c, lesion, float(c.sum()))


def image_attention(
    decoded, cam: np.ndarray, spec, *, lungs: np.ndarray | None = None,
    markers: np.ndarray | None = None, lung_mask_source: str = "estimated",
) -> tuple[Attention, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`export.explain.attention_for` of a decoded image (``cxr audit``'s entry point)."""
    from export.explain import ImageInput, attention_for

    return attention_for(ImageInput.from_decoded(decoded, spec), cam, spec, lungs=lungs,
                         markers=markers, lung_mask_source=lung_mask_source)  # fmt: skip
