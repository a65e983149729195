"""Errors shared by the command-line tools (kept apart so ``python -m desktop.cli`` sees one class)."""


class CliError(Exception):
    """An expected failure: shown as one line, exit status 2."""
