"""Atomic file writes: a temporary file in the target folder, fsync, then rename.

A full disk or a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: temporary files of ours older than this are left-overs of a killed writer
STALE_AFTER_S = 24 * 3600


def sweep_stale(target: Path) -> None:
    """Remove this target's temporary files that a killed writer left over a day ago."""
    import time

    try:
        for old in target.parent.glob(f".{target.name}.*.tmp"):
            if time.time() - old.lstat().st_mtime > STALE_AFTER_S and old.is_file():
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a sweep is housekeeping, never a reason to fail a write


def _temp_beside(target: Path) -> tuple[int, str]:
    """``.NAME.XXXXXXXX.tmp`` beside the target: hidden, recognisable, swept when stale."""
    sweep_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, _umask_mode())  # mkstemp makes 0600; the result should look like any new file
    return fd, tmp


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # name the file: "No space left on device: /path"
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``path`` for writers that need a file name (e.g. PDF)."""
    fd, tmp = _temp_beside(Path(path))
    os.close(fd)
    return Path(tmp)
