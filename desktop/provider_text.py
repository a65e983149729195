"""Which ONNX Runtime provider classified a folder, in the words the app, CSV and report use.

A result row carries its provider label (``export.onnx_runtime.ProviderChoice.label``:
``CUDA``, ``CPU``, ``CPU (no NVIDIA GPU)`` or ``CPU, CUDA not used: <why>``) or
``reused`` when the app handed the result over; a folder is summarised in one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

#: the provider of a result the app computed and handed over (``desktop.batch``)
REUSED = "reused"


def describe_providers(providers: Iterable[str]) -> str:
    """One line for a folder's rows, e.g. ``ONNX Runtime CPU (no NVIDIA GPU)``, or
    ``ONNX Runtime CUDA; 12 results handed over by the app``; empty when nothing ran."""
    counts = Counter(p for p in providers if p)
    reused = counts.pop(REUSED, 0)
    parts = [f"ONNX Runtime {label}" for label in counts]
    if reused:
        parts.append(f"{reused} result{'s' * (reused != 1)} handed over by the app")
    return "; ".join(parts)


def status_text(label: str) -> str:
    """The status bar's inference field for a started model (``—`` when none is)."""
    return f"Inference: ONNX Runtime {label}" if label else "Inference: —"


__all__ = ["REUSED", "describe_providers", "status_text"]
