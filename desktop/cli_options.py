"""Options that ``cxr classify`` and ``cxr report`` share: how heatmaps are drawn and judged,
where inference runs, and the hand-over of results the app already computed."""

from __future__ import annotations

import argparse

from desktop.overlay import COLORMAPS, DEFAULT_COLORMAP, DEFAULT_OPACITY
from export.attention import DEFAULT_MIN_LUNG_SHARE
from export.cam import DEFAULT_METHOD, METHODS


def add_view_arguments(p: argparse.ArgumentParser, drawn: str) -> None:
    """``drawn``: what the heatmaps are drawn into (for the help texts)."""
    p.add_argument("--cam-method", choices=tuple(METHODS), default=DEFAULT_METHOD)
    p.add_argument(
        "--opacity",
        type=float,
        default=DEFAULT_OPACITY,
        help=f"heatmap opacity in the {drawn}, 0-1 (default {DEFAULT_OPACITY}, as the viewer)",
    )
    p.add_argument(
        "--colormap",
        choices=COLORMAPS,
        default=DEFAULT_COLORMAP,
        help=f"heatmap colours in the {drawn} (default {DEFAULT_COLORMAP})",
    )
    p.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument(
        "--min-lung-share",
        type=float,
        default=DEFAULT_MIN_LUNG_SHARE,
        help="flag an image when less than this share (0-1) of its heatmap is in the lungs",
    )
    # results the app already computed (JSON, see desktop.batch.write_known)
    p.add_argument("--reuse", metavar="JSON", help=argparse.SUPPRESS)
