"""Checks that need no model: each fires on what it names and stays silent on radiographs;
the reviewer's "this image is inverted" reaches the model, the cache and the CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cxr
from imaging_factory import dicom_bytes, pil_bytes, png_bytes
from PIL import Image

from desktop.paths import DEMO_BUNDLE
from desktop.prediction_cache import PredictionCache
from desktop.review_store import ReviewStore
from export.explain import ImageInput
from export.image_checks import image_reasons, inverted, looks_inverted
from export.image_input import InputSpec, decode_image, read_image
from export.novelty import Novelty

ROOT = Path(__file__).resolve().parents[1]
DEMO_IMAGES = sorted((ROOT / "resources" / "demo" / "images").rglob("*.png"))
SPEC = InputSpec()
needs_bundle = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="no demo bundle"
)


def _checks(data: bytes) -> tuple[str, ...]:
    return ImageInput.from_decoded(decode_image(data), SPEC).checks


def _chest(side: int = 128) -> np.ndarray:
    """A frontal-film look: dark lungs either side of a bright mediastinum, dark air around."""
    y, x = np.mgrid[0:side, 0:side] / side
    body = ((x - 0.5) ** 2 / 0.2 + (y - 0.5) ** 2 / 0.25) < 1
    img = np.where(body, 150.0, 20.0)
    img = img - 60 * (np.abs(np.abs(x - 0.5) - 0.22) < 0.12) * body
    img = img + 90 * (np.abs(x - 0.5) < 0.07) * body
    img += np.random.default_rng(0).normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _tagged(arr: np.ndarray, **tags) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(arr)))
    for k, v in tags.items():
        setattr(ds, k, v)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# ---------------------------------------------------------------- each check, both ways


def test_a_plain_chest_film_passes_every_check():
    assert _checks(png_bytes(_chest())) == ()
    assert _checks(dicom_bytes(_chest().astype(np.uint16) * 16)) == ()


def test_a_colour_photograph_is_flagged_a_grey_film_saved_as_rgb_is_not():
    g = _chest()
    rgb_grey = np.stack([g, g, g], axis=2)
    assert _checks(png_bytes(rgb_grey)) == ()
    jpeg = pil_bytes(Image.fromarray(rgb_grey), "JPEG", quality=70)
    assert _checks(jpeg) == ()  # JPEG leaves a few levels of chroma: still grey
    arrow = rgb_grey.copy()
    arrow[10:20, 10:40] = (255, 0, 0)  # a red annotation covers a small part
    assert _checks(png_bytes(arrow)) == ()
    photo = rgb_grey.astype(np.int16)
    photo[..., 0] += 40
    photo[..., 2] -= 40
    reasons = _checks(png_bytes(np.clip(photo, 0, 255).astype(np.uint8)))
    assert any("colour picture" in r for r in reasons)


def test_few_grey_levels_or_a_flat_fill_is_not_a_radiograph():
    drawing = (np.arange(128 * 128).reshape(128, 128) // 4096 * 60).astype(np.uint8)
    assert any("grey levels" in r for r in _checks(png_bytes(drawing)))
    page = np.full((128, 128), 250, np.uint8)
    page[40:90, 30:100] = np.random.default_rng(1).integers(0, 255, (50, 70))
    assert any("flat grey" in r for r in _checks(png_bytes(page)))


@pytest.mark.parametrize(
    ("tags", "words"),
    [
        ({"ViewPosition": "LL"}, "view position LL"),
        ({"ViewPosition": "RL"}, "view position RL"),
        ({"ViewPosition": "LATERAL"}, "view position LATERAL"),
        ({"BodyPartExamined": "ABDOMEN"}, "body part ABDOMEN"),
        ({"Modality": "CT"}, "modality CT"),
    ],
)
def test_dicom_header_facts_rule_an_image_out(tags, words):
    reasons = _checks(_tagged(_chest().astype(np.uint16) * 16, **tags))
    assert any(words in r for r in reasons), reasons


@pytest.mark.parametrize(
    "tags", [{"ViewPosition": "PA"}, {"ViewPosition": "AP"}, {"BodyPartExamined": "CHEST"}]
)
def test_frontal_chest_dicom_headers_pass(tags):
    assert _checks(_tagged(_chest().astype(np.uint16) * 16, **tags)) == ()


def test_no_demo_phantom_is_flagged_and_every_inverted_copy_is():
    assert len(DEMO_IMAGES) >= 20
    for path in DEMO_IMAGES:
        decoded = read_image(path)
        assert ImageInput.from_path(path, SPEC).checks == (), path
        top = 65535 if decoded.meta.bit_depth == 16 else 255
        dtype = np.uint16 if top == 65535 else np.uint8
        flipped = (top - decoded.pixels).astype(dtype)  # as a converter without inversion
        reasons = _checks(png_bytes(flipped))
        assert any("inverted polarity" in r for r in reasons), path


def test_a_monochrome1_film_decoded_properly_is_not_called_inverted():
    film = _chest().astype(np.uint16) * 16
    mono1 = dicom_bytes(4095 - film, photometric="MONOCHROME1")
    assert _checks(mono1) == ()
    assert looks_inverted(255 - ImageInput.from_decoded(decode_image(mono1), SPEC).analysis)


def test_reasons_come_from_header_then_pixels():
    meta = decode_image(_tagged(_chest().astype(np.uint16) * 16, ViewPosition="LL")).meta
    flat = np.full((64, 64), 7, np.uint8)
    reasons = image_reasons(meta, flat)
    assert "view position" in reasons[0] and "grey levels" in reasons[1]


def test_inverting_for_the_model_flips_its_input_and_silences_the_polarity_check():
    path = DEMO_IMAGES[0]
    plain = ImageInput.from_path(path, SPEC)
    flipped = ImageInput.from_path(path, SPEC, invert=True)
    assert flipped.inverted and not plain.inverted
    diff = np.abs(flipped.model_gray.astype(int) - (255 - plain.model_gray.astype(int)))
    assert diff.max() <= 1  # the same window, mirrored
    film = read_image(path)
    back = ImageInput.from_decoded(inverted(film), SPEC, invert=True)
    np.testing.assert_array_equal(back.model_gray, plain.model_gray)
    assert back.checks == ()


# ---------------------------------------------------------------- remembered, cached, in the CSV


def test_the_store_remembers_inverted_images_apart_from_reviews(tmp_path):
    with ReviewStore.for_folder(tmp_path) as store:
        assert store.inverted_images() == set()
        store.set_inverted("a.png", True)
        store.set_inverted("b.png", True)
        store.set_inverted("b.png", False)
        assert store.get("a.png") is None  # a setting, not a review
    with ReviewStore.for_folder(tmp_path) as store:
        assert store.inverted_images() == {"a.png"}


def test_the_cache_keeps_the_verdict_and_never_mixes_up_inverted_results(tmp_path):
    c = PredictionCache(tmp_path / "p.sqlite")
    p, q = np.array([0.8, 0.1, 0.1], np.float32), np.array([0.1, 0.1, 0.8], np.float32)
    verdict = Novelty.not_available(("inverted polarity",))
    c.put_many([("a.png", 1, 2, "sha", p, None, verdict, False)])
    c.put_many([("a.png", 1, 2, "sha", q, None, Novelty.not_available(), True)])
    probs, err, nov = c.get_with_novelty("a.png", 1, 2, "sha")
    assert err is None
    np.testing.assert_allclose(probs, p)
    assert nov == verdict and nov.unlike
    probs, _e, nov = c.get_with_novelty("a.png", 1, 2, "sha", invert=True)
    np.testing.assert_allclose(probs, q)
    assert not nov.unlike
    c.put_many([("old.png", 1, 2, "sha", p, None)])  # a row without its verdict
    assert c.get("old.png", 1, 2, "sha") is not None
    assert c.get_with_novelty("old.png", 1, 2, "sha") is None  # computed again
    c.close()


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    src = [p for p in DEMO_IMAGES if "8-bit" in p.parts][:3]
    for k, p in enumerate(src):
        (folder / f"film-{k}.png").write_bytes(p.read_bytes())
    flipped = (255 - read_image(src[0]).pixels).astype(np.uint8)
    (folder / "inverted.png").write_bytes(png_bytes(flipped))
    (folder / "fixed.png").write_bytes(png_bytes(flipped))  # the reviewer inverts this one
    g = read_image(src[1]).pixels.astype(np.uint8)
    photo = np.stack([np.clip(g.astype(int) + 50, 0, 255), g, g // 2], axis=2).astype(np.uint8)
    (folder / "photo.png").write_bytes(png_bytes(photo))
    with ReviewStore.for_folder(folder) as store:
        store.set_inverted("fixed.png", True)
    return folder


@needs_bundle
def test_folder_pass_honours_invert_and_reloads_the_verdict_from_the_cache(mixed_folder):
    from desktop.folder_pass import FolderItem, classify_items
    from desktop.messages import Batch
    from export.results import FileKey

    def run(invert_fixed: bool) -> dict[str, tuple]:
        items = [
            FolderItem(p, p.name, FileKey.of(p), invert_fixed and p.name == "fixed.png")
            for p in sorted(mixed_folder.glob("*.png"))
        ]
        out = {}
        for msg in classify_items(DEMO_BUNDLE, items, mixed_folder / "cache.sqlite"):
            if isinstance(msg, Batch):
                for c in msg.items:
                    out[items[c.index].rel_path] = (c.probabilities, c.novelty, msg.from_cache)
        return out

    first = run(True)
    assert any("inverted polarity" in r for r in first["inverted.png"][1].reasons)
    assert any("colour picture" in r for r in first["photo.png"][1].reasons)
    assert not first["fixed.png"][1].unlike  # inverted for the model: a film again
    assert (
        not first["film-0.png"][1].unlike and first["film-0.png"][1].available
    )  # the demo bundle has the model guard
    # the inverted input is the original film: the model says what it says of the film
    np.testing.assert_allclose(first["fixed.png"][0], first["film-0.png"][0], atol=1e-5)
    again = run(True)
    assert all(v[2] for v in again.values())  # every result from the cache ...
    assert again["inverted.png"][1] == first["inverted.png"][1]  # ... with its verdict
    plain = run(False)  # the setting off: computed for the file as stored, not reused
    assert not plain["fixed.png"][2]
    assert plain["fixed.png"][1].unlike


@needs_bundle
def test_classify_csv_has_the_verdict_and_honours_invert(mixed_folder, tmp_path):
    out = tmp_path / "r.csv"
    r = cxr("classify", mixed_folder, "--bundle", DEMO_BUNDLE, "--out", out)
    assert r.returncode == 0, r.stderr
    rows = {x["path"]: x for x in csv.DictReader(out.open(encoding="utf-8"))}
    assert {"ood_score", "unlike_training_data", "unlike_reasons"} <= set(rows["photo.png"])
    assert rows["photo.png"]["unlike_training_data"] == "yes"
    assert "colour" in rows["photo.png"]["unlike_reasons"]
    assert rows["inverted.png"]["unlike_training_data"] == "yes"
    assert rows["fixed.png"]["unlike_training_data"] == "no"
    assert rows["film-0.png"]["unlike_training_data"] == "no"
    # the demo bundle carries the model's score: every classified row has one
    assert all(float(x["ood_score"]) >= 0 for x in rows.values() if x["status"] == "ok")
    assert rows["fixed.png"]["predicted"] == rows["film-0.png"]["predicted"]
    for c in ("COVID-19", "Normal", "Pneumonia"):
        assert rows["fixed.png"][f"p_{c}"] == rows["film-0.png"][f"p_{c}"]


@needs_bundle
def test_evaluate_and_audit_report_the_share_flagged(tmp_path, capsys):
    import json

    from desktop.cli import main
    from training.evaluate_cmd import evaluate_bundle
    from training.phantom_dataset import write_phantoms

    data = tmp_path / "set"
    write_phantoms(data, 6, size=128, bit_depth=8, seed=5, masks=False, workers=1)
    one = sorted(data.rglob("*.png"))[0]
    one.write_bytes(png_bytes((255 - read_image(one).pixels).astype(np.uint8)))
    ev = evaluate_bundle(str(DEMO_BUNDLE), str(data), workers=1)
    un = ev["unlike_training_data"]
    assert (un["n"], un["fraction"]) == (1, round(1 / 6, 4))
    assert un["examples"][0]["path"] == str(one)
    out = tmp_path / "audit.json"
    assert main(["audit", str(DEMO_BUNDLE), str(data), "--json", str(out)]) == 0
    a = json.loads(out.read_text())
    assert (a["n_unlike"], a["unlike_fraction"]) == (1, round(1 / 6, 4))
    assert "unlike the training data: 1 of 6" in capsys.readouterr().out
