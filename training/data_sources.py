"""Read a data set description: class folders, a CSV manifest, or the notebook's NumPy pair.

Nothing here decodes images; it only decides *which* samples exist, their
class, patient and (optionally) given split. Decoding happens once, in the
cache builder, through the image-input contract.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from export.bundle import CLASS_NAMES
from export.image_input import is_candidate_file

#: Folder or label name (case-insensitive) -> class, or None to leave out. The names are
#: those of the COVID-19 Radiography Database; Lung_Opacity is left out by default (its
#: images are neither COVID-19 nor normal nor viral pneumonia), which training says aloud.
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
    #: raw label -> images the class map left out (a documented default or the user's =skip)
    left_out: Counter = field(default_factory=Counter)
    #: raw label -> class where the two differ (e.g. folder COVID -> COVID-19)
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def class_counts(self) -> dict[str, int]:
        c = Counter(s.label for s in self.samples)
        return {name: c.get(name, 0) for name in self.class_names}

    def describe(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.class_counts.items())
        return f"{self.kind} data set {self.root} ({len(self.samples)} images: {counts})"


def parse_classes(text: str | None) -> tuple[str, ...] | None:
    """'--classes COVID,non-COVID' -> the class names in class-index order (None: from the data)."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(","))
    if any(not n for n in names):
        raise DataError(f"--classes {text!r} has an empty name; list names like A,B,C")
    lowered = [n.lower() for n in names]
    dupes = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if dupes:
        raise DataError(f"--classes names {', '.join(dupes)} more than once")
    if len(names) < 2:
        raise DataError(f"--classes needs at least two classes, not {text!r}")
    return names


def parse_class_map(
    text: str | None, classes: tuple[str, ...] | None = None
) -> dict[str, str | None]:
    """'Lung_Opacity=Pneumonia,Normal=skip' on top of the defaults.

    With ``classes`` given every target must be one of them; without, a target
    names a class of its own (``Lung_Opacity=Lung_Opacity`` keeps that class).
    """
    mapping = dict(DEFAULT_CLASS_MAP)
    if not text:
        return mapping
    by_lower = {c.lower(): c for c in classes or ()}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(f"--class-map entry {part!r} must look like FOLDER=CLASS")
        key, value = (s.strip() for s in part.split("=", 1))
        if value.lower() in ("skip", "none", ""):
            mapping[key.lower()] = None
        elif classes is None:
            mapping[key.lower()] = value
        elif value.lower() in by_lower:
            mapping[key.lower()] = by_lower[value.lower()]
        else:
            raise DataError(f"--class-map: {value!r} is not one of {', '.join(classes)}")
    return mapping


def _resolve(raw: str, classes: tuple[str, ...] | None, mapping: dict[str, str | None]):
    """Raw label -> class name, None (left out by the map), or the raw label itself.

    A label spelled like one of the chosen classes is that class; otherwise the
    map decides; otherwise the label stands for itself (a class of its own when
    the classes come from the data, an unknown label when they were named).
    """
    name = raw.strip()
    by_lower = {c.lower(): c for c in classes or ()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    if name.lower() in mapping:
        target = mapping[name.lower()]
        return None if target is None else by_lower.get(target.lower(), target)
    return name


def _class_order(found: set[str]) -> tuple[str, ...]:
    """Classes from the data: the Radiography Database's three first, in their usual order."""
    known = [c for c in CLASS_NAMES if c in found]
    return (*known, *sorted(found - set(known), key=lambda c: (c.lower(), c)))


def load_dataset(
    data: str | os.PathLike[str],
    *,
    class_map: dict[str, str | None] | None = None,
    classes: tuple[str, ...] | None = None,
) -> DataSet:
    """Detect the kind of data set at ``data``, list its samples and settle its classes.

    ``classes`` (in class-index order) fixes the class set: a label outside it
    stops here, naming the labels and how to include them. Without it the
    classes are the labels found. Nothing is dropped silently: only what the
    class map leaves out is left out, and the caller reports ``left_out``.
    """
    mapping = class_map or DEFAULT_CLASS_MAP
    p = Path(data)
    if not p.exists():
        raise DataError(f"{p} does not exist")
    if p.is_file() and p.suffix.lower() == ".csv":
        ds = _from_csv(p)
    elif (p.is_file() and p.suffix == ".npy") or (p / "trainx.npy").is_file():
        ds = _from_npy(p if p.is_file() else p / "trainx.npy", classes)
    elif p.is_dir():
        ds = _from_folders(p)
    else:
        raise DataError(f"{p} is not a folder, a CSV manifest or trainx.npy")
    return _settle_classes(ds, classes, mapping)


def _settle_classes(
    ds: DataSet, classes: tuple[str, ...] | None, mapping: dict[str, str | None]
) -> DataSet:
    resolved = {raw: _resolve(raw, classes, mapping) for raw in {s.label for s in ds.samples}}
    resolved.update({raw: _resolve(raw, classes, mapping) for raw in ds.class_names})
    raw_counts = Counter(s.label for s in ds.samples)
    if classes is None:
        folded: dict[str, str] = {}  # one class per spelling ignoring case
        for name in sorted(n for n in resolved.values() if n is not None):
            folded.setdefault(name.lower(), name)
        resolved = {r: None if n is None else folded[n.lower()] for r, n in resolved.items()}
        names = _class_order({n for n in resolved.values() if n is not None})
    else:
        names = classes
        unknown = Counter()
        for raw, n in resolved.items():
            if n is not None and n not in names and raw_counts.get(raw, 0):
                unknown[raw] += raw_counts[raw]
        if unknown:
            listed = ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items()))
            raise DataError(
                f"the data holds labels outside the classes {', '.join(names)}: {listed}; "
                "add them to --classes, or map them with --class-map LABEL=CLASS "
                "(LABEL=skip leaves them out)"
            )
    samples = [replace(s, label=resolved[s.label]) for s in ds.samples if resolved[s.label]]
    if not samples:
        raise DataError(f"{ds.root}: no images found (after the class map)")
    if len(names) < 2:
        raise DataError(
            f"{ds.root}: only one class ({names[0]}); training needs at least two "
            "(a folder or label per class, or --classes A,B,...)"
        )
    left_out = Counter()
    for raw, n in resolved.items():
        if n is None and raw_counts.get(raw, 0):
            left_out[raw] += raw_counts[raw]
    renamed = {r: n for r, n in resolved.items() if n is not None and n != r}
    return DataSet(samples, ds.kind, ds.root, ds.npy_images, names, left_out, renamed)


def _from_folders(root: Path) -> DataSet:
    """Each subfolder (not a mask folder) is a class folder; its name is the raw label."""
    samples: list[Sample] = []
    folders: list[str] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith(".") or entry.name in MASK_DIRS:
            continue
        folders.append(entry.name)
        samples.extend(Sample(str(f), entry.name) for f in _class_files(entry))
    if not samples:
        raise DataError(
            f"{root}: no class folders with images found (expected e.g. COVID/, Normal/, "
            "'Viral Pneumonia/', each with images/), no labels CSV and no trainx.npy"
        )
    # folders without images are classes too: training then names the empty one
    return DataSet(samples, "folders", root, class_names=tuple(folders))


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


def _from_csv(path: Path) -> DataSet:
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
    for i, row in enumerate(rows, start=2):
        if not row.get("label", ""):
            raise DataError(f"{path}, line {i}: empty label (every row needs its class)")
        split = row.get("split", "").lower()
        split = {"validation": "val", "valid": "val"}.get(split, split)
        if split and split not in SPLITS:
            raise DataError(f"{path}, line {i}: split {split!r} is not train, val or test")
        f = Path(row["path"])
        f = f if f.is_absolute() else path.parent / f
        samples.append(Sample(str(f), row["label"], row.get("patient_id", ""), split))
    return DataSet(samples, "csv", path, class_names=())


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


def _from_npy(x_path: Path, classes: tuple[str, ...] | None) -> DataSet:
    """Integer or one-hot labels index ``classes`` (default: the notebook's three); strings
    are labels like a CSV's."""
    y_path = x_path.with_name(x_path.name.replace("x", "y", 1)) if "x" in x_path.name else None
    if y_path is None or not y_path.is_file():
        raise DataError(f"{x_path}: no matching labels file (expected {x_path.parent}/trainy.npy)")
    x = open_npy(x_path)
    y = np.asarray(open_npy(y_path))
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
        raise DataError(f"{x_path.name} has shape {x.shape}; expected (N, H, W) or (N, H, W, 3)")
    if len(y) != len(x):
        raise DataError(f"{x_path.name} has {len(x)} images but {y_path.name} has {len(y)} labels")
    names = classes or CLASS_NAMES
    if y.ndim == 2:  # one-hot
        if y.shape[1] != len(names):
            raise DataError(
                f"{y_path.name} is one-hot with {y.shape[1]} columns but there are "
                f"{len(names)} classes ({', '.join(names)}); name them in order with --classes"
            )
        index = y.argmax(axis=1)
    elif y.dtype.kind in "iu":
        index = y
    elif y.dtype.kind == "U":
        labels = [str(v) for v in y]
        return DataSet(
            [Sample(f"npy:{i}", lab) for i, lab in enumerate(labels)], "npy", x_path.parent,
            npy_images=x_path, class_names=(),
        )  # fmt: skip
    else:
        raise DataError(f"{y_path.name}: labels must be integers, one-hot rows or strings")
    index = np.asarray(index, np.int64)
    outside = Counter(int(i) for i in index if not 0 <= i < len(names))
    if outside:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(outside.items()))
        raise DataError(
            f"{y_path.name} holds class indices outside 0..{len(names) - 1} "
            f"({', '.join(names)}): {listed}; name every class in index order with --classes"
        )
    labels = [names[int(i)] for i in index]
    samples = [Sample(f"npy:{i}", lab) for i, lab in enumerate(labels)]
    # integer labels name every class, present or not: an empty one is reported, not hidden
    return DataSet(samples, "npy", x_path.parent, npy_images=x_path, class_names=names)
