"""The terminal shows the tool's own lines, not TensorFlow's native start-up chatter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_runner import cxr

from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES

ROOT = Path(__file__).resolve().parents[1]
CHATTER = ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN custom operations")


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_classify_with_heatmaps_prints_only_its_own_lines(tmp_path):
    os.environ.pop("CXR_VERBOSE", None)
    r = cxr(
        "classify",
        DEMO_IMAGES,
        "--bundle",
        DEMO_BUNDLE,
        "--out",
        tmp_path / "r.csv",
        "--heatmaps",
        tmp_path / "m",
        env={"CXR_REVIEW_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert all(x.startswith("classify:") for x in lines), lines[:5]
    for word in CHATTER:
        assert word not in r.stderr
