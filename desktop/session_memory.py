"""Where the reviewer stopped, per folder: one small JSON map kept in the user's settings.

The image folder itself is never written for this (it may be read-only or shared);
the map is keyed by the folder's absolute path and holds the most recent folders only.
"""

from __future__ import annotations

import json
from pathlib import Path

MAX_FOLDERS = 50  # folders whose last image is remembered, most recent first


def folder_key(folder: str | Path) -> str:
    """The key a folder is remembered under (absolute, symlinks kept as the reviewer named them)."""
    return str(Path(folder).absolute())


def _read(text: object) -> dict[str, str]:
    try:
        data = json.loads(str(text)) if text else {}
    except (TypeError, ValueError):  # a damaged settings value is forgotten, not an error
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def recall(text: object, folder: str | Path) -> str | None:
    """The last image's relative path in ``folder``, from the stored map ``text``."""
    return _read(text).get(folder_key(folder))


def remember(text: object, folder: str | Path, rel_path: str) -> str:
    """The stored map ``text`` with ``folder``'s last image set to ``rel_path``, as JSON."""
    old = _read(text)
    key = folder_key(folder)
    items = [(key, rel_path), *((k, v) for k, v in old.items() if k != key)][:MAX_FOLDERS]
    return json.dumps(dict(items), ensure_ascii=False)
