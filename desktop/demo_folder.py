"""The demo images the app opens: a copy in the user data folder, never the bundled originals.

Opening a folder writes the reviewer's state into it (``.cxr-review/``), and the
bundled set lies in the source tree or the installed package, which must stay
as shipped. So ``cxr-review --demo`` opens a copy under the user data folder.
The copy is brought up to date on every use: a bundled file that is missing
from the copy or differs in size or modification time is copied again, and a
file the bundled set no longer has is removed if an earlier copy put it there.
Anything else in the copy, the reviewer's ``.cxr-review/`` state included, is
left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from desktop.folder_scan import STATE_DIR
from desktop.paths import DEMO_IMAGES, demo_copy_dir

#: beside the copy, not in it, so a folder scan never sees it
_STAMP_NAME = "images-copied.json"


def _bundled_files(source: Path) -> dict[str, os.stat_result]:
    """Every file of the bundled set by POSIX relative path, our state folders excluded."""
    files: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in (STATE_DIR, "__pycache__"))
        for name in filenames:
            path = Path(dirpath) / name
            files[path.relative_to(source).as_posix()] = path.stat()
    return files


def _same(copy: Path, original: os.stat_result) -> bool:
    try:
        st = copy.stat()
    except OSError:
        return False
    return st.st_size == original.st_size and int(st.st_mtime) == int(original.st_mtime)


def _copy_file(src: Path, dst: Path, original: os.stat_result) -> None:
    """Whole or not at all (temporary file + rename); the copy is writable whatever the source's
    mode, and keeps the source's modification time so the next check can compare them."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.utime(tmp, ns=(original.st_atime_ns, original.st_mtime_ns))
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_stamp(path: Path) -> list[str]:
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [n for n in names if isinstance(n, str)]


def prepare_demo_images(source: Path = DEMO_IMAGES, target: Path | None = None) -> Path:
    """Bring the copy of the bundled demo images up to date and return its folder.

    Raises ``FileNotFoundError`` when the bundled set is missing (a broken install).
    """
    source = Path(source)
    target = demo_copy_dir() if target is None else Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"the bundled demo images are missing: {source}")
    bundled = _bundled_files(source)
    stamp = target.parent / _STAMP_NAME
    for rel in _read_stamp(stamp):  # files an earlier copy put there that are no longer bundled
        parts = Path(rel).parts
        if rel in bundled or STATE_DIR in parts or ".." in parts or Path(rel).is_absolute():
            continue
        old = target / rel
        if old.is_file():
            old.unlink()
    for rel, st in sorted(bundled.items()):
        if not _same(target / rel, st):
            _copy_file(source / rel, target / rel, st)
    target.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"files": sorted(bundled)}, indent=1), encoding="utf-8")
    return target
