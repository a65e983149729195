"""ONNX Runtime over a verified bundle: pick a provider that *works*, then classify.

onnxruntime-gpu lists CUDA as available even on machines without a GPU or
CUDA libraries, and then logs a screen of errors while falling back. So the
NVIDIA driver and the CUDA/cuDNN libraries are probed first (quietly, with
ctypes), the CUDA session is only tried when they are there, and the
provider the session really got is reported with one line saying why CUDA
was not used (:class:`ProviderChoice`): the status bar, the CSV and the
report say the truth, and the terminal stays clean.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.bundle import BundleError, Manifest, bundle_root, load_bundle
from export.novelty import Novelty

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _verbose() -> bool:
    """``cxr --verbose`` / CXR_VERBOSE=1: let ONNX Runtime's warnings through."""
    from export.cam_runtime import VERBOSE_ENV

    return os.environ.get(VERBOSE_ENV, "").strip() == "1"


def _session_options(severity: int = 3):
    """Session options; ``severity``: ONNX Runtime's log level (3 errors, 4 fatal only)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 2 if _verbose() else severity
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


#: set to 1 for TensorFloat-32 on CUDA. Off by default, so a result does not depend on the
#: machine it was computed on: strict fp32 agrees with the CPU within 1e-6 in probability
#: (6e-7 measured on an H200, 28 radiographs), TF32 only in the third decimal (0.0073). TF32
#: is about 4x faster on VGG19 convolutions (H200: batch 1 0.61 vs 2.47 ms, batch 32 8.0 vs
#: 34.5 ms), but strict fp32 still classifies ~930 images/s, far more than decoding feeds it.
TF32_ENV = "CXR_CUDA_TF32"


def cuda_options() -> dict[str, str]:
    """CUDA provider options: NHWC kernels (our graphs take NHWC), TF32 only when
    :data:`TF32_ENV` is 1 (strict fp32 otherwise: CUDA answers match the CPU's)."""
    tf32 = os.environ.get(TF32_ENV, "0").strip() == "1"
    return {"prefer_nhwc": "1", "use_tf32": "1" if tf32 else "0"}


@dataclass(frozen=True)
class ProviderChoice:
    """Which provider runs the model, and why CUDA does not when it was wanted.

    ``why_not_cuda`` is one short line, empty when CUDA runs or was not wanted;
    ``alarming`` is False for the normal case of a machine without an NVIDIA GPU
    (auto mode), True when CUDA was asked for or should have worked.
    """

    name: str  # "CUDA" or "CPU"
    why_not_cuda: str = ""
    alarming: bool = False

    @property
    def label(self) -> str:
        """``CUDA``, ``CPU``, ``CPU (no NVIDIA GPU)`` or ``CPU, CUDA not used: <why>``."""
        if not self.why_not_cuda:
            return self.name
        if not self.alarming:
            return f"{self.name} ({self.why_not_cuda})"
        return f"{self.name}, CUDA not used: {self.why_not_cuda}"


NO_GPU = "no NVIDIA GPU"


def _ort_cuda_major() -> int:
    """The CUDA major version this onnxruntime-gpu was built for (12 when it does not say)."""
    try:
        from onnxruntime.capi.build_and_package_info import cuda_version

        return int(str(cuda_version).split(".")[0])
    except (ImportError, AttributeError, ValueError):
        return 12


def _driver_problem(cuda_major: int) -> tuple[str, bool] | None:
    """None when the NVIDIA driver sees a device, else (why, whether simply no GPU is there).

    Loads the driver library and asks it directly (the same calls ONNX Runtime makes),
    so a machine without the driver costs one failed ``dlopen`` and prints nothing."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        drv = ctypes.CDLL(name)
    except OSError:
        return f"no NVIDIA driver ({name} not found)", True
    version = ctypes.c_int(0)
    if drv.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value < cuda_major * 1000:
        have = f"{version.value // 1000}.{version.value % 1000 // 10}"
        return (
            f"the NVIDIA driver is too old for CUDA {cuda_major} (it supports CUDA {have})",
            False,
        )
    rc = drv.cuInit(0)
    if rc == 100:  # CUDA_ERROR_NO_DEVICE
        return NO_GPU, True
    if rc != 0:
        err = ctypes.c_char_p()
        drv.cuGetErrorName(rc, ctypes.byref(err))
        what = err.value.decode("ascii", "replace") if err.value else f"error {rc}"
        return f"the NVIDIA driver failed to start ({what})", False
    count = ctypes.c_int(0)
    if drv.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return NO_GPU, True
    return None


def cuda_libraries(cuda_major: int) -> list[str]:
    """The libraries ONNX Runtime's CUDA provider cannot run without, in load order."""
    return [
        f"libcudart.so.{cuda_major}",
        f"libcublasLt.so.{cuda_major}",  # libcublas needs it loaded first
        f"libcublas.so.{cuda_major}",
        "libcurand.so.10",
        "libcudnn.so.9",
    ]


def optional_cuda_libraries(cuda_major: int) -> list[str]:
    """Libraries some kernels load later by name (cuDNN's runtime-compiled engines, FFTs):
    loaded when there, so they are found, but their absence does not stop CUDA."""
    return [f"libnvrtc.so.{cuda_major}", f"libcufft.so.{12 if cuda_major >= 13 else 11}"]


def _pip_library_dirs() -> list[str]:
    """``lib`` folders of the nvidia-* wheels (``nvidia/cu13/lib``, ``nvidia/cudnn/lib``, …)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return []
    roots = list(spec.submodule_search_locations or []) if spec else []
    return sorted({d for r in roots for d in glob.glob(os.path.join(r, "*", "lib"))})


_LOADED: dict[str, ctypes.CDLL] = {}  # loaded once per process, kept loaded


def _load_library(name: str, dirs: list[str]) -> str | None:
    """Load ``name`` from the nvidia wheels, else the system's search path; None or why not."""
    if name in _LOADED:
        return None
    err = ""
    for path in [os.path.join(d, name) for d in dirs if os.path.isfile(os.path.join(d, name))]:
        try:
            _LOADED[name] = ctypes.CDLL(path)
            return None
        except OSError as exc:
            err = str(exc)
    try:
        _LOADED[name] = ctypes.CDLL(name)
        return None
    except OSError as exc:
        err = err or str(exc)
    if "No such file" in err:
        return f"{name} not found"
    return f"{name} cannot be loaded ({_one_line(err, 100)})"


def _library_problem(cuda_major: int) -> str | None:
    """None when every library the CUDA provider needs loads, else the first that does not.

    Loading them here, from the nvidia-* wheels of the ``gpu`` extra, is what lets ONNX
    Runtime find them: its provider library looks them up by name only."""
    if sys.platform != "linux":
        return None
    dirs = _pip_library_dirs()
    for name in cuda_libraries(cuda_major):
        why = _load_library(name, dirs)
        if why:
            return why
    for name in optional_cuda_libraries(cuda_major):
        _load_library(name, dirs)
    return None


def _one_line(text: str, limit: int = 160) -> str:
    """The first line of an error, without ONNX Runtime's ``[ONNXRuntimeError] : 1 : FAIL :``."""
    line = (text.strip().splitlines() or [""])[0]
    if line.startswith("[ONNXRuntimeError]"):
        line = line.split(" : ", 3)[-1]
    line = line.split(" ; ", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _cuda_session(path: str):
    """A session asked for CUDA first, created with ONNX Runtime's logging and stderr quiet."""
    import onnxruntime as ort

    from export.cam_runtime import quiet_native_stderr

    if not _verbose():
        ort.set_default_logger_severity(4)  # the failed-CUDA fallback logs at error level
    try:
        with quiet_native_stderr():
            return ort.InferenceSession(
                path, _session_options(4), providers=[(CUDA, cuda_options()), CPU]
            )
    finally:
        ort.set_default_logger_severity(2 if _verbose() else 3)


def open_session(model_path: str | os.PathLike[str], prefer: str = "auto"):
    """(session, :class:`ProviderChoice`). ``prefer``: auto, cuda or cpu.

    CUDA is tried (auto or cuda) only when this ONNX Runtime has it, the driver sees a
    GPU and the CUDA/cuDNN libraries load; otherwise, or when the CUDA session fails,
    the CPU runs the model and the choice says why in one line."""
    import onnxruntime as ort

    path = str(model_path)
    if prefer not in ("auto", "cuda", "cpu"):
        raise ValueError(f"provider must be auto, cuda or cpu, not {prefer!r}")
    ort.set_default_logger_severity(2 if _verbose() else 3)
    choice = ProviderChoice("CPU")
    if prefer != "cpu":
        sess, choice = _try_cuda(path, prefer, ort)
        if sess is not None:
            return sess, choice
    sess = ort.InferenceSession(path, _session_options(), providers=[CPU])
    return sess, choice


def _try_cuda(path: str, prefer: str, ort):
    """(session, CUDA choice) when CUDA works, else (None, the CPU choice saying why not)."""
    asked = prefer == "cuda"
    if CUDA not in ort.get_available_providers():
        why = "this ONNX Runtime has no CUDA (install the gpu extra)" if asked else ""
        return None, ProviderChoice("CPU", why, asked)
    major = _ort_cuda_major()
    driver = _driver_problem(major)
    if driver is not None:
        why, no_gpu = driver
        if no_gpu and not asked:
            return None, ProviderChoice("CPU", NO_GPU, False)
        return None, ProviderChoice("CPU", why, True)
    missing = _library_problem(major)
    if missing:
        return None, ProviderChoice("CPU", f"{missing} (install the gpu extra)", True)
    try:
        sess = _cuda_session(path)
    except Exception as exc:
        return None, ProviderChoice("CPU", f"device error: {_one_line(str(exc))}", True)
    if sess.get_providers()[0] == CUDA:
        return sess, ProviderChoice("CUDA")
    return None, ProviderChoice("CPU", "ONNX Runtime could not start its CUDA provider", True)


def make_session(model_path: str | os.PathLike[str], prefer: str = "auto"):
    """(session, "CUDA" or "CPU"). ``prefer``: auto, cuda or cpu."""
    sess, choice = open_session(model_path, prefer)
    return sess, choice.name


class OnnxClassifier:
    """Logits and calibrated probabilities from a bundle's ONNX model."""

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        manifest: Manifest | None = None,
        *,
        prefer: str = "auto",
        onnx_file: str | None = None,
    ) -> None:
        root = bundle_root(bundle)
        self.manifest = manifest or load_bundle(root)
        self.path = root / (onnx_file or self.manifest.onnx.file)
        try:
            self.session, self.choice = open_session(self.path, prefer)
        except Exception as exc:
            raise BundleError(
                f"ONNX model cannot be loaded ({exc})", bundle=root, file=self.manifest.onnx.file
            ) from None
        #: "CUDA" or "CPU"; :attr:`provider_label` adds why CUDA was not used, when it was wanted
        self.provider = self.choice.name
        self.provider_label = self.choice.label
        log.info("ONNX Runtime: %s", self.provider_label)
        self._check_against_manifest(root)
        self.reference = self._load_reference(root)

    def _check_against_manifest(self, root: Path) -> None:
        import json

        m = self.manifest
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if m.onnx.input_name not in inputs:
            raise BundleError(f"ONNX model has no input '{m.onnx.input_name}'", bundle=root)
        shape = list(inputs[m.onnx.input_name].shape)[1:]
        want = [m.input.height, m.input.width, m.input.channels]
        if shape != want:
            raise BundleError(
                f"ONNX input is {shape} but the manifest says {want} (H, W, C)", bundle=root
            )
        for name in (m.onnx.logits_name, m.onnx.probabilities_name):
            if name not in outputs:
                raise BundleError(f"ONNX model has no output '{name}'", bundle=root)
            n_out = outputs[name].shape[-1]
            if n_out != len(m.class_names):
                raise BundleError(
                    f"ONNX output '{name}' has {n_out} classes but the manifest lists "
                    f"{len(m.class_names)} ({', '.join(m.class_names)})",
                    bundle=root,
                )
        embedded = self.session.get_modelmeta().custom_metadata_map.get("cxr_class_names")
        if embedded is not None and json.loads(embedded) != list(m.class_names):
            raise BundleError(
                f"the ONNX model was exported for classes {json.loads(embedded)} but the "
                f"manifest lists {list(m.class_names)} (edited manifest?)",
                bundle=root,
            )

    def _load_reference(self, root: Path):
        """The guard's statistics (format 2), or None: such a bundle's guard is not available."""
        from export.novelty_model import Reference, read_array

        nov = self.manifest.novelty
        if nov is None:
            return None
        outputs = {o.name: o for o in self.session.get_outputs()}
        if nov.features_name not in outputs:
            raise BundleError(f"ONNX model has no output '{nov.features_name}'", bundle=root)
        shape = outputs[nov.features_name].shape
        if len(shape) != 2:  # [batch, features]: anything else would fail at every batch
            raise BundleError(
                f"ONNX output '{nov.features_name}' must be [batch, features], not {shape}",
                bundle=root,
            )
        if shape[-1] != nov.feature_dim:
            raise BundleError(
                f"ONNX output '{nov.features_name}' has {outputs[nov.features_name].shape[-1]} "
                f"values but the manifest says {nov.feature_dim}",
                bundle=root,
            )
        d, c = nov.feature_dim, len(self.manifest.class_names)
        try:
            means = read_array(root / nov.means_file, (c, d))
            precision = read_array(root / nov.precision_file, (d, d))
        except (OSError, ValueError) as exc:
            raise BundleError(f"novelty reference cannot be read ({exc})", bundle=root) from None
        return Reference(nov.score, nov.threshold, means, precision)

    def classify(self, batch: np.ndarray) -> tuple[np.ndarray, list[Novelty]]:
        """Calibrated probabilities and the model-based verdict per image, from one run.

        The logits and the features come out of the same session run: the guard
        costs a few matrix products, never a second forward pass.
        """
        x = self._batch(batch)
        if self.reference is None:
            z = self._run([self.manifest.onnx.logits_name], x)[0]
            return self._calibrated(z), [Novelty.not_available() for _ in range(len(z))]
        names = [self.manifest.onnx.logits_name]
        if self.reference.score == "mahalanobis":
            names.append(self.manifest.novelty.features_name)
        outs = self._run(names, x)
        feats = outs[1] if len(outs) > 1 else None
        return self._calibrated(outs[0]), self.reference.verdicts(outs[0], feats)

    def _batch(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return x[None] if x.ndim == 3 else x

    def _run(self, names: list[str], x: np.ndarray) -> list[np.ndarray]:
        outs = self.session.run(names, {self.manifest.onnx.input_name: x})
        return [np.asarray(o) for o in outs]

    def _calibrated(self, logits: np.ndarray) -> np.ndarray:
        z = logits.astype(np.float64) / self.manifest.calibration_temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        (out,) = self.session.run(
            [self.manifest.onnx.logits_name], {self.manifest.onnx.input_name: x}
        )
        return np.asarray(out)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Temperature-scaled softmax: the calibrated probabilities the reviewer sees."""
        return self._calibrated(self.logits(batch))

    def predict(self, batch: np.ndarray) -> list:
        """One :class:`export.results.Prediction` per image of ``batch``."""
        from export.results import Prediction

        names = tuple(self.manifest.class_names)
        return [Prediction(p, names) for p in self.probabilities(batch)]
