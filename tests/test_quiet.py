"""The terminal shows the tool's own lines, not TensorFlow's native start-up chatter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES

ROOT = Path(__file__).resolve().parents[1]
CHATTER = ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN custom operations")


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_classify_with_heatmaps_prints_only_its_own_lines(tmp_path):
    env = {**os.environ, "CXR_REVIEW_HOME": str(tmp_path / "home")}
    env.pop("CXR_VERBOSE", None)
    args = [
        sys.executable,
        "-m",
        "desktop.cli",
        "classify",
        str(DEMO_IMAGES),
        "--bundle",
        str(DEMO_BUNDLE),
        "--out",
        str(tmp_path / "r.csv"),
        "--heatmaps",
        str(tmp_path / "m"),
    ]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert all(x.startswith("classify:") for x in lines), lines[:5]
    for word in CHATTER:
        assert word not in r.stderr
