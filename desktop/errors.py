"""Errors shared by the command-line tools (kept apart so ``python -m desktop.cli`` sees one class)."""


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
