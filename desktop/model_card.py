"""The bundle manifest as a readable model card (HTML), for the About dialog and reports."""

from __future__ import annotations

import html
import math

from export.bundle import Manifest


def _pct(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(f) else f"{f * 100:.1f} %"


def num(v, fmt: str = ".3f") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(f) else format(f, fmt)


def model_card_html(m: Manifest) -> str:
    e = html.escape
    t = m.training
    met = t.metrics or {}
    rows = []
    for name in m.class_names:
        pc = (met.get("per_class") or {}).get(name, {})
        rows.append(
            f"<tr><td>{e(name)}</td><td>{_pct(pc.get('precision'))}</td><td>{_pct(pc.get('recall'))}</td>"
            f"<td>{_pct(pc.get('f1'))}</td><td>{pc.get('support', '—')}</td>"
            f"<td>{num(pc.get('roc_auc'))}</td></tr>"
            if pc
            else f"<tr><td>{e(name)}</td><td colspan=5>—</td></tr>"
        )
    demo = (
        "<p style='background:#ffb000;padding:6px'><b>DEMO MODEL</b> — trained on synthetic "
        "phantoms, not on patient images.</p>"
        if m.extra.get("demo")
        else ""
    )
    counts = ", ".join(f"{e(k)} {v}" for k, v in t.class_counts.items()) or "—"
    splits = ", ".join(f"{e(k)} {v}" for k, v in t.split_sizes.items()) or "—"
    versions = ", ".join(f"{e(k)} {e(v)}" for k, v in sorted(m.versions.items())) or "—"
    parity = m.parity.get("max_abs_prob_diff")
    return f"""
<h2>{e(m.model_name)}</h2>
{demo}
<p><b>Intended use.</b> {e(m.intended_use)}</p>
<table cellpadding=3>
<tr><td><b>Classes</b></td><td>{", ".join(e(c) for c in m.class_names)}</td></tr>
<tr><td><b>Backbone</b></td><td>{e(t.backbone)} (weights: {e(t.weights_source)}), {t.epochs} epochs</td></tr>
<tr><td><b>Input</b></td><td>{m.input.height}×{m.input.width}×{m.input.channels}, {e(m.input.resize)},
 window {m.input.window_low_pct}–{m.input.window_high_pct} percentile</td></tr>
<tr><td><b>Training data</b></td><td>{e(t.dataset)}<br>{counts}; splits: {splits}</td></tr>
<tr><td><b>Test accuracy</b></td><td>{_pct(met.get("accuracy"))} on {met.get("n", "—")} images</td></tr>
<tr><td><b>Calibration</b></td><td>temperature {m.calibration_temperature:.3f}; ECE
 {num(met.get("ece_before"), ".4f")} before, {num(met.get("ece_after"), ".4f")} after</td></tr>
<tr><td><b>Grad-CAM layer</b></td><td>{e(m.savedmodel.cam_layer)}</td></tr>
<tr><td><b>Export check</b></td><td>ONNX vs TF max |Δp| = {parity if parity is None else f"{parity:.1e}"}</td></tr>
<tr><td><b>Versions</b></td><td>{versions}</td></tr>
<tr><td><b>Created</b></td><td>{e(m.created)}</td></tr>
</table>
<h3>Per class (test split)</h3>
<table border=1 cellspacing=0 cellpadding=3>
<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>ROC AUC</th></tr>
{"".join(rows)}
</table>
"""
