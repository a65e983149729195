"""Metrics from probabilities (NumPy only): the numbers a reviewer's trust rests on.

ROC AUC is computed from the *probabilities*, one class against the rest
(hard labels would reduce the curve to a single point). Calibration is a single temperature fitted on the validation
split and judged by expected calibration error (ECE).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


#: Calibration may soften a model but never sharpen it. On a validation split the model
#: classifies perfectly, the likelihood keeps improving as T -> 0 and the fit would make
#: every future mistake look certain (at T = 0.5 the demo model shows a lower-lobe
#: pneumonia as 98.9 % COVID-19). For a reviewer, over-confidence is the costly error.
T_MIN, T_MAX = 1.0, 20.0


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising validation NLL (golden-section search on log T in [T_MIN, T_MAX])."""
    if len(y) == 0:
        return 1.0
    lo, hi = np.log(T_MIN), np.log(T_MAX)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, y, np.exp(a)), nll(logits, y, np.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, y, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, y, np.exp(b))
    return float(np.exp((lo + hi) / 2))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> dict[str, Any]:
    """Confidence-binned accuracy and the expected calibration error."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    acc = np.bincount(idx, weights=correct, minlength=bins) / np.maximum(counts, 1)
    mean_conf = np.bincount(idx, weights=conf, minlength=bins) / np.maximum(counts, 1)
    ece = float(np.sum(counts * np.abs(acc - mean_conf)) / max(len(y), 1))
    return {
        "ece": ece,
        "bin_edges": edges.tolist(),
        "bin_counts": counts.tolist(),
        "bin_accuracy": acc.tolist(),
        "bin_confidence": mean_conf.tolist(),
    }


def roc_curve(y_bin: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """FPR, TPR and AUC for one class; AUC is the tie-aware rank statistic."""
    pos, neg = int(y_bin.sum()), int(len(y_bin) - y_bin.sum())
    if pos == 0 or neg == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y_bin[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(t)[distinct]
    fp = (distinct + 1) - tp
    tpr = np.r_[0.0, tp / pos]
    fpr = np.r_[0.0, fp / neg]
    auc = float(np.trapezoid(tpr, fpr))
    return fpr, tpr, auc


def classification_metrics(
    y: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...] | list[str]
) -> dict[str, Any]:
    """Accuracy, per-class P/R/F1/support, macro and weighted means, confusion, OvR AUC."""
    y = np.asarray(y, int)
    k = len(class_names)
    pred = probs.argmax(axis=1)
    cm = np.zeros((k, k), int)
    np.add.at(cm, (y, pred), 1)
    per_class: dict[str, dict[str, float]] = {}
    rocs: dict[str, dict[str, list[float]]] = {}
    for i, name in enumerate(class_names):
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        fpr, tpr, auc = roc_curve((y == i).astype(int), probs[:, i])
        per_class[name] = {
            "precision": float(prec),
            "recall": float(rec),
            "f1": float(f1),
            "support": int(cm[i, :].sum()),
            "roc_auc": auc,
        }
        rocs[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    support = np.array([per_class[c]["support"] for c in class_names], float)

    def avg(key: str, weights: np.ndarray | None) -> float:
        vals = np.array([per_class[c][key] for c in class_names], float)
        ok = ~np.isnan(vals)
        if weights is None:
            return float(vals[ok].mean()) if ok.any() else float("nan")
        w = weights[ok]
        return float((vals[ok] * w).sum() / w.sum()) if w.sum() else float("nan")

    out: dict[str, Any] = {
        "n": len(y),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "per_class": per_class,
        "macro": {m: avg(m, None) for m in ("precision", "recall", "f1", "roc_auc")},
        "weighted": {m: avg(m, support) for m in ("precision", "recall", "f1", "roc_auc")},
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
        "roc": rocs,
    }
    return out


def evaluate_logits(
    y: np.ndarray,
    logits: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Metrics on calibrated probabilities plus ECE before and after calibration."""
    raw = softmax(logits)
    cal = softmax(logits, temperature)
    out = classification_metrics(y, cal, class_names)
    before, after = reliability(raw, y), reliability(cal, y)
    out["calibration"] = {
        "temperature": float(temperature),
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "nll_before": nll(logits, y) if len(y) else float("nan"),
        "nll_after": nll(logits, y, temperature) if len(y) else float("nan"),
        "reliability_before": before,
        "reliability_after": after,
    }
    return out
