"""Which files are images, by content: the container named from its first bytes (never from
the extension), which files a folder scan offers, and what a file that is no image seems to be.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

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


def describe_unknown(data: bytes) -> str:
    """What a file that is no image we know seems to be, from its first bytes."""
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
