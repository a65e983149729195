"""ONNX Runtime over a verified bundle: pick a provider that *works*, then classify.

onnxruntime-gpu lists CUDA as available even on machines without a GPU or
CUDA libraries, and then logs a screen of errors while falling back. We
probe CUDA once with logging silenced and check which provider the session
really got, so the status bar can say the truth and the terminal stays clean.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from export.bundle import BundleError, Manifest, bundle_root, load_bundle
from export.novelty import Novelty

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _session_options(severity: int = 3):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = severity
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def _has_pip_cuda() -> bool:
    """Whether CUDA comes from pip wheels; without them preload_dlls only prints failures."""
    import importlib.util

    try:
        return importlib.util.find_spec("nvidia.cublas") is not None
    except (ImportError, ValueError):
        return False


#: set to 1 for TensorFloat-32 on CUDA: about 4x faster convolutions on recent GPUs, but
#: probabilities then differ from the CPU's in the third decimal; off by default, so a
#: result does not depend on the machine it was computed on (strict fp32 agrees within 1e-6)
TF32_ENV = "CXR_CUDA_TF32"


def cuda_options() -> dict[str, str]:
    """CUDA provider options: NHWC kernels (our graphs take NHWC), TF32 only when asked for."""
    tf32 = os.environ.get(TF32_ENV, "0").strip() == "1"
    return {"prefer_nhwc": "1", "use_tf32": "1" if tf32 else "0"}


def make_session(model_path: str | os.PathLike[str], prefer: str = "auto"):
    """(session, "CUDA" or "CPU"). ``prefer``: auto, cuda or cpu."""
    import onnxruntime as ort

    path = str(model_path)
    if prefer not in ("auto", "cuda", "cpu"):
        raise ValueError(f"provider must be auto, cuda or cpu, not {prefer!r}")
    if prefer != "cpu" and CUDA in ort.get_available_providers():
        ort.set_default_logger_severity(4)  # the failed-CUDA fallback logs at error level
        try:
            if hasattr(ort, "preload_dlls") and _has_pip_cuda():
                with contextlib.suppress(Exception):
                    ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels
            sess = ort.InferenceSession(
                path, _session_options(4), providers=[(CUDA, cuda_options()), CPU]
            )
            if sess.get_providers()[0] == CUDA:
                return sess, "CUDA"
        except Exception:
            pass
        finally:
            ort.set_default_logger_severity(3)
    sess = ort.InferenceSession(path, _session_options(), providers=[CPU])
    return sess, "CPU"


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
            self.session, self.provider = make_session(self.path, prefer)
        except Exception as exc:
            raise BundleError(
                f"ONNX model cannot be loaded ({exc})", bundle=root, file=self.manifest.onnx.file
            ) from None
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
        if outputs[nov.features_name].shape[-1] != nov.feature_dim:
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
