"""The model-based guard: the scores, the fit at export, the bundle's arrays as untrusted input,
and one ONNX run giving both probabilities and the verdict."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from export.bundle import (
    BundleError,
    Manifest,
    SavedModelInfo,
    load_bundle,
    read_manifest,
    write_manifest,
)
from export.image_input import InputSpec
from export.novelty_model import (
    Reference,
    auroc,
    energy,
    fit_gaussian,
    fit_reference,
    ledoit_wolf,
    mahalanobis,
)

# --------------------------------------------------------------------------- numpy only


def test_ledoit_wolf_is_well_conditioned_with_fewer_rows_than_dimensions():
    x = np.random.default_rng(0).standard_normal((20, 50))
    cov, shrink = ledoit_wolf(x - x.mean(0))
    assert 0.0 < shrink <= 1.0
    assert np.linalg.eigvalsh(cov).min() > 0


def test_mahalanobis_is_the_distance_to_the_nearest_class_mean():
    rng = np.random.default_rng(1)
    feats, labels = rng.standard_normal((300, 4)), np.arange(300) % 3
    feats[labels == 1] += 5.0
    means, precision, _ = fit_gaussian(feats, labels, 3)
    probe = rng.standard_normal((5, 4)) * 3
    brute = [
        min(float(np.sqrt((f - m) @ precision.astype(np.float64) @ (f - m))) for m in means)
        for f in probe
    ]
    np.testing.assert_allclose(mahalanobis(probe, means, precision), brute, rtol=1e-5)


def test_an_images_score_does_not_depend_on_its_batch():
    """CPU batches of 16, CUDA batches of 32, one image at a time: the same score."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((256, 256))
    precision = (a @ a.T / 256).astype(np.float32)
    means = rng.standard_normal((3, 256)).astype(np.float32)
    feats = rng.standard_normal((32, 256)).astype(np.float32)
    whole = mahalanobis(feats, means, precision)
    halves = np.concatenate([mahalanobis(feats[:16], means, precision),
                             mahalanobis(feats[16:], means, precision)])  # fmt: skip
    alone = np.array([mahalanobis(f[None], means, precision)[0] for f in feats])
    assert np.array_equal(whole, halves) and np.array_equal(whole, alone)


def test_auroc_and_energy():
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.ones(4), np.ones(3)) == 0.5
    # energy: a confident logit gives a low (in-distribution) score
    assert energy(np.array([[10.0, 0.0]]))[0] < energy(np.array([[0.0, 0.0]]))[0]


def test_fit_keeps_the_score_that_separates_and_fixes_the_threshold_on_validation():
    rng = np.random.default_rng(2)
    d = 8
    train = rng.standard_normal((600, d))
    labels = np.arange(600) % 2
    val = rng.standard_normal((400, d))
    far = rng.standard_normal((100, d)) + 6.0
    logits = np.zeros((400, 2))  # the logits cannot tell: energy is the same everywhere
    ref, ev = fit_reference(train, labels, 2, (logits, val), {"far": (np.zeros((100, 2)), far)})
    assert ref.score == "mahalanobis"
    assert ev["auroc"]["mahalanobis"]["far"] == 1.0 and ev["auroc"]["energy"]["far"] == 0.5
    assert ref.threshold == pytest.approx(
        np.percentile(mahalanobis(val, ref.means, ref.precision), 99)
    )
    assert ev["val_flagged"] <= 0.02 and ev["ood_flagged"]["far"] == 1.0


def test_the_verdict_says_why_in_words():
    ref = Reference("energy", -5.0, np.zeros((2, 1), np.float32), np.eye(1, dtype=np.float32))
    like, unlike, broken = ref.verdicts(np.array([[20.0, 0.0], [0.0, 0.0], [np.nan, 0.0]]), None)
    assert like.available and not like.unlike and like.threshold == -5.0
    assert unlike.unlike and unlike.reasons[0].startswith(
        "the model's features are far from its training images (score "
    )
    assert "> -5.0)" in unlike.reasons[0]
    assert broken.unlike  # a score that is not a number is never "like the training data"


# --------------------------------------------------------------------------- exported bundles


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A tiny compact model exported with the guard (random weights: the numbers are not the
    point, the plumbing is)."""
    from export.build import ReferenceData, write_bundle
    from training.model import ModelSpec, build_model
    from training.novelty_sets import selection_sets

    spec = InputSpec(height=32, width=32)
    model = build_model(ModelSpec("compact", 32, 3, "none"))
    x = np.random.default_rng(0).uniform(0, 255, (40, 32, 32, 3)).astype(np.float32)
    ref = ReferenceData([x[:30]], np.arange(30) % 3, [x[30:]], selection_sets(spec, n=4))
    out = tmp_path_factory.mktemp("guarded") / "bundle"
    manifest = Manifest("guarded", input=spec, savedmodel=SavedModelInfo(cam_layer="cam_conv"))
    write_bundle(model, out, manifest, parity_images=x[:4], reference=ref)
    return out, x


def _copy(src, dst, **changes):
    shutil.copytree(src, dst)
    m = read_manifest(dst)
    write_manifest(dst, replace(m, **changes))
    return dst


def test_one_run_gives_probabilities_and_the_verdict(guarded):
    from export.onnx_runtime import OnnxClassifier

    root, x = guarded
    m = load_bundle(root)
    assert m.format_version == 2 and m.novelty is not None
    assert set(m.novelty.evidence["auroc"]) == {"mahalanobis", "energy"}
    assert {"novelty/means.f32", "novelty/precision.f32"} <= set(m.files)
    clf = OnnxClassifier(root, m, prefer="cpu")
    probs, verdicts = clf.classify(x[:3])
    np.testing.assert_allclose(probs, clf.probabilities(x[:3]), atol=1e-6)
    assert len(verdicts) == 3 and all(v.available and v.score is not None for v in verdicts)
    assert verdicts[0].threshold == pytest.approx(m.novelty.threshold)


def test_a_format_1_bundle_loads_and_the_guard_is_not_available(guarded, tmp_path):
    from export.onnx_runtime import OnnxClassifier

    root, x = guarded
    old = _copy(root, tmp_path / "old", format_version=1, novelty=None)
    clf = OnnxClassifier(old, prefer="cpu")
    assert clf.manifest.novelty is None
    probs, verdicts = clf.classify(x[:2])
    assert probs.shape == (2, 3) and all(not v.available and not v.unlike for v in verdicts)


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda n: n.update(score="pickle"), "novelty.score"),
        (lambda n: n.update(threshold=float("nan")), "novelty.threshold"),
        (lambda n: n.update(threshold="18"), "novelty.threshold"),
        (lambda n: n.update(feature_dim=10**6), "novelty.feature_dim"),
        (lambda n: n.update(means_file="../means.f32"), "unsafe path"),
        (lambda n: n.update(means_file="novelty/other.f32"), "does not list"),
    ],
)
def test_a_bad_novelty_section_is_refused(guarded, tmp_path, change, needle):
    root, _ = guarded
    dst = tmp_path / "b"
    shutil.copytree(root, dst)
    d = json.loads((dst / "manifest.json").read_text())
    change(d["novelty"])
    (dst / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(BundleError, match=needle):
        load_bundle(dst)


def test_an_array_of_the_wrong_size_is_refused_even_with_its_hash(guarded, tmp_path):
    root, _ = guarded
    dst = tmp_path / "b"
    shutil.copytree(root, dst)
    p = dst / "novelty" / "precision.f32"
    p.write_bytes(p.read_bytes() + b"\0" * 4)
    write_manifest(dst, read_manifest(dst))  # re-hashed: only the size check can catch it
    with pytest.raises(BundleError, match=r"precision\.f32' holds"):
        load_bundle(dst)


def test_features_of_another_width_than_the_manifest_are_refused(guarded, tmp_path):
    from export.onnx_runtime import OnnxClassifier

    root, _ = guarded
    m = read_manifest(root)
    nov = replace(m.novelty, feature_dim=8)
    dst = tmp_path / "b"
    shutil.copytree(root, dst)
    (dst / "novelty" / "means.f32").write_bytes(b"\0" * 4 * 3 * 8)
    (dst / "novelty" / "precision.f32").write_bytes(b"\0" * 4 * 8 * 8)
    write_manifest(dst, replace(m, novelty=nov))
    with pytest.raises(BundleError, match="features' has 256 values"):
        OnnxClassifier(dst, prefer="cpu")


def test_vgg19_exports_with_the_guard(tmp_path):
    from export.build import ReferenceData, write_bundle
    from export.onnx_runtime import OnnxClassifier
    from training.model import ModelSpec, build_model

    spec = InputSpec(height=32, width=32)
    model = build_model(ModelSpec("vgg19", 32, 3, "none"))
    x = np.random.default_rng(1).uniform(0, 255, (24, 32, 32, 3)).astype(np.float32)
    ood = {"flat": np.full((6, 32, 32, 3), 128.0, np.float32)}
    ref = ReferenceData([x[:16]], np.arange(16) % 3, [x[16:]], ood)
    out = tmp_path / "vgg"
    written = write_bundle(
        model, out, Manifest("vgg", input=spec), parity_images=x[:4], reference=ref
    )
    assert written.novelty.feature_dim == 256
    _, verdicts = OnnxClassifier(out, prefer="cpu").classify(x[:2])
    assert all(v.available and np.isfinite(v.score) for v in verdicts)


def test_the_demo_bundle_flags_a_photo_and_not_its_own_kind(tmp_path):
    """Headless classification sets the verdict: the demo bundle (format 2) on phantoms of
    its training kind and on a colour picture."""
    import cv2

    from desktop.batch import run_folder
    from desktop.paths import DEMO_BUNDLE
    from export.results import Bundle
    from training.phantom_dataset import write_phantoms
    from training.phantom_styles import natural_image

    write_phantoms(tmp_path / "f", 3, size=256, bit_depth=16, seed=11, flat=True, masks=False)
    photo = natural_image(256, np.random.default_rng(0))
    cv2.imwrite(str(tmp_path / "f" / "photo.png"), photo[..., ::-1])
    pages = {
        p.result.rel_path: p.result for p in run_folder(tmp_path / "f", Bundle.open(DEMO_BUNDLE))
    }
    assert pages["photo.png"].novelty.unlike and pages["photo.png"].novelty.available
    phantoms = [r for rel, r in pages.items() if rel.startswith("phantom")]
    assert len(phantoms) == 3 and all(r.novelty.available for r in phantoms)
    assert sum(r.novelty.unlike for r in phantoms) == 0


def test_cached_results_are_keyed_by_the_guard_too():
    """Same ONNX file, other guard statistics: other verdicts, so another cache key."""
    import dataclasses

    from desktop.paths import DEMO_BUNDLE
    from export.results import Bundle, results_key

    m = Bundle.open(DEMO_BUNDLE).manifest
    assert m.novelty is not None and results_key(m).startswith(m.files[m.onnx.file])
    other = dataclasses.replace(m, novelty=dataclasses.replace(m.novelty, threshold=99.0))
    assert results_key(other) != results_key(m)
    assert results_key(dataclasses.replace(m, novelty=None)) == m.files[m.onnx.file]
