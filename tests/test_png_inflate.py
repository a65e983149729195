"""ISA-L's inflate in front of libpng (export/png_inflate.py): the same pixels and the same
outcomes as without it, taken only where the file is what its header says, bounded memory
for a stream that inflates to more than the header declares."""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from test_decode_fast import GREY8, GREY16, _chunk, _film, _rows, raw_png

import export.decoders as decoders
from export import png_inflate
from export.image_input import ImageDecodeError, decode_image

pytestmark = pytest.mark.skipif(not png_inflate.AVAILABLE, reason="the isal package is missing")


def _split_idat(arr: np.ndarray, pieces: int, empty: bool = False) -> bytes:
    """A PNG whose zlib stream is cut over several IDAT chunks (one empty when asked)."""
    stream = zlib.compress(_rows(arr))
    cuts = np.linspace(0, len(stream), pieces + 1).astype(int)
    chunks = [_chunk(b"IDAT", stream[a:b]) for a, b in itertools.pairwise(cuts)]
    if empty:
        chunks.insert(1, _chunk(b"IDAT", b""))
    head = raw_png(arr).split(b"IDAT")[0][:-4]  # signature + IHDR
    return head + b"".join(chunks) + _chunk(b"IEND", b"")


def _pillow_png(arr: np.ndarray) -> bytes:
    """Pillow's encoder: adaptive filters, several filter types in one image."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _filters(data: bytes, arr: np.ndarray) -> set[int]:
    idat: list[tuple[int, int]] = []
    decoders._check_png_chunks(data, idat)
    rows = zlib.decompress(b"".join(data[a:b] for a, b in idat))
    stride = len(rows) // arr.shape[0]
    return set(rows[::stride])


def _decode(data: bytes, monkeypatch, fast: bool):
    with monkeypatch.context() as m:
        m.setattr(png_inflate, "AVAILABLE", fast)
        try:
            d = decode_image(data)
        except ImageDecodeError as exc:
            return exc.kind, exc.reason
        return d.pixels.tobytes(), d.meta, d.nominal_range, d.integer_valued


def _stored_taken(data: bytes, monkeypatch) -> bool:
    answers = []
    real = png_inflate.stored_copy

    def spy(*a):
        answers.append(real(*a))
        return answers[-1]

    with monkeypatch.context() as m:
        m.setattr(png_inflate, "stored_copy", spy)
        with contextlib.suppress(ImageDecodeError):
            decode_image(data)
    return bool(answers) and isinstance(answers[0], bytearray)


FILM16 = _film(301, 257, seed=4)
CLEAN = {
    "16-bit, one IDAT": raw_png(GREY16),
    "8-bit, one IDAT": raw_png(GREY8),
    "16-bit, OpenCV's many IDATs": cv2.imencode(".png", FILM16)[1].tobytes(),
    "16-bit, IDAT in 5 pieces and an empty one": _split_idat(GREY16, 5, empty=True),
    "16-bit, Pillow's adaptive filters": _pillow_png(FILM16),
    "8-bit, Pillow's adaptive filters": _pillow_png((FILM16 >> 8).astype(np.uint8)),
    "16-bit, rows over one stored block (65,535 bytes)": raw_png(_film(97, 400, seed=5)),
}


@pytest.mark.parametrize("name", list(CLEAN))
def test_same_pixels_with_and_without_isal(name, monkeypatch):
    data = CLEAN[name]
    assert _stored_taken(data, monkeypatch), "the ISA-L path was not taken"
    got, ref = _decode(data, monkeypatch, True), _decode(data, monkeypatch, False)
    assert isinstance(got[0], bytes) and got == ref
    # and libpng itself decodes the stored copy to the original's pixels (a copy it
    # refused would go to Pillow and still give equal pixels above)
    idat: list[tuple[int, int]] = []
    decoders._check_png_chunks(data, idat)
    width, height, depth = struct.unpack(">IIB", data[16:25])
    copy = png_inflate.stored_copy(data, idat, png_inflate.scanline_bytes(width, height, depth))
    assert isinstance(copy, bytearray)
    from_copy = cv2.imdecode(np.frombuffer(copy, np.uint8), cv2.IMREAD_UNCHANGED)
    assert from_copy is not None
    assert np.array_equal(from_copy, cv2.imdecode(np.frombuffer(data, np.uint8), -1))


def test_the_variants_cover_every_filter_type():
    seen = _filters(CLEAN["16-bit, Pillow's adaptive filters"], FILM16)
    seen |= _filters(CLEAN["16-bit, OpenCV's many IDATs"], FILM16)
    seen |= _filters(CLEAN["16-bit, one IDAT"], GREY16)
    assert len(seen) >= 4, seen  # None, Sub, Up, Paeth at least (Average is rare)


def test_values_are_the_files_own():
    got = decode_image(CLEAN["16-bit, IDAT in 5 pieces and an empty one"]).pixels
    assert np.array_equal(got, GREY16)


def _chunk_between_idats() -> bytes:
    stream = zlib.compress(_rows(GREY16))
    half = len(stream) // 2
    head = raw_png(GREY16).split(b"IDAT")[0][:-4]
    return (
        head
        + _chunk(b"IDAT", stream[:half])
        + _chunk(b"tEXt", b"Comment\x00between")
        + _chunk(b"IDAT", stream[half:])
        + _chunk(b"IEND", b"")
    )


def _unfinished() -> bytes:
    """Every row, but no final block and no checksum."""
    z = zlib.compressobj()
    return z.compress(_rows(GREY16)) + z.flush(zlib.Z_SYNC_FLUSH)


#: name -> (file, whether the stored copy is made, whether libpng says nothing on stderr)
UNUSUAL = {
    # libpng decodes the declared rows and warns; the stored copy holds just those rows
    "extra image data": (
        raw_png(GREY16, idat=zlib.compress(_rows(GREY16) + b"\0" * 999)),
        True,
        True,
    ),
    "bytes after the zlib stream": (
        raw_png(GREY16, idat=zlib.compress(_rows(GREY16)) + b"\1\2"),
        True,
        True,
    ),
    # refused either way: Pillow words it, libpng is not asked
    "short image data": (raw_png(GREY16, idat=zlib.compress(_rows(GREY16)[:900])), False, True),
    # libpng's own verdict
    "a chunk between IDATs": (_chunk_between_idats(), False, False),
    "a stream cut right after its last row": (raw_png(GREY16, idat=_unfinished()), False, False),
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_files_keep_their_outcome(name, monkeypatch, capfd):
    """Pixels or error as without ISA-L; no libpng line where the stored copy or Pillow
    answers instead of libpng."""
    data, stored, quiet = UNUSUAL[name]
    assert _stored_taken(data, monkeypatch) is stored
    capfd.readouterr()
    got = _decode(data, monkeypatch, True)
    err = capfd.readouterr().err
    assert got == _decode(data, monkeypatch, False)
    if quiet:
        assert err == ""


def test_stream_that_does_not_inflate_goes_to_pillow_without_stderr(monkeypatch, capfd):
    data = raw_png(GREY16, idat=b"\x78\x9c" + b"\xff" * 300)
    imdecode_calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: imdecode_calls.append(1) or real(*a))
    outcome = _decode(data, monkeypatch, True)
    assert isinstance(outcome[1], str) and not imdecode_calls
    assert capfd.readouterr().err == ""  # libpng never saw it: no line of its own
    monkeypatch.undo()
    assert outcome == _decode(data, monkeypatch, False)


def test_a_stream_declaring_too_much_is_inflated_no_further(monkeypatch):
    """A small header over a stream of 200 MB of zeros: ISA-L stops one byte past the image
    and libpng gets the declared rows: what libpng alone decodes (with a warning)."""
    rows = png_inflate.scanline_bytes(64, 64, 16)
    bomb = zlib.compress(b"\0" * 200_000_000, 9)
    seen = []
    real = png_inflate._isal.decompressobj

    class Counting:
        def __init__(self):
            self.inner = real()

        def decompress(self, data, limit):
            seen.append(limit)
            out = self.inner.decompress(data, limit)
            seen.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(png_inflate._isal, "decompressobj", Counting)
    data = b"\x89PNG" + bytes(4) + bomb
    copy = png_inflate.stored_copy(data, [(8, len(data))], rows)
    assert isinstance(copy, bytearray) and len(copy) < rows + 200  # the declared rows only
    assert seen == [rows + 1, rows + 1]
    monkeypatch.undo()
    png = raw_png(np.zeros((64, 64), np.uint16), idat=bomb)
    got = _decode(png, monkeypatch, True)
    assert got == _decode(png, monkeypatch, False)
    assert got[0] == bytes(64 * 64 * 4)  # float32 zeros


def test_crc32_is_zlibs():
    for blob in (b"", b"IEND", bytes(range(256)) * 1000):
        assert png_inflate.crc32(blob) == zlib.crc32(blob) & 0xFFFFFFFF


def test_scanline_bytes():
    assert png_inflate.scanline_bytes(2048, 2500, 16) == 2500 * (1 + 4096)
    assert png_inflate.scanline_bytes(3, 2, 1) == 2 * 2
    assert png_inflate.scanline_bytes(5, 1, 8, channels=3) == 16


def test_without_the_isal_package_the_decoders_run_as_before(tmp_path):
    """Where ``isal`` cannot be imported (a bare install, the GPU check's machine)."""
    import subprocess
    import sys

    path = tmp_path / "film.png"
    path.write_bytes(CLEAN["16-bit, IDAT in 5 pieces and an empty one"])
    np.save(tmp_path / "want.npy", GREY16)
    code = (
        "import sys; sys.modules['isal'] = None\n"
        "import numpy as np\n"
        "from export import png_inflate\n"
        "from export.image_input import read_image\n"
        f"got = read_image({str(path)!r}).pixels\n"
        f"want = np.load({str(tmp_path / 'want.npy')!r})\n"
        "print(png_inflate.AVAILABLE, np.array_equal(got, want))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["False", "True"]
