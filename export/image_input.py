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
contract around them (limits, reading, decoding) and is its public face: the
types live in :mod:`export.image_types`, the sniffing in :mod:`export.sniff`,
the windowing and the model input in :mod:`export.model_input`.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from export.image_types import (
    _LUMA,
    DICOM_DISPLAY_TAGS,
    DecodedImage,
    ImageDecodeError,
    ImageMeta,
    InputSpec,
    _short,
)
from export.model_input import (
    apply_window,
    display_limits,
    fit_to_input,
    model_gray,
    resize_area,
    to_model_tensor,
    window_limits,
    windowed,
)
from export.sniff import IMAGE_EXTENSIONS, describe_unknown, is_candidate_file, sniff_format

#: Largest image (width x height) we agree to decode. A 12000 x 10000
#: full-field radiograph fits; a PNG that *claims* 60000 x 60000 does not.
DEFAULT_MAX_PIXELS = 150_000_000
#: Largest file we read into memory at all.
DEFAULT_MAX_FILE_BYTES = 1 << 30


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
        raise ImageDecodeError(describe_unknown(data), "unrecognised", name)
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


# --------------------------------------------------------------------------- model input


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
