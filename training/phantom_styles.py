"""Phantoms rendered *unlike* the standard set, and other images no chest model has seen.

The standard phantom is an adult PA chest. A guard that says "unlike the
training data" must be tested on images that are unlike it in the ways real
folders are, so each style changes one thing a reviewer meets in practice:

* ``lateral``: a side view: one lung field, the spine at the back, the heart in front;
* ``paediatric``: a child's proportions: a large heart, short round thorax,
  horizontal faint ribs, and the small body in a large field;
* ``collimated``: a tight field (bright unexposed borders) zoomed on part of the chest;
* ``inverted``: white lungs and a dark mediastinum (MONOCHROME1 shown without inversion);
* ``noisy``: a very low-dose film: heavy quantum noise and blur;
* ``non-chest``: a limb (long bones) or abdomen (bowel gas, spine, pelvis) radiograph;
* ``natural``: a colour picture (gradients and shapes), as a photo dropped in the folder.

No download: every image comes from a seed.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.phantoms import Phantom, render_phantom

STYLES = (
    "standard", "lateral", "paediatric", "collimated", "inverted", "noisy", "non-chest", "natural",
)  # fmt: skip
#: every style but the standard one: what the guard must flag
OOD_STYLES = STYLES[1:]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def render_styled(
    label: str,
    size: int,
    rng: np.random.Generator,
    style: str = "standard",
    *,
    marker: tuple[str, str] | None = None,
) -> Phantom:
    """One phantom in ``style``; masks stay those of the standard render (empty for lateral)."""
    if style not in STYLES:
        raise ValueError(f"unknown phantom style {style!r} (one of {', '.join(STYLES)})")
    if style in ("lateral", "non-chest", "natural"):
        if style == "natural":
            img = natural_image(size, rng).astype(np.float32) / 255.0  # RGB: a photograph
        else:
            img = _lateral(size, rng) if style == "lateral" else non_chest(size, rng)
        empty = np.zeros((size, size), bool)
        return Phantom(img, empty, empty.copy(), empty.copy(), label, {"style": style})
    if style == "paediatric":
        over = {
            "ctr": _u(rng, 0.58, 0.66),
            "lung_h": _u(rng, 0.52, 0.6),
            "apex": _u(rng, -0.6, -0.52),
            "lung_w": _u(rng, 0.33, 0.37),
            "rib_gap": _u(rng, 0.15, 0.18),
            "rib_amp": _u(rng, 0.03, 0.05),
            "heart_y": _u(rng, 0.1, 0.16),
            "breast": 0.0,
        }
        ph = render_phantom(label, size, rng, marker=marker, overrides=over)
        ph.image[:] = _shrink_into_field(ph.image, _u(rng, 0.6, 0.72))
    else:
        ph = render_phantom(label, size, rng, marker=marker)
        if style == "collimated":
            ph.image[:] = _collimate(ph.image, rng)
        elif style == "inverted":
            ph.image[:] = 1.0 - ph.image
        elif style == "noisy":
            img = cv2.GaussianBlur(ph.image, (0, 0), size / 128)
            img = img + _u(rng, 0.15, 0.25) * rng.standard_normal(img.shape).astype(np.float32)
            ph.image[:] = np.clip(img, 0.0, 1.0)
    if style != "standard":
        ph.info["style"] = style
    return ph


def _shrink_into_field(img: np.ndarray, scale: float) -> np.ndarray:
    """The whole image scaled down into a dark field: a small patient on a large detector."""
    n = img.shape[0]
    k = max(8, round(n * scale))
    small = cv2.resize(img, (k, k), interpolation=cv2.INTER_AREA)
    out = np.full_like(img, float(np.percentile(img, 2)))
    top = (n - k) // 2
    out[top : top + k, top : top + k] = small
    return out


def _collimate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Zoom on part of the chest and leave bright unexposed bands around a tight field."""
    n = img.shape[0]
    k = round(n * _u(rng, 0.45, 0.6))
    y0, x0 = (int(rng.integers(0, n - k)) for _ in range(2))
    zoom = cv2.resize(img[y0 : y0 + k, x0 : x0 + k], (n, n), interpolation=cv2.INTER_LINEAR)
    out = np.full_like(img, _u(rng, 0.85, 0.97))
    a, b = round(n * _u(rng, 0.18, 0.28)), round(n * _u(rng, 0.72, 0.82))
    c, d = round(n * _u(rng, 0.15, 0.25)), round(n * _u(rng, 0.75, 0.85))
    out[a:b, c:d] = zoom[a:b, c:d]
    return out


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    return g[None, :], g[:, None]


def _soft(f: np.ndarray, eps: float = 0.02) -> np.ndarray:
    return np.clip(0.5 - f / eps, 0.0, 1.0).astype(np.float32)


def _finish(dens: np.ndarray, rng: np.random.Generator, noise: float = 0.015) -> np.ndarray:
    n = dens.shape[0]
    img = cv2.GaussianBlur(dens.astype(np.float32), (0, 0), max(0.6, n / 400))
    img = img + noise * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _lateral(n: int, rng: np.random.Generator) -> np.ndarray:
    """Side view: a deep trunk, one lung lucency, vertebral bodies behind, heart in front."""
    x, y = _grid(n)
    body = _soft(((x / _u(rng, 0.8, 0.9)) ** 2 + ((y - 0.1) / 1.3) ** 2) - 1.0, 0.05)
    dens = body * 0.55
    lung = _soft(((x - 0.05) / _u(rng, 0.5, 0.6)) ** 2 + ((y + 0.05) / 0.62) ** 2 - 1.0, 0.06)
    dens -= 0.3 * lung
    spine_x = _u(rng, 0.55, 0.65)
    for k in range(-6, 7):  # vertebral bodies, stacked, with disc spaces
        cy = k * 0.15
        dens += 0.25 * _soft(np.maximum(np.abs(x - spine_x) - 0.1, np.abs(y - cy) - 0.055), 0.01)
    heart = _soft(((x + 0.25) / 0.33) ** 2 + ((y - 0.3) / 0.3) ** 2 - 1.0, 0.05)
    dens += 0.2 * heart * lung
    dens += 0.12 * _soft(np.abs(x + 0.82) - 0.03, 0.02) * (np.abs(y) < 0.7)  # sternum
    dens += 0.12 * (y > 0.45 + 0.15 * x) * body  # abdomen under the diaphragm
    arms = _soft(np.abs(y + 0.6 + 0.2 * x) - 0.08, 0.03) * (x > -0.6)
    dens += 0.15 * arms * body
    return _finish(dens, rng)


def non_chest(n: int, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A limb (long bones) or abdomen (bowel gas, spine, pelvis) radiograph in [0, 1]."""
    kind = kind or ("limb" if rng.random() < 0.5 else "abdomen")
    x, y = _grid(n)
    if kind == "limb":
        a = np.deg2rad(_u(rng, -20, 20))
        u = np.cos(a) * x + np.sin(a) * y
        soft = _soft(np.abs(u) - _u(rng, 0.3, 0.45), 0.08)
        dens = 0.35 * soft
        for off, w in ((_u(rng, -0.12, -0.05), 0.07), (_u(rng, 0.05, 0.12), 0.045)):
            shaft = _soft(np.abs(u - off) - w, 0.01)
            marrow = _soft(np.abs(u - off) - w * 0.45, 0.01)
            dens += 0.45 * shaft - 0.2 * marrow
        return _finish(dens, rng)
    body = _soft((x / 0.95) ** 2 + (y / 1.2) ** 2 - 1.0, 0.05)
    dens = 0.5 * body + 0.2 * _soft(np.abs(x) - 0.07, 0.01) * body  # spine
    for _ in range(int(rng.integers(8, 18))):  # bowel gas
        cx, cy = _u(rng, -0.6, 0.6), _u(rng, -0.6, 0.5)
        r = _u(rng, 0.04, 0.12)
        dens -= 0.25 * _soft(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 - r, 0.03)
    pelvis = _soft(np.abs(((x / 0.7) ** 2 + ((y - 1.0) / 0.45) ** 2) ** 0.5 - 1.0) - 0.05, 0.02)
    dens += 0.3 * pelvis
    return _finish(dens, rng)


def natural_image(n: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 picture: a colour gradient sky over ground, with coloured shapes."""
    x, y = _grid(n)
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = ((y + 1) / 2)[..., None]
    img = (1 - t) * top + t * bottom + 0 * x[..., None]
    img = np.broadcast_to(img, (n, n, 3)).copy()
    for _ in range(int(rng.integers(3, 9))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cx, cy = (int(v) for v in rng.integers(0, n, 2))
        r = int(rng.integers(n // 16, n // 4))
        if rng.random() < 0.5:
            cv2.circle(img, (cx, cy), r, colour, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), colour, -1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


__all__ = ["OOD_STYLES", "STYLES", "natural_image", "non_chest", "render_styled"]
