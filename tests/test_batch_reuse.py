"""What the app hands to an export child (``--reuse``) is used only where it still applies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from imaging_factory import png_bytes

from desktop.batch import Known, read_known, run_folder, write_known
from desktop.paths import DEMO_BUNDLE
from export.attention import Attention
from export.novelty import Novelty
from export.results import Bundle, FileKey

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="demo bundle not built"
)


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "scans"
    f.mkdir()
    grad = np.linspace(0, 4095, 96 * 80).reshape(96, 80).astype(np.uint16)
    for name in ("a.png", "b.png", "c.png", "d.png"):
        (f / name).write_bytes(png_bytes(grad))
    return f


def test_handed_over_results_apply_to_the_same_file_version_and_model(tmp_path, folder):
    bundle = Bundle.open(DEMO_BUNDLE)
    n = len(bundle.class_names)
    mine = np.full(n, 1.0 / n, np.float32)
    key = {p.name: FileKey.of(p) for p in folder.iterdir()}
    known = {
        "a.png": Known(
            key["a.png"],
            mine,
            None,
            Attention(0.9, 0.0, 0.0, "estimated"),
            novelty=Novelty(True, 1.0, 9.0),
        ),
        "b.png": Known(key["b.png"], None, "permission denied reading the file"),  # now readable
        "c.png": Known(key["c.png"], np.ones(n + 1, np.float32), None),  # another class count
        "d.png": Known(FileKey(1, 1), mine, None),  # the file changed since
    }
    reuse = tmp_path / "reuse.json"
    write_known(reuse, bundle.results_key, known)
    assert read_known(reuse, "another model") == {}
    back = read_known(reuse, bundle.results_key)
    assert set(back) == set(known) and back["b.png"].error == known["b.png"].error

    pages = {p.result.rel_path: p for p in run_folder(folder, bundle, known=back)}
    a = pages["a.png"].result
    assert a.provider == "reused" and np.allclose(a.probabilities, mine)
    assert a.attention.lung_share == pytest.approx(0.9)
    for name in ("b.png", "c.png", "d.png"):  # classified here, as the headless path would
        r = pages[name].result
        assert r.error is None and r.provider != "reused", name
        assert r.probabilities.shape == (n,) and not np.allclose(r.probabilities, mine)
    assert pages["a.png"].decoded is None  # nothing left to compute: not even decoded


def test_a_damaged_hand_over_is_ignored(tmp_path, folder):
    bundle = Bundle.open(DEMO_BUNDLE)
    bad = tmp_path / "bad.json"
    doc = {
        "format": "cxr-review-results",
        "model_sha256": bundle.results_key,
        "files": [{"path": "a.png", "size": "x"}],
    }
    bad.write_text(json.dumps(doc))
    assert read_known(bad, bundle.results_key) == {}
    bad.write_text("[not json")
    assert read_known(bad, bundle.results_key) == {}
    pages = list(run_folder(folder, bundle, known=read_known(bad, bundle.results_key)))
    assert all(p.result.probabilities is not None for p in pages)
