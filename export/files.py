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


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """All bytes of a regular file of at most ``limit`` bytes.

    Raises :class:`NotRegularFile` (the message names what it is instead),
    :class:`TooLarge`, or the ``OSError`` of the open/read.
    """
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(p, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(_kind(st.st_mode), p)
        if st.st_size > limit:
            raise TooLarge(f"is {st.st_size} bytes, over the limit of {limit}: {p}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise TooLarge(f"grew over the limit of {limit} bytes while read: {p}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_regular(path: str | os.PathLike[str]):
    """A binary file object of a regular file (for hashing large files in chunks)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(_kind(st.st_mode), path)
    return os.fdopen(fd, "rb")


def safe_name(rel_path: str) -> str:
    """A file name as text that can be stored, written and shown: bytes that are not UTF-8
    (kept by the OS as surrogate escapes) become ``\\xNN``; the file is still opened by its
    real path."""
    return rel_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
