"""The format decoders behind :func:`export.image_input.decode_image`: PNG/JPEG/WebP/TIFF/BMP
(8/16-bit grey, RGB, RGBA, palette) through Pillow and OpenCV, DICOM through pydicom.

Each turns bytes already identified by content into a :class:`DecodedImage` in the file's
own units, checking the declared pixel count before any pixel is decoded; windowing and
the model input are :mod:`export.model_input`'s job.
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any

import numpy as np

from export import png_inflate
from export.image_checks import colour_chroma
from export.image_types import (
    _LUMA,
    DICOM_DISPLAY_TAGS,
    DecodedImage,
    ImageDecodeError,
    ImageMeta,
    _short,
)


def _check_pixels(width: int, height: int, max_pixels: int, frames: int = 1) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"declares an empty image ({width}x{height})", "unreadable")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"declares {width}x{height} pixels ({width * height / 1e6:.0f} MP), over the "
            f"{max_pixels / 1e6:.0f} MP safety limit",
            "too_large",
        )


def _png_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) from IHDR, read before any decoder runs."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, ctype


def _check_png_chunks(
    data: bytes, idat: list[tuple[int, int]] | None = None
) -> frozenset[bytes] | None:
    """Verify the CRC of the critical chunks: Pillow does not, and a PNG damaged in the
    middle can otherwise decode "fine" into a corrupted picture that a reviewer would trust.

    Returns the kinds of chunk up to IEND, or None when the file ends before IEND (the
    decoder reports the truncation). ``idat``: a list to receive the (start, end) of each
    IDAT chunk's payload."""
    pos, n = 8, len(data)
    view = memoryview(data)  # slices without copying megabytes of IDAT
    kinds: set[bytes] = set()
    while pos + 12 <= n:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            return None
        kinds.add(kind)
        if kind in (b"IHDR", b"PLTE", b"IDAT", b"IEND"):
            (crc,) = struct.unpack(">I", data[end - 4 : end])
            if png_inflate.crc32(view[pos + 4 : end - 4]) != crc:
                name = kind.decode("ascii", "replace")
                raise ImageDecodeError(
                    f"damaged PNG file (checksum error in its {name} data): the copy is corrupt",
                    "unreadable",
                )
            if kind == b"IDAT" and idat is not None:
                idat.append((pos + 8, end - 4))
        if kind == b"IEND":
            return frozenset(kinds)
        pos = end
    return None


#: decode 8/16-bit grey PNGs through OpenCV (:func:`_decode_png_grey`); False: all through
#: Pillow, the reference the tests compare with
GREY_PNG_THROUGH_OPENCV = True
#: chunks that change what a grey PNG decodes to (transparency, animation, a palette) or
#: that neither decoder knows (any other critical chunk): such files take Pillow's path
_PNG_GREY_FAST_KNOWN = frozenset({b"IHDR", b"IDAT", b"IEND"})
_PNG_GREY_FAST_DENY = frozenset({b"tRNS", b"PLTE", b"acTL", b"fcTL", b"fdAT"})


def _decode_png_grey(
    data: bytes,
    png: tuple[int, int, int, int],
    kinds: frozenset[bytes] | None,
    idat: list[tuple[int, int]],
) -> DecodedImage | None:
    """8/16-bit grey, non-interlaced, complete PNGs through OpenCV (libpng), else None.

    The same pixels as Pillow's path (tests/test_decode_fast.py compares them variant by
    variant), for less: libpng inflates straight into the array (no copies out of a Pillow
    image) and releases the GIL throughout; with ISA-L installed the image data is inflated
    by it first and libpng gets the rows uncompressed (:mod:`export.png_inflate`). File ->
    DecodedImage on one core, 2,500x2,048 16-bit: 86-90 -> 76-79 ms through libpng alone
    (63-72 -> 62-66 ms in a decode process, whose allocator keeps freed memory:
    :func:`export.decode_pool.keep_freed_memory`), ~10 ms less again with ISA-L; 8-bit:
    31 ms. The chunk walk before it stays: it finds truncation, transparency and animation
    before libpng runs, and a damaged file gets our worded error instead of libpng's line
    on stderr. Anything else, image data that does not inflate, and any file libpng
    refuses go the Pillow way, which words the error.
    """
    import cv2

    width, height, depth, ctype = png
    if (
        not GREY_PNG_THROUGH_OPENCV
        or ctype != 0
        or depth not in (8, 16)
        or data[28] != 0
        or kinds is None
    ):
        return None
    if kinds & _PNG_GREY_FAST_DENY or any(
        k[:1].isupper() and k not in _PNG_GREY_FAST_KNOWN for k in kinds
    ):
        return None
    source: bytes | bytearray = data
    restored = png_inflate.stored_copy(data, idat, png_inflate.scanline_bytes(width, height, depth))
    if restored is png_inflate.BROKEN:
        return None
    if isinstance(restored, bytearray):
        source = restored
    arr = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_UNCHANGED)
    dtype = np.uint8 if depth == 8 else np.uint16
    if arr is None or arr.shape != (height, width) or arr.dtype != dtype:
        return None
    meta = ImageMeta(
        width=width,
        height=height,
        bit_depth=depth,
        photometric="MONOCHROME2",
        source_format="png",
    )
    return DecodedImage(
        arr.astype(np.float32), meta, (0.0, float(2**depth - 1)), integer_valued=True
    )


def decode_raster(data: bytes, fmt: str, max_pixels: int) -> DecodedImage:
    from PIL import Image, ImageOps

    png = _png_header(data) if fmt == "png" else None
    if fmt == "png":
        if png is None:
            raise ImageDecodeError("damaged PNG file (header missing)", "truncated")
        _check_pixels(png[0], png[1], max_pixels)
        idat: list[tuple[int, int]] = []
        kinds = _check_png_chunks(data, idat)
        if png[2] == 16 and png[3] != 0:
            return _decode_png16_colour(data, png)
        fast = _decode_png_grey(data, png, kinds, idat)
        if fast is not None:
            return fast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageDecodeError(
                f"declares too many pixels ({_short(exc, 80)})", "too_large"
            ) from None
        _check_pixels(img.width, img.height, max_pixels)
        frames = int(getattr(img, "n_frames", 1) or 1)
        try:
            img.load()
        except OSError as exc:
            msg = str(exc).lower()
            if "truncat" in msg or "broken" in msg or "incomplete" in msg:
                raise ImageDecodeError(
                    f"{fmt.upper()} file is truncated (incomplete download or copy?)", "truncated"
                ) from None
            raise
        if fmt in ("jpeg", "tiff", "webp"):
            img = ImageOps.exif_transpose(img)

    mode = img.mode
    bit_depth = {"1": 1, "I": 32, "F": 32}.get(mode, 16 if mode.startswith("I;16") else 8)
    if png is not None:
        bit_depth = png[2]
    photometric = "MONOCHROME2"
    channels, chroma = 1, 0.0
    if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
        arr = np.asarray(img)
        gray = arr.astype(np.float32)
    elif mode in ("LA", "La", "PA", "P", "RGBA", "RGBa"):
        photometric = {"P": "PALETTE", "PA": "PALETTE", "LA": "MONOCHROME2"}.get(mode, "RGB")
        has_alpha = mode != "P" or "transparency" in img.info
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        gray = rgba[..., :3] @ _LUMA
        chroma = colour_chroma(rgba, 255.0)
        channels = 4 if has_alpha else 3
        if has_alpha:
            gray *= rgba[..., 3] / 255.0  # transparent means "no data": composite onto black
    else:
        photometric = "RGB" if mode in ("RGB", "RGBX", "YCbCr", "CMYK", "LAB", "HSV") else mode
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            gray = np.ascontiguousarray(rgb[..., 0])
        else:
            gray = rgb @ _LUMA
            chroma = colour_chroma(rgb, 255.0)
        channels = 3
    if mode == "1":
        nominal = (0.0, 1.0)
    elif mode == "F":
        gray = np.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)
        nominal = (float(gray.min()), float(gray.max()))
    elif mode in ("L", "P", "LA", "PA", "RGB", "RGBA"):
        nominal = (0.0, 255.0)  # Pillow expands 1/2/4-bit PNGs to 8 bits
    else:
        nominal = (0.0, float(2 ** min(bit_depth, 32) - 1))
    meta = ImageMeta(
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        bit_depth=int(bit_depth),
        photometric=photometric,
        source_format=fmt,
        channels=channels,
        frames=frames,
        chroma=chroma,
    )
    return DecodedImage(np.ascontiguousarray(gray, dtype=np.float32), meta, nominal)


def _decode_png16_colour(data: bytes, png: tuple[int, int, int, int]) -> DecodedImage:
    """16-bit colour PNGs: Pillow would drop them to 8 bits, OpenCV keeps all 16."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageDecodeError("PNG file is damaged or truncated", "truncated")
    arr = arr.astype(np.float32)
    chroma = 0.0
    if arr.ndim == 2:
        gray, channels = arr, 1
    else:
        channels = arr.shape[2]
        bgr = arr[..., :3] if channels >= 3 else np.repeat(arr[..., :1], 3, axis=2)
        gray = bgr @ _LUMA[::-1].copy()
        chroma = colour_chroma(bgr, 65535.0)
        if channels in (2, 4):
            gray *= arr[..., -1] / 65535.0
    meta = ImageMeta(
        width=png[0],
        height=png[1],
        bit_depth=16,
        photometric="RGB",
        source_format="png",
        channels=int(channels),
        chroma=chroma,
    )
    return DecodedImage(np.ascontiguousarray(gray), meta, (0.0, 65535.0))


def decode_dicom(data: bytes, max_pixels: int) -> DecodedImage:
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        raise ImageDecodeError(f"damaged DICOM file ({_short(exc, 80)})", "unreadable") from None
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageDecodeError(
            "DICOM file holds no image (no Pixel Data): it may be a report, "
            "a structured document or a presentation state",
            "no_pixels",
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    _check_pixels(cols, rows, max_pixels)
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        ds.pixel_array_options(index=0 if frames > 1 else None)
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError) as exc:
        ts_name = getattr(tsyntax, "name", str(tsyntax) if tsyntax else "unknown")
        msg = str(exc).lower()
        if (
            "transfer syntax" in msg
            or "plugin" in msg
            or "decoder" in msg
            or "no pixel data" in msg
        ):
            raise ImageDecodeError(
                f"DICOM compression '{ts_name}' cannot be decoded with the installed decoders",
                "unsupported_compression",
            ) from None
        raise ImageDecodeError(
            f"DICOM pixel data is damaged ({_short(exc, 80)})", "unreadable"
        ) from None
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise ImageDecodeError(
            f"DICOM pixel data is damaged ({_short(exc, 80)})", "unreadable"
        ) from None
    if arr.ndim == 4 or (arr.ndim == 3 and frames > 1 and arr.shape[0] == frames):
        arr = arr[0]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    channels, chroma = 1, 0.0
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3:  # RGB / YBR (pydicom converts YBR to RGB)
        channels = arr.shape[2]
        gray = arr[..., :3].astype(np.float32) @ _LUMA
        nominal = (0.0, float(2**bits - 1))
        chroma = colour_chroma(arr, nominal[1])
    else:
        gray = apply_modality_lut(arr, ds).astype(np.float32)  # Rescale Slope/Intercept or LUT
        lo_stored = 0.0
        if int(ds.get("PixelRepresentation", 0) or 0) == 1:
            lo_stored = -float(2 ** (bits - 1))
        hi_stored = lo_stored + float(2**bits - 1)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        ends = sorted((lo_stored * slope + intercept, hi_stored * slope + intercept))
        nominal = (ends[0], ends[1])
        if any(t in ds for t in ("WindowCenter", "VOILUTSequence")):
            gray = apply_voi_lut(gray, ds, index=0).astype(np.float32)
            if "VOILUTSequence" in ds:  # a LUT has its own output range
                nominal = (float(gray.min()), float(gray.max()))
        if photometric == "MONOCHROME1":  # low values are white: flip so air is dark
            gray = (nominal[0] + nominal[1]) - gray
    gray = _finite(gray)
    meta = ImageMeta(
        width=int(gray.shape[1]),
        height=int(gray.shape[0]),
        bit_depth=bits,
        photometric=photometric,
        source_format="dicom",
        channels=channels,
        frames=frames,
        tags=_dicom_tags(ds),
        chroma=chroma,
    )
    return DecodedImage(np.ascontiguousarray(gray, dtype=np.float32), meta, nominal)


def _finite(gray: np.ndarray) -> np.ndarray:
    """NaN and infinities as 0 (a float DICOM may hold them); the image itself, uncopied,
    when all is finite, which its minimum and maximum tell (NaN propagates through both):
    2,500x2,048: 0.8 ms against 20 ms for ``np.nan_to_num`` (a 12-bit DICOM's file ->
    ImageInput: 50-51 -> 31-35 ms on one core)."""
    if gray.size == 0 or (np.isfinite(gray.min()) and np.isfinite(gray.max())):
        return gray
    return np.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)


def _dicom_tags(ds: Any) -> dict[str, str]:
    """The present, non-empty :data:`DICOM_DISPLAY_TAGS` as short text; a damaged element is
    skipped, never an error (the pixels were readable, which is what counts)."""
    out: dict[str, str] = {}
    for keyword, label in DICOM_DISPLAY_TAGS:
        try:
            value = ds.get(keyword)
            text = "" if value is None else str(getattr(value, "value", value)).strip()
        except Exception:
            continue
        if keyword == "StudyDate" and len(text) == 8 and text.isdigit():
            text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
        if text:
            out[label] = text[:64]
    return out
