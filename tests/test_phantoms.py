"""Phantoms: deterministic, anatomically arranged, and their masks match what is drawn."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from training.phantom_dataset import PhantomError, class_counts, parse_ratio, plan, write_phantoms
from training.phantoms import CLASSES, CONFOUND_MARKERS, render_phantom

SIZE = 192


def _render(label, seed, **kw):
    return render_phantom(label, SIZE, np.random.default_rng(seed), **kw)


def test_deterministic_per_seed():
    a, b = _render("COVID-19", 5), _render("COVID-19", 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.lesion, b.lesion)
    assert not np.array_equal(a.image, _render("COVID-19", 6).image)


@pytest.mark.parametrize("label", ["COVID-19", "Pneumonia"])
@pytest.mark.parametrize("seed", range(6))
def test_lesion_mask_lines_up_with_the_drawn_lesion(label, seed):
    """Render the same patient with and without the lesion: the difference lies in the mask."""
    with_l = _render(label, seed)
    without = _render(label, seed, with_lesion=False)
    diff = with_l.image - without.image
    mask = with_l.lesion
    assert mask.sum() > 0.005 * SIZE * SIZE
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # 2 px margin
    energy = np.abs(diff)
    assert energy[near].sum() / energy.sum() > 0.85
    assert diff[mask].mean() > 0.05  # the lesion is denser (brighter) where the mask says
    assert (mask & ~with_l.lungs).sum() == 0  # lesions live inside the lungs


def test_normal_has_no_lesion_and_lesion_toggle_keeps_anatomy():
    n = _render("Normal", 3)
    assert not n.lesion.any()
    off = _render("Pneumonia", 3, with_lesion=False)
    assert not off.lesion.any()


def _halves(mask):
    cols = np.nonzero(mask)[1]
    return (cols < SIZE / 2).mean()


def test_covid_is_bilateral_peripheral_lower_zone():
    for seed in range(8):
        ph = _render("COVID-19", seed)
        left_share = _halves(ph.lesion)
        assert 0.1 < left_share < 0.9, "bilateral"
        rows, cols = np.nonzero(ph.lesion)
        lrows, lcols = np.nonzero(ph.lungs)
        assert rows.mean() > lrows.mean() - 0.02 * SIZE, "lower zones"
        mid = SIZE / 2
        assert np.abs(cols - mid).mean() > np.abs(lcols - mid).mean(), "peripheral"


def test_pneumonia_is_one_sided_and_on_the_recorded_side():
    for seed in range(10):
        ph = _render("Pneumonia", seed)
        if ph.info.get("bilateral"):
            continue
        left_share = _halves(ph.lesion)  # image left = patient's right
        if ph.info["side"] == "right":
            assert left_share > 0.9
        else:
            assert left_share < 0.1


def test_lungs_dark_heart_left_ctr_under_half():
    for seed in range(8):
        ph = _render("Normal", seed)
        n_lab, _ = cv2.connectedComponents(ph.lungs.astype(np.uint8))
        assert n_lab - 1 == 2, "two lung fields"
        body = ph.image > 0.2
        assert ph.image[ph.lungs].mean() < ph.image[body & ~ph.lungs].mean() - 0.1
        assert 0.3 < ph.info["ctr"] < 0.5
        assert ph.info["heart_offset"] > 0.01  # toward image right = patient's left


def test_marker_mask_is_the_burned_in_text():
    ph = _render("Normal", 2, marker=("B1", "top-left"))
    assert ph.markers.sum() > 20
    assert ph.image[ph.markers].mean() > 0.85
    rows, cols = np.nonzero(ph.markers)
    assert rows.max() < SIZE / 3 and cols.max() < SIZE / 3
    assert not _render("Normal", 2).markers.any()


def test_class_counts_and_ratio():
    assert class_counts(10, (1, 1, 1)) == {"COVID-19": 4, "Normal": 3, "Pneumonia": 3}
    assert class_counts(8, parse_ratio("2:1:1")) == {"COVID-19": 4, "Normal": 2, "Pneumonia": 2}
    assert class_counts(5, (0, 1, 0)) == {"COVID-19": 0, "Normal": 5, "Pneumonia": 0}
    for bad in ("1:1", "a:b:c", "-1:1:1", "0:0:0"):
        with pytest.raises(PhantomError):
            parse_ratio(bad)


def test_confound_ties_markers_to_class_and_none_does_not():
    items = plan(300, seed=4, confound="markers")
    covid = [it for it in items if it.label == "COVID-19"]
    assert np.mean([it.marker == ("B1", "top-left") for it in covid]) > 0.9
    items = plan(300, seed=4, confound="none", marker_prob=1.0)
    by_class = {c: [it.marker[0] for it in items if it.label == c] for c in CLASSES}
    shares = [np.mean([t == "B1" for t in v]) for v in by_class.values()]
    assert max(shares) < 0.35  # B1 is one of seven texts whatever the class
    items = plan(600, seed=4, confound="markers", confound_p=1.0)
    assert all(it.marker == CONFOUND_MARKERS[it.label] for it in items)
    # shuffled: the class markers on every image, each class carrying all three equally
    items = plan(600, seed=4, confound="shuffled")
    assert {it.marker for it in items} == set(CONFOUND_MARKERS.values())
    for c in CLASSES:
        own = np.mean([it.marker == CONFOUND_MARKERS[c] for it in items if it.label == c])
        assert 0.22 < own < 0.45, (c, own)
    with pytest.raises(PhantomError):
        plan(3, confound="hospital")


def test_written_dataset_layout(tmp_path):
    out = tmp_path / "phantoms"
    write_phantoms(out, 9, size=96, bit_depth=16, seed=1, workers=1)
    for folder in ("COVID", "Normal", "Viral Pneumonia"):
        imgs = sorted((out / folder / "images").glob("*.png"))
        assert len(imgs) == 3 and imgs[0].name.startswith(folder + "-")
        for kind in ("masks", "lesion_masks", "marker_masks"):
            m = cv2.imread(str(out / folder / kind / imgs[0].name), cv2.IMREAD_UNCHANGED)
            assert m.shape == (96, 96) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
        im = cv2.imread(str(imgs[0]), cv2.IMREAD_UNCHANGED)
        assert im.dtype == np.uint16 and im.max() > 255
    with open(out / "labels.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 9 and {r["label"] for r in rows} == set(CLASSES)
    meta = json.loads((out / "phantoms.json").read_text())
    assert meta["seed"] == 1 and len(meta["images"]) == 9
    assert all((out / r["path"]).is_file() for r in rows)


def test_output_does_not_depend_on_worker_count(tmp_path):
    write_phantoms(tmp_path / "a", 8, size=64, bit_depth=8, seed=9, workers=1)
    write_phantoms(tmp_path / "b", 8, size=64, bit_depth=8, seed=9, workers=2)
    for p in sorted((tmp_path / "a").rglob("*.png")):
        q = tmp_path / "b" / p.relative_to(tmp_path / "a")
        assert p.read_bytes() == q.read_bytes(), p


def test_flat_without_masks_and_non_empty_refusal(tmp_path):
    write_phantoms(tmp_path / "d", 4, size=64, bit_depth=8, seed=0, flat=True, masks=False)
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == ["labels.csv", *[f"phantom-0000{i}.png" for i in range(1, 5)], "phantoms.json"]
    with pytest.raises(PhantomError, match="not empty"):
        write_phantoms(tmp_path / "d", 4, size=64)
    write_phantoms(tmp_path / "d", 4, size=64, bit_depth=8, flat=True, masks=False, force=True)


def _cxr(*args):
    return subprocess.run(
        [sys.executable, "-m", "desktop.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_writes_and_reports(tmp_path):
    r = _cxr(
        "phantoms",
        str(tmp_path / "o"),
        "--n",
        "6",
        "--size",
        "64",
        "--bit-depth",
        "8",
        "--seed",
        "2",
        "--confound",
        "markers",
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 6 images" in r.stderr
    assert len(list((tmp_path / "o").rglob("images/*.png"))) == 6


@pytest.mark.parametrize(
    "args",
    [
        ["--n", "0"],
        ["--n", "3", "--size", "8"],
        ["--n", "3", "--class-ratio", "1:2"],
        ["--n", "3", "--marker-prob", "2"],
    ],
)
def test_cli_bad_arguments_one_line_no_traceback(tmp_path, args):
    r = _cxr("phantoms", str(tmp_path / "o"), *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr
