"""Data sources, patient-safe splits, the cache and the metrics: no TensorFlow needed."""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest
from imaging_factory import png_bytes

from export.bundle import CLASS_NAMES
from export.image_input import InputSpec, from_array, model_gray
from training.cache import build_cache
from training.data_sources import DataError, Sample, load_dataset, parse_class_map
from training.evaluation import (
    classification_metrics,
    fit_temperature,
    reliability,
    roc_curve,
    softmax,
)
from training.pipeline import class_weights, oversample_rows
from training.splits import assign_splits, parse_fractions

GRAD = (np.linspace(0, 4095, 32 * 32).reshape(32, 32)).astype(np.uint16)


def _png(path, k=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(np.roll(GRAD, k, axis=1)))


def test_radiography_layout_with_and_without_images_folder(tmp_path):
    for i in range(3):
        _png(tmp_path / "COVID" / "images" / f"COVID-{i}.png", i)
        _png(tmp_path / "COVID" / "masks" / f"COVID-{i}.png", i)  # masks are not samples
        _png(tmp_path / "Normal" / f"Normal-{i}.png", i)  # no images/ level
        _png(tmp_path / "Viral Pneumonia" / "images" / f"VP-{i}.png", i)
        _png(tmp_path / "Lung_Opacity" / "images" / f"LO-{i}.png", i)
    (tmp_path / "README.md.txt").write_text("x")
    ds = load_dataset(tmp_path)
    assert ds.kind == "folders"
    assert ds.class_counts == {"COVID-19": 3, "Normal": 3, "Pneumonia": 3}
    assert ds.left_out["Lung_Opacity"] == 3
    assert not any("masks" in s.source for s in ds.samples)
    ds2 = load_dataset(tmp_path, class_map=parse_class_map("Lung_Opacity=Pneumonia"))
    assert ds2.class_counts["Pneumonia"] == 6


def test_layout_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "random").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="FOLDER=CLASS"):
        parse_class_map("oops")
    with pytest.raises(DataError, match="not one of"):
        parse_class_map("X=Cancer", CLASS_NAMES)
    assert parse_class_map("X=Cancer")["x"] == "Cancer"  # classes from the data: a new class


def test_csv_manifest(tmp_path):
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png")
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "patient_id", "split"])
        w.writerow(["img/a.png", "COVID", "p1", "train"])
        w.writerow(["img/b.png", "Viral Pneumonia", "p2", "validation"])
        w.writerow(["img/c.png", "Lung_Opacity", "p3", "test"])
    ds = load_dataset(tmp_path / "m.csv")
    assert [(s.label, s.patient_id, s.split) for s in ds.samples] == [
        ("COVID-19", "p1", "train"),
        ("Pneumonia", "p2", "val"),
    ]
    assert ds.samples[0].source == str(tmp_path / "img" / "a.png")
    (tmp_path / "bad.csv").write_text("file,class\nx,y\n")
    with pytest.raises(DataError, match="path,label"):
        load_dataset(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("path,label,split\nimg/a.png,Normal,holdout\n")
    with pytest.raises(DataError, match="holdout"):
        load_dataset(tmp_path / "bad2.csv")


def test_npy_pair_is_memory_mapped_and_one_hot_or_int(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (6, 40, 40, 3), dtype=np.uint8)
    np.save(tmp_path / "trainx.npy", x)
    np.save(tmp_path / "trainy.npy", np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]])
    ds = load_dataset(tmp_path)
    assert ds.kind == "npy" and [s.label for s in ds.samples[:3]] == list(CLASS_NAMES)
    np.save(tmp_path / "trainy.npy", np.array([2, 2, 1, 0, 0, 9]))
    with pytest.raises(DataError, match=r"outside 0\.\.2 .*: 9 \(1\).*--classes"):
        load_dataset(tmp_path)


def test_pickle_bearing_npy_is_refused(tmp_path):
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = {"a": 1}, [1, 2]
    np.save(tmp_path / "trainx.npy", evil, allow_pickle=True)
    np.save(tmp_path / "trainy.npy", np.array([0, 1]))
    with pytest.raises(DataError, match="pickle"):
        load_dataset(tmp_path)


def test_npy_shape_and_length_checks(tmp_path):
    np.save(tmp_path / "trainx.npy", np.zeros((3, 8, 8), np.uint8))
    np.save(tmp_path / "trainy.npy", np.array([0, 1]))
    with pytest.raises(DataError, match="3 images but"):
        load_dataset(tmp_path)


def _patients(n_patients=60, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for p in range(n_patients):
        label = CLASS_NAMES[p % 3]
        for k in range(int(rng.integers(1, 6))):
            samples.append(Sample(f"p{p}_{k}.png", label, f"patient-{p}"))
    return samples


def test_no_patient_crosses_splits_and_classes_are_stratified():
    samples = _patients()
    out = assign_splits(samples, (0.8, 0.1, 0.1), seed=3)
    where = defaultdict(set)
    for s in out:
        where[s.patient_id].add(s.split)
    assert all(len(v) == 1 for v in where.values())
    for split in ("train", "val", "test"):
        labels = {s.label for s in out if s.split == split}
        assert labels == set(CLASS_NAMES), split
    n_train = sum(s.split == "train" for s in out)
    assert 0.7 < n_train / len(out) < 0.9
    assert out == assign_splits(samples, (0.8, 0.1, 0.1), seed=3)  # deterministic
    assert out != assign_splits(samples, (0.8, 0.1, 0.1), seed=4)


def test_given_splits_are_kept_and_checked():
    s = [Sample("a", "Normal", "p1", "train"), Sample("b", "Normal", "p2", "test")]
    assert assign_splits(s) == s
    with pytest.raises(DataError, match="both"):
        assign_splits([Sample("a", "Normal", "p1", "train"), Sample("b", "Normal", "p1", "test")])
    assert parse_fractions("70/15/15") == pytest.approx((0.7, 0.15, 0.15))
    with pytest.raises(DataError):
        parse_fractions("0/50/50")


def test_partly_filled_split_column_is_refused():
    s = [Sample("a", "Normal", "", "test"), Sample("b", "Normal", "", ""), Sample("c", "COVID-19")]
    with pytest.raises(DataError, match="1 of 3"):
        assign_splits(s)


def test_manifest_metrics_have_no_nan():
    import json

    from training.evaluation import evaluate_logits
    from training.train import _metrics_for_manifest

    y = np.array([1, 1, 2, 2])  # no COVID-19 in this test split: its AUC is undefined
    m = evaluate_logits(y, np.random.default_rng(0).normal(size=(4, 3)), CLASS_NAMES)
    assert np.isnan(m["per_class"]["COVID-19"]["roc_auc"])
    clean = _metrics_for_manifest(m)
    assert clean["per_class"]["COVID-19"]["roc_auc"] is None
    json.dumps(clean, allow_nan=False)


def test_tiny_data_set_still_gets_val_and_test():
    s = [Sample(f"{i}", CLASS_NAMES[i % 3]) for i in range(6)]
    splits = {x.split for x in assign_splits(s)}
    assert splits == {"train", "val", "test"}


def test_cache_skips_bad_files_and_is_reused(tmp_path):
    data = tmp_path / "d"
    for i in range(4):
        _png(data / "Normal" / f"n{i}.png", i)
        _png(data / "COVID" / f"c{i}.png", i + 7)
    (data / "COVID" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = load_dataset(data)
    samples = assign_splits(ds.samples, seed=1)
    spec = InputSpec(height=16, width=16)
    cache = build_cache(ds, samples, spec, tmp_path / "cache", workers=2)
    assert len(cache.sources) == 8 and len(cache.skipped) == 1
    assert cache.skipped[0][0].endswith("broken.png") and "PNG" in cache.skipped[0][1]
    imgs = cache.images()
    assert imgs.shape == (8, 16, 16) and isinstance(imgs, np.memmap)
    mtime = cache.path.stat().st_mtime_ns
    again = build_cache(ds, samples, spec, tmp_path / "cache")
    assert again.path.stat().st_mtime_ns == mtime and np.array_equal(again.images(), imgs)


def test_npy_cache_goes_through_the_image_contract(tmp_path):
    x = np.random.default_rng(1).random((3, 50, 40)).astype(np.float32)
    np.save(tmp_path / "trainx.npy", x)
    np.save(tmp_path / "trainy.npy", np.array([0, 1, 2]))
    ds = load_dataset(tmp_path)
    samples = assign_splits(ds.samples)
    spec = InputSpec(height=24, width=24)
    cache = build_cache(ds, samples, spec, tmp_path / "c", workers=1)
    assert np.array_equal(cache.images()[1], model_gray(from_array(x[1]), spec))


def test_auc_matches_pair_counting_and_perfect_separation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.3 * y
    s[:20] = np.round(s[:20], 1)  # ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert roc_curve(y, s)[2] == pytest.approx(pairs, abs=1e-12)
    assert roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))[2] == 1.0


def test_metrics_from_probabilities():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.4, 0.5, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.1, 0.8],
            [0.3, 0.1, 0.6],
        ]
    )
    m = classification_metrics(y, p, CLASS_NAMES)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 2]]
    assert m["per_class"]["Normal"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["COVID-19"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["COVID-19"]["roc_auc"] == pytest.approx(1.0)


def test_temperature_recovers_the_true_one_and_calibrates():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 3, (4000, 3))
    true_t = 2.5
    y = np.array([rng.choice(3, p=p) for p in softmax(z, true_t)])
    t = fit_temperature(z, y)
    assert t == pytest.approx(true_t, rel=0.1)
    assert reliability(softmax(z, t), y)["ece"] < reliability(softmax(z), y)["ece"]


def test_perfectly_separated_validation_does_not_make_the_model_certain():
    z = np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]] * 20)
    y = np.array([0, 1, 2] * 20)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.01)  # the bound, not T -> 0


def test_balancing():
    labels = np.array([0] * 8 + [1] * 2 + [2] * 4)
    rows = np.arange(len(labels))
    over = oversample_rows(rows, labels, seed=0)
    assert np.bincount(labels[over]).tolist() == [8, 8, 8]
    w = class_weights(labels, 3)
    assert w[1] > w[2] > w[0] and w[0] * 8 == pytest.approx(w[1] * 2)
