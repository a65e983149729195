"""Which ONNX Runtime provider runs, and one line saying why CUDA does not when it was wanted.

No GPU is needed: the driver and library probes and the CUDA session are monkeypatched.
"""

from __future__ import annotations

import csv
import ctypes.util
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from desktop.paths import DEMO_BUNDLE, DEMO_IMAGES
from desktop.provider_text import describe_providers, status_text
from export import onnx_runtime as rt

ROOT = Path(__file__).resolve().parents[1]


class FakeSession:
    """An InferenceSession that records its providers and gets CUDA when asked first."""

    made: list = []  # noqa: RUF012 (reset per test)
    cuda_works = True
    error: Exception | None = None

    def __init__(self, path, opts, providers):
        FakeSession.made.append(providers)
        if isinstance(providers[0], tuple) and FakeSession.error is not None:
            raise FakeSession.error
        self._cuda = isinstance(providers[0], tuple) and FakeSession.cuda_works

    def get_providers(self):
        return [rt.CUDA, rt.CPU] if self._cuda else [rt.CPU]


@pytest.fixture
def gpu_box(monkeypatch):
    """onnxruntime-gpu with a working driver and libraries; each test breaks one thing."""
    import onnxruntime as ort

    FakeSession.made, FakeSession.cuda_works, FakeSession.error = [], True, None
    monkeypatch.setattr(ort, "get_available_providers", lambda: [rt.CUDA, rt.CPU])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(rt, "_driver_problem", lambda major: None)
    monkeypatch.setattr(rt, "_library_problem", lambda major: None)
    monkeypatch.delenv(rt.TF32_ENV, raising=False)
    return monkeypatch


def choose(prefer: str = "auto") -> rt.ProviderChoice:
    _sess, choice = rt.open_session("m.onnx", prefer)
    return choice


def cuda_tried() -> bool:
    return any(isinstance(p[0], tuple) for p in FakeSession.made)


def test_cuda_when_everything_works_strict_fp32(gpu_box):
    c = choose()
    assert c == rt.ProviderChoice("CUDA") and c.label == "CUDA"
    assert FakeSession.made[-1][0] == (rt.CUDA, {"prefer_nhwc": "1", "use_tf32": "0"})


def test_cuda_options_tf32_only_when_asked(monkeypatch):
    monkeypatch.delenv(rt.TF32_ENV, raising=False)
    assert rt.cuda_options() == {"prefer_nhwc": "1", "use_tf32": "0"}
    monkeypatch.setenv(rt.TF32_ENV, "0")
    assert rt.cuda_options()["use_tf32"] == "0"
    monkeypatch.setenv(rt.TF32_ENV, "1")
    assert rt.cuda_options() == {"prefer_nhwc": "1", "use_tf32": "1"}


def test_no_nvidia_gpu_is_the_normal_case_in_auto_mode(gpu_box):
    gpu_box.setattr(rt, "_driver_problem", lambda major: ("no NVIDIA driver (x)", True))
    c = choose("auto")
    assert c.label == "CPU (no NVIDIA GPU)" and not c.alarming
    assert not cuda_tried()  # nothing tried, nothing logged
    c = choose("cuda")
    assert c.alarming and c.label == "CPU, CUDA not used: no NVIDIA driver (x)"
    assert not cuda_tried()


def test_driver_that_fails_is_said_even_in_auto_mode(gpu_box):
    why = "the NVIDIA driver is too old for CUDA 13 (it supports CUDA 12.4)"
    gpu_box.setattr(rt, "_driver_problem", lambda major: (why, False))
    c = choose("auto")
    assert c.alarming and c.why_not_cuda == why and not cuda_tried()


def test_missing_library_is_named(gpu_box):
    gpu_box.setattr(rt, "_library_problem", lambda major: "libcudnn.so.9 not found")
    c = choose("auto")
    assert c.name == "CPU" and c.alarming and not cuda_tried()
    assert c.label == "CPU, CUDA not used: libcudnn.so.9 not found (install the gpu extra)"


def test_device_error_is_one_line(gpu_box):
    FakeSession.error = RuntimeError(
        "[ONNXRuntimeError] : 1 : FAIL : CUDA failure 2: out of memory ; GPU=0 ; hostname=h\n"
        "stack line 1\nstack line 2"
    )
    c = choose("auto")
    assert c.name == "CPU" and c.alarming
    assert c.why_not_cuda == "device error: CUDA failure 2: out of memory"
    assert "\n" not in c.label


def test_silent_fallback_is_reported(gpu_box):
    FakeSession.cuda_works = False
    c = choose("cuda")
    assert c.name == "CPU" and c.alarming and "could not start" in c.why_not_cuda


def test_cpu_only_onnxruntime(gpu_box):
    import onnxruntime as ort

    gpu_box.setattr(ort, "get_available_providers", lambda: [rt.CPU])
    assert choose("auto").label == "CPU"
    assert "no CUDA" in choose("cuda").label


def test_cpu_asked_for_tries_nothing(gpu_box):
    assert choose("cpu").label == "CPU" and not cuda_tried()
    with pytest.raises(ValueError, match="auto, cuda or cpu"):
        rt.open_session("m.onnx", "gpu")


def test_make_session_keeps_its_name_only_answer(gpu_box):
    _s, name = rt.make_session("m.onnx", "auto")
    assert name == "CUDA"


class FakeDriver:
    def __init__(self, version=13000, init=0, count=1):
        self.version, self.init, self.count = version, init, count

    def cuDriverGetVersion(self, ref):
        ref._obj.value = self.version
        return 0

    def cuInit(self, flags):
        return self.init

    def cuGetErrorName(self, rc, ref):
        ref._obj.value = b"CUDA_ERROR_UNKNOWN"
        return 0

    def cuDeviceGetCount(self, ref):
        ref._obj.value = self.count
        return 0


def fake_dlopen(monkeypatch, driver: FakeDriver | None, present: set[str] = frozenset()):
    def dlopen(name):
        base = Path(name).name
        if base == "libcuda.so.1" and driver is not None:
            return driver
        if base in present:
            return object()
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(rt.ctypes, "CDLL", dlopen)
    monkeypatch.setattr(rt, "_LOADED", {})


def test_driver_probe(monkeypatch):
    fake_dlopen(monkeypatch, None)
    assert rt._driver_problem(13) == ("no NVIDIA driver (libcuda.so.1 not found)", True)
    fake_dlopen(monkeypatch, FakeDriver(init=100))
    assert rt._driver_problem(13) == (rt.NO_GPU, True)
    fake_dlopen(monkeypatch, FakeDriver(count=0))
    assert rt._driver_problem(13) == (rt.NO_GPU, True)
    fake_dlopen(monkeypatch, FakeDriver(version=12040))
    why, no_gpu = rt._driver_problem(13)
    assert not no_gpu and "too old for CUDA 13" in why and "12.4" in why
    fake_dlopen(monkeypatch, FakeDriver(init=999))
    assert rt._driver_problem(13) == (
        "the NVIDIA driver failed to start (CUDA_ERROR_UNKNOWN)",
        False,
    )
    fake_dlopen(monkeypatch, FakeDriver())
    assert rt._driver_problem(13) is None


@pytest.mark.skipif(sys.platform != "linux", reason="the library probe is for Linux")
def test_library_probe_names_the_first_missing_library(monkeypatch, tmp_path):
    libs = rt.cuda_libraries(13)
    assert (
        libs[0] == "libcudart.so.13" and "libcublas.so.13" in libs and libs[-1] == "libcudnn.so.9"
    )
    monkeypatch.setattr(rt, "_pip_library_dirs", lambda: [])
    fake_dlopen(monkeypatch, FakeDriver(), present=set(libs) - {"libcudnn.so.9"})
    assert rt._library_problem(13) == "libcudnn.so.9 not found"
    fake_dlopen(monkeypatch, FakeDriver(), present=set(libs))
    assert rt._library_problem(13) is None  # the optional ones (NVRTC, cuFFT) are missing
    assert rt.optional_cuda_libraries(13) == ["libnvrtc.so.13", "libcufft.so.12"]


@pytest.mark.skipif(sys.platform != "linux", reason="the library probe is for Linux")
def test_library_probe_prefers_the_nvidia_wheels_and_says_why_one_fails(monkeypatch, tmp_path):
    wheel_lib = tmp_path / "nvidia" / "cu13" / "lib"
    wheel_lib.mkdir(parents=True)
    (wheel_lib / "libcublasLt.so.13").write_bytes(b"not an ELF file")
    monkeypatch.setattr(rt, "_LOADED", {})
    monkeypatch.setattr(rt, "_pip_library_dirs", lambda: [str(wheel_lib)])
    why = rt._load_library("libcublasLt.so.13", [str(wheel_lib)])
    assert why.startswith("libcublasLt.so.13 cannot be loaded (") and "\n" not in why
    # a real shared library (zlib) stands in for a wheel's one: it is loaded from the wheel
    name = ctypes.util.find_library("z")
    dirs = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib")
    found = [Path(d) / name for d in dirs if name and (Path(d) / name).is_file()]
    if found:
        shutil.copy(found[0], wheel_lib / "libcurand.so.10")
        assert rt._load_library("libcurand.so.10", [str(wheel_lib)]) is None
        assert rt._LOADED["libcurand.so.10"]._name == str(wheel_lib / "libcurand.so.10")


def test_one_line_errors():
    assert rt._one_line("a\nb") == "a"
    assert rt._one_line("x" * 500, 20) == "x" * 19 + "…"


def test_folder_and_status_words():
    assert describe_providers([]) == ""
    assert describe_providers(["CPU (no NVIDIA GPU)"] * 3) == "ONNX Runtime CPU (no NVIDIA GPU)"
    assert describe_providers(["CUDA", "reused", "reused", ""]) == (
        "ONNX Runtime CUDA; 2 results handed over by the app"
    )
    assert describe_providers(["reused"]) == "1 result handed over by the app"
    assert status_text("CPU (no NVIDIA GPU)") == "Inference: ONNX Runtime CPU (no NVIDIA GPU)"
    assert status_text("") == "Inference: —"


@pytest.mark.skipif(not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built")
def test_classify_says_why_not_cuda_in_csv_and_one_stderr_line(monkeypatch, tmp_path, capsys):
    """The real ONNX Runtime on the CPU, with the probes saying cuDNN is missing."""
    import onnxruntime as ort

    from desktop.cli import main

    monkeypatch.setattr(ort, "get_available_providers", lambda: [rt.CUDA, rt.CPU])
    monkeypatch.setattr(rt, "_driver_problem", lambda major: None)
    monkeypatch.setattr(rt, "_library_problem", lambda major: "libcudnn.so.9 not found")
    out = tmp_path / "r.csv"
    folder = DEMO_IMAGES / "8-bit"
    assert main(["classify", str(folder), "--bundle", str(DEMO_BUNDLE), "--out", str(out)]) == 0
    want = "CPU, CUDA not used: libcudnn.so.9 not found (install the gpu extra)"
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and {r["provider"] for r in rows} == {want}
    said = [x for x in capsys.readouterr().err.splitlines() if "ONNX Runtime" in x]
    assert said == [f"classify: ONNX Runtime {want}"]


def test_gpu_extra_brings_cuda_cudnn_and_cublas():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    gpu = meta["project"]["optional-dependencies"]["gpu"]
    text = " ".join(gpu)
    assert "onnxruntime-gpu[cuda,cudnn]" in text.replace(" ", "")
    assert any(d.startswith("nvidia-cublas") for d in gpu)  # not in onnxruntime-gpu's cuda extra
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "nvidia-smi -L" in makefile and ",gpu" in makefile


def test_onnx_runtime_logs_warnings_only_when_verbose(monkeypatch):
    monkeypatch.delenv("CXR_VERBOSE", raising=False)
    assert rt._session_options().log_severity_level == 3  # errors only
    monkeypatch.setenv("CXR_VERBOSE", "1")
    assert rt._session_options().log_severity_level == 2
