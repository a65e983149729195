"""Where things live: bundled resources, and the user's data, settings and log folders.

The bundled resources are the repository's top-level ``resources/`` folder: in
a checkout (editable install, or the source tree on ``sys.path``) it is read in
place; a wheel ships it as the package ``cxr_review_resources``. Both are only
ever read: the demo images are opened from a copy in the user data folder
(:mod:`desktop.demo_folder`).

``CXR_REVIEW_HOME`` overrides the user folders (tests point it at a temporary
folder); otherwise the platform conventions apply (XDG on Linux).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

#: the import name a wheel gives the top-level ``resources/`` folder (pyproject.toml package-dir)
RESOURCES_PACKAGE = "cxr_review_resources"


def _find_resources() -> Path:
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "resources").is_dir():
        return checkout / "resources"  # a source tree: read the files in place
    spec = importlib.util.find_spec(RESOURCES_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout / "resources"  # not installed: paths that do not exist say so downstream


RESOURCES = _find_resources()
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


def demo_copy_dir() -> Path:
    """Where ``cxr-review --demo`` opens the demo images: a copy the reviewer's state may live in."""
    return user_data_dir() / "demo" / "images"
