"""The model bundle: a folder with ``manifest.json``, ``model.onnx`` and ``savedmodel/``.

The manifest is the contract between training and the app (schema:
``export/BUNDLE.md``). Reading is strict on purpose: a reviewer must never
get predictions from a model that is not the one the manifest describes, so
every file is hashed, unlisted files are refused, and every refusal names
the file or field at fault. Hashes prove only who wrote the files, so the model
files are also checked for what they may do (``export/bundle_safety.py``).

This module is the bundle's public face: the manifest's format, writing,
reading and verifying. The manifest's fields are checked in
``export/manifest_fields.py`` (where :class:`BundleError` is defined), the
files on disk listed and hashed in ``export/bundle_files.py``, and the novelty
guard's section and arrays in ``export/bundle_novelty.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from export.atomic import atomic_write_bytes
from export.bundle_files import (
    files_on_disk,
    hash_files,
    read_model_file,
    refuse_code_bearing,
    sha256_file,
)
from export.bundle_novelty import NoveltyInfo, check_novelty_sizes, novelty_field
from export.image_input import InputSpec
from export.manifest_fields import (
    MANIFEST_NAME,
    BundleError,
    check_relpath,
    class_names_field,
    dict_field,
    files_field,
    section,
    str_field,
    temperature_field,
    text_field,
)

FORMAT = "cxr-review-bundle"
FORMAT_VERSION = 2
CLASS_NAMES = ("COVID-19", "Normal", "Pneumonia")
INTENDED_USE = (
    "Research use only. Not a medical device: not for diagnosis, triage or treatment "
    "decisions. Outputs are a reviewer's aid and must be checked by a qualified reader."
)


#: a manifest is a few kilobytes; anything this large is not one
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class OnnxInfo:
    file: str = "model.onnx"
    input_name: str = "image"
    logits_name: str = "logits"
    probabilities_name: str = "probabilities"
    opset: int = 17
    precision: str = "fp32"


@dataclass(frozen=True)
class SavedModelInfo:
    directory: str = "savedmodel"
    serving_signature: str = "serving_default"
    cam_signature: str = "cam"
    cam_layer: str = "block5_conv4"


@dataclass(frozen=True)
class TrainingSummary:
    backbone: str = ""
    weights_source: str = ""
    epochs: int = 0
    dataset: str = ""
    class_counts: dict[str, int] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """Everything a reader needs to use a bundle correctly (see ``export/BUNDLE.md``)."""

    model_name: str
    class_names: tuple[str, ...] = CLASS_NAMES
    input: InputSpec = field(default_factory=InputSpec)
    onnx: OnnxInfo = field(default_factory=OnnxInfo)
    savedmodel: SavedModelInfo = field(default_factory=SavedModelInfo)
    calibration_temperature: float = 1.0
    training: TrainingSummary = field(default_factory=TrainingSummary)
    parity: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    intended_use: str = INTENDED_USE
    created: str = ""
    files: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: None: the bundle predates the guard (format 1) or was exported without it
    novelty: NoveltyInfo | None = None
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["input"] = self.input.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Validate and build; raises :class:`BundleError` naming the offending field."""
        if not isinstance(d, dict):
            raise BundleError("manifest.json is not a JSON object", file=MANIFEST_NAME)
        fmt = d.get("format")
        if fmt != FORMAT:
            raise BundleError(
                f"manifest format is {fmt!r}, expected {FORMAT!r}", file=MANIFEST_NAME
            )
        version = d.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BundleError(
                "manifest format_version is missing or not an integer", file=MANIFEST_NAME
            )
        if version > FORMAT_VERSION:
            shown = version if version < 10**6 else "(an absurd number)"
            raise BundleError(
                f"bundle format version {shown} was written by a newer cxr-review "
                f"(this one reads up to {FORMAT_VERSION}); update the app",
                file=MANIFEST_NAME,
            )
        if version < 1:
            raise BundleError("bundle format version is not valid (below 1)", file=MANIFEST_NAME)
        for key in ("model_name", "class_names", "input", "onnx", "savedmodel", "files"):
            if key not in d:
                raise BundleError(f"manifest has no '{key}'", file=MANIFEST_NAME)
        try:
            manifest = cls(
                model_name=str_field(d, "model_name"),
                class_names=class_names_field(d["class_names"]),
                input=section(InputSpec, d["input"], "input"),
                onnx=section(OnnxInfo, d["onnx"], "onnx"),
                savedmodel=section(SavedModelInfo, d["savedmodel"], "savedmodel"),
                calibration_temperature=temperature_field(d.get("calibration_temperature", 1.0)),
                training=section(TrainingSummary, d.get("training", {}), "training"),
                parity=dict_field(d, "parity"),
                versions={str(k): str(v) for k, v in dict_field(d, "versions").items()},
                intended_use=text_field(d, "intended_use", INTENDED_USE),
                created=text_field(d, "created", ""),
                files=files_field(d["files"]),
                extra=dict_field(d, "extra"),
                novelty=novelty_field(d.get("novelty")) if version >= 2 else None,
                format=fmt,
                format_version=version,
            )
        except BundleError:
            raise
        except (TypeError, ValueError) as exc:
            raise BundleError(f"manifest is malformed: {exc}", file=MANIFEST_NAME) from None
        return manifest


# --------------------------------------------------------------------------- writing


def write_manifest(bundle_dir: str | os.PathLike[str], manifest: Manifest) -> Manifest:
    """Hash every file now in the folder, stamp versions/time, write manifest.json atomically."""
    root = Path(bundle_dir)
    files = hash_files(root)
    required = [manifest.onnx.file]
    missing = [f for f in required if f not in files]
    if missing:
        raise BundleError(
            f"cannot write manifest: '{missing[0]}' is missing", bundle=root, file=missing[0]
        )
    stamped = replace(
        manifest,
        files=files,
        created=manifest.created or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    atomic_write_bytes(root / MANIFEST_NAME, stamped.to_json().encode("utf-8"))
    return stamped


# --------------------------------------------------------------------------- reading


def read_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    """Parse and validate manifest.json without touching the model files."""
    root = bundle_root(bundle)
    path = root / MANIFEST_NAME
    from export.files import read_regular

    try:
        text = read_regular(path, MAX_MANIFEST_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise BundleError(
            "has no manifest.json — is this a model bundle folder?", bundle=root, file=MANIFEST_NAME
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(
            f"manifest.json cannot be read ({exc})", bundle=root, file=MANIFEST_NAME
        ) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise BundleError(
            "manifest.json is nested too deeply to be a manifest", bundle=root, file=MANIFEST_NAME
        ) from None
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"manifest.json is not valid JSON (line {exc.lineno}: {exc.msg})",
            bundle=root,
            file=MANIFEST_NAME,
        ) from None
    except ValueError:  # e.g. a number of thousands of digits
        raise BundleError(
            "manifest.json holds a value no manifest has (a number too long)",
            bundle=root,
            file=MANIFEST_NAME,
        ) from None
    try:
        return Manifest.from_dict(data)
    except BundleError as exc:
        raise BundleError(exc.reason, bundle=root, file=exc.file) from None


def verify_files(bundle: str | os.PathLike[str], manifest: Manifest) -> None:
    """Every listed file present with its hash, nothing unlisted, the model files listed,
    and nothing in them that could touch the reviewer's files (``export/bundle_safety.py``)."""
    root = bundle_root(bundle)
    present = set(files_on_disk(root))
    listed = set(manifest.files)
    check_relpath(manifest.savedmodel.directory)
    sm_pb = f"{manifest.savedmodel.directory.rstrip('/')}/saved_model.pb"
    needed_files = [manifest.onnx.file, sm_pb]
    if manifest.novelty is not None:
        needed_files += [manifest.novelty.means_file, manifest.novelty.precision_file]
    for needed in needed_files:
        if needed not in listed:
            raise BundleError(
                f"manifest does not list the model file '{needed}'", bundle=root, file=needed
            )
    for rel in sorted(listed):
        if rel not in present:
            raise BundleError(
                f"file '{rel}' listed in the manifest is missing", bundle=root, file=rel
            )
    refuse_code_bearing(root, listed)
    unlisted = sorted(present - listed)
    if unlisted:
        rel = unlisted[0]
        raise BundleError(
            f"file '{rel}' is not listed in the manifest (added after export?)",
            bundle=root,
            file=rel,
        )
    check_novelty_sizes(root, manifest)
    from export.bundle_safety import check_model_files, model_file_limits

    # the model files are read once: hashed, then checked for what they may do
    parsed = model_file_limits(manifest)
    blobs: dict[str, bytes] = {}
    for rel in sorted(listed):
        if rel in parsed:
            blobs[rel] = read_model_file(root, rel, parsed[rel])
            digest = hashlib.sha256(blobs[rel]).hexdigest()
        else:
            digest = sha256_file(root / rel)
        if digest != manifest.files[rel]:
            raise BundleError(
                f"file '{rel}' does not match its sha256 in the manifest (modified or damaged)",
                bundle=root,
                file=rel,
            )
    # what the model files may do, before TensorFlow or ONNX Runtime loads them
    check_model_files(root, manifest, blobs)


def load_bundle(bundle: str | os.PathLike[str]) -> Manifest:
    """Read + verify. The one call the app and CLI use before trusting a bundle."""
    manifest = read_manifest(bundle)
    verify_files(bundle, manifest)
    return manifest


def bundle_root(bundle: str | os.PathLike[str]) -> Path:
    """Accept the folder or its manifest.json; refuse anything else with a clear reason."""
    p = Path(bundle)
    if p.name == MANIFEST_NAME and p.is_file():
        p = p.parent
    if not p.exists():
        raise BundleError("does not exist", bundle=p)
    if not p.is_dir():
        raise BundleError("is not a folder (a bundle is a folder with manifest.json)", bundle=p)
    return p


__all__ = [
    "CLASS_NAMES",
    "FORMAT",
    "FORMAT_VERSION",
    "INTENDED_USE",
    "MANIFEST_NAME",
    "BundleError",
    "Manifest",
    "OnnxInfo",
    "SavedModelInfo",
    "TrainingSummary",
    "bundle_root",
    "load_bundle",
    "read_manifest",
    "verify_files",
    "write_manifest",
]
