"""A wheel carries every package and the bundled resources, and finds them once installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
RESOURCES_BUDGET_BYTES = 20 * 1024 * 1024


def _resource_files() -> list[str]:
    out = []
    for p in (ROOT / "resources").rglob("*"):
        rel = p.relative_to(ROOT / "resources")
        if p.is_file() and not {".cxr-review", "__pycache__"} & set(rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


def test_every_package_is_listed():
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("desktop", "export", "training")
        for p in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= set(CONFIG["packages"])
    assert CONFIG["package-dir"]["cxr_review_resources"] == "resources"


def test_every_bundled_resource_is_package_data():
    globs = CONFIG["package-data"]["cxr_review_resources"] + CONFIG["package-data"]["*"]

    def shipped(rel: str) -> bool:
        path = PurePosixPath(rel)
        return rel == "__init__.py" or any(
            len(path.parts) == len(PurePosixPath(g).parts) and path.match(g) for g in globs
        )

    files = _resource_files()
    assert "demo/bundle/manifest.json" in files and "icons/cxr-review.svg" in files
    assert [f for f in files if not shipped(f)] == []


def test_resources_stay_small():
    size = sum((ROOT / "resources" / f).stat().st_size for f in _resource_files())
    assert size <= RESOURCES_BUDGET_BYTES


def test_an_installed_copy_finds_its_resources_outside_a_checkout(tmp_path):
    """The layout a wheel installs: the packages and cxr_review_resources side by side, no
    pyproject.toml above them."""
    site = tmp_path / "site"
    (site / "desktop").mkdir(parents=True)
    shutil.copy(ROOT / "desktop" / "paths.py", site / "desktop" / "paths.py")
    (site / "desktop" / "__init__.py").write_text("")
    res = site / "cxr_review_resources"
    (res / "demo" / "images").mkdir(parents=True)
    (res / "demo" / "bundle").mkdir(parents=True)
    (res / "__init__.py").write_text("")
    code = (
        "import desktop.paths as p; print(p.__file__); print(p.DEMO_IMAGES); print(p.DEMO_BUNDLE)"
    )
    r = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    module, images, bundle = r.stdout.splitlines()
    assert Path(module).is_relative_to(site)
    assert Path(images) == res / "demo" / "images"
    assert Path(bundle) == res / "demo" / "bundle"
