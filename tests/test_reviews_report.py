"""An imported reviews file shows up in the report (marks, notes, agreement), the heatmap PNGs
and the classify summary, and exports back unchanged."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from cli_runner import cxr

from desktop.paths import DEMO_BUNDLE

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="no demo bundle"
)

MARKS = [
    {"kind": "arrow", "points": [[20.0, 20.0], [80.0, 90.0]], "text": "look"},
    {"kind": "rectangle", "points": [[90.0, 40.0], [140.0, 120.0]]},
]


def _mark_pixels(rgb: np.ndarray) -> int:
    r, g, b = (rgb[..., k].astype(int) for k in range(3))
    return int(((r < 80) & (g > 120) & (b > 120)).sum())


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    from training.phantom_dataset import write_phantoms

    root = tmp_path_factory.mktemp("rr") / "scans"
    write_phantoms(root, 4, size=160, bit_depth=8, seed=3, flat=True, masks=False, workers=1)
    names = sorted(p.name for p in root.glob("*.png"))
    reviews = [
        {"path": names[0], "reviewer": "Dr A", "decision": "override", "class": "Normal",
         "note": "Marker overlaps the apex", "reviewed_at": "2026-11-27T10:00:00+00:00",
         "annotations": MARKS},
        {"path": names[1], "reviewer": "Dr A", "decision": "override", "class": "Pneumonia",
         "note": "", "reviewed_at": "2026-11-27T10:01:00+00:00", "annotations": []},
        {"path": names[2], "reviewer": "Dr A", "decision": "uncertain", "class": None,
         "note": "poor inspiration", "reviewed_at": "2026-11-27T10:02:00+00:00",
         "annotations": [{"kind": "text", "points": [[30.0, 140.0]], "text": "R"}]},
        {"path": names[0], "reviewer": "Dr B", "decision": "override", "class": "Normal",
         "note": "", "reviewed_at": "2026-11-27T09:00:00+00:00"},
        {"path": names[1], "reviewer": "Dr B", "decision": "override", "class": "COVID-19",
         "note": "", "reviewed_at": "2026-11-27T09:01:00+00:00"},
    ]  # fmt: skip
    src = root.parent / "reviews.json"
    src.write_text(json.dumps({"format": "cxr-review-reviews", "format_version": 1,
                               "reviews": reviews}))  # fmt: skip
    r = cxr("reviews", "import", root, src)
    assert r.returncode == 0, r.stderr
    assert "3 new" in r.stderr and "2 conflict(s)" in r.stderr
    return root, names, reviews


def test_report_shows_marks_notes_and_agreement(qapp, imported, tmp_path):
    from PIL import Image
    from pypdf import PdfReader

    root, names, _ = imported
    pdf = tmp_path / "report.pdf"
    r = cxr("report", root, "--bundle", DEMO_BUNDLE, "--out", pdf, "--cam-method", "gradcam")
    assert r.returncode == 0, r.stderr
    reader = PdfReader(str(pdf))
    pages = [" ".join(p.extract_text().split()) for p in reader.pages]
    assert len(pages) == 1 + 4 + 1
    marked = next(k for k, t in enumerate(pages) if names[0] in t and "Marks" in t)
    assert "Note: Marker overlaps the apex" in pages[marked]
    assert "Marks (2): arrow “look”, rectangle" in pages[marked]
    assert "Note: poor inspiration" in " ".join(pages)
    summary = pages[-1]
    assert "Reviewer and AI agreement" in summary
    assert "overridden 2, uncertain 1" in summary
    assert "Cohen's κ" in summary and "95 % CI" in summary and "n = 2" in summary
    assert "Inter-reader (Dr A vs Dr B): 50.0 % agreement" in summary
    # overridden images first in the table
    table = summary[summary.index("Summary") :]
    firsts = sorted(table.index(n) for n in names)
    assert {table.index(names[0]), table.index(names[1])} == set(firsts[:2])

    def mark_pixels(page) -> int:
        return sum(_mark_pixels(np.asarray(Image.open(io.BytesIO(im.data)).convert("RGB")))
                   for im in page.images)  # fmt: skip

    unmarked = next(k for k, t in enumerate(pages) if names[3] in t and k > 0)
    assert mark_pixels(reader.pages[marked]) > 200  # drawn on both images of the page
    assert mark_pixels(reader.pages[unmarked]) == 0


def test_classify_pngs_and_json_summary_and_export_round_trip(imported, tmp_path):
    from PIL import Image

    root, names, reviews = imported
    heat, summary = tmp_path / "heat", tmp_path / "summary.json"
    r = cxr("classify", root, "--bundle", DEMO_BUNDLE, "--out", tmp_path / "r.csv",
            "--heatmaps", heat, "--json", summary)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "reviewer vs AI:" in r.stderr and "inter-reader Dr A vs Dr B" in r.stderr
    doc = json.loads(summary.read_text())
    a = doc["agreement"]
    assert doc["files"] == 4 and a["decisions"] == {"agree": 0, "override": 2, "uncertain": 1}
    assert sum(map(sum, a["confusion_matrix"]["counts"])) == 2
    assert a["reviewer_vs_ai"]["n"] == 2 and a["inter_reader"][0]["n"] == 2
    png = lambda n: np.asarray(Image.open(heat / f"{n}.heatmap.png").convert("RGB"))  # noqa: E731
    assert _mark_pixels(png(names[0])) > 100 and _mark_pixels(png(names[3])) == 0

    out = tmp_path / "back.json"
    r = cxr("reviews", "export", root, "--out", out)
    assert r.returncode == 0, r.stderr
    back = {e["path"]: e for e in json.loads(out.read_text())["reviews"]}
    for e in reviews[:3]:  # the current state: Dr A's, the later ones
        b = back[e["path"]]
        assert (b["reviewer"], b["decision"], b["class"], b["note"]) == (
            e["reviewer"], e["decision"], e["class"], e["note"],
        )  # fmt: skip
        assert b["annotations"] == e["annotations"]
        assert b["reviewed_at"].startswith(e["reviewed_at"][:19])
