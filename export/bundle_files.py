"""A bundle's files on disk: listed, hashed and read as untrusted input.

Only regular files count: a symbolic link, pipe, socket or device in a
bundle is refused, so the check can neither be pointed outside the folder nor
hang or flood on a special file. Files that can carry code are refused by
their type before anything loads them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from export.manifest_fields import MANIFEST_NAME, BundleError

#: Files that can carry executable code (pickles, Keras Lambda layers, Python, native libs).
CODE_BEARING = {
    ".pkl": "Python pickle",
    ".pickle": "Python pickle",
    ".joblib": "Python pickle",
    ".npy": "NumPy file (may hold a pickle)",
    ".npz": "NumPy file (may hold a pickle)",
    ".keras": "Keras model (may hold Lambda layers)",
    ".h5": "Keras/HDF5 model",
    ".hdf5": "Keras/HDF5 model",
    ".py": "Python source",
    ".pyc": "Python bytecode",
    ".so": "native library",
    ".dll": "native library",
    ".dylib": "native library",
}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Of a regular file only: a pipe or device in a bundle must not hang or flood the check."""
    from export.files import open_regular

    with open_regular(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def files_on_disk(bundle_dir: Path) -> list[str]:
    """Every file under the bundle except the manifest, as sorted POSIX relative paths."""
    out = []
    for root, dirs, files in os.walk(bundle_dir, followlinks=False):
        rootp = Path(root)
        for name in dirs:
            if (rootp / name).is_symlink():
                rel = (rootp / name).relative_to(bundle_dir).as_posix()
                raise BundleError(f"'{rel}' is a symbolic link", bundle=bundle_dir, file=rel)
        for name in files:
            p = rootp / name
            rel = p.relative_to(bundle_dir).as_posix()
            if rel == MANIFEST_NAME or (
                name.startswith(f".{MANIFEST_NAME}.") and name.endswith(".tmp")
            ):
                continue  # the manifest and a half-written one (export.atomic's temp name)
            if p.is_symlink():
                raise BundleError(f"'{rel}' is a symbolic link", bundle=bundle_dir, file=rel)
            if not p.is_file():
                raise BundleError(
                    f"'{rel}' is not a regular file (a pipe, socket or device)",
                    bundle=bundle_dir,
                    file=rel,
                )
            out.append(rel)
    return sorted(out)


def hash_files(bundle_dir: str | os.PathLike[str]) -> dict[str, str]:
    root = Path(bundle_dir)
    return {rel: sha256_file(root / rel) for rel in files_on_disk(root)}


def refuse_code_bearing(root: Path, listed: Iterable[str]) -> None:
    """A bundle holds only ONNX and SavedModel files: one whose type can carry code is
    refused by its name, before anything reads it."""
    for rel in sorted(listed):
        kind = CODE_BEARING.get(PurePosixPath(rel).suffix.lower())
        if kind:
            raise BundleError(
                f"'{rel}' is a {kind}; a bundle holds only ONNX and SavedModel files, and "
                "loading this could run code: refused",
                bundle=root,
                file=rel,
            )


def read_model_file(root: Path, rel: str, limit: int) -> bytes:
    from export.files import TooLarge, read_regular

    try:
        return read_regular(root / rel, limit)
    except TooLarge:
        raise BundleError(
            f"'{rel}' is larger than {limit >> 20} MB: refused", bundle=root, file=rel
        ) from None
    except OSError as exc:
        raise BundleError(f"'{rel}' cannot be read ({exc})", bundle=root, file=rel) from None
