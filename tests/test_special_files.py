"""Pipes, devices and links to them in an image folder or a bundle: listed with a reason,
never opened in blocking mode, never read without a limit."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cxr
from imaging_factory import png_bytes

from desktop.paths import DEMO_BUNDLE
from export.files import NotRegularFile, TooLarge, read_regular
from export.image_input import ImageDecodeError, read_image

ROOT = Path(__file__).resolve().parents[1]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@needs_fifo
def test_read_regular_refuses_pipes_and_devices_and_caps_size(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(NotRegularFile, match="pipe"):
        read_regular(tmp_path / "x.png", 1000)  # returns at once: no writer needed
    (tmp_path / "z.png").symlink_to("/dev/zero")
    with pytest.raises(NotRegularFile, match="device"):
        read_regular(tmp_path / "z.png", 1000)
    (tmp_path / "big.png").write_bytes(b"x" * 2000)
    with pytest.raises(TooLarge):
        read_regular(tmp_path / "big.png", 1000)
    with pytest.raises(ImageDecodeError, match="not a regular file"):
        read_image(tmp_path / "z.png")


@needs_fifo
@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_classify_lists_special_files_with_a_reason_and_finishes(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(np.full((64, 64), 900, np.uint16)))
    os.mkfifo(folder / "x.png")
    os.mkfifo(folder / "IM0001")  # extensionless: not a DICOM we could sniff, so not listed
    (folder / "z.png").symlink_to("/dev/zero")
    out = tmp_path / "r.csv"
    r = cxr("classify", folder, "--bundle", DEMO_BUNDLE, "--out", out)
    assert r.returncode == 0, r.stderr
    rows = {row["path"]: row for row in csv.DictReader(out.open())}
    assert set(rows) == {"a.png", "x.png", "z.png"}
    assert rows["a.png"]["status"] == "ok"
    assert "pipe" in rows["x.png"]["error"] and "device" in rows["z.png"]["error"]


@needs_fifo
@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_a_pipe_in_a_bundle_is_refused_at_once(tmp_path):
    from export.bundle import BundleError, load_bundle

    b = tmp_path / "b"
    shutil.copytree(DEMO_BUNDLE, b)
    os.unlink(b / "model.onnx")
    os.mkfifo(b / "model.onnx")
    with pytest.raises(BundleError, match="not a regular file"):
        load_bundle(b)
    os.unlink(b / "manifest.json")
    os.mkfifo(b / "manifest.json")
    with pytest.raises(BundleError, match="cannot be read"):
        load_bundle(b)


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_odd_names_work_end_to_end_and_never_become_formulas(tmp_path):
    """A name that is not UTF-8 and one that looks like a formula: listed, classified,
    reviewed and written to the CSV safely."""
    from desktop.review_store import ReviewStore
    from export.files import safe_name

    folder = tmp_path / "scans"
    folder.mkdir()
    img = png_bytes(np.full((64, 64), 900, np.uint16))
    raw = os.fsencode(folder) + b"/caf\xe9.png"  # Latin-1 bytes: not UTF-8
    with open(raw, "wb") as fh:
        fh.write(img)
    (folder / "=cmd|' calc'!A1.png").write_bytes(img)
    odd = safe_name(os.fsdecode(b"caf\xe9.png"))
    assert odd == "caf\\xe9.png"
    with ReviewStore.for_folder(folder) as store:  # a review can be saved for it
        store.set_note(odd, '=HYPERLINK("x")', reviewer="r")
    out = tmp_path / "r.csv"
    r = cxr("classify", folder, "--bundle", DEMO_BUNDLE, "--out", out)
    assert r.returncode == 0, r.stderr
    rows = {row["path"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert set(rows) == {odd, "'=cmd|' calc'!A1.png"}
    assert all(row["status"] == "ok" for row in rows.values())
    assert rows[odd]["note"] == '\'=HYPERLINK("x")'
