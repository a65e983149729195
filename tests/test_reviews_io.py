"""Reviews that travel: export, import by hash then path, conflicts kept, bad input refused."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_runner import cxr

from desktop.annotations import Annotation
from desktop.review_store import ReviewStore, normalise_time
from desktop.reviews_coco import to_coco
from desktop.reviews_import import import_reviews
from desktop.reviews_io import collect, export_document

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "reviews.schema.json").read_text())

MARKS = [
    Annotation.make("arrow", [(5, 6), (30, 20)], "look"),
    Annotation.make("ellipse", [(10, 10), (40, 30)]),
    Annotation.make("rectangle", [(2, 3), (20, 25)], "box"),
    Annotation.make("polyline", [(1, 1), (30, 2), (28, 40)]),
    Annotation.make("text", [(50, 40)], "R marker"),
]


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (48, 64), dtype=np.uint8))


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "scans"
    for k, rel in enumerate(["a.png", "b.png", "sub/c.png", "d.png"]):
        _image(root / rel, k)
    with ReviewStore.for_folder(root) as s:
        s.set_decision("a.png", "agree", reviewer="ann", ai_class="Normal", ai_probability=0.9)
        s.set_note("a.png", "clear lungs", reviewer="ann")
        s.set_annotations("a.png", MARKS, reviewer="ann")
        s.set_decision("b.png", "override", reviewer="bob", reviewer_class="Pneumonia",
                       ai_class="Normal")  # fmt: skip
        s.set_decision("sub/c.png", "uncertain", reviewer="ann", ai_class="COVID-19")
    return root


def _validate(schema: dict, value, where: str = "$") -> None:
    """The subset of JSON Schema that docs/reviews.schema.json uses (no jsonschema here)."""
    types = {"object": dict, "array": list, "string": str, "number": (int, float),
             "integer": int, "null": type(None), "boolean": bool}  # fmt: skip
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(isinstance(value, types[t]) for t in wanted)
        ok = ok and not (isinstance(value, bool) and "boolean" not in wanted)
        assert ok, f"{where}: {value!r} is not {wanted}"
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} !~ {schema['pattern']}"
    if "minLength" in schema:
        assert len(value) >= schema["minLength"], f"{where}: too short"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: no {key}"
        if "anyOf" in schema:
            assert any(all(k in value for k in s.get("required", [])) for s in schema["anyOf"])
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _validate(sub, value[key], f"{where}.{key}")
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{where}: too few items"
        assert len(value) <= schema.get("maxItems", len(value)), f"{where}: too many items"
        for k, item in enumerate(value):
            if "items" in schema:
                _validate(schema["items"], item, f"{where}[{k}]")


def _state(root: Path) -> dict:
    with ReviewStore.for_folder(root) as s:
        marks = s.all_annotations()
        return {
            rel: (r.decision, r.reviewer_class, r.note, r.reviewer, marks.get(rel, []))
            for rel, r in s.all().items()
        }


def test_export_matches_the_schema_and_the_issue_shape(folder, tmp_path):
    out = tmp_path / "reviews.json"
    r = cxr("reviews", "export", folder, "--out", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    _validate(SCHEMA, doc)
    assert doc["format"] == "cxr-review-reviews" and doc["format_version"] == 1
    by_path = {e["path"]: e for e in doc["reviews"]}
    assert set(by_path) == {"a.png", "b.png", "sub/c.png"}
    a = by_path["a.png"]
    assert a["sha256"] == __import__("hashlib").sha256((folder / "a.png").read_bytes()).hexdigest()
    assert (a["decision"], a["class"], a["note"], a["reviewer"]) == (
        "agree", "Normal", "clear lungs", "ann",
    )  # fmt: skip
    assert [m["kind"] for m in a["annotations"]] == [m.kind for m in MARKS]
    assert by_path["b.png"]["class"] == "Pneumonia" and by_path["sub/c.png"]["class"] is None
    # the validator is able to fail
    bad = json.loads(out.read_text())
    bad["reviews"][0]["annotations"][0]["kind"] = "circle"
    with pytest.raises(AssertionError, match="circle"):
        _validate(SCHEMA, bad)
    assert not list(tmp_path.glob(".reviews.json.*"))  # written atomically, no temp left


def test_round_trip_into_a_renamed_copy(folder, tmp_path):
    doc = export_document(folder)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".cxr-review"))
    (copy / "a.png").rename(copy / "renamed.png")  # the hash finds it
    (copy / "moved").mkdir()
    (copy / "b.png").rename(copy / "moved" / "b.png")
    report = import_reviews(copy, doc["reviews"])
    assert not report.problems and report.new == 3 and report.conflicts == 0
    before, after = _state(folder), _state(copy)
    assert after["renamed.png"] == before["a.png"]
    assert after["moved/b.png"] == before["b.png"]
    assert after["sub/c.png"] == before["sub/c.png"]
    # and back out: the same decisions, notes and marks
    again = {e["path"]: e for e in collect(copy)}
    orig = {e["path"]: e for e in doc["reviews"]}
    assert again["renamed.png"]["annotations"] == orig["a.png"]["annotations"]
    assert again["renamed.png"]["reviewed_at"] == orig["a.png"]["reviewed_at"]
    # importing the same file again changes nothing and adds no history
    hist = len(ReviewStore.for_folder(copy).history("renamed.png"))
    assert import_reviews(copy, doc["reviews"]).unchanged == 3
    with ReviewStore.for_folder(copy) as s:
        assert len(s.history("renamed.png")) == hist


#: later than the fixture's reviews (made while the test runs), not in the future
NEWER = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def _entry(**kw) -> dict:
    e = {"path": "a.png", "reviewer": "cy", "decision": "override", "class": "COVID-19",
         "note": "imported", "reviewed_at": NEWER, "annotations": []}  # fmt: skip
    e.update(kw)
    return e


def test_a_review_from_the_future_is_refused(folder):
    report = import_reviews(folder, [_entry(reviewed_at="2099-01-01T00:00:00Z")])
    assert report.problems and "in the future" in report.problems[0]
    with ReviewStore.for_folder(folder) as s:
        assert s.get("a.png").note != "imported"


def test_conflicts_latest_wins_and_history_keeps_both(folder):
    newer = _entry()
    older = _entry(path="b.png", decision="agree", **{"class": "Normal"},
                   reviewed_at="2000-01-01T00:00:00+02:00")  # fmt: skip
    report = import_reviews(folder, [newer, older])
    assert report.conflicts == 2 and report.updated == 1 and report.kept_in_history == 1
    with ReviewStore.for_folder(folder) as s:
        a, b = s.get("a.png"), s.get("b.png")
        assert (a.decision, a.reviewer_class, a.note, a.reviewer) == (
            "override", "COVID-19", "imported", "cy",
        )  # fmt: skip
        assert a.updated_at == normalise_time(NEWER)
        assert s.annotations("a.png") == []  # the newer entry had no marks
        old_marks = [h for h in s.history("a.png") if h[0] == "annotations"]
        assert len(old_marks) == 2  # the marks drawn, then removed by the newer import
        new_notes = [h[2] for h in s.history("a.png") if h[0] == "note"]
        assert new_notes == ["clear lungs", "imported"]
        assert (b.decision, b.reviewer_class, b.reviewer) == ("override", "Pneumonia", "bob")
        kept = [h for h in s.history("b.png") if h[3] == "cy"]
        assert {(h[0], h[2]) for h in kept} >= {("decision", "agree"), ("reviewer_class", "Normal")}
        assert kept[0][4] == "1999-12-31T22:00:00.000+00:00"  # times kept, in UTC


def test_bad_entries_one_line_each_and_nothing_lost(folder, tmp_path):
    before = _state(folder)
    entries = [
        _entry(path="missing.png"),
        _entry(annotations=[{"kind": "circle", "points": [[1, 2], [3, 4]]}]),
        _entry(annotations=[{"kind": "arrow", "points": [[1, 2]]}]),
        _entry(annotations=[{"kind": "arrow", "points": [[1, "x"], [3, 4]]}]),
        _entry(decision="maybe"),
        _entry(reviewed_at="yesterday"),
        "not an object",
        _entry(path="d.png", note="fine", decision=None),
    ]
    f = tmp_path / "in.json"
    f.write_text(json.dumps({"format": "cxr-review-reviews", "format_version": 1,
                             "reviews": entries}))  # fmt: skip
    r = cxr("reviews", "import", folder, f)
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if "skipped" in x and "entry" in x]
    assert len(lines) == 7
    assert "entry 0 (missing.png): no such image" in lines[0]
    assert "unknown mark kind 'circle'" in lines[1]
    assert "needs 2 points" in lines[2]
    assert "points must be" in lines[3]
    assert "unknown decision 'maybe'" in lines[4]
    assert "reviewed_at" in lines[5] and "entry 6: not an object" in lines[6]
    assert "1 new" in r.stderr.splitlines()[-1] and "7 skipped" in r.stderr.splitlines()[-1]
    after = _state(folder)
    assert after.pop("d.png")[2] == "fine"  # the good entry went in
    assert after == before  # nothing already stored was touched


@pytest.mark.parametrize(
    "text, why",
    [
        ("{", "is not JSON"),
        ('{"format": "other", "format_version": 1, "reviews": []}', "not a reviews file"),
        ('{"format": "cxr-review-reviews", "format_version": 2, "reviews": []}', "format_version"),
        ('{"format": "cxr-review-reviews", "format_version": 1, "reviews": {}}', "no list"),
    ],
)
def test_a_file_that_is_not_a_reviews_file_changes_nothing(folder, tmp_path, text, why):
    before = _state(folder)
    f = tmp_path / "in.json"
    f.write_text(text)
    r = cxr("reviews", "import", folder, f)
    assert r.returncode == 2 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _state(folder) == before


def test_coco_regions_keypoints_and_boxes(folder, tmp_path):
    coco = to_coco(folder, collect(folder))
    assert [im["file_name"] for im in coco["images"]] == ["a.png"]
    assert (coco["images"][0]["width"], coco["images"][0]["height"]) == (64, 48)
    assert [c["name"] for c in coco["categories"]] == ["arrow", "ellipse", "rectangle",
                                                       "polyline", "text"]  # fmt: skip
    by_kind = {coco["categories"][a["category_id"] - 1]["name"]: a for a in coco["annotations"]}
    rect = by_kind["rectangle"]
    assert rect["bbox"] == [2.0, 3.0, 18.0, 22.0] and rect["area"] == pytest.approx(18 * 22)
    assert rect["segmentation"] == [[2.0, 3.0, 20.0, 3.0, 20.0, 25.0, 2.0, 25.0]]
    ell = by_kind["ellipse"]
    assert len(ell["segmentation"][0]) == 64  # 32 points
    assert ell["area"] == pytest.approx(np.pi * 15 * 10, rel=0.01)
    assert by_kind["polyline"]["segmentation"] and by_kind["polyline"]["area"] > 0
    arrow = by_kind["arrow"]
    assert arrow["segmentation"] == [] and arrow["keypoints"] == [5.0, 6.0, 2, 30.0, 20.0, 2]
    assert arrow["attributes"]["text"] == "look" and arrow["num_keypoints"] == 2
    assert by_kind["text"]["keypoints"] == [50.0, 40.0, 2] and by_kind["text"]["bbox"][2:] == [0, 0]
    out = tmp_path / "coco.json"
    r = cxr("reviews", "export", folder, "--out", out, "--coco")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["annotations"] == coco["annotations"]
    r = cxr("reviews", "export", folder, "--out", out, "--coco")
    assert r.returncode == 2 and "--force" in r.stderr  # never overwritten silently


def test_store_import_time_and_one_transaction_per_entry(tmp_path):
    with ReviewStore.for_folder(tmp_path) as s:
        s.set_decision("a.png", "agree", reviewer="ann", ai_class="Normal",
                       at="2026-01-02T03:04:05.000+00:00")  # fmt: skip
        s.set_note("a.png", "n", reviewer="ann", at="2026-01-02T03:04:06.000+00:00")
        assert [h[4] for h in s.history("a.png")] == ["2026-01-02T03:04:05.000+00:00"] * 2 + [
            "2026-01-02T03:04:06.000+00:00"
        ]
        assert s.get("a.png").updated_at == "2026-01-02T03:04:06.000+00:00"
        with pytest.raises(RuntimeError), s.transaction():
            s.set_note("a.png", "half", reviewer="bob")
            s.set_annotations("a.png", MARKS, reviewer="bob")
            raise RuntimeError("the entry failed half-way")
        assert s.get("a.png").note == "n" and s.annotations("a.png") == []
        assert len(s.history("a.png")) == 3
        s.set_note("a.png", "after", reviewer="bob")  # the store still works
        assert s.get("a.png").note == "after"
