"""The shortcut experiment: does the audit catch a model that learned the burned-in letters?

``python -m training.shortcut_experiment [--out build/shortcut-experiment]``
(``make shortcut-experiment``):

1. three phantom sets: *markers* (each class has its own marker text and
   corner on every image: in the public COVID-19 collections class and
   source hospital went together almost perfectly, and a source leaves its
   own labels), *clean* (markers on 70 % of images, text and
   corner random), *test* (the three class markers shuffled: each image
   carries one of them, picked independently of its class);
2. the compact CNN trained on *markers* and on *clean* (same settings);
3. ``cxr audit`` of both bundles on *test* with the app's estimated masks;
4. ``build/shortcut-experiment.json``: ``{"marker_trained": audit, "clean": audit, ...}``
   plus the bars and whether each holds.

Each step runs the ``cxr`` command line in a child process, so what the
experiment does is exactly what a user can do by hand.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BARS = {
    "marker_trained_flagged_fraction_min": 0.80,
    "clean_flagged_fraction_max": 0.10,
    "clean_pointing_game_min": 0.80,
}


def _cxr(*args: str) -> None:
    cmd = [sys.executable, "-m", "desktop.cli", *args]
    print("+ cxr " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/shortcut-experiment", help="work folder")
    p.add_argument("--json", default="build/shortcut-experiment.json", help="result file")
    p.add_argument("--n-train", type=int, default=900, help="phantoms per training set")
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--confound-p",
        type=float,
        default=1.0,
        help="share of 'markers' images whose marker follows the class (default 1.0)",
    )
    a = p.parse_args(argv)
    out = Path(a.out)
    t0 = time.perf_counter()
    # data sets and runs are reused only when made with these very settings
    stamp = out / "settings.json"
    wanted = {k: v for k, v in vars(a).items() if k != "json"}
    if stamp.is_file() and json.loads(stamp.read_text()) != wanted:
        import shutil

        print(f"settings changed: starting {out} afresh", flush=True)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(wanted, indent=2))
    sets = {
        "markers": [
            "--confound",
            "markers",
            "--confound-p",
            str(a.confound_p),
            "--seed",
            str(a.seed),
            "--n",
            str(a.n_train),
        ],
        "clean": ["--marker-prob", "0.7", "--seed", str(a.seed + 1), "--n", str(a.n_train)],
        "test": ["--confound", "shuffled", "--seed", str(a.seed + 2), "--n", str(a.n_test)],
    }
    for name, extra in sets.items():
        target = out / "data" / name
        if not (target / "labels.csv").is_file():
            _cxr("phantoms", str(target), "--size", "256", "--bit-depth", "16", *extra)
    audits = {}
    for name, key in (("markers", "marker_trained"), ("clean", "clean")):
        run = out / f"run-{name}"
        if not (run / "bundle" / "manifest.json").is_file():
            _cxr(
                "train",
                str(out / "data" / name),
                "--out",
                str(run),
                "--backbone",
                "compact",
                "--weights",
                "none",
                "--image-size",
                str(a.image_size),
                "--epochs",
                str(a.epochs),
                "--batch-size",
                "32",
                "--lr",
                "1e-3",
                "--seed",
                str(a.seed),
                "--model-name",
                f"shortcut experiment: compact CNN trained on '{name}' phantoms",
            )
        audit_json = out / f"audit-{name}.json"
        _cxr(
            "audit",
            str(run / "bundle"),
            str(out / "data" / "test"),
            "--json",
            str(audit_json),
            "--csv",
            str(out / f"audit-{name}.csv"),
            "--force",
        )
        audits[key] = json.loads(audit_json.read_text())
    m, c = audits["marker_trained"], audits["clean"]
    checks = {
        "marker_trained_flagged_fraction_min": m["flagged_fraction"]
        >= BARS["marker_trained_flagged_fraction_min"],
        "clean_flagged_fraction_max": c["flagged_fraction"] <= BARS["clean_flagged_fraction_max"],
        "clean_pointing_game_min": (c["pointing_game"] or 0) >= BARS["clean_pointing_game_min"],
    }
    result = {
        **audits,
        "bars": BARS,
        "bars_met": checks,
        "settings": vars(a),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    for key in ("marker_trained", "clean"):
        au = audits[key]
        print(
            f"{key:15s} accuracy {au['accuracy']:.3f}  flagged {au['flagged_fraction']:.3f}  "
            f"lung share {au['lung_share_mean']}  marker share {au['marker_share_mean']}  "
            f"pointing {au['pointing_game']}"
        )
    print(f"bars met: {checks}  ({result['seconds']:.0f} s) -> {a.json}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
