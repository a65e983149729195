"""Snapshots of a folder's files, to prove a test session left the source tree as it found it."""

from __future__ import annotations

import os
from pathlib import Path

#: Python's own byte-code caches are the interpreter's business, not the project's
_IGNORED_DIRS = {"__pycache__"}


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and folder under ROOT by relative path -> (kind, size, mtime in ns)."""
    entries: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED_DIRS]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            kind = "dir" if name in dirnames else "file"
            size = 0 if kind == "dir" else st.st_size
            mtime = 0 if kind == "dir" else st.st_mtime_ns
            entries[path.relative_to(root).as_posix()] = (kind, size, mtime)
    return entries


def changes(
    before: dict[str, tuple[str, int, int]], after: dict[str, tuple[str, int, int]]
) -> list[str]:
    """One line per added, removed or modified path, sorted."""
    lines = [f"added {p}" for p in after.keys() - before.keys()]
    lines += [f"removed {p}" for p in before.keys() - after.keys()]
    lines += [f"modified {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(lines, key=lambda s: s.split(" ", 1)[1])
