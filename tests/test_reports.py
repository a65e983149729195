"""Headless batch and PDF reports: one row / one page per file, annotations included."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from cli_runner import cxr

from desktop.overlay import rgba_table
from desktop.paths import DEMO_BUNDLE
from desktop.review_store import ReviewStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "manifest.json").exists(), reason="no demo bundle"
)


@pytest.fixture(scope="module")
def reviewed_folder(tmp_path_factory):
    from training.phantom_dataset import write_phantoms

    out = tmp_path_factory.mktemp("rep") / "scans"
    write_phantoms(out, 6, size=160, bit_depth=16, seed=8, flat=True, masks=False, workers=1)
    (out / "sub").mkdir()
    (out / "sub" / "UPPER.PNG").write_bytes((out / "phantom-00001.png").read_bytes())
    (out / "broken.png").write_text("<html>oops</html>")
    with ReviewStore.for_folder(out) as store:
        store.set_decision(
            "phantom-00002.png",
            "override",
            reviewer="Dr A",
            reviewer_class="Normal",
            ai_class="COVID-19",
        )
        store.set_note("phantom-00002.png", "Marker overlaps the apex", reviewer="Dr A")
        store.set_decision("phantom-00003.png", "uncertain", reviewer="Dr A")
    return out


def test_classify_csv_and_heatmaps(reviewed_folder, tmp_path):
    out, heat = tmp_path / "results.csv", tmp_path / "heat"
    r = cxr(
        "classify",
        reviewed_folder,
        "--bundle",
        DEMO_BUNDLE,
        "--out",
        out,
        "--heatmaps",
        heat,
        "--colormap",
        "viridis",
        "--opacity",
        "1",
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert (
        len(rows) == 8
    )  # 6 phantoms + sub/UPPER.PNG + broken.png; phantoms.json/labels.csv skipped
    bad = next(x for x in rows if x["path"] == "broken.png")
    assert bad["status"] == "error" and "web page" in bad["error"] and bad["predicted"] == ""
    ok = [x for x in rows if x["status"] == "ok"]
    assert all(x["predicted"] in ("COVID-19", "Normal", "Pneumonia") for x in ok)
    for x in ok:
        assert abs(sum(float(x[f"p_{c}"]) for c in ("COVID-19", "Normal", "Pneumonia")) - 1) < 1e-4
    for x in ok:  # where each heatmap lay, and the flag at the default threshold
        share = float(x["lung_share"])
        assert 0.0 <= share <= 1.0 and 0.0 <= float(x["border_share"]) <= 1.0
        assert x["looked_outside_lungs"] == ("yes" if share < 0.5 else "no")
    assert bad["lung_share"] == "" and bad["looked_outside_lungs"] == ""
    two = next(x for x in rows if x["path"] == "phantom-00002.png")
    assert (two["reviewer_decision"], two["reviewer_class"], two["note"]) == (
        "override",
        "Normal",
        "Marker overlaps the apex",
    )
    assert len(list(heat.rglob("*.png"))) == 7
    assert (heat / "sub" / "UPPER.PNG.heatmap.png").is_file()  # names mirror the folder
    from desktop.folder_scan import iter_image_files

    assert list(iter_image_files(heat)) == []  # exported heatmaps are never scanned as X-rays
    import cv2

    png = cv2.imread(str(heat / "phantom-00001.png.heatmap.png"))[..., ::-1]
    hot = _table_share(png, "viridis")  # at full opacity, half heat and up is the table's colour
    assert hot > 0.01 and _table_share(png, "inferno") < hot / 20
    again = cxr("classify", reviewed_folder, "--bundle", DEMO_BUNDLE, "--out", out)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr


def test_report_pdf_pages_text_and_overlay(qapp, reviewed_folder, tmp_path):
    pdf = tmp_path / "report.pdf"
    r = cxr(
        "report",
        reviewed_folder,
        "--bundle",
        DEMO_BUNDLE,
        "--out",
        pdf,
        "--opacity",
        "0.6",
        "--reviewer",
        "Dr A",
        "--min-lung-share",
        "1.0",
        "--colormap",
        "viridis",
    )
    assert r.returncode == 0, r.stderr
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    assert len(reader.pages) == 8 + 2  # cover + one page per file + summary
    text = " ".join("\n".join(p.extract_text() for p in reader.pages).split())  # pypdf gives tabs
    for needle in (
        "phantom-00002.png",
        "sub/UPPER.PNG",
        "broken.png",
        "COVID-19",
        "Normal",
        "Pneumonia",
        "Marker overlaps the apex",
        "Dr A",
        "RESEARCH USE ONLY",
        "Looked outside the lungs: 7 of 7 images",
        "threshold 100%",
    ):
        assert needle in text, needle  # threshold 1.0: every image is flagged
    page = _render_page(pdf, 2)  # an image page (files sorted: broken.png first, then phantoms)
    colourful = np.abs(page[..., 0].astype(int) - page[..., 2].astype(int)) > 40
    assert colourful.mean() > 0.005, "the heatmap overlay is missing from the page"
    assert _near(page, rgba_table("viridis")[255, :3]).any()  # the colour bar's hot end
    assert not _near(page, rgba_table("inferno")[255, :3]).any()


def _near(rgb: np.ndarray, colour: np.ndarray, tol: int = 4) -> np.ndarray:
    return np.abs(rgb.astype(int) - colour.astype(int)).max(axis=-1) <= tol


def _table_share(rgb: np.ndarray, colormap: str) -> float:
    """Share of pixels that are (within 1) an opaque entry of the colormap's table."""
    px = rgb.reshape(-1, 3).astype(int)
    table = rgba_table(colormap)[128:, :3].astype(int)
    return float((np.abs(px[:, None] - table[None]).max(-1).min(1) <= 1).mean())


@pytest.mark.parametrize("colormap", ["inferno", "viridis"])
def test_report_page_draws_the_chosen_colormap(qapp, tmp_path, colormap):
    """Overlay and colour bar in the chosen table's colours, none of the other's."""
    from imaging_factory import png_bytes

    from desktop.batch import Page
    from desktop.ui.report_pdf import ReportWriter
    from export.attention import Attention
    from export.bundle import load_bundle
    from export.explain import Heatmap
    from export.image_input import read_image
    from export.results import ImageResult

    src = tmp_path / "x.png"
    src.write_bytes(png_bytes(np.tile(np.linspace(40, 200, 64, dtype=np.uint8), (64, 1))))
    heat = np.tile(np.linspace(0, 1, 64, dtype=np.float32)[:, None], (1, 64))
    probs = np.array([0.7, 0.2, 0.1])
    att = Attention(0.8, 0.1, 0.0, "estimated")
    cam = Heatmap(heat[::8, ::8], heat, (64, 64), 0, "gradcam", "conv", "fp32", probs, att)
    rec = Page(ImageResult(src, "x.png", probabilities=probs), read_image(src), cam)
    pdf = tmp_path / "page.pdf"
    w = ReportWriter(pdf, load_bundle(DEMO_BUNDLE))
    w.image_page(rec, opacity=1.0, cam_method="gradcam", colormap=colormap)
    w.close()
    page = _render_page(pdf, 0)
    other = "viridis" if colormap == "inferno" else "inferno"
    assert _near(page, rgba_table(colormap)[255, :3]).sum() > 50  # the hottest colour
    assert not _near(page, rgba_table(other)[255, :3]).any()
    colourful = page.reshape(-1, 3)[np.ptp(page.reshape(-1, 3).astype(int), axis=1) > 40]
    ours = _near(colourful[:, None], rgba_table(colormap)[None, :, :3]).any(axis=1).mean()
    theirs = _near(colourful[:, None], rgba_table(other)[None, :, :3]).any(axis=1).mean()
    assert ours > 0.3 and theirs < 0.05, (ours, theirs)


def _render_page(pdf: Path, index: int) -> np.ndarray:
    from PySide6.QtCore import QSize
    from PySide6.QtPdf import QPdfDocument

    doc = QPdfDocument()  # pytest-qt's QApplication (qapp) is running
    doc.load(str(pdf))
    img = doc.render(index, QSize(620, 877)).convertToFormat(
        __import__("PySide6.QtGui", fromlist=["QImage"]).QImage.Format.Format_RGB888
    )
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h).reshape(h, -1)
    return arr[:, : w * 3].reshape(h, w, 3).copy()


def test_failed_write_keeps_the_old_file(reviewed_folder, tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"previous report")
    r = cxr("report", reviewed_folder, "--bundle", tmp_path, "--out", pdf, "--force")
    assert r.returncode == 2 and "manifest.json" in r.stderr
    assert pdf.read_bytes() == b"previous report"
    assert not list(tmp_path.glob(".report.pdf.*"))  # no temp file left behind


def test_classify_leaves_an_unreviewed_folder_untouched(tmp_path):
    from training.phantom_dataset import write_phantoms

    folder = tmp_path / "plain"
    write_phantoms(folder, 3, size=96, bit_depth=8, seed=2, flat=True, masks=False, workers=1)
    before = sorted(p.name for p in folder.iterdir())
    r = cxr("classify", folder, "--bundle", DEMO_BUNDLE, "--out", tmp_path / "r.csv")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before  # no .cxr-review created
