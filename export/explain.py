"""The explainer: one image in, one typed :class:`Heatmap` out (Grad-CAM and where it lay).

Every Grad-CAM of the project goes through :func:`explain`: the app's
Grad-CAM child, ``cxr classify --heatmaps``, ``cxr report``. Its input is an
:class:`ImageInput`, the small part of a decoded image that the model and
the attention measure need, so an image decoded once (by the folder pass or
the viewer) never has to be decoded again for its heatmap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from export.attention import ANALYSIS_SIDE, Attention
from export.image_input import DecodedImage, InputSpec, model_gray, read_image, windowed

#: the "looked outside the lungs" measure everywhere (list, reports, ``cxr audit``):
#: Grad-CAM of the predicted class, whatever method the reviewer views
ATTENTION_METHOD = "gradcam"
#: heatmaps cross process boundaries at most this long on their long side (the viewer
#: scales them up smoothly)
MAX_OVERLAY_SIDE = 768


@dataclass(frozen=True)
class ImageInput:
    """What classification, Grad-CAM and the attention measure need of one image.

    ``model_gray`` is the model input (uint8 grey at the model size, the
    image-input contract); ``analysis`` the windowed image at
    :data:`export.attention.ANALYSIS_SIDE` on its long side, quantised to
    uint8 as the lung and text detectors quantise it. About 100 KB, against
    megabytes for the decoded film. ``checks``: the reasons of the checks that
    need no model (:mod:`export.image_checks`), computed here because this is
    the one place every decode passes. ``inverted``: the reviewer said the file's
    polarity is wrong, so the pixels were flipped before anything else saw them.
    """

    model_gray: np.ndarray
    analysis: np.ndarray
    height: int
    width: int
    checks: tuple[str, ...] = ()
    inverted: bool = False

    @classmethod
    def from_decoded(
        cls, decoded: DecodedImage, spec: InputSpec, *, invert: bool = False
    ) -> ImageInput:
        from export.attention import analysis_image
        from export.image_checks import image_reasons, inverted

        if invert:
            decoded = inverted(decoded)
        image01 = windowed(decoded, spec)
        analysis = analysis_image(decoded, spec, image01=image01)
        gray = model_gray(decoded, spec, image01=image01)
        checks = image_reasons(decoded.meta, analysis)
        return cls(gray, analysis, decoded.meta.height, decoded.meta.width, checks, invert)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], spec: InputSpec, *, invert: bool = False
    ) -> ImageInput:
        return cls.from_decoded(read_image(path), spec, invert=invert)

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


@dataclass(frozen=True)
class Heatmap:
    """One class activation map, on the model's grid and on the image's own frame."""

    cam: np.ndarray  # model-frame map in [0, 1]
    overlay: np.ndarray | None  # the map on the image frame (long side <= max_side), [0, 1]
    image_size: tuple[int, int]  # (height, width) of the original image
    class_index: int
    method: str
    layer: str
    precision: str
    probabilities: np.ndarray
    attention: Attention
    lung_mask: np.ndarray | None = None  # analysis frame, for the viewer's outlines
    marker_mask: np.ndarray | None = None

    def numbers_only(self) -> Heatmap:
        """Without the arrays a background audit does not need (what crosses the pipe)."""
        return replace(self, overlay=None, lung_mask=None, marker_mask=None)


def attention_for(
    image: ImageInput,
    cam: np.ndarray,
    spec: InputSpec,
    *,
    lungs: np.ndarray | None = None,
    markers: np.ndarray | None = None,
    lung_mask_source: str = "estimated",
) -> tuple[Attention, np.ndarray, np.ndarray, np.ndarray]:
    """(attention, cam, lungs, markers) in the image's analysis frame.

    ``lungs``/``markers`` given (a data set's masks, any size) replace the estimates.
    """
    from export.attention import attention_shares, detect_markers, estimate_lungs, resize_mask
    from export.cam import onto_image

    frame = image.analysis.shape
    c = onto_image(cam, image.size, spec, ANALYSIS_SIDE)
    if lungs is None:
        lungs = estimate_lungs(image.analysis)
    if markers is None:
        markers = detect_markers(image.analysis)
    lungs, markers = resize_mask(lungs, frame), resize_mask(markers, frame)
    cell = 1.0 / max(1, min(np.shape(cam)[-2:]))
    att = attention_shares(c, lungs, markers, lung_mask_source=lung_mask_source, cell=cell)
    return att, c, lungs, markers


def explain(
    runner,
    image: ImageInput,
    class_index: int | None,
    method: str,
    *,
    max_side: int | None = MAX_OVERLAY_SIDE,
    overlay: bool = True,
    exact: bool = False,
) -> Heatmap:
    """Grad-CAM (``method``) of ``class_index`` (None: the predicted class) for one image.

    ``runner`` is an :class:`export.cam_runtime.CamRunner`; ``exact`` asks for its
    float32 path where it displays in bfloat16 (the attention figures, which must
    match reports and ``cxr audit``). ``overlay=False`` skips the image-frame map.
    """
    from export.cam import compute_cam, onto_image
    from export.image_input import to_model_tensor

    m = runner.manifest
    x = to_model_tensor(image.model_gray, m.input)[None]
    acts, grads, probs = runner.run(x, [class_index or 0], exact=exact)
    cls = class_index
    if cls is None:
        cls = int(np.argmax(probs[0]))
        if cls != 0:
            acts, grads, probs = runner.run(x, [cls], exact=exact)
    cam = compute_cam(method, acts, grads)[0]
    att, _c, lungs, markers = attention_for(image, cam, m.input)
    return Heatmap(
        cam=cam,
        overlay=onto_image(cam, image.size, m.input, max_side) if overlay else None,
        image_size=image.size,
        class_index=cls,
        method=method,
        layer=m.savedmodel.cam_layer,
        precision=_precision(runner, exact),
        probabilities=probs[0],
        attention=att,
        lung_mask=lungs,
        marker_mask=markers,
    )


def _precision(runner, exact: bool) -> str:
    """How the map was computed, e.g. ``fp32 (XLA) on CPU``: shown beside the heatmap."""
    text = "fp32 (XLA)" if exact else getattr(runner, "precision", "")
    device = getattr(runner, "device", "")
    return f"{text} on {device}" if text and device else text
