"""Run artefacts a person reads: curves, ROC, reliability diagram, and report.md."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(log_csv: Path, png: Path) -> None:
    """Loss and accuracy per epoch for train and validation, stage boundary marked."""
    with open(log_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    plt = _plt()
    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(ep, [float(r[key]) for r in rows], "o-", label="train")
        if f"val_{key}" in rows[0]:
            ax.plot(ep, [float(r[f"val_{key}"]) for r in rows], "s-", label="validation")
        stages = [int(r.get("stage", 1)) for r in rows]
        if len(set(stages)) > 1:
            ax.axvline(ep[stages.index(2)] - 0.5, color="grey", ls="--", lw=1)
            ax.text(ep[stages.index(2)] - 0.4, ax.get_ylim()[1], " fine-tune", va="top", fontsize=8)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_roc(metrics: dict[str, Any], png: Path, title: str = "test split") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for name, curve in metrics["roc"].items():
        auc = metrics["per_class"][name]["roc_auc"]
        label = f"{name} (AUC {auc:.3f})" if not math.isnan(auc) else f"{name} (no positives)"
        ax.plot(curve["fpr"], curve["tpr"], label=label)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC, one vs rest ({title})")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_reliability(calibration: dict[str, Any], png: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for key, label, marker in (
        ("reliability_before", f"raw (ECE {calibration['ece_before']:.3f})", "o"),
        (
            "reliability_after",
            f"T={calibration['temperature']:.2f} (ECE {calibration['ece_after']:.3f})",
            "s",
        ),
    ):
        rel = calibration[key]
        pts = [
            (c, a)
            for c, a, n in zip(
                rel["bin_confidence"], rel["bin_accuracy"], rel["bin_counts"], strict=True
            )
            if n > 0
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker=marker, label=label)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability (test split)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write_report(run: Path, summary: dict[str, Any]) -> Path:
    """A Markdown report that reads well as plain text and on a code host."""
    t = summary["test"]
    cal = t["calibration"]
    names = t["class_names"]
    lines = [
        f"# Training run: {summary['model_name']}",
        "",
        "Research use only — not a medical device.",
        "",
        f"- data: {summary['data']}",
        f"- backbone: {summary['backbone']}, weights: {summary['weights_source']}, "
        f"input {summary['image_size']}², epochs run {summary['epochs_run']} "
        f"(best validation epoch {summary['best_epoch']})",
        f"- split sizes: {summary['split_sizes']}; skipped unreadable images: {summary['skipped']}",
        "",
        "## Test split (never used to choose the checkpoint)",
        "",
        f"Accuracy **{t['accuracy']:.4f}** on {t['n']} images.",
        "",
        "| class | precision | recall | F1 | support | ROC AUC |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        m = t["per_class"][n]
        lines.append(
            f"| {n} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
            f"{m['support']} | {m['roc_auc']:.3f} |"
        )
    for avg in ("macro", "weighted"):
        m = t[avg]
        lines.append(
            f"| *{avg}* | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | | "
            f"{m['roc_auc']:.3f} |"
        )
    lines += ["", "Confusion matrix (rows: truth, columns: prediction):", ""]
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for n, row in zip(names, t["confusion_matrix"], strict=True):
        lines.append(f"| **{n}** | " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        "## Calibration",
        "",
        f"Temperature fitted on validation: T = {cal['temperature']:.3f}. "
        f"ECE on test: {cal['ece_before']:.4f} before, {cal['ece_after']:.4f} after.",
        "",
        "![curves](curves.png) ![roc](roc.png) ![reliability](reliability.png)",
        "",
    ]
    if summary.get("parity"):
        p = summary["parity"]
        lines.append(
            f"Export parity (ONNX vs TF, {p['n_images']} validation images): "
            f"max |Δp| = {p['max_abs_prob_diff']:.2e}."
        )
    path = run / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
