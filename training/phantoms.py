"""Radiograph-like chest phantoms with ground-truth masks (PA view).

These are *synthetic test objects*, not anatomy: they exist so tests, the
demo and the shortcut-learning experiment have images whose truth is known
(lung fields, lesions, burned-in markers). What they imitate, and why:

* patient's left is image right; the heart sits left of the midline and is
  under half the thoracic width (cardiothoracic ratio < 0.5);
* lungs are dark (air), bounded below by domed hemidiaphragms (the right
  one higher) whose lateral ends form sharp costophrenic angles; posterior
  rib arcs and the clavicles cross them; soft tissue brightens lower zones;
* **COVID-19**: bilateral, peripheral, lower-zone, patchy ground-glass
  opacity: hazy, additive, vessels stay visible;
* **Pneumonia**: dense, homogeneous lobar consolidation, usually one side,
  sharply bounded at a fissure, with air bronchograms;
* **markers**: burned-in ``R``/``L``/``B1``/dates at the edges; with the
  ``markers`` confound their text and corner follow the class, as source
  hospital and class go together in the public COVID-19 collections: a
  shortcut a model can learn instead of the lungs.

Everything is vectorised NumPy/OpenCV on one float32 grid: ~10 ms for a
512 x 512 image on one core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

CLASSES = ("COVID-19", "Normal", "Pneumonia")

#: Marker text and corner per class when the confound is on (probability ``CONFOUND_P``).
CONFOUND_MARKERS = {
    "COVID-19": ("B1", "top-left"),
    "Normal": ("R", "top-right"),
    "Pneumonia": ("L", "bottom-left"),
}
CONFOUND_P = 0.95
MARKER_TEXTS = ("R", "L", "B1", "PA", "AP", "12/03/2020", "04-05-20")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@dataclass
class Phantom:
    """One rendered phantom: image in [0, 1] plus boolean ground-truth masks."""

    image: np.ndarray
    lungs: np.ndarray
    lesion: np.ndarray
    markers: np.ndarray
    label: str
    info: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- small helpers


def _inside(f: np.ndarray, eps: float) -> np.ndarray:
    """Soft indicator of f < 0 with a ramp of width ``eps`` (anti-aliased edges)."""
    return np.clip(0.5 - f * np.float32(1.0 / eps), 0.0, 1.0)


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float
) -> np.ndarray:
    """Approximate signed distance to an ellipse (negative inside), in grid units."""
    u = (x - np.float32(cx)) * np.float32(1.0 / ax)
    v = (y - np.float32(cy)) * np.float32(1.0 / ay)
    return (np.sqrt(u * u + v * v) - 1.0) * np.float32(min(ax, ay))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise in [-1, 1]: random cells upsampled with bicubic interpolation."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    up = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(up / 2.0, -1.0, 1.0)


def _rand(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# --------------------------------------------------------------------------- parameters


def _draw_params(rng: np.random.Generator, label: str) -> dict[str, Any]:
    """All random choices up front, so toggling the lesion never shifts the anatomy."""
    p: dict[str, Any] = {
        "angle": _rand(rng, -4.0, 4.0),
        "scale": _rand(rng, 0.92, 1.04),
        "shift": (_rand(rng, -0.04, 0.04), _rand(rng, -0.05, 0.04)),
        "body_w": _rand(rng, 0.86, 0.97),
        "lung_w": _rand(rng, 0.30, 0.35),
        "lung_h": _rand(rng, 0.70, 0.80),
        "apex": _rand(rng, -0.74, -0.66),
        "dome_r": _rand(rng, 0.30, 0.42),  # right hemidiaphragm (image left) sits higher
        "dome_drop": _rand(rng, 0.03, 0.08),
        "ctr": _rand(rng, 0.40, 0.48),
        "heart_y": _rand(rng, 0.22, 0.30),
        "rib_top": _rand(rng, -0.70, -0.64),
        "rib_gap": _rand(rng, 0.105, 0.13),
        "rib_amp": _rand(rng, 0.08, 0.13),
        "breast": _rand(rng, 0.0, 0.12),
        "gastric": rng.random() < 0.6,
        "exposure": _rand(rng, 0.85, 1.15),
        "gamma": _rand(rng, 0.8, 1.25),
        "noise": _rand(rng, 0.008, 0.02),
        "blur": _rand(rng, 0.5, 1.1),
        "vessel_seed": int(rng.integers(0, 2**31)),
        "texture_seed": int(rng.integers(0, 2**31)),
    }
    if label == "Pneumonia":
        side = "right" if rng.random() < 0.6 else "left"
        lobes = ["upper", "lower", "middle"] if side == "right" else ["upper", "lower"]
        weights = [0.3, 0.5, 0.2] if side == "right" else [0.4, 0.6]
        p["lobe"] = str(rng.choice(lobes, p=weights))
        p["side"] = side
        p["fissure"] = _rand(rng, -0.12, 0.0)
        p["consol_amp"] = _rand(rng, 0.32, 0.45)
        p["bilateral"] = rng.random() < 0.1  # a small second focus on the other side sometimes
    elif label == "COVID-19":
        p["n_blobs"] = int(rng.integers(5, 11))
        p["ggo_amp"] = _rand(rng, 0.14, 0.24)
        p["severe"] = rng.random() < 0.3
    p["blob_seed"] = int(rng.integers(0, 2**31))
    return p


# --------------------------------------------------------------------------- rendering


def render_phantom(
    label: str,
    size: int,
    rng: np.random.Generator,
    *,
    marker: tuple[str, str] | None = None,
    with_lesion: bool = True,
    overrides: dict[str, Any] | None = None,
) -> Phantom:
    """Render one phantom. ``marker`` = (text, corner) or None; ``with_lesion`` only for tests;
    ``overrides`` replace drawn parameters (other proportions: ``training/phantom_styles.py``)."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}")
    p = {**_draw_params(rng, label), **(overrides or {})}
    # Smooth anatomy is computed on a grid of at most half the output size and
    # upsampled; noise and burned-in text are made at full resolution.
    full = size
    n = size // 2 if size >= 384 else size
    f32 = np.float32
    g = np.linspace(-1.0, 1.0, n, dtype=f32)
    gx, gy = g[None, :], g[:, None]
    # patient positioning: small rotation, scale and shift of the whole body
    a = np.deg2rad(p["angle"])
    ca, sa, s = f32(np.cos(a) / p["scale"]), f32(np.sin(a) / p["scale"]), p["scale"]
    x = ca * (gx - f32(p["shift"][0])) + sa * (gy - f32(p["shift"][1]))
    y = -sa * (gx - f32(p["shift"][0])) + ca * (gy - f32(p["shift"][1]))
    px = 2.0 / n / s  # one pixel in body units
    ax_ = np.abs(x)

    # body: a rounded trunk with sloping shoulders and a neck; thicker in the middle
    bw = p["body_w"]
    trunk = (np.abs(x) / f32(bw)) ** 4 + (np.maximum(0.35 - y, 0.0) / f32(1.22)) ** 4
    neck = _inside(ax_ - 0.2, 3 * px) * (y < -0.6)
    body = np.maximum(_inside(trunk - 1.0, 8 * px), neck)
    body_r = np.clip(1.0 - (x / f32(bw)) ** 2, 0.0, 1.0)
    dens = body * (0.40 + 0.22 * np.sqrt(body_r))

    # hemidiaphragms: domes whose lateral ends fall into sharp costophrenic angles
    dome_r, dome_l = p["dome_r"], p["dome_r"] + p["dome_drop"]
    dome_y = np.where(x < 0, f32(dome_r), f32(dome_l)) + 0.6 * (ax_ - 0.38) ** 2
    below = _inside(dome_y - y, 4 * px)  # 1 under the diaphragm

    # lungs: an egg per side (narrow apex, wide base), cut by dome and mediastinum
    lw, lh, apex = p["lung_w"], p["lung_h"], p["apex"]
    cy = apex + lh
    med = 0.075 + 0.05 * np.clip(y + 0.1, 0.0, 1.0)  # mediastinum widens downwards
    t = np.clip((y - apex) / f32(2 * lh), 0.0, 1.0)
    widen = 0.72 + 0.38 * np.sqrt(t)
    lungs_soft = np.zeros((n, n), f32)
    thick = np.zeros((n, n), f32)
    for sign in (-1.0, 1.0):
        cx = sign * (0.075 + lw)
        u = (x - f32(cx)) / (f32(lw) * widen)
        v = (y - f32(cy)) / f32(lh)
        r2 = u * u + v * v
        e = (np.sqrt(r2) - 1.0) * f32(lw)
        shape = np.maximum(np.maximum(e, y - dome_y), med - sign * x)
        inside = _inside(shape, 3 * px)
        lungs_soft += inside
        thick += inside * np.sqrt(np.clip(1.0 - 0.75 * r2, 0.0, 1.0))

    # heart: a tilted ellipse left of the midline (image right), CTR < 0.5
    thorax_w = 2 * (0.075 + 2 * lw)
    hw = p["ctr"] * thorax_w / 2
    hcx = -0.075 + hw * 0.72  # about a third right of the midline, two thirds left
    tilt = f32(0.45)
    hx_, hy_ = x - f32(hcx), y - f32(p["heart_y"])
    hu = np.cos(tilt) * hx_ + np.sin(tilt) * hy_
    hv = -np.sin(tilt) * hx_ + np.cos(tilt) * hy_
    heart = _inside((np.sqrt((hu / f32(hw)) ** 2 + (hv / f32(0.24)) ** 2) - 1.0) * 0.24, 4 * px)
    knob = _inside(_ellipse(x, y, 0.12, -0.33, 0.065, 0.055), 3 * px)  # aortic knob
    heart *= 1.0 - below  # the heart sits on the diaphragm, it does not hang through it
    hide = (1.0 - heart) * (1.0 - knob)
    lungs_soft *= hide
    thick = thick * hide + 0.25 * thick * (1.0 - hide)  # retrocardiac lung shows faintly

    dens -= 0.42 * thick
    dens += 0.07 * below * body  # abdomen is thick soft tissue
    dens += 0.04 * _inside(ax_ - 0.045, 3 * px) * (y > -0.9)  # spine through the mediastinum
    trachea = _inside(_ellipse(x, y, 0.01, -0.58, 0.03, 0.32), 3 * px) * (y < -0.3)
    dens -= 0.10 * trachea
    if p["gastric"]:
        dens -= 0.12 * _inside(_ellipse(x, y, 0.34, dome_l + 0.13, 0.08, 0.05), 3 * px) * below

    # ribs: posterior arcs (rise from the spine, curve down laterally) and faint anterior ribs
    thorax = _inside(_ellipse(x, y, 0.0, cy, thorax_w / 2 + 0.03, lh + 0.1), 6 * px)
    thorax *= (1.0 - below) * (0.45 + 0.55 * lungs_soft)
    v = y - (0.9 * (ax_ - 0.2) ** 2 - 0.036) - f32(p["rib_top"])
    gap, grow = p["rib_gap"], 0.01
    k = (-gap + np.sqrt(np.maximum(gap * gap + 4 * grow * v, 0.0))) / (2 * grow)
    k = np.clip(np.rint(k), 0, 10)
    dist = np.abs(v - (gap * k + grow * k * k)) / (0.24 * (gap + 2 * grow * k))
    bone = np.clip(1.0 - dist, 0.0, 1.0)
    rib = np.sqrt(bone) * (0.75 + 0.25 * (dist > 0.65))  # brighter cortical edge
    va = y - 0.45 * (0.85 - ax_) - f32(p["rib_top"] + 0.12)
    ka = np.clip(np.rint(va / f32(gap * 1.25)), 0, 6)
    ant = np.clip(1.0 - np.abs(va - ka * f32(gap * 1.25)) / f32(0.2 * gap), 0.0, 1.0)
    ant *= (ax_ > 0.3) & (ax_ < 0.85)
    dens += p["rib_amp"] * (rib * (v > -0.03) + 0.35 * ant) * thorax

    # clavicles
    clav_y = -0.70 - 0.16 * (ax_ - 0.12) + 0.25 * (ax_ - 0.35) ** 2
    clav = np.clip(1.0 - np.abs(y - clav_y) / 0.026, 0.0, 1.0) * ((ax_ > 0.08) & (ax_ < 0.68))
    dens += 0.12 * np.sqrt(clav) * body

    # breast / soft tissue shadows brighten the lower zones
    if p["breast"] > 0.02:
        for sign in (-1.0, 1.0):
            d2 = ((x - sign * 0.45) / 0.32) ** 2 + ((y - 0.42) / 0.22) ** 2
            dens += p["breast"] * np.exp(-d2) * (1.0 - below)

    # lung markings: vessels branching out of the hila
    cos_a, sin_a = float(np.cos(a)), float(np.sin(a))

    def to_px(xb: float, yb: float) -> tuple[int, int]:
        """Body coordinates -> pixel (inverse of the positioning transform)."""
        gx_ = s * (cos_a * xb - sin_a * yb) + p["shift"][0]
        gy_ = s * (sin_a * xb + cos_a * yb) + p["shift"][1]
        return round((gx_ + 1.0) * (n - 1) / 2), round((gy_ + 1.0) * (n - 1) / 2)

    vessels = np.zeros((n, n), f32)
    vrng = np.random.default_rng(p["vessel_seed"])
    for sign in (-1.0, 1.0):
        hx, hy = sign * 0.2, -0.05
        for _ in range(10):
            ang = vrng.uniform(-1.2, 1.2) + (0.0 if sign > 0 else np.pi)
            _branch(vessels, vrng, (hx, hy), ang, 0.3, 3.0, 2, to_px)
    vessels = cv2.GaussianBlur(vessels, (0, 0), max(0.8, n / 400))
    dens += 0.05 * vessels * lungs_soft + 0.05 * heart

    lesion = np.zeros((n, n), f32)
    if label == "COVID-19":
        lesion = _covid_opacity(x, y, lungs_soft, p, n)
    elif label == "Pneumonia":
        lesion = _lobar_consolidation(x, y, lungs_soft, p, n, px, to_px)
    if with_lesion and label != "Normal":
        dens += lesion

    # measured, not just requested: cardiothoracic ratio and heart side
    heart_cols = np.flatnonzero((heart > 0.5).any(axis=0))
    lung_cols = np.flatnonzero((lungs_soft > 0.5).any(axis=0))
    ctr = (
        np.ptp(heart_cols) / max(np.ptp(lung_cols), 1)
        if heart_cols.size and lung_cols.size
        else 0.0
    )
    mid_col = to_px(0.0, float(p["heart_y"]))[0]
    heart_offset = (
        float((heart.sum(axis=0) * np.arange(n)).sum() / max(heart.sum(), 1)) - mid_col
    ) / n

    # image formation: blur, exposure, film curve, quantum noise
    dens = cv2.GaussianBlur(dens, (0, 0), p["blur"] * n / 512)
    if full != n:
        up = (full, full)
        dens = cv2.resize(dens, up, interpolation=cv2.INTER_LINEAR)
        lungs_soft = cv2.resize(lungs_soft, up, interpolation=cv2.INTER_LINEAR)
        lesion = cv2.resize(lesion, up, interpolation=cv2.INTER_LINEAR)
    n = full
    img = np.clip(dens * f32(p["exposure"] * 1.1) + 0.03, 0.0, 1.0) ** f32(p["gamma"])
    nrng = np.random.default_rng(p["texture_seed"])
    img += f32(p["noise"]) * nrng.standard_normal((n, n), dtype=f32) * np.sqrt(img + 0.05)
    img += 0.015 * _smooth_noise(nrng, n, 6)
    np.clip(img, 0.0, 1.0, out=img)

    markers = np.zeros((n, n), np.uint8)
    if marker is not None:
        _burn_marker(img, markers, marker[0], marker[1], nrng)

    lungs_mask = _drop_fragments(lungs_soft > 0.5)
    lesion_mask = (lesion > 0.2 * max(float(lesion.max()), 1e-6)) & lungs_mask
    if not with_lesion or label == "Normal":
        lesion_mask[:] = False
    info = {k: p[k] for k in ("side", "lobe", "severe", "n_blobs") if k in p}
    info["ctr"] = round(float(ctr), 3)
    info["heart_offset"] = round(heart_offset, 3)  # > 0: toward image right = patient's left
    return Phantom(img, lungs_mask, lesion_mask, markers >= 128, label, info)


def _drop_fragments(mask: np.ndarray) -> np.ndarray:
    """Keep the lung fields, drop slivers left where the heart and knob cut the lung edge."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 3:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.05 * areas.max()) + 1
    return np.isin(labels, keep)


def _branch(canvas, rng, start, angle, length, width, depth, to_px) -> None:
    """A vessel segment that tapers and splits; drawn with OpenCV (fast, anti-aliased)."""
    x0, y0 = start
    x1 = x0 + np.cos(angle) * length
    y1 = y0 + np.sin(angle) * length * 1.1
    thick = max(1, round(width * canvas.shape[0] / 512))
    cv2.line(canvas, to_px(x0, y0), to_px(x1, y1), 1.0, thick, cv2.LINE_AA)
    if depth > 0:
        for turn in (-0.45, 0.45):
            new_angle = angle + turn + rng.uniform(-0.2, 0.2)
            new_length = length * rng.uniform(0.55, 0.75)
            _branch(canvas, rng, (x1, y1), new_angle, new_length, width * 0.7, depth - 1, to_px)


def _covid_opacity(x, y, lungs, p, n) -> np.ndarray:
    """Bilateral, peripheral, lower-zone, patchy ground-glass opacity (additive, hazy)."""
    rng = np.random.default_rng(p["blob_seed"])
    out = np.zeros((n, n), np.float32)
    texture = np.clip(0.45 + 0.9 * _smooth_noise(rng, n, 16), 0.05, 1.0)
    lw = p["lung_w"]
    for i in range(p["n_blobs"]):
        sign = -1.0 if i % 2 == 0 else 1.0  # alternate sides: always bilateral
        cx = sign * (0.085 + 2 * lw * rng.uniform(0.65, 0.98))  # peripheral
        cy = rng.uniform(-0.05, 0.45) if rng.random() < 0.8 else rng.uniform(-0.4, -0.05)
        sx, sy = rng.uniform(0.08, 0.16), rng.uniform(0.1, 0.2)
        d2 = ((x - np.float32(cx)) / np.float32(sx)) ** 2 + (
            (y - np.float32(cy)) / np.float32(sy)
        ) ** 2
        out += np.exp(-d2)
    out = np.clip(out, 0.0, 1.3) * texture
    amp = p["ggo_amp"] * (1.5 if p["severe"] else 1.0)
    return (amp * out * lungs).astype(np.float32)


def _lobar_consolidation(x, y, lungs, p, n, px, to_px) -> np.ndarray:
    """Dense, homogeneous, one-lobe consolidation with a sharp fissure edge and air bronchograms."""
    rng = np.random.default_rng(p["blob_seed"])
    sign = -1.0 if p["side"] == "right" else 1.0  # patient's right is image left
    side = _inside(sign * -x + 0.06, 2 * px)  # this hemithorax only
    fiss = p["fissure"]
    edge = 0.55 + 0.45 * _smooth_noise(rng, n, 7)  # irregular margins away from fissures
    if p["lobe"] == "upper":
        sharp = 1.5 * px if sign < 0 else 14 * px  # only the right lung has a horizontal fissure
        region = _inside(y - fiss, sharp) * np.clip(edge + 0.6, 0.0, 1.0)
    elif p["lobe"] == "middle":  # below the fissure, hugging the right heart border
        d2 = ((x + 0.25) / 0.26) ** 2 + ((y - fiss - 0.15) / 0.24) ** 2
        region = _inside(fiss - y, 1.5 * px) * np.clip(1.6 * np.exp(-d2) * (edge + 0.3), 0.0, 1.0)
    else:  # lower lobe: soft upper margin, fills down to (and hides) the hemidiaphragm
        top = fiss + 0.04 + 0.1 * (np.abs(x) - 0.3)
        region = np.clip((y - top) / np.float32(0.12) + edge - 0.3, 0.0, 1.0)
    cons = region * side
    if p.get("bilateral"):
        d2 = ((x + sign * 0.45) / 0.09) ** 2 + ((y - 0.3) / 0.08) ** 2
        cons = np.maximum(cons, 0.8 * np.exp(-d2))
    texture = 0.9 + 0.1 * _smooth_noise(rng, n, 20)
    out = p["consol_amp"] * cons * texture * lungs
    # air bronchograms: dark branching tubes inside the consolidation
    tubes = np.zeros((n, n), np.float32)
    hx = sign * 0.2
    for _ in range(4):
        ang = rng.uniform(-1.0, 1.0) + (np.pi if sign < 0 else 0.0)
        length = rng.uniform(0.2, 0.35)
        x1, y1 = hx + np.cos(ang) * length, -0.05 + np.sin(ang) * length
        cv2.line(tubes, to_px(hx, -0.05), to_px(x1, y1), 1.0, max(1, n // 170), cv2.LINE_AA)
    tubes = cv2.GaussianBlur(tubes, (0, 0), max(0.7, n / 500))
    out -= 0.45 * out * tubes
    return out.astype(np.float32)


def _burn_marker(img, mask, text, corner, rng) -> None:
    """Burned-in text: saturated white, like a lead marker or a printed label."""
    n = img.shape[0]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = n / 512 * (1.6 if len(text) <= 2 else 0.8)
    thick = max(1, round(n / 512 * (4 if len(text) <= 2 else 2)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    margin = int(n * rng.uniform(0.03, 0.07))
    left = corner.endswith("left")
    top = corner.startswith("top")
    x0 = margin if left else n - margin - tw
    y0 = margin + th if top else n - margin - base
    cv2.putText(mask, text, (x0, y0), font, scale, 255, thick, cv2.LINE_AA)
    m = mask.astype(np.float32) / 255.0
    np.maximum(img, m * np.float32(rng.uniform(0.92, 1.0)), out=img)
