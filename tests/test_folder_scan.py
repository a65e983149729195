"""Which files a folder offers: by extension in any case or DICOM by content; no loops."""

from __future__ import annotations

import os

import numpy as np
from imaging_factory import dicom_bytes, png_bytes

from desktop.folder_scan import iter_image_files


def test_scan_rules(tmp_path):
    img = png_bytes(np.zeros((8, 8), np.uint8))
    (tmp_path / "a.png").write_bytes(img)
    (tmp_path / "B.JPG").write_bytes(img)  # content decides later; the extension admits it
    (tmp_path / ".hidden.png").write_bytes(img)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "IM0001").write_bytes(dicom_bytes(np.zeros((8, 8), np.uint16)))
    (tmp_path / "1.2.840.113619.2.55").write_bytes(dicom_bytes(np.zeros((8, 8), np.uint16)))
    (tmp_path / "1.2.840.99").write_text("a UID-like name that is not DICOM")
    (tmp_path / "README").write_text("not dicom")
    (tmp_path / ".cxr-review").mkdir()
    (tmp_path / ".cxr-review" / "x.png").write_bytes(img)
    sub = tmp_path / "sub dir"
    sub.mkdir()
    (sub / "c.dcm").write_bytes(b"anything")
    os.symlink(tmp_path, sub / "loop")  # a symlink back up must not recurse
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    names = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert names == [
        "1.2.840.113619.2.55",
        "B.JPG",
        "IM0001",
        "a.png",
        "dangling.png",
        "sub dir/c.dcm",
    ]
