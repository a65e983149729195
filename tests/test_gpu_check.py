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


def test_the_cuda_only_steps_run_with_a_stand_in(tmp_path, monkeypatch):
    """The steps that run only where CUDA works, driven by a CPU session that says it is
    CUDA and a narrow VGG19 of the same shape: no name or key in them can be wrong unseen."""
    from functools import partial

    import benchmarks.cuda as bc
    import export.onnx_runtime as ort_path
    from benchmarks.__main__ import check_bars
    from benchmarks.decoding import folder_figures
    from desktop.paths import DEMO_IMAGES

    def cpu_posing_as_cuda(path, prefer, ort):
        sess = ort.InferenceSession(path, ort_path._session_options(), providers=[ort_path.CPU])
        return sess, ort_path.ProviderChoice("CUDA")

    monkeypatch.setattr(ort_path, "_try_cuda", cpu_posing_as_cuda)
    narrow = partial(bc.write_vgg19, stages=((4, 1),) * 5, dense=(16,))
    monkeypatch.setattr(bc, "write_vgg19", narrow)
    out = bc.run_cuda(tmp_path)
    assert out["cuda"] == "ok" and out["cuda_vs_cpu_max_dp"] == 0.0
    assert out["cuda_vs_cpu_images"] > 0
    assert out["cuda_vgg19_b1_ms"] > 0 and out["cuda_vgg19_b32_ms"] > 0
    assert not (tmp_path / "vgg19.onnx").exists()
    out.update(folder_figures(DEMO_IMAGES))
    assert out["folder_engine_provider"] == "CUDA" and out["folder_cuda_img_s"] > 0
    assert set(check_bars(out)) >= {"folder_vs_decode", "cuda_vs_cpu_max_dp"}
