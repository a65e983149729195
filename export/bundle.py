"""The model bundle: a folder with ``manifest.json``, ``model.onnx`` and ``savedmodel/``.

The manifest is the contract between training and the app (schema:
``export/BUNDLE.md``). Reading is strict on purpose: a reviewer must never
get predictions from a model that is not the one the manifest describes, so
every file is hashed, unlisted files are refused, and every refusal names
the file or field at fault. Hashes prove only who wrote the files, so the model
files are also checked for what they may do (``export/bundle_safety.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from export.atomic import atomic_write_bytes
from export.image_input import InputSpec

FORMAT = "cxr-review-bundle"
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
CLASS_NAMES = ("COVID-19", "Normal", "Pneumonia")
INTENDED_USE = (
    "Research use only. Not a medical device: not for diagnosis, triage or treatment "
    "decisions. Outputs are a reviewer's aid and must be checked by a qualified reader."
)


#: Files that can carry executable code (pickles, Keras Lambda layers, Python, native libs).
_CODE_BEARING = {
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


#: a manifest is a few kilobytes; anything this large is not one
MAX_MANIFEST_BYTES = 1 << 20
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
class NoveltyInfo:
    """The "unlike the training data" guard (format 2): which score, its threshold, and the
    reference arrays (raw little-endian float32, ``export/novelty_model.py``)."""

    score: str = "mahalanobis"
    features_name: str = "features"
    feature_dim: int = 0
    threshold: float = 0.0
    means_file: str = "novelty/means.f32"
    precision_file: str = "novelty/precision.f32"
    evidence: dict[str, Any] = field(default_factory=dict)


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
                model_name=_str(d, "model_name"),
                class_names=_class_names(d["class_names"]),
                input=_section(InputSpec, d["input"], "input"),
                onnx=_section(OnnxInfo, d["onnx"], "onnx"),
                savedmodel=_section(SavedModelInfo, d["savedmodel"], "savedmodel"),
                calibration_temperature=_temperature(d.get("calibration_temperature", 1.0)),
                training=_section(TrainingSummary, d.get("training", {}), "training"),
                parity=_dict(d, "parity"),
                versions={str(k): str(v) for k, v in _dict(d, "versions").items()},
                intended_use=_text(d, "intended_use", INTENDED_USE),
                created=_text(d, "created", ""),
                files=_files(d["files"]),
                extra=_dict(d, "extra"),
                novelty=_novelty(d.get("novelty")) if version >= 2 else None,
                format=fmt,
                format_version=version,
            )
        except BundleError:
            raise
        except (TypeError, ValueError) as exc:
            raise BundleError(f"manifest is malformed: {exc}", file=MANIFEST_NAME) from None
        return manifest


def _str(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise BundleError(f"manifest '{key}' must be a non-empty string", file=MANIFEST_NAME)
    return v


def _text(d: dict[str, Any], key: str, default: str) -> str:
    """Optional text: absent gives the default; present must be non-empty text."""
    if key not in d:
        return default
    v = d[key]
    if not isinstance(v, str) or not v.strip() or len(v) > MAX_TEXT:
        raise BundleError(f"manifest '{key}' must be text", file=MANIFEST_NAME)
    return v


def _dict(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise BundleError(f"manifest '{key}' must be an object", file=MANIFEST_NAME)
    return v


def _class_names(v: Any) -> tuple[str, ...]:
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


def _temperature(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise BundleError(
            "manifest 'calibration_temperature' must be a positive number", file=MANIFEST_NAME
        )
    return float(v)


def _section(cls: type, v: Any, key: str) -> Any:
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


def _novelty(v: Any) -> NoveltyInfo | None:
    """The guard's section, checked as untrusted input: known score, sane sizes, safe paths."""
    from export.novelty_model import MAX_FEATURE_DIM, SCORES

    if v is None:
        return None
    if not isinstance(v, dict):
        raise BundleError("manifest 'novelty' must be an object", file=MANIFEST_NAME)
    thr = v.get("threshold")
    if isinstance(thr, bool) or not isinstance(thr, int | float) or not math.isfinite(thr):
        raise BundleError("manifest 'novelty.threshold' must be a number", file=MANIFEST_NAME)
    info = _section(NoveltyInfo, {**v, "threshold": float(thr)}, "novelty")
    if info.score not in SCORES:
        raise BundleError(
            f"manifest 'novelty.score' must be one of {', '.join(SCORES)}", file=MANIFEST_NAME
        )
    if not 1 <= info.feature_dim <= MAX_FEATURE_DIM:
        raise BundleError(
            f"manifest 'novelty.feature_dim' must be 1 to {MAX_FEATURE_DIM}", file=MANIFEST_NAME
        )
    for rel in (info.means_file, info.precision_file):
        _check_relpath(rel)
    return info


def _files(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not v:
        raise BundleError(
            "manifest 'files' must list every file with its sha256", file=MANIFEST_NAME
        )
    out: dict[str, str] = {}
    for rel, digest in v.items():
        _check_relpath(rel)
        if not isinstance(digest, str) or len(digest) != 64:
            raise BundleError(f"manifest has no valid sha256 for '{rel}'", file=MANIFEST_NAME)
        out[rel] = digest.lower()
    return out


def _check_relpath(rel: Any) -> None:
    """Refuse absolute paths and '..': a manifest must not point outside its own folder."""
    if not isinstance(rel, str) or not rel:
        raise BundleError("manifest lists a file with an empty name", file=MANIFEST_NAME)
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or "\\" in rel or rel == MANIFEST_NAME:
        raise BundleError(f"manifest lists an unsafe path '{rel}'", file=MANIFEST_NAME)


# --------------------------------------------------------------------------- hashing, writing


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Of a regular file only: a pipe or device in a bundle must not hang or flood the check."""
    from export.files import open_regular

    with open_regular(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _bundle_files(bundle_dir: Path) -> list[str]:
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
    return {rel: sha256_file(root / rel) for rel in _bundle_files(root)}


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
    present = set(_bundle_files(root))
    listed = set(manifest.files)
    _check_relpath(manifest.savedmodel.directory)
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
    for rel in sorted(listed):
        kind = _CODE_BEARING.get(PurePosixPath(rel).suffix.lower())
        if kind:
            raise BundleError(
                f"'{rel}' is a {kind}; a bundle holds only ONNX and SavedModel files, and "
                "loading this could run code: refused",
                bundle=root,
                file=rel,
            )
    unlisted = sorted(present - listed)
    if unlisted:
        rel = unlisted[0]
        raise BundleError(
            f"file '{rel}' is not listed in the manifest (added after export?)",
            bundle=root,
            file=rel,
        )
    _check_novelty_sizes(root, manifest)
    from export.bundle_safety import check_model_files, model_file_limits

    # the model files are read once: hashed, then checked for what they may do
    parsed = model_file_limits(manifest)
    blobs: dict[str, bytes] = {}
    for rel in sorted(listed):
        if rel in parsed:
            blobs[rel] = _read_model_file(root, rel, parsed[rel])
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


def _check_novelty_sizes(root: Path, manifest: Manifest) -> None:
    """The guard's arrays must be float32 of the sizes the manifest states, checked before
    hashing, so an oversize file is refused without being read. The means' row count is
    matched to the classes when the session starts (``export/onnx_runtime.py``), after the
    ONNX model's own class count, which gives the clearer message when the two disagree."""
    nov = manifest.novelty
    if nov is None:
        return
    d = nov.feature_dim
    row = 4 * d
    checks = (
        (nov.precision_file, lambda n: n == row * d, f"a {d} x {d} float32 array"),
        (nov.means_file, lambda n: n % row == 0 and 0 < n // row <= 4096, f"rows of {d} float32"),
    )
    for rel, ok, what in checks:
        size = (root / rel).stat().st_size
        if not ok(size):
            raise BundleError(
                f"'{rel}' holds {size} bytes, not {what} as the manifest states",
                bundle=root,
                file=rel,
            )


def _read_model_file(root: Path, rel: str, limit: int) -> bytes:
    from export.files import TooLarge, read_regular

    try:
        return read_regular(root / rel, limit)
    except TooLarge:
        raise BundleError(
            f"'{rel}' is larger than {limit >> 20} MB: refused", bundle=root, file=rel
        ) from None
    except OSError as exc:
        raise BundleError(f"'{rel}' cannot be read ({exc})", bundle=root, file=rel) from None


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
    "NoveltyInfo",
    "OnnxInfo",
    "SavedModelInfo",
    "TrainingSummary",
    "bundle_root",
    "hash_files",
    "load_bundle",
    "read_manifest",
    "sha256_file",
    "verify_files",
    "write_manifest",
]
