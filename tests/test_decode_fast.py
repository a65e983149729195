"""The fast grey-PNG path gives the pixels, the model input and the errors of Pillow's path.

Every file is decoded twice: as the decoders choose, and with the OpenCV path switched
off (Pillow's path, the reference). Pixels, header facts and model input must be equal
bit for bit; the analysis image of a big film stays within the stated tolerance of the
straight area resize.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from imaging_factory import pil_bytes, png_bytes
from PIL import Image

import export.decoders as decoders
from export.attention import analysis_image, analysis_shape, estimate_lungs
from export.explain import ImageInput
from export.image_checks import pixel_reasons
from export.image_input import ImageDecodeError, InputSpec, decode_image, windowed

SPEC = InputSpec(height=128, width=128)
RNG = np.random.default_rng(3)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _ihdr(arr: np.ndarray, interlace: int = 0) -> bytes:
    depth = 16 if arr.dtype == np.uint16 else 8
    return _chunk(
        b"IHDR", struct.pack(">IIBBBBB", arr.shape[1], arr.shape[0], depth, 0, 0, 0, interlace)
    )


def _rows(arr: np.ndarray) -> bytes:
    """Scanlines with filter type 0, 16-bit big-endian as PNG stores them."""
    be = arr.astype(">u2") if arr.dtype == np.uint16 else arr
    return b"".join(b"\x00" + row.tobytes() for row in be)


def raw_png(
    arr: np.ndarray, *, interlace: bool = False, extra: bytes = b"", idat: bytes | None = None
) -> bytes:
    """A grey PNG written by hand: Adam7 when asked, ancillary chunks before IDAT."""
    if idat is None:
        if interlace:
            passes = (
                (0, 0, 8, 8),
                (0, 4, 8, 8),
                (4, 0, 8, 4),
                (0, 2, 4, 4),
                (2, 0, 4, 2),
                (0, 1, 2, 2),
                (1, 0, 2, 1),
            )
            data = b"".join(_rows(arr[r0::dr, c0::dc]) for r0, c0, dr, dc in passes
                            if arr[r0::dr, c0::dc].size)  # fmt: skip
        else:
            data = _rows(arr)
        idat = zlib.compress(data)
    head = b"\x89PNG\r\n\x1a\n" + _ihdr(arr, int(interlace)) + extra
    return head + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _cv2_png(arr: np.ndarray) -> bytes:
    ok, enc = cv2.imencode(".png", arr)
    assert ok
    return enc.tobytes()


def _film(h: int, w: int, dtype=np.uint16, seed: int = 0) -> np.ndarray:
    """Smooth field, noise and a saturated marker, as a film."""
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    coarse = rng.normal(0.45, 0.15, (max(2, h // 64), max(2, w // 64))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field += rng.normal(0, 0.004, (h, w)).astype(np.float32)
    field[h // 20 : h // 20 + h // 25, w // 25 : w // 7] = 1.0
    return np.clip(field * top, 0, top).astype(dtype)


@pytest.fixture
def pillow_only(monkeypatch):
    """Decode with the OpenCV grey path switched off (the reference)."""

    def decode(data: bytes):
        with monkeypatch.context() as m:
            m.setattr(decoders, "GREY_PNG_THROUGH_OPENCV", False)
            return decode_image(data)

    return decode


def _fast_taken(monkeypatch, data: bytes) -> bool:
    """Whether OpenCV decoded this file (16-bit colour PNGs always go through it)."""
    calls = []
    real = cv2.imdecode

    def spy(*a):
        calls.append(1)
        return real(*a)

    with monkeypatch.context() as m:
        m.setattr(cv2, "imdecode", spy)
        decode_image(data)
    return bool(calls)


def _u8(image01: np.ndarray) -> np.ndarray:
    return np.clip(image01 * 255.0 + 0.5, 0, 255).astype(np.uint8)


GREY8 = RNG.integers(0, 256, (61, 47), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (53, 71), dtype=np.uint16)
TEXT = _chunk(b"tEXt", b"Comment\x00odd file")
SBIT = _chunk(b"sBIT", b"\x0c")
GAMA = _chunk(b"gAMA", struct.pack(">I", 100000))

#: name -> (bytes, whether the OpenCV path is expected to take it)
VARIANTS = {
    "8-bit odd size (OpenCV)": (_cv2_png(GREY8), True),
    "8-bit odd size (Pillow)": (png_bytes(GREY8), True),
    "16-bit odd size (OpenCV)": (_cv2_png(GREY16), True),
    "16-bit odd size (Pillow)": (png_bytes(GREY16), True),
    "16-bit by hand, big-endian rows": (raw_png(GREY16), True),
    "16-bit with sBIT, gAMA, tEXt": (raw_png(GREY16, extra=SBIT + GAMA + TEXT), True),
    "8-bit with tEXt": (raw_png(GREY8, extra=TEXT), True),
    "16-bit with extra image data": (
        raw_png(GREY16, idat=zlib.compress(_rows(GREY16) + b"\0" * 999)),
        True,
    ),
    "8-bit Adam7": (raw_png(GREY8, interlace=True), False),
    "16-bit Adam7": (raw_png(GREY16, interlace=True), False),
    "8-bit with tRNS": (raw_png(GREY8, extra=_chunk(b"tRNS", b"\x00\x07")), False),
    "grey + alpha": (png_bytes(np.dstack([GREY8, GREY8[::-1]]), "LA"), False),
    "RGB": (png_bytes(np.dstack([GREY8] * 3)), False),
    "1-bit": (png_bytes(GREY8 > 127), False),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_same_pixels_as_pillows_path(name, pillow_only, monkeypatch):
    data, fast = VARIANTS[name]
    got, ref = decode_image(data), pillow_only(data)
    assert got.pixels.dtype == np.float32 and np.array_equal(got.pixels, ref.pixels)
    assert got.meta == ref.meta and got.nominal_range == ref.nominal_range
    assert _fast_taken(monkeypatch, data) is fast


def test_values_are_the_files_own():
    """Not only equal to Pillow: equal to the array written (16-bit big-endian in the file)."""
    assert np.array_equal(decode_image(raw_png(GREY16)).pixels, GREY16)
    assert np.array_equal(decode_image(raw_png(GREY8, interlace=True)).pixels, GREY8)


def test_palette_png_takes_pillows_path(monkeypatch):
    data = pil_bytes(Image.fromarray(GREY8).convert("P"), "PNG")
    assert not _fast_taken(monkeypatch, data)


def _outcome(decode, data: bytes):
    try:
        d = decode(data)
    except ImageDecodeError as exc:
        return exc.kind, exc.reason
    return d.pixels.tobytes(), d.meta


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("short image data", raw_png(GREY16, idat=zlib.compress(_rows(GREY16)[:900]))),
        ("bad deflate data", raw_png(GREY16, idat=b"\x78\x9c" + b"\xff" * 300)),
        ("IDAT checksum", raw_png(GREY16)[:-30] + b"\0" + raw_png(GREY16)[-29:]),
        ("cut in IDAT", raw_png(GREY16)[:-200]),
        ("no IEND", raw_png(GREY16)[:-12]),  # complete pixels: both decode it
    ],
)
def test_damaged_grey_png_gives_the_same_outcome(name, data, pillow_only):
    got, ref = _outcome(decode_image, data), _outcome(pillow_only, data)
    assert got == ref
    if name != "no IEND":
        assert isinstance(got[1], str), "a damaged file must be refused"


def _demo_images() -> list[Path]:
    from desktop.paths import DEMO_IMAGES

    return sorted(Path(DEMO_IMAGES).rglob("*.png"))


def test_model_input_is_bit_identical_on_the_demo_images(pillow_only):
    files = _demo_images()
    assert files
    for f in files:
        data = f.read_bytes()
        a = ImageInput.from_decoded(decode_image(data), SPEC)
        b = ImageInput.from_decoded(pillow_only(data), SPEC)
        assert np.array_equal(a.model_gray, b.model_gray), f.name
        assert np.array_equal(a.analysis, b.analysis), f.name  # under 1,024 px: unchanged
        assert a.checks == b.checks


@pytest.mark.parametrize(
    ("h", "w", "dtype"), [(2101, 1703, np.uint16), (2100, 1700, np.uint8), (2500, 2048, np.uint16)]
)
def test_big_film_model_input_exact_analysis_close(h, w, dtype, pillow_only):
    data = _cv2_png(_film(h, w, dtype))
    fast, ref = decode_image(data), pillow_only(data)
    a, b = ImageInput.from_decoded(fast, SPEC), ImageInput.from_decoded(ref, SPEC)
    assert np.array_equal(a.model_gray, b.model_gray)
    assert np.array_equal(a.analysis, b.analysis)
    # against the straight area resize of the full image (what the block mean replaces)
    frame = analysis_shape(h, w)
    image01 = windowed(ref, SPEC)
    straight = _u8(cv2.resize(image01, frame[::-1], interpolation=cv2.INTER_AREA))
    got = analysis_image(ref, SPEC, image01=image01)
    assert got.shape == straight.shape
    diff = np.abs(got.astype(int) - straight.astype(int))
    if h % 2 or w % 2:  # no whole block factor: the straight resize itself
        assert diff.max() == 0
        return
    # a few grey levels at the marker's hard edge, about nothing elsewhere
    assert 0 < diff.max() <= 10 and diff.mean() <= 0.1 and (diff > 1).mean() <= 0.002
    assert pixel_reasons(got) == pixel_reasons(straight)
    la, lb = estimate_lungs(got), estimate_lungs(straight)
    assert (la != lb).mean() <= 0.002


def test_a_decode_process_keeps_freed_memory():
    """glibc: mallopt takes both settings (run in a child: the test process keeps its own)."""
    import platform
    import subprocess
    import sys

    code = "from export.decode_pool import keep_freed_memory as k; print(k())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out == str(expected)
