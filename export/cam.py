"""Class activation maps as small NumPy functions of the ``cam`` signature's outputs.

The bundle's TF ``cam`` signature returns activations and gradients of the
class *score* (logit) at the CAM layer, NHWC. Each method below turns them
into an (N, h, w) map; :func:`normalise` scales each map to [0, 1] without
dividing by zero on a flat map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = 1e-7


def _check(acts: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, g = np.asarray(acts, np.float32), np.asarray(grads, np.float32)
    if a.shape != g.shape or a.ndim != 4:
        raise ValueError(f"activations {a.shape} and gradients {g.shape} must be equal NHWC shapes")
    return a, g


def gradcam(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Selvaraju et al.: channel weights are the spatially averaged gradients."""
    a, g = _check(acts, grads)
    w = g.mean(axis=(1, 2), keepdims=True)
    return np.maximum((w * a).sum(axis=-1), 0.0)


def gradcam_plus_plus(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Chattopadhay et al.: pixel-wise weights, better for several instances of a class."""
    a, g = _check(acts, grads)
    g2, g3 = g * g, g * g * g
    sum_a = a.sum(axis=(1, 2), keepdims=True)
    alpha = g2 / (2.0 * g2 + sum_a * g3 + EPS)
    alpha = np.where(g != 0.0, alpha, 0.0)
    w = (alpha * np.maximum(g, 0.0)).sum(axis=(1, 2), keepdims=True)
    return np.maximum((w * a).sum(axis=-1), 0.0)


def hirescam(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Draelos & Carin: element-wise gradient x activation, faithful to the score."""
    a, g = _check(acts, grads)
    return np.maximum((g * a).sum(axis=-1), 0.0)


#: method key -> label, in menu order: the one list the viewer, ``--cam-method`` and
#: ``cxr audit --method`` offer
METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
}
DEFAULT_METHOD = "gradcam"

_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "hirescam": hirescam,
}


def normalise(cam: np.ndarray) -> np.ndarray:
    """Each map to [0, 1]; a flat (all-equal) map becomes all zeros, never NaN."""
    c = np.asarray(cam, np.float32)
    lo = c.min(axis=(-2, -1), keepdims=True)
    span = c.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > EPS, (c - lo) / np.maximum(span, EPS), 0.0).astype(np.float32)


def compute_cam(method: str, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    try:
        fn = _FUNCTIONS[method]
    except KeyError:
        raise ValueError(
            f"unknown CAM method {method!r}; choose from {', '.join(METHODS)}"
        ) from None
    return normalise(fn(acts, grads))


def upsample(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """One (h, w) map onto an image of (height, width), bilinear."""
    import cv2

    return cv2.resize(np.asarray(cam, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def onto_image(
    cam: np.ndarray, image_hw: tuple[int, int], spec, max_side: int | None = None
) -> np.ndarray:
    """Map a CAM computed on the model input back onto the original image's frame.

    With ``resize="pad"`` the model saw a letterboxed image: the map is
    cropped to the image's part of the input before it is stretched, so the
    heatmap lines up with the anatomy. ``max_side`` caps the output size
    (the viewer scales it up smoothly).
    """
    h, w = image_hw
    c = np.asarray(cam, np.float32)
    if spec.resize == "pad":
        s = min(spec.height / h, spec.width / w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        top, left = (spec.height - nh) // 2, (spec.width - nw) // 2
        ch, cw = c.shape
        r0, r1 = top * ch / spec.height, (top + nh) * ch / spec.height
        c0, c1 = left * cw / spec.width, (left + nw) * cw / spec.width
        up = upsample(c, spec.height, spec.width)
        c = up[round(r0 * spec.height / ch) : round(r1 * spec.height / ch),
               round(c0 * spec.width / cw) : round(c1 * spec.width / cw)]  # fmt: skip
    scale = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    return np.clip(upsample(c, max(1, round(h * scale)), max(1, round(w * scale))), 0.0, 1.0)
