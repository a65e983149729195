"""Stratified train/val/test split that never puts one patient in two splits.

A patient's images are correlated (same body, same scanner, same markers);
letting them straddle splits inflates test accuracy. Patients are the unit
of assignment; classes are balanced across splits by a greedy deficit rule.
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from training.data_sources import SPLITS, DataError, Sample


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split("/"))
    except ValueError:
        raise DataError(f"--split must look like 80/10/10, not {text!r}") from None
    if len(parts) != 3 or any(v < 0 for v in parts) or parts[0] <= 0 or sum(parts) <= 0:
        raise DataError(f"--split needs train/val/test shares with train > 0, not {text!r}")
    total = sum(parts)
    return tuple(v / total for v in parts)  # type: ignore[return-value]


def min_per_class(fractions: tuple[float, float, float]) -> int:
    """Images (patients) a class needs so each split with a share gets at least one of it."""
    return max(math.ceil(1.0 / f - 1e-9) for f in fractions if f > 0)


def check_class_sizes(
    samples: list[Sample],
    class_names: tuple[str, ...],
    fractions: tuple[float, float, float],
    *,
    named: bool = False,
) -> None:
    """Stop before training when a class cannot be learned and tested as asked.

    A class with no images, or too few to appear in every split of the
    stratified split, would train a model that can never predict it (or a
    test accuracy that never tried it). ``named``: the classes came from
    ``--classes`` (the hint then says to drop the name there).
    """
    counts = Counter(s.label for s in samples)
    for name in class_names:
        if counts.get(name, 0) == 0:
            how = "drop it from --classes" if named else "remove its empty folder or add images"
            raise DataError(f"class {name!r} has no images; add images of it or {how}")
    if samples and all(s.split for s in samples):  # splits given: each class must be trained on
        in_train = Counter(s.label for s in samples if s.split == "train")
        for name in class_names:
            if not in_train.get(name):
                raise DataError(
                    f"class {name!r} has {counts[name]} images but none in the 'train' split "
                    "of the split column; move some to train"
                )
        return
    need = min_per_class(fractions)
    patients: dict[str, set[str]] = defaultdict(set)
    with_id = any(s.patient_id for s in samples)
    for i, s in enumerate(samples):
        patients[s.label].add(s.patient_id or f"\0{i}")
    unit = "patients" if with_id else "images"
    shares = "/".join(f"{round(f * 100):g}" for f in fractions)
    used = [n for n, f in zip(SPLITS, fractions, strict=True) if f > 0]
    where = used[0] if len(used) == 1 else ", ".join(used[:-1]) + " and " + used[-1]
    for name in class_names:
        have = len(patients[name])
        if have < need:
            raise DataError(
                f"class {name!r} has {have} {unit}, too few for the stratified {shares} split: "
                f"each class needs at least {need} (one in each of {where}); "
                "add data, change --split, or leave the class out"
            )


def assign_splits(
    samples: list[Sample], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> list[Sample]:
    """Return the samples with ``split`` filled in; given splits (CSV column) are kept."""
    given = sum(bool(s.split) for s in samples)
    if samples and given == len(samples):
        _check_given(samples)
        return list(samples)
    if given:
        raise DataError(
            f"the split column is filled for {given} of {len(samples)} images; fill it for all "
            "(train/val/test) or leave it empty to let cxr train split by patient"
        )
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[s.patient_id or f"\0{i}"].append(i)  # no id: each image is its own patient
    by_class: dict[str, list[str]] = defaultdict(list)
    for gid, idx in groups.items():
        label = Counter(samples[i].label for i in idx).most_common(1)[0][0]
        by_class[label].append(gid)

    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for label in sorted(by_class):
        gids = sorted(by_class[label])
        rng.shuffle(gids)
        total = sum(len(groups[g]) for g in gids)
        target = np.array(fractions) * total
        have = np.zeros(3)
        for g in gids:
            k = int(np.argmax(target - have))  # the split furthest below its share
            split_of[g] = SPLITS[k]
            have[k] += len(groups[g])
    out = list(samples)
    for gid, idx in groups.items():
        for i in idx:
            out[i] = replace(out[i], split=split_of[gid])
    _ensure_non_empty(out, groups, split_of, fractions)
    return out


def _ensure_non_empty(out, groups, split_of, fractions) -> None:
    """Tiny data sets: give val/test at least one patient each when they asked for a share."""
    for k, name in enumerate(SPLITS[1:], start=1):
        if fractions[k] <= 0 or any(s.split == name for s in out):
            continue
        train_groups = [g for g, sp in split_of.items() if sp == "train"]
        if len(train_groups) <= 1:
            continue
        g = train_groups[-1]
        split_of[g] = name
        for i in groups[g]:
            out[i] = replace(out[i], split=name)


def _check_given(samples: list[Sample]) -> None:
    present = {s.split for s in samples}
    if "train" not in present:
        raise DataError("the split column gives no 'train' images")
    seen: dict[str, str] = {}
    for s in samples:
        if s.patient_id:
            prev = seen.setdefault(s.patient_id, s.split)
            if prev != s.split:
                raise DataError(
                    f"patient {s.patient_id!r} appears in both {prev!r} and {s.split!r} splits"
                )


def save_splits(samples: list[Sample], path: str | os.PathLike[str]) -> None:
    with open(Path(path), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "patient_id", "split"])
        for s in samples:
            w.writerow([s.source, s.label, s.patient_id, s.split])


def split_sizes(samples: list[Sample]) -> dict[str, int]:
    c = Counter(s.split for s in samples)
    return {name: c.get(name, 0) for name in SPLITS}
