"""Where things live: bundled resources, and the user's data, settings and log folders.

``CXR_REVIEW_HOME`` overrides everything (tests point it at a temporary
folder); otherwise the platform conventions apply (XDG on Linux).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_IMAGES = RESOURCES / "demo" / "images"
DEMO_BUNDLE = RESOURCES / "demo" / "bundle"


def _base(kind: str) -> Path:
    override = os.environ.get("CXR_REVIEW_HOME")
    if override:
        return Path(override) / kind
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return root / "cxr-review" / kind
    if sys.platform == "darwin":
        lib = Path.home() / "Library"
        sub = {"logs": "Logs", "config": "Preferences"}.get(kind, "Application Support")
        return lib / sub / "cxr-review"
    env = {"data": "XDG_DATA_HOME", "config": "XDG_CONFIG_HOME", "logs": "XDG_STATE_HOME"}[kind]
    default = {"data": ".local/share", "config": ".config", "logs": ".local/state"}[kind]
    return Path(os.environ.get(env) or Path.home() / default) / "cxr-review"


def user_data_dir() -> Path:
    return _base("data")


def user_config_dir() -> Path:
    return _base("config")


def user_log_dir() -> Path:
    return _base("logs")
