"""The image-input contract: every supported kind decodes, every bad kind is refused clearly."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from imaging_factory import dicom_bytes, pil_bytes, png16_rgb_bytes, png_bytes, png_declaring
from PIL import Image
from pydicom.uid import JPEGBaseline8Bit, RLELossless

from export.image_input import (
    DecodedImage,
    ImageDecodeError,
    InputSpec,
    decode_image,
    is_candidate_file,
    load_model_gray,
    load_model_input,
    model_gray,
    read_image,
    resize_area,
    sniff_format,
    to_model_tensor,
    window_limits,
    windowed,
)

RNG = np.random.default_rng(7)
GRAD16 = (np.linspace(0, 4095, 40 * 56).reshape(40, 56)).astype(np.uint16)  # 12 bits in 16
GRAD8 = (np.linspace(0, 255, 40 * 56).reshape(40, 56)).astype(np.uint8)
SMALL = InputSpec(height=32, width=32)


def _decode(data: bytes, name: str = "x") -> DecodedImage:
    d = decode_image(data, name=name)
    assert d.pixels.dtype == np.float32 and d.pixels.ndim == 2
    assert (d.meta.height, d.meta.width) == d.pixels.shape
    return d


# ----------------------------------------------------------------------------- supported kinds


def test_png_8bit_gray_is_exact():
    d = _decode(png_bytes(GRAD8))
    assert np.array_equal(d.pixels, GRAD8)
    assert (d.meta.bit_depth, d.meta.source_format, d.meta.photometric) == (8, "png", "MONOCHROME2")
    assert d.nominal_range == (0.0, 255.0)


def test_png_16bit_gray_keeps_all_bits():
    d = _decode(png_bytes(GRAD16))
    assert np.array_equal(d.pixels, GRAD16)
    assert d.meta.bit_depth == 16 and d.pixels.max() == 4095
    assert d.nominal_range == (0.0, 65535.0)


def test_png_16bit_colour_keeps_all_bits():
    bgr = np.stack([GRAD16, GRAD16, GRAD16], axis=-1)
    d = _decode(png16_rgb_bytes(bgr))
    assert d.meta.bit_depth == 16 and d.meta.channels == 3
    np.testing.assert_allclose(d.pixels, GRAD16, atol=0.5)


def test_rgb_becomes_luma_and_grey_rgb_is_exact():
    grey_rgb = np.stack([GRAD8] * 3, axis=-1)
    assert np.array_equal(_decode(png_bytes(grey_rgb)).pixels, GRAD8)
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 1] = 200  # pure green
    d = _decode(png_bytes(colour))
    assert d.meta.channels == 3 and d.meta.photometric == "RGB"
    np.testing.assert_allclose(d.pixels, 0.587 * 200, atol=1e-3)


def test_rgba_composites_transparent_onto_black():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :4, 3] = 255
    rgba[:, 4:, 3] = 0
    d = _decode(png_bytes(rgba))
    assert d.meta.channels == 4
    assert np.allclose(d.pixels[:, :4], 200) and np.allclose(d.pixels[:, 4:], 0)


def test_palette_and_grey_alpha_and_bilevel():
    pal = Image.fromarray(GRAD8).convert("P")
    d = _decode(pil_bytes(pal, "PNG"))
    assert d.meta.photometric == "PALETTE"
    assert np.corrcoef(d.pixels.ravel(), GRAD8.ravel())[0, 1] > 0.99
    la = Image.fromarray(np.stack([GRAD8, np.full_like(GRAD8, 255)], -1), mode="LA")
    assert np.allclose(_decode(pil_bytes(la, "PNG")).pixels, GRAD8, atol=1)
    bilevel = Image.fromarray(GRAD8 > 128).convert("1")
    d = _decode(pil_bytes(bilevel, "PNG"))
    assert d.meta.bit_depth == 1 and set(np.unique(d.pixels)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("fmt", "kw", "tol"),
    [
        ("JPEG", {"quality": 95}, 4.0),
        ("WEBP", {"lossless": True}, 0.0),
        ("BMP", {}, 0.0),
        ("GIF", {}, 0.0),
        ("TIFF", {}, 0.0),
    ],
)
def test_other_raster_formats(fmt, kw, tol):
    d = _decode(pil_bytes(Image.fromarray(GRAD8), fmt, **kw))
    assert d.meta.source_format == ("jpeg" if fmt == "JPEG" else fmt.lower())
    assert np.abs(d.pixels - GRAD8).mean() <= tol


def test_tiff_16bit_and_float():
    d = _decode(pil_bytes(Image.fromarray(GRAD16), "TIFF", compression="tiff_lzw"))
    assert np.array_equal(d.pixels, GRAD16) and d.meta.bit_depth == 16
    f = GRAD16.astype(np.float32) / 7.0
    f[0, 0] = np.nan
    d = _decode(pil_bytes(Image.fromarray(f, mode="F"), "TIFF"))
    assert np.isfinite(d.pixels).all() and d.pixels[0, 0] == 0


def test_jfif_extension_and_upper_case(tmp_path):
    p = tmp_path / "SCAN.JFIF"
    p.write_bytes(pil_bytes(Image.fromarray(GRAD8), "JPEG"))
    assert is_candidate_file(p)
    assert read_image(p).meta.source_format == "jpeg"


def test_content_beats_extension(tmp_path):
    tif_as_png = tmp_path / "really_tiff.png"
    tif_as_png.write_bytes(pil_bytes(Image.fromarray(GRAD16), "TIFF"))
    assert read_image(tif_as_png).meta.source_format == "tiff"
    png_as_jpg = tmp_path / "really_png.jpg"
    png_as_jpg.write_bytes(png_bytes(GRAD8))
    assert np.array_equal(read_image(png_as_jpg).pixels, GRAD8)


def test_unicode_and_spaces_in_path(tmp_path):
    folder = tmp_path / "Röntgen Aufnahmen 胸部"
    folder.mkdir()
    p = folder / "patiënt 1 — é.png"
    p.write_bytes(png_bytes(GRAD16))
    assert np.array_equal(read_image(p).pixels, GRAD16)


# ----------------------------------------------------------------------------- DICOM


def test_dicom_monochrome2_exact_and_metadata():
    d = _decode(dicom_bytes(GRAD16))
    assert np.array_equal(d.pixels, GRAD16)
    assert d.meta.source_format == "dicom" and d.meta.bit_depth == 12
    assert d.nominal_range == (0.0, 4095.0)


def test_dicom_monochrome1_is_inverted():
    m1 = _decode(dicom_bytes(GRAD16, photometric="MONOCHROME1"))
    m2 = _decode(dicom_bytes(GRAD16))
    assert m1.meta.photometric == "MONOCHROME1"
    # after inversion, the stored minimum shows as the brightest pixel
    assert np.array_equal(m1.pixels, 4095.0 - m2.pixels)
    assert np.corrcoef(windowed(m1).ravel(), windowed(m2).ravel())[0, 1] < -0.99


def test_dicom_rescale_slope_intercept():
    d = _decode(dicom_bytes(GRAD16, slope=2.0, intercept=-1024.0))
    np.testing.assert_allclose(d.pixels, GRAD16 * 2.0 - 1024.0)
    assert d.nominal_range == (-1024.0, 4095 * 2.0 - 1024.0)


def test_dicom_window_centre_width_applied():
    d = _decode(dicom_bytes(GRAD16, window=(2000.0, 1000.0)))
    low, high = GRAD16 < 1450, GRAD16 > 2550
    assert np.all(d.pixels[low] == d.pixels.min()) and np.all(d.pixels[high] == d.pixels.max())
    mid = (GRAD16 > 1600) & (GRAD16 < 2400)
    assert np.all(np.diff(d.pixels[mid]) >= 0)  # still increasing inside the window


def test_dicom_compressed_rle_and_jpeg():
    d = _decode(dicom_bytes(GRAD16, transfer_syntax=RLELossless))
    assert np.array_equal(d.pixels, GRAD16)
    jpeg = pil_bytes(Image.fromarray(GRAD8), "JPEG", quality=95)
    d = _decode(dicom_bytes(GRAD8, transfer_syntax=JPEGBaseline8Bit, encapsulated=[jpeg]))
    assert np.abs(d.pixels - GRAD8).mean() < 4


def test_dicom_without_preamble_multiframe_and_extensionless(tmp_path):
    assert np.array_equal(_decode(dicom_bytes(GRAD16, preamble=False)).pixels, GRAD16)
    frames = np.stack([GRAD16, GRAD16[::-1]])
    d = _decode(dicom_bytes(GRAD16, frames=frames))
    assert d.meta.frames == 2 and np.array_equal(d.pixels, GRAD16)
    p = tmp_path / "IM000001"
    p.write_bytes(dicom_bytes(GRAD16))
    assert is_candidate_file(p) and read_image(p).meta.source_format == "dicom"
    (tmp_path / "README").write_text("not an image")
    assert not is_candidate_file(tmp_path / "README")
    assert not is_candidate_file(tmp_path / ".hidden.png")


def test_dicom_refusals():
    with pytest.raises(ImageDecodeError) as e:
        decode_image(dicom_bytes(GRAD16, with_pixels=False), name="sr.dcm")
    assert e.value.kind == "no_pixels" and "sr.dcm" in str(e.value)
    mpeg = dicom_bytes(GRAD8, transfer_syntax="1.2.840.10008.1.2.4.100", encapsulated=[b"xx" * 8])
    with pytest.raises(ImageDecodeError) as e:
        decode_image(mpeg)
    assert e.value.kind == "unsupported_compression" and "MPEG2" in str(e.value)


# ----------------------------------------------------------------------------- refusals


def _refused(data: bytes, kind: str | None = None) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as e:
        decode_image(data, name="bad.png")
    err = e.value
    assert str(err).startswith("bad.png: ")
    if kind:
        assert err.kind == kind, err
    return err


def test_empty_text_html_pdf_are_named():
    assert "empty" in str(_refused(b"", "empty"))
    assert "text" in str(_refused(b"hello, this is a note\n", "unrecognised"))
    assert "HTML" in str(_refused(b"<!DOCTYPE html><html><body>404</body></html>", "unrecognised"))
    assert "PDF" in str(_refused(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj", "unrecognised"))
    _refused(bytes(RNG.integers(0, 256, 500, dtype=np.uint8)), "unrecognised")


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.9])
def test_truncated_png(fraction):
    data = png_bytes(RNG.integers(0, 65535, (64, 64), dtype=np.uint16))
    cut = data[: max(40, int(len(data) * fraction))] if fraction else data[:33]
    _refused(cut)


@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_truncated_jpeg(fraction):
    data = pil_bytes(Image.fromarray(RNG.integers(0, 255, (64, 64), dtype=np.uint8)), "JPEG")
    assert "truncated" in str(_refused(data[: int(len(data) * fraction)], "truncated"))
    _refused(data[:4])


def test_corrupt_middle():
    data = bytearray(png_bytes(RNG.integers(0, 255, (64, 64), dtype=np.uint8)))
    mid = len(data) // 2
    data[mid : mid + 64] = b"\x00" * 64
    _refused(bytes(data))


def test_decompression_bomb_refused_before_allocation():
    t0 = time.perf_counter()
    err = _refused(png_declaring(60000, 60000), "too_large")
    assert "60000x60000" in str(err)
    assert time.perf_counter() - t0 < 1.0  # refused from the header, nothing decoded
    tif = Image.new("L", (50, 50))
    small_limit = pil_bytes(tif, "TIFF")
    with pytest.raises(ImageDecodeError) as e:
        decode_image(small_limit, max_pixels=100)
    assert e.value.kind == "too_large"
    with pytest.raises(ImageDecodeError) as e:
        decode_image(dicom_bytes(GRAD16), max_pixels=100)
    assert e.value.kind == "too_large"


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageDecodeError) as e:
        read_image(tmp_path / "gone.png")
    assert e.value.kind == "not_found" and "gone.png" in str(e.value)
    with pytest.raises(ImageDecodeError):
        read_image(tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL warns about mangled TIFF tags
def test_only_one_error_type_escapes_for_mutated_files():
    """Bit flips and cuts in every format give a DecodedImage or an ImageDecodeError, nothing else."""
    seeds = [
        png_bytes(GRAD16),
        pil_bytes(Image.fromarray(GRAD8), "JPEG"),
        pil_bytes(Image.fromarray(GRAD16), "TIFF"),
        pil_bytes(Image.fromarray(GRAD8), "WEBP"),
        pil_bytes(Image.fromarray(GRAD8), "BMP"),
        dicom_bytes(GRAD16),
    ]
    rng = np.random.default_rng(3)
    for seed in seeds:
        for _ in range(40):
            data = bytearray(seed)
            for _ in range(rng.integers(1, 6)):
                pos = int(rng.integers(0, len(data)))
                data[pos] = int(rng.integers(0, 256))
            if rng.random() < 0.3:
                data = data[: int(rng.integers(1, len(data)))]
            with contextlib.suppress(ImageDecodeError):
                decode_image(bytes(data))


# ----------------------------------------------------------------------------- windowing, resize


def test_window_12bit_in_16bit_container_uses_full_output_range():
    g = model_gray(_decode(png_bytes(GRAD16)), SMALL)
    assert g.dtype == np.uint8 and g.min() <= 2 and g.max() >= 253


def test_offset_window_gives_same_model_input():
    shifted = (GRAD16.astype(np.uint32) + 30000).astype(np.uint16)
    a = model_gray(_decode(png_bytes(GRAD16)), SMALL)
    b = model_gray(_decode(png_bytes(shifted)), SMALL)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_burned_in_saturated_marker_does_not_compress_the_anatomy():
    img = GRAD16.copy()
    img[:3, :3] = 65535  # a few white letter pixels
    g = windowed(_decode(png_bytes(img)))
    assert np.percentile(g, 50) == pytest.approx(0.5, abs=0.05)


def test_flat_images_keep_their_place_in_the_range():
    black = windowed(_decode(png_bytes(np.zeros((20, 20), np.uint16))))
    white = windowed(_decode(png_bytes(np.full((20, 20), 65535, np.uint16))))
    assert black.max() == 0.0 and white.min() == 1.0
    assert window_limits(np.zeros((4, 4), np.float32)) == (0.0, 1.0)


@pytest.mark.parametrize("shape", [(1, 1), (1, 4000), (4000, 1), (3, 5)])
def test_degenerate_shapes_become_valid_inputs(shape):
    arr = RNG.integers(0, 255, shape, dtype=np.uint8)
    g = model_gray(_decode(png_bytes(arr)), SMALL)
    assert g.shape == (32, 32)


def test_area_resize_does_not_alias():
    checker = (np.indices((256, 256)).sum(0) % 2).astype(np.float32)
    small = resize_area(checker, 32, 32)
    np.testing.assert_allclose(small, 0.5, atol=1e-6)


def test_pad_keeps_aspect_ratio():
    wide = np.ones((50, 200), np.float32) * 60000
    wide[:, :100] = 0
    spec = InputSpec(height=64, width=64, resize="pad")
    g = model_gray(_decode(png_bytes(wide.astype(np.uint16))), spec)
    rows = np.where(g.max(axis=1) > 0)[0]
    assert rows.min() >= 20 and rows.max() <= 44  # 4:1 image occupies a 16-row band
    assert g.shape == (64, 64)


def test_model_tensor_layout_and_value_range():
    g = np.array([[0, 255], [128, 64]], np.uint8)
    x = to_model_tensor(g, InputSpec(height=8, width=8))
    assert x.shape == (2, 2, 3) and x.dtype == np.float32
    assert x[0, 1, 0] == 255.0 and np.array_equal(x[..., 0], x[..., 2])
    x = to_model_tensor(g[None], InputSpec(height=8, width=8, value_range=(-1.0, 1.0), channels=1))
    assert x.shape == (1, 2, 2, 1) and x.min() == -1.0 and x.max() == 1.0


def test_one_entry_point_for_path_and_bytes(tmp_path):
    data = dicom_bytes(GRAD16, photometric="MONOCHROME1", slope=0.5)
    p = tmp_path / "a.dcm"
    p.write_bytes(data)
    assert np.array_equal(load_model_gray(p, SMALL), load_model_gray(data, SMALL))
    x = load_model_input(p, SMALL)
    assert x.shape == (32, 32, 3) and x.min() >= 0 and x.max() <= 255


def test_input_spec_round_trip_and_validation():
    spec = InputSpec(height=299, width=299, resize="pad", window_low_pct=1.0)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    for bad in (
        {"resize": "crop"},
        {"channels": 2},
        {"layout": "NCHW"},
        {"height": 1},
        {"window_low_pct": 60, "window_high_pct": 40},
        {"value_range": (1.0, 1.0)},
    ):
        with pytest.raises(ValueError):
            InputSpec(**bad)


def test_sniff_format_table():
    assert sniff_format(b"\x89PNG\r\n\x1a\n" + b"\0" * 20) == "png"
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff_format(b"MM\x00*\0\0\0\x08") == "tiff"
    assert sniff_format(b"\0" * 128 + b"DICM") == "dicom"
    assert sniff_format(b"GIF89a") == "gif"
    assert sniff_format(b"\0" * 200) is None


@pytest.mark.parametrize("bits", [2, 4])
def test_flat_low_bit_png_keeps_its_grey(bits):
    """Pillow expands 1/2/4-bit PNGs to 8 bits; a flat one must not turn white."""
    value = (1 << bits) // 2
    img = Image.new("L", (8, 8), color=value * (255 // ((1 << bits) - 1)))
    data = pil_bytes(img, "PNG", bits=bits)
    d = _decode(data)
    g = windowed(d)
    assert 0.2 < float(g.mean()) < 0.8


# ----------------------------------------------------------------------------- cheaper steps


@pytest.mark.parametrize(
    "values",
    [
        RNG.integers(0, 256, 5000),  # 8-bit
        RNG.integers(0, 4096, 777),  # 12 bits in 16
        RNG.integers(0, 65536, 20000),  # 16-bit
        RNG.integers(-1024, 3072, 3001),  # signed DICOM after the modality LUT
        np.full(50, 1234),  # flat
        np.array([7]),
    ],
)
def test_histogram_percentile_equals_numpy_exactly(values):
    from export.percentile import percentiles

    for dtype in (np.float32, np.int32):
        x = values.astype(dtype).reshape(-1, 1)[::1]
        for qs in ((0.5, 99.5), (0.0, 100.0), (2.0, 98.0), (37.3, 50.0)):
            want = [float(v) for v in np.percentile(x, qs)]
            assert percentiles(x, qs) == want
            assert percentiles(x, qs, known_integers=True) == want  # the decoder said so


def test_grey_png_is_known_integer_and_windows_as_before():
    """The grey PNG decoder says its pixels are whole numbers (also inverted); the window
    is the same as when the percentile code checks that itself."""
    from dataclasses import replace

    from export.image_checks import inverted
    from export.model_input import display_limits

    arr = RNG.integers(0, 65536, (300, 200)).astype(np.uint16)
    d = decode_image(png_bytes(arr))
    assert d.integer_valued and inverted(d).integer_valued
    for img in (d, inverted(d)):
        assert display_limits(img) == display_limits(replace(img, integer_valued=False))
    assert not decode_image(png_bytes(np.dstack([arr >> 8] * 3).astype(np.uint8))).integer_valued


def test_non_integer_and_wide_values_fall_back_to_numpy():
    from export.percentile import percentiles

    x = RNG.normal(0, 1, 999).astype(np.float32)
    assert percentiles(x, (0.5, 99.5)) == [float(v) for v in np.percentile(x, (0.5, 99.5))]
    wide = np.array([0, 2**25, 5, 9], np.float32)
    assert percentiles(wide, (10.0, 90.0)) == [float(v) for v in np.percentile(wide, (10, 90))]
    bad = np.array([0, np.inf, 5, 6], np.float32)
    with np.errstate(invalid="ignore"):
        assert percentiles(bad, (0.0, 25.0)) == [float(v) for v in np.percentile(bad, (0, 25))]


def test_model_input_equals_the_reference_steps_bit_for_bit():
    """Percentile by partition, window as (x - lo) * scale clipped, area resize, rint: the
    cheaper steps change no pixel of the model input (tolerance 0 grey levels)."""
    import cv2

    spec = InputSpec(height=24, width=24)
    img = RNG.integers(300, 60000, (301, 257)).astype(np.uint16)
    img[:20, :40] = 65535  # a burnt-in marker
    d = _decode(png_bytes(img))
    step = max(1, int(np.sqrt(img.size / 1_000_000)))
    lo, hi = (float(v) for v in np.percentile(d.pixels[::step, ::step], [0.5, 99.5]))
    ref01 = np.clip(
        (d.pixels - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0, dtype=np.float32
    )
    ref = np.rint(cv2.resize(ref01, (24, 24), interpolation=cv2.INTER_AREA) * 255.0)
    assert np.array_equal(windowed(d, spec), ref01)
    assert np.array_equal(model_gray(d, spec), ref.astype(np.uint8))
