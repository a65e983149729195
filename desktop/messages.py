"""Messages between the window, its worker threads and the Grad-CAM child process.

Typed and immutable: a field is read by name, never by position, so adding
one cannot silently shift another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.attention import Attention
from export.bundle import Manifest
from export.explain import Heatmap, ImageInput
from export.image_input import InputSpec
from export.novelty import Novelty
from export.results import FileKey

# ---------------------------------------------------------------- classification worker


@dataclass(frozen=True)
class ModelReady:
    """The bundle was verified and its ONNX session started (first message of a run)."""

    manifest: Manifest
    provider: str


@dataclass(frozen=True)
class Classified:
    """One file's outcome; ``image`` is kept for the attention pass (None from the cache)."""

    index: int
    probabilities: np.ndarray | None
    error: str | None
    image: ImageInput | None = None
    #: the model-based "unlike the training data" verdict (None from the cache)
    novelty: Novelty | None = None


@dataclass(frozen=True)
class Batch:
    items: tuple[Classified, ...]
    from_cache: bool


@dataclass(frozen=True)
class KnownAttention:
    """Attention figures the prediction cache already holds for this model."""

    items: tuple[tuple[int, Attention], ...]


# ---------------------------------------------------------------- Grad-CAM


@dataclass(frozen=True)
class HeatmapKey:
    """Identifies one heatmap: the file as it is now, the model, the class and method."""

    rel_path: str
    file: FileKey
    model_sha: str
    class_index: int
    method: str


@dataclass(frozen=True)
class CamJob:
    """What the Grad-CAM child computes: the pixels come with it, the child never decodes."""

    bundle: str
    model_sha: str
    image: ImageInput
    class_index: int | None
    method: str
    overlay: bool = True
    exact: bool = False


@dataclass(frozen=True)
class CamFailure:
    error: str
    trace: str = ""


@dataclass(frozen=True)
class HeatmapRequest:
    """The reviewer's heatmap: the latest request wins."""

    bundle: Path
    key: HeatmapKey
    image: ImageInput


@dataclass(frozen=True)
class HeatmapDone:
    request: HeatmapRequest
    generation: int
    heatmap: Heatmap | None
    error: str | None = None


@dataclass(frozen=True)
class AttentionRequest:
    """One image of the background attention pass (predicted class, float32 Grad-CAM).

    ``image`` is None when the folder pass did not keep it: the file is then
    decoded by the Grad-CAM thread.
    """

    bundle: Path
    model_sha: str
    pass_id: int
    index: int
    rel_path: str
    path: Path
    file: FileKey
    class_index: int
    image: ImageInput | None = None
    spec: InputSpec | None = None  # to decode the file when ``image`` is None


@dataclass(frozen=True)
class AttentionDone:
    request: AttentionRequest
    attention: Attention
    failed: bool = False
