"""The GPU check script runs end to end where CUDA does not (it can only be run on a GPU
machine now and then: a renamed function must not wait for that day to be found)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_step_runs_and_reports_its_keys(tmp_path):
    out = tmp_path / "gpu-check.json"
    args = ["--phantoms", "16", "--films", "2", "--scaling", "2", "--json", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(out.read_text())
    assert not [k for k in got if k.endswith("_error")], got
    for key in (
        "decode_ms_2500x2048_16bit",
        "png_inflate",
        "decode_img_s_all_cores",
        "folder_vs_decode",
        "films_folder_vs_decode",
        "films_projected_10000_s",
        "cuda",
    ):
        assert key in got, key
    assert set(got["step_seconds"]) == {"data", "one_core", "cuda", "phantoms", "films", "scaling"}
