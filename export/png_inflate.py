"""Inflate a grey PNG's image data with ISA-L and give libpng the same rows uncompressed.

A 2,500x2,048 16-bit PNG spends about two thirds of its decode inflating its zlib stream,
which libpng does with the system zlib. ISA-L's inflate (the ``isal`` package) is about twice
as fast. :func:`stored_copy` inflates the file's IDAT data with it and writes a PNG whose
image data holds the same bytes in *stored* deflate blocks (no compression): libpng then
only copies them and undoes the row filters itself, so the pixels are libpng's, bit for bit,
by construction. Everything else in the file up to the first IDAT (IHDR and the ancillary
chunks) is kept as it is.

Measured on one core, in a decode process: file -> pixels 57 -> 48 ms (OpenCV's own filter
choice) and 67 -> 56 ms (Pillow's adaptive filters); chunk checksums 2.5 -> 0.2 ms; file ->
model input 91 -> 79-80 ms for both. In a process that does not keep freed memory (the
app's decode threads) the two extra 10 MB buffers cost page faults that eat most of the
gain (one film, alternated: 83 -> 73 ms in one run, even in another).

Without the ``isal`` package the decoders run as before (:data:`AVAILABLE` is False).
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Sequence

try:  # an optional speed-up: every caller has the plain path
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the installation
    _isal = None

#: ISA-L is importable; tests switch the faster path off by setting this False
AVAILABLE = _isal is not None

#: the largest payload of one stored deflate block
_STORED_MAX = 0xFFFF
#: a zlib header for a stream of stored blocks (deflate, 32 KiB window, level 0 hint)
_ZLIB_STORED_HEADER = b"\x78\x01"
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

#: :func:`stored_copy`'s answer for image data that does not inflate: the file is damaged
BROKEN = "broken"


def crc32(data: bytes | memoryview) -> int:
    """The CRC-32 of PNG chunks and gzip (ISA-L's is ~10x zlib's)."""
    if AVAILABLE and _isal is not None:
        return _isal.crc32(data) & 0xFFFFFFFF
    return zlib.crc32(data) & 0xFFFFFFFF


def scanline_bytes(width: int, height: int, depth: int, channels: int = 1) -> int:
    """Bytes of a non-interlaced image's filtered rows: one filter byte per row."""
    return height * (1 + (width * channels * depth + 7) // 8)


def stored_copy(
    data: bytes, idat: Sequence[tuple[int, int]], expected: int
) -> bytearray | str | None:
    """``data`` with its image data inflated into stored deflate blocks, for libpng.

    ``idat``: the (start, end) offsets of each IDAT chunk's payload, in file order, their
    checksums already verified; ``expected``: :func:`scanline_bytes` of the header's image.

    Returns :data:`BROKEN` when the stream does not inflate or holds fewer rows than the
    header declares: libpng would refuse it too, and the caller lets the reference decoder
    (Pillow) word the error. ISA-L also refuses damage after the last row and a bad
    checksum in a later IDAT, which libpng would only warn about; Pillow then gives the
    same pixels. Returns None when the file is unusual in a way libpng judges itself
    (another chunk between the IDATs, a stream cut right after its last row) or ISA-L is
    missing: the caller decodes ``data`` as without this module. Rows beyond the declared
    image and bytes after the stream are left out, as libpng leaves them (it only warns).
    Inflating never produces more than ``expected`` + 1 bytes, whatever the stream claims.
    """
    if not (AVAILABLE and _isal is not None) or not idat or expected <= 0:
        return None
    if any(nxt[0] != prev[1] + 12 for prev, nxt in itertools.pairwise(idat)):
        return None  # another chunk between IDATs: libpng's own verdict on the file
    view = memoryview(data)
    stream = b"".join(view[a:b] for a, b in idat)
    inflater = _isal.decompressobj()
    try:
        raw = inflater.decompress(stream, expected + 1)
    except _isal.error:
        return BROKEN
    if len(raw) < expected:
        return BROKEN
    if len(raw) == expected and not inflater.eof:
        return None
    raw = raw[:expected]

    blocks = -(-expected // _STORED_MAX)
    zlen = len(_ZLIB_STORED_HEADER) + 5 * blocks + expected + 4
    head = idat[0][0] - 8  # the first IDAT chunk's length field
    out = bytearray(head + 12 + zlen + len(_IEND))
    out[:head] = view[:head]
    struct.pack_into(">I4s", out, head, zlen, b"IDAT")
    pos = head + 8
    out[pos : pos + 2] = _ZLIB_STORED_HEADER
    pos += 2
    rows = memoryview(raw)
    for k in range(blocks):
        start = k * _STORED_MAX
        size = min(_STORED_MAX, expected - start)
        final = 1 if k == blocks - 1 else 0
        struct.pack_into("<BHH", out, pos, final, size, size ^ 0xFFFF)
        pos += 5
        out[pos : pos + size] = rows[start : start + size]
        pos += size
    struct.pack_into(">I", out, pos, _isal.adler32(raw) & 0xFFFFFFFF)
    pos += 4
    struct.pack_into(">I", out, pos, crc32(memoryview(out)[head + 4 : pos]))
    pos += 4
    out[pos:] = _IEND
    return out
