"""The one image-input contract: any supported file -> model input.

Training (when it builds its cache) and the desktop app both call
:func:`load_model_gray` / :func:`to_model_tensor`, so the pixels a model was
trained on and the pixels it is served are produced by the same code path.
There is deliberately no Qt and no TensorFlow here.

Pipeline: bytes -> sniff the real format (never trust the extension) ->
check the declared pixel count *before* anything is allocated -> decode to a
float32 grey image in the file's own units (DICOM: modality LUT, VOI LUT,
MONOCHROME1 inversion) -> robust percentile window to [0, 1] -> area resize
-> uint8 grey at the model size -> 3 channels in the manifest's value range.
The per-format decoders live in :mod:`export.decoders`; this module holds the
contract around them (limits, sniffing, windowing, the model input).
"""

from __future__ import annotations

import os
import struct
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.percentile import percentiles

#: Largest image (width x height) we agree to decode. A 12000 x 10000
#: full-field radiograph fits; a PNG that *claims* 60000 x 60000 does not.
DEFAULT_MAX_PIXELS = 150_000_000
#: Largest file we read into memory at all.
DEFAULT_MAX_FILE_BYTES = 1 << 30

#: Extensions a folder scan should consider. Content decides the decoder;
#: this list only decides which files are *candidates* (plus extensionless
#: files that are DICOM by content, see :func:`is_candidate_file`).
IMAGE_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jfif",
        ".jpe",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
        ".gif",
        ".dcm",
        ".dicom",
        ".dic",
    }
)

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


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


# --------------------------------------------------------------------------- sniffing


def sniff_format(head: bytes) -> str | None:
    """Name the container from its first bytes, or None when it is not an image we know."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if _looks_like_bare_dicom(head):
        return "dicom"
    return None


def _looks_like_bare_dicom(head: bytes) -> bool:
    """DICOM written without the 128-byte preamble: starts with a group 0002/0008 element."""
    if len(head) < 8:
        return False
    group, elem = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or elem > 0x0100:
        return False
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    if explicit:
        return True
    (length,) = struct.unpack("<I", head[4:8])
    return 0 < length < 1024


def is_candidate_file(path: str | os.PathLike[str]) -> bool:
    """Whether a folder scan should offer this file: known extension (any case) or DICOM by content."""
    p = Path(path)
    if p.name.startswith("."):
        return False
    suffix = p.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return True  # a pipe or device with such a name is listed, and read_image says what it is
    if suffix and not suffix[1:].isdigit():  # "1.2.840.113619.2.55.3.6046" is a UID, not a type
        return False
    from export.files import open_regular

    try:
        with open_regular(p) as fh:  # never blocks on a pipe, never reads a device
            return sniff_format(fh.read(136)) == "dicom"
    except OSError:
        return False


# --------------------------------------------------------------------------- decoding


#: when a Counter, every :func:`read_image` call counts its path here (the benchmarks'
#: decodes-per-image figure); None in normal use
DECODE_LOG: Counter[str] | None = None


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> DecodedImage:
    """Decode a file by content. Unicode paths work because we read bytes ourselves."""
    p = Path(path)
    if DECODE_LOG is not None:
        DECODE_LOG[str(p)] += 1
    name = p.name
    from export.files import NotRegularFile, TooLarge, read_regular

    try:
        if p.is_dir():
            raise ImageDecodeError("is a folder, not an image file", "unreadable", name)
        data = read_regular(p, max_file_bytes)
    except NotRegularFile as exc:
        raise ImageDecodeError(
            f"not a regular file ({exc.what}): not read", "special", name
        ) from None
    except TooLarge:
        size = p.stat().st_size
        raise ImageDecodeError(
            f"file is {size / 2**20:.0f} MiB, over the {max_file_bytes / 2**20:.0f} MiB limit",
            "too_large",
            name,
        ) from None
    except FileNotFoundError:
        raise ImageDecodeError(
            "file no longer exists (moved or deleted?)", "not_found", name
        ) from None
    except PermissionError:
        raise ImageDecodeError("permission denied reading the file", "permission", name) from None
    except IsADirectoryError:
        raise ImageDecodeError("is a folder, not an image file", "unreadable", name) from None
    except OSError as exc:
        raise ImageDecodeError(
            f"could not read the file ({exc.strerror or exc})", "unreadable", name
        ) from None
    return decode_image(data, name=name, max_pixels=max_pixels)


def decode_image(
    data: bytes, *, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS
) -> DecodedImage:
    """Decode in-memory bytes; every failure becomes :class:`ImageDecodeError`."""
    if len(data) == 0:
        raise ImageDecodeError("file is empty (0 bytes)", "empty", name)
    fmt = sniff_format(data[:136])
    if fmt is None:
        raise ImageDecodeError(_describe_unknown(data), "unrecognised", name)
    try:
        with warnings.catch_warnings():  # pydicom/Pillow chatter about odd files; we raise instead
            warnings.simplefilter("ignore")
            from export.decoders import decode_dicom, decode_raster

            if fmt == "dicom":
                return decode_dicom(data, max_pixels)
            return decode_raster(data, fmt, max_pixels)
    except ImageDecodeError as exc:
        if not exc.source:
            exc.source = name
            exc.args = (f"{name}: {exc.reason}" if name else exc.reason,)
        raise
    except MemoryError:
        raise ImageDecodeError(
            "not enough memory to decode this image", "too_large", name
        ) from None
    except Exception as exc:  # decoders raise a zoo of types; the reviewer needs one message
        raise ImageDecodeError(
            f"damaged or unsupported {fmt.upper()} file ({type(exc).__name__}: {_short(exc)})",
            "unreadable",
            name,
        ) from exc


def _short(exc: BaseException, limit: int = 120) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_unknown(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "is a web page (HTML), not an image — was it saved from a browser?"
    if head.startswith((b"<?xml", b"<svg")):
        return "is an XML/SVG document, not a raster image"
    if head.startswith(b"%pdf"):
        return "is a PDF document, not an image"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "is a text file, not an image"
    return "is not a supported image (PNG, JPEG, WebP, TIFF, BMP, GIF or DICOM)"


def from_array(arr: np.ndarray, *, source_format: str = "array") -> DecodedImage:
    """An in-memory image (e.g. one image of a NumPy ``.npy`` stack) as a DecodedImage.

    Goes through the same grey conversion and windowing as files do, so the
    NumPy data source has no separate preprocessing.
    """
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        gray = a[..., :3].astype(np.float32) @ _LUMA
        channels, photometric = a.shape[-1], "RGB"
    elif a.ndim == 2:
        gray, channels, photometric = a.astype(np.float32), 1, "MONOCHROME2"
    else:
        raise ImageDecodeError(f"array of shape {a.shape} is not an image", "unreadable")
    if a.dtype == np.uint8:
        nominal, bits = (0.0, 255.0), 8
    elif a.dtype == np.uint16:
        nominal, bits = (0.0, 65535.0), 16
    else:
        gray = np.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)
        hi = float(gray.max()) if gray.size else 1.0
        nominal, bits = ((0.0, 1.0) if float(gray.min()) >= 0.0 and hi <= 1.0 else (0.0, hi)), 32
    meta = ImageMeta(
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        bit_depth=bits,
        photometric=photometric,
        source_format=source_format,
        channels=int(channels),
    )
    return DecodedImage(np.ascontiguousarray(gray, dtype=np.float32), meta, nominal)


# --------------------------------------------------------------------------- windowing & resizing


def window_limits(
    pixels: np.ndarray,
    low_pct: float = 0.5,
    high_pct: float = 99.5,
    nominal_range: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Robust (percentile) window, measured on a strided sample so a 100 MP image costs ~1 MP.

    Percentiles rather than min/max: a 12-bit range inside a 16-bit
    container, an offset window, or a few saturated marker pixels all map
    the anatomy onto the full output range.
    """
    h, w = pixels.shape[:2]
    step = max(1, int(np.sqrt(h * w / 1_000_000)))
    sample = pixels[::step, ::step]
    lo, hi = percentiles(sample, (low_pct, high_pct))
    if hi - lo > 1e-6 * max(1.0, abs(hi), abs(lo)):
        return lo, hi
    # Flat image: nothing to stretch. Keep its place in the container's range.
    if nominal_range is not None and nominal_range[1] > nominal_range[0]:
        return float(nominal_range[0]), float(nominal_range[1])
    return lo, lo + 1.0


def apply_window(pixels: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of [lo, hi] onto [0, 1], clipped; float32 out."""
    scale = np.float32(1.0 / (hi - lo))
    out = pixels.astype(np.float32, copy=False) - np.float32(lo)
    out *= scale  # in place: the same arithmetic, one full-size temporary less
    np.clip(out, 0.0, 1.0, out=out)
    return out


def display_limits(decoded: DecodedImage, spec: InputSpec | None = None) -> tuple[float, float]:
    """The file's values that :func:`windowed` maps onto 0 and 1."""
    spec = spec or InputSpec()
    return window_limits(
        decoded.pixels, spec.window_low_pct, spec.window_high_pct, decoded.nominal_range
    )


def windowed(
    decoded: DecodedImage,
    spec: InputSpec | None = None,
    limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """Full-resolution [0, 1] image, windowed as the model sees it (also the display default).

    ``limits``: ``display_limits(decoded, spec)`` when the caller has it.
    """
    lo, hi = limits if limits is not None else display_limits(decoded, spec)
    return apply_window(decoded.pixels, lo, hi)


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing of rib edges or text); linear when enlarging."""
    import cv2

    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    interp = cv2.INTER_AREA if height <= h and width <= w else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interp)


def fit_to_input(image01: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize a [0, 1] image to the model's size, stretching or letterboxing per the spec."""
    if spec.resize == "stretch":
        return resize_area(image01, spec.height, spec.width)
    h, w = image01.shape[:2]
    scale = min(spec.height / h, spec.width / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    inner = resize_area(image01, nh, nw)
    out = np.zeros((spec.height, spec.width), dtype=np.float32)
    top, left = (spec.height - nh) // 2, (spec.width - nw) // 2
    out[top : top + nh, left : left + nw] = inner
    return out


def model_gray(
    decoded: DecodedImage, spec: InputSpec, *, image01: np.ndarray | None = None
) -> np.ndarray:
    """uint8 grey at the model size: what the training cache stores and the app feeds.

    Quantising here (not only in the cache) means training and serving see
    bit-identical inputs. ``image01``: ``windowed(decoded, spec)`` when the caller has it.

    Cheaper approximations measured and not taken, against the bundle parity
    tolerance of 1e-4 in probability (demo bundle, 2,500x2,048 16-bit
    phantoms): an exact 2x2 area reduction before the area resize (21 -> 7 ms
    for both resizes, but up to 3 grey levels on ~5 % of the pixels, and up to
    2e-4 in probability); OpenCV's reduced JPEG decoding (``IMREAD_REDUCED_*``,
    45 -> 12 ms, but up to 7 grey levels and 2.1e-3 in probability). The
    steps taken (histogram percentiles, windowing in place) change no pixel.
    """
    if image01 is None:
        image01 = windowed(decoded, spec)
    small = fit_to_input(image01, spec)
    return np.rint(small * 255.0).astype(np.uint8)


def to_model_tensor(gray_u8: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 grey (H, W) or batch (N, H, W) -> float32 (..., H, W, C) in ``spec.value_range``."""
    lo, hi = spec.value_range
    x = gray_u8.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    x = x[..., None]
    if spec.channels == 3:
        x = np.repeat(x, 3, axis=-1)
    return x


def load_model_gray(
    source: str | os.PathLike[str] | bytes,
    spec: InputSpec,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """File (or bytes) -> uint8 grey at model size. The single entry point for training and app."""
    if isinstance(source, bytes | bytearray | memoryview):
        decoded = decode_image(bytes(source), max_pixels=max_pixels)
    else:
        decoded = read_image(source, max_pixels=max_pixels)
    return model_gray(decoded, spec)


def load_model_input(
    source: str | os.PathLike[str] | bytes,
    spec: InputSpec,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """File (or bytes) -> float32 (H, W, C) model input."""
    return to_model_tensor(load_model_gray(source, spec, max_pixels=max_pixels), spec)


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DICOM_DISPLAY_TAGS",
    "IMAGE_EXTENSIONS",
    "DecodedImage",
    "ImageDecodeError",
    "ImageMeta",
    "InputSpec",
    "apply_window",
    "decode_image",
    "display_limits",
    "fit_to_input",
    "from_array",
    "is_candidate_file",
    "load_model_gray",
    "load_model_input",
    "model_gray",
    "read_image",
    "resize_area",
    "sniff_format",
    "to_model_tensor",
    "window_limits",
    "windowed",
]
