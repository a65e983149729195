"""Running the ``cxr`` command line in a child process, as a user would, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cxr(*args, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m desktop.cli ARGS`` from the repository root; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )
