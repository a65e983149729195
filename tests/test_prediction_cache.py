"""Cached AI results are reused only for the same file state and the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop.folder_model import visible_rows
from desktop.prediction_cache import PredictionCache
from desktop.review_store import Review
from export.attention import Attention
from export.results import ImageResult


def test_cache_hits_only_for_same_file_and_model(tmp_path):
    c = PredictionCache(tmp_path / "p.sqlite")
    p = np.array([0.1, 0.7, 0.2], np.float32)
    c.put_many([("a.png", 10, 111, "sha1", p, None), ("b.png", 5, 1, "sha1", None, "truncated")])
    got, err = c.get("a.png", 10, 111, "sha1")
    np.testing.assert_allclose(got, p)
    assert err is None
    assert c.get("b.png", 5, 1, "sha1") == (None, "truncated")
    assert c.get("a.png", 11, 111, "sha1") is None  # size changed
    assert c.get("a.png", 10, 112, "sha1") is None  # modified
    assert c.get("a.png", 10, 111, "sha2") is None  # another model
    c.close()


def _e(name, probs=None, error=None, decision=None):
    review = Review(name, decision, None, None, None, "", "x", "t") if decision else None
    return ImageResult(
        path=Path("/nowhere") / name,
        rel_path=name,
        error=error,
        review=review,
        probabilities=None if probs is None else np.array(probs),
    )


NAMES = ("COVID-19", "Normal", "Pneumonia")


def test_filters_and_sorts():
    es = [
        _e("c.png", [0.9, 0.05, 0.05]),
        _e("a.png", [0.4, 0.35, 0.25], decision="agree"),
        _e("b.png", error="truncated"),
        _e("d.png", [0.1, 0.2, 0.7]),
    ]
    assert visible_rows(es, NAMES) == [1, 2, 0, 3]
    assert visible_rows(es, NAMES, filter_name="COVID-19") == [1, 0]  # a.png, c.png
    assert visible_rows(es, NAMES, filter_name="Errors") == [2]
    assert visible_rows(es, NAMES, filter_name="Not reviewed") == [2, 0, 3]
    assert visible_rows(es, NAMES, filter_name="Uncertain AI") == [1]
    assert visible_rows(es, NAMES, sort_name="Most uncertain first") == [1, 3, 0, 2]
    assert visible_rows(es, NAMES, sort_name="Confidence (high first)") == [0, 3, 1, 2]
    assert visible_rows(es, NAMES, sort_name="AI class")[:3] == [1, 0, 3]


def test_probabilities_never_print_as_certain():
    from desktop.folder_model import format_probability

    assert format_probability(1.0) == ">99.9 %"
    assert format_probability(0.99996) == ">99.9 %"
    assert format_probability(0.9994) == "99.9 %"
    assert format_probability(0.0) == "<0.1 %"
    assert format_probability(0.5) == "50.0 %"
    assert format_probability(0.999, 0) == ">99 %" and format_probability(0.42, 0) == "42 %"


def test_attention_cached_per_file_model_and_method(tmp_path):
    c = PredictionCache(tmp_path / "p.sqlite")
    att = Attention(0.31, 0.4, 0.2, "estimated")
    c.put_attention("a.png", 10, 5, "sha1", "gradcam", att)
    assert c.get_attention("a.png", 10, 5, "sha1", "gradcam") == att
    assert c.get_attention("a.png", 10, 6, "sha1", "gradcam") is None  # file changed
    assert c.get_attention("a.png", 10, 5, "sha2", "gradcam") is None  # other model
    assert c.get_attention("a.png", 10, 5, "sha1", "hirescam") is None
    failed = Attention.not_checked("Grad-CAM failed")  # "not judged" survives the round trip
    c.put_attention("b.png", 1, 1, "sha1", "gradcam", failed)
    back = c.get_attention("b.png", 1, 1, "sha1", "gradcam")
    assert back == failed and not back.judged
    c._db.execute("UPDATE attention SET attention = '[1, 2]' WHERE rel_path = 'b.png'")
    assert c.get_attention("b.png", 1, 1, "sha1", "gradcam") is None  # damaged: recompute
    c.close()


def test_flag_filter_uses_the_threshold():
    from desktop.folder_model import attention_summary

    es = [
        ImageResult(Path(f"{k}.png"), f"{k}.png", probabilities=np.array([0.2, 0.7, 0.1]))
        for k in "abc"
    ]
    es[0].attention = Attention(0.2, 0.1, 0.0, "estimated")
    es[1].attention = Attention(0.8, 0.1, 0.0, "estimated")
    names = ("COVID-19", "Normal", "Pneumonia")
    assert visible_rows(es, names, filter_name="Looked outside lungs") == [0]
    assert visible_rows(es, names, filter_name="Looked outside lungs", min_lung_share=0.9) == [0, 1]
    assert attention_summary(es, 0.5) == (1, 2, 3)
