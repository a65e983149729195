"""Heatmap over radiograph, in NumPy: the same picture the viewer draws, for files and reports.

Colour comes from an RGBA table whose alpha rises with the heat (cold areas
stay see-through), multiplied by the chosen opacity: exactly the viewer's
overlay item, so a report shows what the reviewer saw.
"""

from __future__ import annotations

import numpy as np

CV2_MAPS = {"inferno": "COLORMAP_INFERNO", "viridis": "COLORMAP_VIRIDIS", "turbo": "COLORMAP_TURBO",
            "plasma": "COLORMAP_PLASMA", "jet": "COLORMAP_JET"}  # fmt: skip


def colormap_rgb(name: str = "inferno") -> np.ndarray:
    """(256, 3) uint8 RGB table."""
    import cv2

    code = getattr(cv2, CV2_MAPS.get(name, "COLORMAP_INFERNO"))
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], code)[:, 0, :]
    return bgr[:, ::-1].copy()


def heat_alpha() -> np.ndarray:
    """(256,) alpha in [0, 1] for each heat level: 0 at no heat, opaque from half heat up."""
    return np.clip(np.linspace(0.0, 1.0, 256) * 2.0, 0.0, 1.0)


def composite(
    image01: np.ndarray, heat01: np.ndarray | None, opacity: float, cmap: str = "inferno"
) -> np.ndarray:
    """(H, W, 3) uint8: grey image with the heatmap blended on top.

    ``heat01`` may be smaller than the image; it is stretched onto it.
    """
    import cv2

    grey = np.clip(np.asarray(image01, np.float32), 0.0, 1.0) * 255.0
    out = np.repeat(grey[..., None], 3, axis=-1)
    if heat01 is None or opacity <= 0:
        return np.rint(out).astype(np.uint8)
    h, w = grey.shape
    heat = np.asarray(heat01, np.float32)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    idx = np.clip(np.rint(heat * 255.0), 0, 255).astype(np.uint8)
    colour = colormap_rgb(cmap)[idx].astype(np.float32)
    a = (heat_alpha()[idx] * float(np.clip(opacity, 0.0, 1.0)))[..., None].astype(np.float32)
    out = (1.0 - a) * out + a * colour
    return np.rint(out).astype(np.uint8)
