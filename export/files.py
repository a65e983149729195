"""Reading files that someone else put there: regular files only, never more than a limit.

A FIFO named ``x.png`` blocks a plain ``open()`` forever, and a link to
``/dev/zero`` reads until memory runs out, while ``stat`` reports size 0 for
both. So files are opened non-blocking, checked on the open descriptor
(no race between check and read), and read up to a byte limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """A pipe, socket, device or folder where a file was expected; ``what`` says which."""

    def __init__(self, what: str, path: object) -> None:
        super().__init__(f"is {what}, not a regular file: {path}")
        self.what = what


class TooLarge(OSError):
    """More bytes than the caller's limit."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Without opening it: a regular file (links followed)?"""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def open_regular(path: str | os.PathLike[str]):
    """A binary file object of a regular file: opened non-blocking and checked on the
    descriptor, so a pipe or device is refused without ever being read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(_kind(st.st_mode), path)
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """All bytes of a regular file of at most ``limit`` bytes.

    Raises :class:`NotRegularFile` (the message names what it is instead),
    :class:`TooLarge`, or the ``OSError`` of the open/read.
    """
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise TooLarge(f"is {size} bytes, over the limit of {limit}: {path}")
        # read what fstat announced (a read of ``limit`` bytes would allocate the limit),
        # then whatever the file grew by, up to the limit
        data = fh.read(size + 1)
        if len(data) > size:
            data += fh.read(limit + 1 - len(data))
    if len(data) > limit:  # grew while being read
        raise TooLarge(f"grew over the limit of {limit} bytes while read: {path}")
    return data


def disk_full(exc: BaseException, target: Path, free_below: int) -> bool:
    """Did writing ``target`` fail for want of space: ENOSPC, a "full" message (SQLite's),
    or fewer than ``free_below`` bytes left on its file system."""
    import errno
    import shutil

    if getattr(exc, "errno", None) == errno.ENOSPC or "full" in str(exc).lower():
        return True
    try:
        return shutil.disk_usage(target.parent).free < free_below
    except OSError:
        return False


def safe_name(rel_path: str) -> str:
    """A file name as text that can be stored, written and shown: bytes that are not UTF-8
    (kept by the OS as surrogate escapes) become ``\\xNN``; the file is still opened by its
    real path."""
    return rel_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
