"""The manifest's fields read as untrusted input, and the error every bundle refusal raises.

A manifest comes from whoever wrote the bundle, so each field is checked for
its type, a sane size and (for paths) that it stays inside the bundle's
folder, and each refusal names the field at fault. :class:`BundleError` lives
here because every bundle module raises it; callers import it from
``export.bundle``, the bundle's public face.
"""

from __future__ import annotations

import math
import os
from dataclasses import MISSING
from pathlib import PurePosixPath
from typing import Any

from export.image_input import InputSpec

MANIFEST_NAME = "manifest.json"
#: the longest text value a manifest field may hold
MAX_TEXT = 10_000


class BundleError(ValueError):
    """A bundle that must not be used, with the reason and (when known) the file at fault."""

    def __init__(
        self, message: str, *, bundle: str | os.PathLike[str] = "", file: str = ""
    ) -> None:
        self.bundle = str(bundle)
        self.file = file
        self.reason = message
        prefix = f"bundle {self.bundle}: " if self.bundle else ""
        super().__init__(prefix + message)


def str_field(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise BundleError(f"manifest '{key}' must be a non-empty string", file=MANIFEST_NAME)
    return v


def text_field(d: dict[str, Any], key: str, default: str) -> str:
    """Optional text: absent gives the default; present must be non-empty text."""
    if key not in d:
        return default
    v = d[key]
    if not isinstance(v, str) or not v.strip() or len(v) > MAX_TEXT:
        raise BundleError(f"manifest '{key}' must be text", file=MANIFEST_NAME)
    return v


def dict_field(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise BundleError(f"manifest '{key}' must be an object", file=MANIFEST_NAME)
    return v


def class_names_field(v: Any) -> tuple[str, ...]:
    if (
        not isinstance(v, list)
        or len(v) < 2
        or not all(isinstance(c, str) and c.strip() for c in v)
        or len(set(v)) != len(v)
    ):
        raise BundleError(
            "manifest 'class_names' must list at least two distinct names", file=MANIFEST_NAME
        )
    return tuple(v)


def temperature_field(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise BundleError(
            "manifest 'calibration_temperature' must be a positive number", file=MANIFEST_NAME
        )
    return float(v)


def section(cls: type, v: Any, key: str) -> Any:
    """A manifest object built into ``cls``: each known field must have its default's type
    and a sane size; fields ``cls`` does not have are left out."""
    if not isinstance(v, dict):
        raise BundleError(f"manifest '{key}' must be an object", file=MANIFEST_NAME)
    if cls is InputSpec:
        try:
            return InputSpec.from_dict(v)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"manifest 'input' is invalid: {exc}", file=MANIFEST_NAME) from None
    fields = cls.__dataclass_fields__
    for name, val in v.items():
        f = fields.get(name)
        if f is None:
            continue
        want = type(f.default) if f.default is not MISSING else type(f.default_factory())
        ok = isinstance(val, want) and not (want is int and isinstance(val, bool))
        if want is str:
            ok = ok and len(val) <= MAX_TEXT
        if want is int:
            ok = ok and abs(val) < 10**9
        if not ok:
            kind = {str: "text", int: "an integer", dict: "an object"}.get(want, want.__name__)
            raise BundleError(f"manifest '{key}.{name}' must be {kind}", file=MANIFEST_NAME)
        if want is str and name in ("file", "directory") and not val.strip():
            raise BundleError(f"manifest '{key}.{name}' must name a file", file=MANIFEST_NAME)
    try:
        return cls(**{k: val for k, val in v.items() if k in fields})
    except TypeError as exc:
        raise BundleError(f"manifest '{key}' is invalid: {exc}", file=MANIFEST_NAME) from None


def files_field(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not v:
        raise BundleError(
            "manifest 'files' must list every file with its sha256", file=MANIFEST_NAME
        )
    out: dict[str, str] = {}
    for rel, digest in v.items():
        check_relpath(rel)
        if not isinstance(digest, str) or len(digest) != 64:
            raise BundleError(f"manifest has no valid sha256 for '{rel}'", file=MANIFEST_NAME)
        out[rel] = digest.lower()
    return out


def check_relpath(rel: Any) -> None:
    """Refuse absolute paths and '..': a manifest must not point outside its own folder."""
    if not isinstance(rel, str) or not rel:
        raise BundleError("manifest lists a file with an empty name", file=MANIFEST_NAME)
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or "\\" in rel or rel == MANIFEST_NAME:
        raise BundleError(f"manifest lists an unsafe path '{rel}'", file=MANIFEST_NAME)
