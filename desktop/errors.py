"""Errors and output checks shared by the command-line tools (kept apart so
``python -m desktop.cli`` sees one class)."""

import os
from pathlib import Path


class CliError(Exception):
    """An expected failure: shown as one line, exit status 2."""


def check_output(out, force: bool) -> None:
    """Never overwrite without --force; the folder must exist."""
    from pathlib import Path

    out = Path(out)
    if out.exists() and not force:
        raise CliError(f"{out} exists; use --force to replace it")
    if not out.parent.is_dir():
        raise CliError(f"folder {out.parent} does not exist")


def check_fraction(flag: str, value: float) -> None:
    """A 0..1 option (--opacity, --min-lung-share)."""
    if not 0.0 <= value <= 1.0:
        raise CliError(f"{flag} must be between 0 and 1, not {value}")


def check_complete_pdf(path: Path) -> None:
    """The whole file is on disk and ends with a PDF trailer; raises OSError otherwise."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - 1024))
        tail = fh.read()
    if size == 0 or b"%%EOF" not in tail:
        raise OSError("the PDF is incomplete (no trailer)")


def why_not_written(exc: OSError, target: Path) -> str:
    """The cause in words; "disk full" whenever the target's file system has no room left."""
    from export.files import disk_full

    if disk_full(exc, target, free_below=4 * 2**20):
        return "disk full"
    return exc.strerror or str(exc)
