"""What an image is on its way to the model: the decoded grey image and what its file said,
the decode error a reviewer reads, and the model's input settings.

Plain data with no decoding in it, so the decoders (:mod:`export.decoders`), the windowing
(:mod:`export.model_input`) and the contract around them (:mod:`export.image_input`, which
is the public face) share one definition.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: grey from RGB (ITU-R BT.601), one weighting for every decoder and for in-memory arrays
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageDecodeError(ValueError):
    """A file that cannot become a model input, with a reason a reviewer understands.

    ``kind`` is a short machine-readable code (``empty``, ``unrecognised``,
    ``truncated``, ``too_large``, ``no_pixels``, ``unsupported_compression``,
    ``unreadable``, ``not_found``, ``permission``) so callers can group errors.
    """

    def __init__(self, message: str, kind: str = "unreadable", source: str = "") -> None:
        self.kind = kind
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}" if source else message)


@dataclass(frozen=True)
class ImageMeta:
    """What the file said about itself; kept so the app can show it and reports can cite it."""

    width: int
    height: int
    bit_depth: int
    photometric: str
    source_format: str
    channels: int = 1
    frames: int = 1
    #: a few header values worth showing beside the image (DICOM: ids, date, view,
    #: modality); display only, so they take no part in comparing two metas
    tags: dict[str, str] = field(default_factory=dict, compare=False)
    #: how coloured an RGB file is (:func:`export.image_checks.colour_chroma`); 0 for grey
    chroma: float = field(default=0.0, compare=False)


#: (DICOM keyword, label) of the header values kept in ``ImageMeta.tags``, in display order
DICOM_DISPLAY_TAGS = (
    ("PatientID", "Patient ID"),
    ("StudyID", "Study ID"),
    ("AccessionNumber", "Accession"),
    ("StudyDate", "Study date"),
    ("Modality", "Modality"),
    ("ViewPosition", "View"),
    ("BodyPartExamined", "Body part"),
)


@dataclass(frozen=True)
class DecodedImage:
    """Grey pixels in the file's own units plus the range the container allows.

    ``nominal_range`` is what the stored values *could* span (0..65535 for a
    16-bit PNG); windowing falls back to it for flat images so an all-white
    image stays white instead of becoming an arbitrary grey.
    """

    pixels: np.ndarray
    meta: ImageMeta
    nominal_range: tuple[float, float]
    #: the decoder knows every pixel is a whole number (an 8/16-bit grey PNG): windowing
    #: counts them in a histogram without checking first. False means "not known".
    integer_valued: bool = False


@dataclass(frozen=True)
class InputSpec:
    """Imaging settings shared by training and serving; stored in the bundle manifest."""

    height: int = 224
    width: int = 224
    channels: int = 3
    layout: str = "NHWC"
    value_range: tuple[float, float] = (0.0, 255.0)
    window_low_pct: float = 0.5
    window_high_pct: float = 99.5
    resize: str = "stretch"  # "stretch" or "pad" (letterbox, keeps aspect)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValueError(f"model input {self.width}x{self.height} is too small")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")
        if self.layout != "NHWC":
            raise ValueError(f"only NHWC layout is supported, not {self.layout!r}")
        if self.resize not in ("stretch", "pad"):
            raise ValueError(f"resize must be 'stretch' or 'pad', not {self.resize!r}")
        if not 0.0 <= self.window_low_pct < self.window_high_pct <= 100.0:
            raise ValueError("window percentiles must satisfy 0 <= low < high <= 100")
        lo, hi = self.value_range
        if not hi > lo:
            raise ValueError(f"value_range {self.value_range} is empty")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "value_range" in kwargs:
            kwargs["value_range"] = tuple(float(v) for v in kwargs["value_range"])
        return cls(**kwargs)


def _short(exc: BaseException, limit: int = 120) -> str:
    """A library's error text as part of an :class:`ImageDecodeError` reason: one line, cut."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
