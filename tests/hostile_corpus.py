"""A folder of what hospital exports really contain: broken, odd, huge and hostile files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from imaging_factory import dicom_bytes, pil_bytes, png_bytes, png_declaring
from PIL import Image


def build(root: Path, *, huge: bool = True) -> dict[str, str]:
    """Write the corpus; returns {relative path: expected status ('ok' or 'error')}."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    grad = (np.linspace(0, 4095, 96 * 80).reshape(96, 80)).astype(np.uint16)
    png = png_bytes(grad)
    jpg = pil_bytes(Image.fromarray((grad >> 4).astype(np.uint8)), "JPEG")
    expected: dict[str, str] = {}

    def put(rel: str, data: bytes, status: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        expected[rel] = status

    put("zero.png", b"", "error")
    put("header_only.png", png[:33], "error")
    put("half.png", png[: len(png) // 2], "error")
    put("half.jpg", jpg[: len(jpg) // 2], "error")
    mid = bytearray(png)
    mid[len(mid) // 2 : len(mid) // 2 + 200] = bytes(200)
    put("corrupt_middle.png", bytes(mid), "error")
    put("notes.png", b"patient notes, not an image\n" * 4, "error")
    put("page.jpg", b"<!DOCTYPE html><html><body>Login</body></html>", "error")
    put("tiff_named.png", pil_bytes(Image.fromarray(grad), "TIFF"), "ok")
    put("one_by_one.png", png_bytes(np.array([[7]], np.uint8)), "ok")
    put("one_by_4000.png", png_bytes(rng.integers(0, 255, (1, 4000), dtype=np.uint8)), "ok")
    put("black.png", png_bytes(np.zeros((64, 64), np.uint8)), "ok")
    put("white16.png", png_bytes(np.full((64, 64), 65535, np.uint16)), "ok")
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 180, 255
    put("rgba.png", png_bytes(rgba), "ok")
    put(
        "palette.png",
        pil_bytes(Image.fromarray((grad >> 4).astype(np.uint8)).convert("P"), "PNG"),
        "ok",
    )
    put("bomb_60000.png", png_declaring(60000, 60000), "error")
    if huge:  # a real 12000 x 10000 radiograph-sized image (120 MP), small on disk
        big = np.tile(np.linspace(0, 255, 10000, dtype=np.uint8), (12000, 1))
        put("huge_12000x10000.png", png_bytes(big), "ok")
    put(".hidden.png", png, "skip")
    put("IM000123", dicom_bytes(grad), "ok")  # no extension, DICOM by content
    put("UPPER.PNG", png, "ok")
    put("Ünïcode folder/scan with spaces ✓.png", png, "ok")
    put("no_pixels.dcm", dicom_bytes(grad, with_pixels=False), "error")
    put(
        "mpeg.dcm",
        dicom_bytes(
            (grad >> 4).astype(np.uint8),
            transfer_syntax="1.2.840.10008.1.2.4.100",
            encapsulated=[b"\x00" * 64],
        ),
        "error",
    )
    (root / "loop").mkdir()
    os.symlink(root, root / "loop" / "back_to_root")  # must not recurse
    os.symlink(root / "does_not_exist.png", root / "dangling.png")
    expected["dangling.png"] = "error"
    return {k: v for k, v in expected.items() if v != "skip"}
