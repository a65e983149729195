"""Any set of two or more classes: training, the CLI, the PDF and the app take the bundle's names.

The data-level tests need no TensorFlow. The bundles (two classes from a
COVID / non-COVID CSV, four from the Radiography Database layout with
Lung_Opacity named) are trained once per module on relabelled tiny phantoms.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from imaging_factory import png_bytes

from desktop.cli import main as cxr_main
from desktop.folder_model import filter_names, visible_rows
from export.results import ImageResult
from training.data_sources import DataError, Sample, load_dataset, parse_class_map, parse_classes
from training.splits import check_class_sizes

ROOT = Path(__file__).resolve().parents[1]
GRAD = (np.linspace(0, 4095, 32 * 32).reshape(32, 32)).astype(np.uint16)
TWO = ("COVID-19", "non-COVID")  # COVID is read as COVID-19 (the Radiography Database's name)
FOUR = ("Lung_Opacity", "COVID-19", "Normal", "Pneumonia")  # --classes order = index order


def _labelled_csv(folder: Path, counts: dict[str, int]) -> Path:
    """A CSV manifest with ``counts`` images per raw label (distinct tiny PNGs)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        k = 0
        for label, n in counts.items():
            for _ in range(n):
                name = f"img{k:04d}.png"
                (folder / name).write_bytes(png_bytes(np.roll(GRAD, k, axis=1)))
                w.writerow([name, label])
                k += 1
    return folder / "labels.csv"


def _train_error(capsys, *args: str) -> str:
    """`cxr train` that must stop before training: exit 2 and exactly one line on stderr."""
    code = cxr_main(["train", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) >= 1 and err[-1].startswith("cxr train: error: "), err
    assert all(not line.startswith("cxr train: error") for line in err[:-1])
    return err[-1]


# --------------------------------------------------------------------------- no TensorFlow


def test_classes_come_from_the_data_or_from_the_flag(tmp_path):
    m = _labelled_csv(tmp_path, {"COVID": 3, "non-COVID": 4})
    ds = load_dataset(m)
    assert ds.class_names == TWO and ds.class_counts == {"COVID-19": 3, "non-COVID": 4}
    assert ds.renamed == {"COVID": "COVID-19"} and not ds.left_out
    named = parse_classes("COVID, non-COVID")
    ds = load_dataset(m, classes=named, class_map=parse_class_map(None, named))
    assert ds.class_names == ("COVID", "non-COVID") and ds.class_counts["COVID"] == 3
    for bad in ("COVID", "A,,B", "A,a"):
        with pytest.raises(DataError, match="--classes"):
            parse_classes(bad)


def test_radiography_layout_three_by_default_four_when_lung_opacity_is_named(tmp_path):
    for folder, n in (("COVID", 2), ("Normal", 2), ("Viral Pneumonia", 2), ("Lung_Opacity", 3)):
        for i in range(n):
            p = tmp_path / folder / "images" / f"{folder}-{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(png_bytes(np.roll(GRAD, i, axis=0)))
    ds = load_dataset(tmp_path)
    assert ds.class_names == ("COVID-19", "Normal", "Pneumonia")
    assert ds.left_out == {"Lung_Opacity": 3}  # the documented default, reported by cxr train
    four = load_dataset(tmp_path, classes=FOUR, class_map=parse_class_map(None, FOUR))
    assert four.class_names == FOUR and four.class_counts["Lung_Opacity"] == 3
    mapped = load_dataset(tmp_path, class_map=parse_class_map("Lung_Opacity=Lung_Opacity"))
    assert mapped.class_names == ("COVID-19", "Normal", "Pneumonia", "Lung_Opacity")


def test_labels_outside_the_named_classes_stop(tmp_path, capsys):
    """The measured defect: a COVID / non-COVID CSV trained on the COVID rows alone."""
    m = _labelled_csv(tmp_path, {"COVID": 12, "non-COVID": 13})
    line = _train_error(
        capsys, str(m), "--out", str(tmp_path / "run"), "--classes", "COVID-19,Normal,Pneumonia"
    )
    assert "'non-COVID' (13)" in line and "--classes" in line and "--class-map" in line
    assert not (tmp_path / "run" / "split.csv").exists()  # nothing was trained on the rest


def test_a_named_class_without_images_stops(tmp_path, capsys):
    m = _labelled_csv(tmp_path, {"COVID": 12, "Normal": 12})
    line = _train_error(
        capsys, str(m), "--out", str(tmp_path / "run"), "--classes", "COVID-19,Normal,Pneumonia"
    )
    assert "class 'Pneumonia' has no images" in line and "--classes" in line


def test_an_empty_class_folder_stops(tmp_path, capsys):
    for i in range(12):
        for folder in ("COVID", "Normal"):
            p = tmp_path / "d" / folder / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(png_bytes(np.roll(GRAD, i, axis=1)))
    (tmp_path / "d" / "Viral Pneumonia").mkdir()
    for i in range(2):
        p = tmp_path / "d" / "Lung_Opacity" / f"{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(png_bytes(np.roll(GRAD, i, axis=0)))
    code = cxr_main(["train", str(tmp_path / "d"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines()[-1].startswith("cxr train: error: ")
    assert "class 'Pneumonia' has no images" in err
    # the Radiography Database default is a stated rule, not a silent drop
    assert "left out Lung_Opacity (2 images) by default" in err and "--classes" in err


def test_too_few_images_for_the_stratified_split_stops(tmp_path, capsys):
    m = _labelled_csv(tmp_path, {"COVID": 12, "non-COVID": 4})
    line = _train_error(capsys, str(m), "--out", str(tmp_path / "run"))
    assert "class 'non-COVID' has 4 images" in line and "at least 10" in line
    assert "train, val and test" in line
    # a coarser split needs fewer: 70/15/15 -> 7 per class
    with pytest.raises(DataError, match="at least 7"):
        check_class_sizes([Sample(f"{i}", "A") for i in range(6)], ("A",), (0.7, 0.15, 0.15))
    check_class_sizes([Sample(f"{i}", "A") for i in range(7)], ("A",), (0.7, 0.15, 0.15))


def test_patients_are_the_unit_and_given_splits_need_train_images():
    one_patient = [Sample(f"{i}", "A", "p1") for i in range(30)]
    with pytest.raises(DataError, match="'A' has 1 patients"):
        check_class_sizes(one_patient, ("A",), (0.8, 0.1, 0.1))
    given = [Sample("a", "A", "", "train"), Sample("b", "B", "", "val")]
    with pytest.raises(DataError, match=r"'B' .* none in the 'train' split"):
        check_class_sizes(given, ("A", "B"), (0.8, 0.1, 0.1))


def test_one_class_only_and_npy_with_named_classes(tmp_path):
    m = _labelled_csv(tmp_path / "one", {"Normal": 3})
    with pytest.raises(DataError, match="only one class"):
        load_dataset(m)
    np.save(tmp_path / "trainx.npy", np.zeros((4, 8, 8), np.uint8))
    np.save(tmp_path / "trainy.npy", np.array([0, 1, 0, 1]))
    ds = load_dataset(tmp_path, classes=("yes", "no"))
    assert ds.class_names == ("yes", "no") and ds.class_counts == {"yes": 2, "no": 2}
    np.save(tmp_path / "trainy.npy", np.eye(4, dtype=np.float32))
    with pytest.raises(DataError, match=r"4 columns.*--classes"):
        load_dataset(tmp_path, classes=("yes", "no"))


def test_filters_follow_the_class_names():
    names = ("COVID", "non-COVID")
    assert filter_names(names) == (
        "All",
        "COVID",
        "non-COVID",
        "Not reviewed",
        "Uncertain AI",
        "Looked outside lungs",
        "Unlike training data",
        "Errors",
    )
    assert "COVID-19" not in filter_names(names)
    entries = [
        ImageResult(Path("a.png"), "a.png", probabilities=np.array([0.9, 0.1])),
        ImageResult(Path("b.png"), "b.png", probabilities=np.array([0.2, 0.8])),
        ImageResult(Path("c.png"), "c.png", error="unreadable"),
    ]
    for name in filter_names(names):
        visible_rows(entries, names, filter_name=name)  # every listed filter works
    assert visible_rows(entries, names, filter_name="non-COVID") == [1]
    four = ("Lung_Opacity", "COVID-19", "Normal", "Pneumonia")
    probs = np.array([0.1, 0.1, 0.1, 0.7])
    e4 = [ImageResult(Path("x.png"), "x.png", probabilities=probs)]
    assert visible_rows(e4, four, filter_name="Pneumonia") == [0]
    assert visible_rows(e4, four, filter_name="Lung_Opacity") == []
    with pytest.raises(ValueError, match="unknown filter"):
        visible_rows(e4, four, filter_name="non-COVID")
    assert filter_names(("Errors", "B")) == (
        "All",
        "B",
        "Not reviewed",
        "Uncertain AI",
        "Looked outside lungs",
        "Unlike training data",
        "Errors",
    )


# --------------------------------------------------------------------------- trained bundles


def _phantom_csv(root: Path, n: int, ratio, relabel) -> Path:
    """Tiny phantoms relabelled through a CSV manifest: ``relabel(class, k)`` -> raw label."""
    from training.phantom_dataset import write_phantoms

    write_phantoms(root, n, size=64, bit_depth=8, seed=11, ratio=ratio, masks=False, workers=1)
    seen: dict[str, int] = {}
    with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with open(root / "relabelled.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "patient_id"])
        for r in rows:
            k = seen[r["label"]] = seen.get(r["label"], -1) + 1
            w.writerow([r["path"], relabel(r["label"], k), r["patient_id"]])
    return root / "relabelled.csv"


def _train(root: Path, data: Path, *extra: str) -> Path:
    code = cxr_main(
        [
            "train",
            str(data),
            "--out",
            str(root / "run"),
            "--backbone",
            "compact",
            "--weights",
            "none",
            "--image-size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--workers",
            "1",
            "--patience",
            "1",
            *extra,
        ]
    )
    assert code == 0
    return root / "run" / "bundle"


@pytest.fixture(scope="module")
def two_class_bundle(tmp_path_factory):
    pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("two")
    data = _phantom_csv(
        root / "data", 30, (1, 1, 1), lambda c, k: "COVID" if c == "COVID-19" else "non-COVID"
    )
    return _train(root, data)


@pytest.fixture(scope="module")
def four_class_bundle(tmp_path_factory):
    pytest.importorskip("keras")
    root = tmp_path_factory.mktemp("four")
    folder_of = {"COVID-19": "COVID", "Normal": "Normal", "Pneumonia": "Viral Pneumonia"}

    def relabel(c: str, k: int) -> str:  # half the pneumonia phantoms stand in for Lung_Opacity
        return "Lung_Opacity" if c == "Pneumonia" and k % 2 else folder_of[c]

    data = _phantom_csv(root / "data", 44, (1, 1, 2), relabel)
    return _train(root, data, "--classes", ",".join(FOUR))


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from training.phantom_dataset import write_phantoms

    out = tmp_path_factory.mktemp("scans") / "scans"
    write_phantoms(out, 4, size=64, bit_depth=16, seed=2, flat=True, masks=False, workers=1)
    return out


def _cxr(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.mark.parametrize("which", ["two", "four"])
def test_bundle_classes_through_classify_and_report(which, request, scans, tmp_path):
    from pypdf import PdfReader

    from export.bundle import load_bundle

    bundle = request.getfixturevalue(f"{which}_class_bundle")
    names = TWO if which == "two" else FOUR
    m = load_bundle(bundle)
    assert m.class_names == names
    assert set(m.training.class_counts) == set(names)
    assert set(m.training.metrics["per_class"]) == set(names)
    from training.evaluate_cmd import evaluate_bundle

    data = bundle.parent.parent / "data" / "relabelled.csv"  # labels read as the bundle's classes
    ev = evaluate_bundle(str(bundle), str(data), workers=1)
    assert ev["class_names"] == list(names) and ev["n"] == (30 if which == "two" else 44)
    out = tmp_path / "results.csv"
    r = _cxr("classify", scans, "--bundle", bundle, "--out", out)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    p_cols = [c for c in rows[0] if c.startswith("p_")]
    assert p_cols == [f"p_{n}" for n in names]
    for row in rows:
        assert row["predicted"] in names
        assert abs(sum(float(row[c]) for c in p_cols) - 1) < 1e-4
    pdf = tmp_path / "report.pdf"
    r = _cxr("report", scans, "--bundle", bundle, "--out", pdf)
    assert r.returncode == 0, r.stderr
    text = " ".join("\n".join(p.extract_text() for p in PdfReader(str(pdf)).pages).split())
    for n in names:
        assert f"{n}:" in text, n  # the cover counts every class of the bundle
    if which == "two":
        assert "Pneumonia" not in text


def test_app_takes_the_classes_of_each_bundle(qtbot, two_class_bundle, four_class_bundle, scans):
    from PySide6.QtCore import Qt

    from desktop.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.set_bundle(two_class_bundle)
    with qtbot.waitSignal(w.classification_finished, timeout=120_000):
        w.open_folder(scans)
    items = [w.filter_box.itemText(i) for i in range(w.filter_box.count())]
    assert items == list(filter_names(TWO))
    assert [b.text() for b in w.side.class_buttons] == list(TWO)

    def listed() -> list[str]:
        tm = w.table_model
        return [tm.data(tm.index(r, 0)) for r in range(tm.rowCount())]

    for name in TWO:  # filtering by a class shows exactly the images the AI put there
        w.filter_box.setCurrentText(name)
        want = sorted(e.rel_path for e in w.entries if e.predicted(TWO) == name)
        assert sorted(listed()) == want, name
    w.filter_box.setCurrentText("All")
    qtbot.keyClick(w, Qt.Key.Key_3)  # no third class: no decision
    assert all(e.review is None for e in w.entries)
    w.filter_box.setCurrentText("non-COVID")

    with qtbot.waitSignal(w.classification_finished, timeout=120_000):
        w.set_bundle(four_class_bundle)  # the open folder is classified again
    items = [w.filter_box.itemText(i) for i in range(w.filter_box.count())]
    assert items == list(filter_names(FOUR))
    assert w.filter_box.currentText() == "All"  # "non-COVID" is not a class of this bundle
    assert len(listed()) == len(w.entries) == 4
    w.filter_box.setCurrentText("Lung_Opacity")
    assert sorted(listed()) == sorted(
        e.rel_path for e in w.entries if e.predicted(FOUR) == "Lung_Opacity"
    )
    w.filter_box.setCurrentText("All")
    qtbot.waitUntil(lambda: w.image.index == w.session.current, timeout=10_000)  # on screen
    qtbot.keyClick(w, Qt.Key.Key_4)  # key 4: the fourth class, whatever its name
    decided = [e.review.reviewer_class for e in w.entries if e.review is not None]
    assert decided == ["Pneumonia"]
    w.side.class_buttons[0].click()  # the first button: class 0 of this bundle
    decided = [e.review.reviewer_class for e in w.entries if e.review is not None]
    assert decided == ["Lung_Opacity"]
    w.reviews.decide("override", "COVID-19")
    decided = [e.review.reviewer_class for e in w.entries if e.review is not None]
    assert decided == ["COVID-19"]
    w.shutdown()
