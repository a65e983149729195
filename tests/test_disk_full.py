"""A full disk never passes for success, and never costs an earlier good file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_runner import cxr

from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 KB tmpfs (needs mount rights: root on Linux); skipped where mounting is refused."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_report_onto_a_full_disk_says_so_and_keeps_the_earlier_report(tiny_disk, tmp_path):
    target = tiny_disk / "r.pdf"
    earlier = b"%PDF-1.4 an earlier good report\n%%EOF\n"
    target.write_bytes(earlier)
    home = {"CXR_REVIEW_HOME": str(tmp_path / "home")}
    r = cxr("report", DEMO_IMAGES, "--bundle", DEMO_BUNDLE, "--out", target, "--force", env=home)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "disk full" in last and str(target) in last, last
    assert target.read_bytes() == earlier
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["r.pdf"]  # no temporary file left


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_heatmaps_onto_a_full_disk_keep_the_csv(tiny_disk, tmp_path):
    out = tmp_path / "r.csv"
    maps = tiny_disk / "maps"
    home = {"CXR_REVIEW_HOME": str(tmp_path / "home")}
    r = cxr(
        "classify", DEMO_IMAGES, "--bundle", DEMO_BUNDLE, "--out", out, "--heatmaps", maps, env=home
    )
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "not written" in last and "disk full" in last and str(tiny_disk) in last, last
    assert len(out.read_text().splitlines()) == 25  # every image's row is there
    assert not list((tiny_disk / "maps").rglob("*.tmp"))
