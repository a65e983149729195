"""How well a bundle's guard tells its training data's kind from images unlike it.

``python -m training.novelty_eval BUNDLE [--n 200] [--seed 99] [--json OUT]``

In-distribution: fresh phantoms of the demo's kind (standard style, 256 px,
16-bit PNG, as ``make demo-bundle`` makes them) from a seed the bundle never
saw. Out-of-distribution: one set per style of ``training/phantom_styles.py``.
Every image is written as a file and read back through the app's image input,
then scored by ``OnnxClassifier.classify`` as the app scores it. Reported:
the share flagged in each set (the in-distribution one is the false-flag
rate) and the AUROC of the score for in-distribution vs each other set.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from export.image_input import load_model_input
from export.novelty_model import auroc
from export.onnx_runtime import OnnxClassifier
from training.phantom_dataset import write_phantoms
from training.phantom_styles import OOD_STYLES

IN_DISTRIBUTION = "standard"


def _scores(clf: OnnxClassifier, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(folder.glob("*.png"))
    scores, flagged = [], []
    for i in range(0, len(files), 32):
        x = np.stack([load_model_input(f, clf.manifest.input) for f in files[i : i + 32]])
        _, verdicts = clf.classify(x)
        scores += [v.score for v in verdicts]
        flagged += [v.unlike for v in verdicts]
    return np.asarray(scores, np.float64), np.asarray(flagged, bool)


def evaluate(bundle: str, n: int = 200, seed: int = 99, size: int = 256) -> dict[str, Any]:
    clf = OnnxClassifier(bundle, prefer="cpu")
    if clf.reference is None:
        raise SystemExit(f"novelty_eval: {bundle} has no guard (bundle format 1?)")
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cxr-novelty-") as tmp:
        for k, style in enumerate((IN_DISTRIBUTION, *OOD_STYLES)):
            folder = Path(tmp) / style
            write_phantoms(
                folder, n, size=size, bit_depth=16, seed=seed + 1000 * k, flat=True,
                masks=False, style=style, workers=2,
            )  # fmt: skip
            scores, flagged = _scores(clf, folder)
            rows[style] = {"n": len(scores), "flagged": float(flagged.mean()), "scores": scores}
    inside = rows[IN_DISTRIBUTION]["scores"]
    for style in OOD_STYLES:
        rows[style]["auroc"] = round(auroc(inside, rows[style]["scores"]), 4)
    for r in rows.values():
        r["median_score"] = round(float(np.median(r.pop("scores"))), 2)
    return {
        "bundle": str(bundle),
        "score": clf.reference.score,
        "threshold": clf.reference.threshold,
        "in_distribution": f"fresh standard phantoms, {size} px 16-bit, seed {seed}",
        "false_flag_rate": rows[IN_DISTRIBUTION]["flagged"],
        "sets": rows,
        "evidence_at_export": clf.manifest.novelty.evidence,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"score: {result['score']} (threshold {result['threshold']:.1f})",
        "| set | images | flagged | AUROC vs fresh phantoms | median score |",
        "|---|---|---|---|---|",
    ]
    for name, r in result["sets"].items():
        au = f"{r['auroc']:.3f}" if "auroc" in r else "—"
        label = f"{name} (in distribution)" if name == IN_DISTRIBUTION else name
        lines.append(
            f"| {label} | {r['n']} | {100 * r['flagged']:.1f} % | {au} | {r['median_score']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.novelty_eval", description=__doc__)
    p.add_argument("bundle")
    p.add_argument("--n", type=int, default=200, help="images per set (default 200)")
    p.add_argument("--seed", type=int, default=99, help="seed of the fresh sets (default 99)")
    p.add_argument("--json", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    result = evaluate(args.bundle, args.n, args.seed)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
