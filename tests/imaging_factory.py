"""Builders for every kind of file the image-input contract must read (and must refuse).

Kept separate from the tests so later suites (hostile corpus, folder scans)
can reuse the same generators.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png_bytes(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, "PNG") if mode else Image.fromarray(arr).save(
        buf, "PNG"
    )
    return buf.getvalue()


def pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png16_rgb_bytes(arr_bgr16: np.ndarray) -> bytes:
    import cv2

    ok, enc = cv2.imencode(".png", arr_bgr16)
    assert ok
    return enc.tobytes()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims an enormous size (decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def dicom_bytes(
    arr: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    slope: float | None = None,
    intercept: float | None = None,
    window: tuple[float, float] | None = None,
    transfer_syntax: str | None = None,
    with_pixels: bool = True,
    preamble: bool = True,
    frames: np.ndarray | None = None,
    encapsulated: list[bytes] | None = None,
) -> bytes:
    """A Digital X-Ray DICOM file written with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    ts = transfer_syntax or ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian if ts == RLELossless else ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientName = "Phantom^Test"
    src = frames if frames is not None else arr
    ds.Rows, ds.Columns = int(src.shape[-2]), int(src.shape[-1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if src.dtype == np.uint8 else 16
    ds.BitsStored = 8 if src.dtype == np.uint8 else bits_stored
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if src.dtype == np.int16 else 0
    if frames is not None:
        ds.NumberOfFrames = int(frames.shape[0])
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if with_pixels:
        if encapsulated is not None:
            ds.PixelData = encapsulate(encapsulated)
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = np.ascontiguousarray(src).tobytes()
            if ts == RLELossless:
                ds.compress(RLELossless, np.ascontiguousarray(src))
    buf = io.BytesIO()
    if preamble:
        ds.save_as(buf, enforce_file_format=True)
    else:
        ds.preamble = None
        ds.save_as(buf, enforce_file_format=False, implicit_vr=False, little_endian=True)
    return buf.getvalue()
