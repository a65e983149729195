"""Read a data set description: class folders, a CSV manifest, or the notebook's NumPy pair.

Nothing here decodes images; it only decides *which* samples exist, their
class, patient and (optionally) given split. Decoding happens once, in the
cache builder, through the image-input contract.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from export.bundle import CLASS_NAMES
from export.image_input import is_candidate_file

#: Folder or label name (case-insensitive) -> class, or None to leave out.
DEFAULT_CLASS_MAP: dict[str, str | None] = {
    "covid": "COVID-19",
    "covid-19": "COVID-19",
    "covid19": "COVID-19",
    "normal": "Normal",
    "viral pneumonia": "Pneumonia",
    "pneumonia": "Pneumonia",
    "lung_opacity": None,
    "lung opacity": None,
}
MASK_DIRS = {"masks", "lesion_masks", "marker_masks"}
SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A data set that cannot be used as given (one line for the CLI)."""


@dataclass(frozen=True)
class Sample:
    source: str  # file path, or "npy:<row>" for the NumPy pair
    label: str
    patient_id: str = ""
    split: str = ""


@dataclass
class DataSet:
    samples: list[Sample]
    kind: str  # "folders", "csv" or "npy"
    root: Path
    npy_images: Path | None = None
    class_names: tuple[str, ...] = CLASS_NAMES
    left_out: Counter = field(default_factory=Counter)

    @property
    def class_counts(self) -> dict[str, int]:
        c = Counter(s.label for s in self.samples)
        return {name: c.get(name, 0) for name in self.class_names}

    def describe(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.class_counts.items())
        return f"{self.kind} data set {self.root} ({len(self.samples)} images: {counts})"


def parse_class_map(text: str | None) -> dict[str, str | None]:
    """'Lung_Opacity=Pneumonia,Normal=skip' on top of the defaults."""
    mapping = dict(DEFAULT_CLASS_MAP)
    if not text:
        return mapping
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(f"--class-map entry {part!r} must look like FOLDER=CLASS")
        key, value = (s.strip() for s in part.split("=", 1))
        if value.lower() in ("skip", "none", ""):
            mapping[key.lower()] = None
        elif value in CLASS_NAMES:
            mapping[key.lower()] = value
        else:
            raise DataError(f"--class-map: {value!r} is not one of {', '.join(CLASS_NAMES)}")
    return mapping


def _map_label(name: str, mapping: dict[str, str | None]) -> str | None:
    if name in CLASS_NAMES:
        return name
    return mapping.get(name.strip().lower(), "?")


def load_dataset(
    data: str | os.PathLike[str],
    *,
    class_map: dict[str, str | None] | None = None,
    npy_classes: tuple[str, ...] = CLASS_NAMES,
) -> DataSet:
    """Detect the kind of data set at ``data`` and list its samples."""
    mapping = class_map or DEFAULT_CLASS_MAP
    p = Path(data)
    if not p.exists():
        raise DataError(f"{p} does not exist")
    if p.is_file() and p.suffix.lower() == ".csv":
        ds = _from_csv(p, mapping)
    elif (p.is_file() and p.suffix == ".npy") or (p / "trainx.npy").is_file():
        ds = _from_npy(p if p.is_file() else p / "trainx.npy", mapping, npy_classes)
    elif p.is_dir():
        ds = _from_folders(p, mapping)
    else:
        raise DataError(f"{p} is not a folder, a CSV manifest or trainx.npy")
    if not ds.samples:
        raise DataError(f"{p}: no images of the classes {', '.join(CLASS_NAMES)} found")
    return ds


def _from_folders(root: Path, mapping: dict[str, str | None]) -> DataSet:
    samples: list[Sample] = []
    left_out: Counter = Counter()
    recognised = False
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        label = _map_label(entry.name, mapping)
        if label == "?":
            left_out[f"unknown folder {entry.name}"] += 1
            continue
        recognised = True
        files = _class_files(entry)
        if label is None:
            left_out[entry.name] += len(files)
            continue
        samples.extend(Sample(str(f), label) for f in files)
    if not recognised:
        raise DataError(
            f"{root}: no class folders found (expected e.g. COVID/, Normal/, 'Viral Pneumonia/', "
            "each with images/), no labels CSV and no trainx.npy"
        )
    return DataSet(samples, "folders", root, left_out=left_out)


def _class_files(folder: Path) -> list[Path]:
    base = folder / "images" if (folder / "images").is_dir() else folder
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in MASK_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            f = Path(dirpath) / name
            if is_candidate_file(f):
                out.append(f)
    return out


def _from_csv(path: Path, mapping: dict[str, str | None]) -> DataSet:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or []]
            if "path" not in fields or "label" not in fields:
                raise DataError(f"{path}: the CSV needs a header with at least path,label")
            rows = [
                {k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader
            ]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV") from None
    samples: list[Sample] = []
    left_out: Counter = Counter()
    for i, row in enumerate(rows, start=2):
        label = _map_label(row.get("label", ""), mapping)
        if label in (None, "?"):
            left_out[f"label {row.get('label', '')!r}"] += 1
            continue
        split = row.get("split", "").lower()
        split = {"validation": "val", "valid": "val"}.get(split, split)
        if split and split not in SPLITS:
            raise DataError(f"{path}, line {i}: split {split!r} is not train, val or test")
        f = Path(row["path"])
        f = f if f.is_absolute() else path.parent / f
        samples.append(Sample(str(f), label, row.get("patient_id", ""), split))
    return DataSet(samples, "csv", path, left_out=left_out)


def open_npy(path: Path) -> np.ndarray:
    """Memory-mapped, and never unpickled: an object array is refused, not executed."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise DataError(
                f"{path.name} holds Python objects (a pickle); refusing to load it. "
                "Save plain numeric arrays with np.save(..., allow_pickle=False)"
            ) from None
        raise DataError(f"{path.name} is not a valid .npy array: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _from_npy(x_path: Path, mapping: dict[str, str | None], classes: tuple[str, ...]) -> DataSet:
    y_path = x_path.with_name(x_path.name.replace("x", "y", 1)) if "x" in x_path.name else None
    if y_path is None or not y_path.is_file():
        raise DataError(f"{x_path}: no matching labels file (expected {x_path.parent}/trainy.npy)")
    x = open_npy(x_path)
    y = np.asarray(open_npy(y_path))
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
        raise DataError(f"{x_path.name} has shape {x.shape}; expected (N, H, W) or (N, H, W, 3)")
    if len(y) != len(x):
        raise DataError(f"{x_path.name} has {len(x)} images but {y_path.name} has {len(y)} labels")
    if y.ndim == 2:  # one-hot
        idx = y.argmax(axis=1)
        labels = [classes[int(i)] if int(i) < len(classes) else "?" for i in idx]
    elif y.dtype.kind in "iu":
        labels = [classes[int(i)] if 0 <= int(i) < len(classes) else "?" for i in y]
    elif y.dtype.kind == "U":
        labels = [str(_map_label(str(v), mapping)) for v in y]
    else:
        raise DataError(f"{y_path.name}: labels must be integers, one-hot rows or strings")
    samples, left_out = [], Counter()
    for i, lab in enumerate(labels):
        if lab in CLASS_NAMES:
            samples.append(Sample(f"npy:{i}", lab))
        else:
            left_out[f"label {lab}"] += 1
    return DataSet(samples, "npy", x_path.parent, npy_images=x_path, left_out=left_out)
