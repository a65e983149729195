"""The ``cxr`` console script: one sub-command per job, each defined next to its code.

Expected failures (bad path, bad bundle, bad arguments) print one line and
exit non-zero; only real bugs show a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from desktop.errors import CliError

#: name -> (module with add_arguments(parser) and run(args), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "phantoms": (
        "training.phantom_dataset",
        "write a synthetic chest phantom data set with ground-truth masks",
    ),
    "train": (
        "training.train_cmd",
        "fine-tune VGG19 (or the compact CNN), evaluate, export a bundle",
    ),
    "evaluate": ("training.evaluate_cmd", "metrics of a bundle on any data set"),
    "audit": (
        "training.audit_cmd",
        "where the model looked: lung / border / burned-in text shares, flags, pointing game",
    ),
    "export": ("training.export_cmd", "(re)export a bundle from a training run, optionally int8"),
    "classify": (
        "desktop.classify_cmd",
        "classify a folder into a CSV, optionally with heatmap PNGs",
    ),
    "report": ("desktop.ui.report_cmd", "annotated PDF report of a folder"),
    "reviews": (
        "desktop.reviews_io",
        "export a folder's reviews (decisions, notes, marks) as JSON or COCO, or import them",
    ),
}


def _expected_errors() -> tuple[type[BaseException], ...]:
    from export.build import ExportError
    from export.bundle import BundleError
    from export.image_input import ImageDecodeError
    from training.data_sources import DataError
    from training.model import TrainError
    from training.phantom_dataset import PhantomError

    return (
        CliError, BundleError, ImageDecodeError, PhantomError, DataError, TrainError,
        ExportError, OSError,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxr",
        description="cxr-review command line. Research use only: not a medical device.",
    )
    from desktop import __version__

    parser.add_argument("--version", action="version", version=f"cxr-review {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's native start-up messages (CUDA probing, XLA)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
    return parser


def _exit_on_sigterm() -> None:
    """SIGTERM (the app closing during an export) ends the command like Ctrl+C: ``finally``
    blocks run, so temporary files go and no target is half-replaced."""
    import signal

    def stop(_signum, _frame) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError, OSError):  # not the main thread, or no SIGTERM
        signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # a real command line, not a call from Python
        _exit_on_sigterm()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["CXR_VERBOSE"] = "1"  # export.cam_runtime.VERBOSE_ENV
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"cxr {args.command}: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        text = str(exc)
        if isinstance(exc, OSError) and exc.filename:
            text = f"{exc.strerror or exc}: {exc.filename}"
        print(f"cxr {args.command}: error: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
