"""Agreement figures against hand-computed examples, and who decided what from the store."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from desktop.agreement import agreement, confusion, inter_reader, kappa, latest_by_reviewer
from desktop.review_store import ReviewStore


def test_two_by_two_textbook_example():
    # 50 items, both "yes" 20, A yes/B no 5, A no/B yes 10, both "no" 15:
    # po = 35/50 = 0.7; marginals A (0.5, 0.5), B (0.6, 0.4): pe = 0.3 + 0.2 = 0.5;
    # kappa = (0.7 - 0.5) / 0.5 = 0.4.
    # Fleiss-Cohen-Everitt by hand: diagonal 0.4(1 - 1.1*0.6)^2 + 0.3(1 - 0.9*0.6)^2 = 0.10972;
    # off 0.36 * (0.1*1.1^2 + 0.2*0.9^2) = 0.10188; minus (0.4 - 0.5*0.6)^2 = 0.01;
    # var = 0.2016 / (50 * 0.25) = 0.016128, SE = 0.126996.
    k = kappa([[20, 5], [10, 15]])
    assert k.n == 50
    assert k.observed == pytest.approx(0.7)
    assert k.expected == pytest.approx(0.5)
    assert k.kappa == pytest.approx(0.4)
    assert k.se == pytest.approx(math.sqrt(0.016128), rel=1e-9)
    assert (k.low, k.high) == pytest.approx((0.4 - 1.959964 * 0.126996, 0.4 + 1.959964 * 0.126996))


def _fce_exact(m: list[list[int]]) -> tuple[Fraction, Fraction]:
    """kappa and its Fleiss-Cohen-Everitt variance in exact fractions."""
    n = sum(map(sum, m))
    k = len(m)
    p = [[Fraction(c, n) for c in row] for row in m]
    r = [sum(row) for row in p]
    c = [sum(p[i][j] for i in range(k)) for j in range(k)]
    po = sum(p[i][i] for i in range(k))
    pe = sum(r[i] * c[i] for i in range(k))
    kap = (po - pe) / (1 - pe)
    a = sum(p[i][i] * (1 - (r[i] + c[i]) * (1 - kap)) ** 2 for i in range(k))
    b = sum(p[i][j] * (c[i] + r[j]) ** 2 for i in range(k) for j in range(k) if i != j)
    var = (a + (1 - kap) ** 2 * b - (kap - pe * (1 - kap)) ** 2) / (n * (1 - pe) ** 2)
    return kap, var


def test_three_class_textbook_example():
    # Fleiss' diagnoses of 100 patients (psychological / neurological / organic):
    # po = 0.89, pe = 0.8*0.8 + 0.1*0.05 + 0.1*0.15 = 0.66, kappa = 0.23/0.34 = 23/34 (0.68)
    m = [[75, 1, 4], [5, 4, 1], [0, 0, 10]]
    k = kappa(m)
    kap, var = _fce_exact(m)
    assert kap == Fraction(23, 34)
    assert k.kappa == pytest.approx(23 / 34)
    assert k.observed == pytest.approx(0.89) and k.expected == pytest.approx(0.66)
    assert k.se == pytest.approx(math.sqrt(float(var)), rel=1e-12)
    assert k.se == pytest.approx(0.0877, abs=1e-4)


def test_edge_cases():
    perfect = kappa([[6, 0], [0, 4]])
    assert perfect.kappa == pytest.approx(1.0) and perfect.se == pytest.approx(0.0)
    few = kappa([[1, 0], [1, 0]])  # two images: no interval rather than a zero-width one
    assert few.kappa is not None and few.low is None and "too few" in few.text()
    assert kappa([[5, 0], [0, 0]]).kappa is None  # one class only: undefined, not 1 or 0
    assert "undefined" in kappa([[5, 0], [0, 0]]).text()
    assert kappa([[0, 0], [0, 0]]) is None
    chance = kappa([[1, 1], [1, 1]])
    assert chance.kappa == pytest.approx(0.0)
    worst = kappa([[0, 5], [5, 0]])  # n = 10: the interval is given
    assert worst.low >= -1.0 and worst.kappa == pytest.approx(-1.0)


def test_confusion_keeps_unknown_classes_and_orientation():
    m = confusion([("A", "B"), ("A", "A"), ("C", "A")], ["A", "B"])
    assert m == [[1, 1, 0], [0, 0, 0], [1, 0, 0]]  # rows: first rater; C appended


def test_reviewer_vs_ai_leaves_uncertain_out():
    decided = [
        ("Normal", "agree", "Normal"),
        ("Normal", "override", "Pneumonia"),
        ("Pneumonia", "agree", "Pneumonia"),
        ("Pneumonia", "uncertain", None),
        ("Normal", None, None),
    ]
    a = agreement(decided, ["Normal", "Pneumonia"])
    assert (a.agreed, a.overridden, a.uncertain) == (2, 1, 1)
    assert a.matrix == [[1, 0], [1, 1]]  # rows reviewer, columns AI
    assert a.kappa.n == 3 and a.kappa.observed == pytest.approx(2 / 3)
    assert "67 % agreement" in a.line() and "1 uncertain" in a.line()
    d = a.as_dict()
    assert d["confusion_matrix"]["counts"] == [[1, 0], [1, 1]]
    assert d["reviewer_vs_ai"]["kappa_ci95"] is None  # three images: too few for an interval


def test_latest_decision_per_reviewer_from_the_store(tmp_path):
    with ReviewStore.for_folder(tmp_path) as s:
        s.set_decision("a.png", "agree", reviewer="ann", ai_class="Normal")
        s.set_decision("a.png", "agree", reviewer="bob", ai_class="Normal")  # confirms ann
        s.set_decision("b.png", "override", reviewer="ann", reviewer_class="Normal", ai_class="X")
        s.set_decision(
            "b.png", "override", reviewer="bob", reviewer_class="Pneumonia", ai_class="X"
        )
        s.set_decision("b.png", "agree", reviewer="ann", ai_class="X")  # ann changes her mind
        s.set_decision("c.png", "uncertain", reviewer="bob", ai_class="Normal")
        s.set_decision("c.png", "agree", reviewer="ann", ai_class="Normal")
        history = s.decision_history()
        assert [h[3] for h in s.history("a.png")].count("bob") == 2  # decision and class
    latest = latest_by_reviewer(history)
    assert latest["a.png"] == {"ann": ("agree", "Normal"), "bob": ("agree", "Normal")}
    assert latest["b.png"] == {"ann": ("agree", "X"), "bob": ("override", "Pneumonia")}
    assert latest["c.png"]["bob"] == ("uncertain", None)
    pairs = inter_reader(latest, ["Normal", "Pneumonia", "X"])
    assert [(a, b, k.n) for a, b, k in pairs] == [("ann", "bob", 2)]  # c.png: bob unsure
    assert pairs[0][2].observed == pytest.approx(0.5)


def test_same_reviewer_pressing_the_same_key_adds_no_history(tmp_path):
    with ReviewStore.for_folder(tmp_path) as s:
        s.set_decision("a.png", "agree", reviewer="ann", ai_class="Normal")
        s.set_decision("a.png", "agree", reviewer="ann", ai_class="Normal")
        assert len(s.history("a.png")) == 2  # decision + class, once


def test_an_agreement_imported_without_its_class_agrees_with_the_ai():
    a = agreement(
        [("Normal", "agree", None), ("Pneumonia", "agree", None)], ["Normal", "Pneumonia"]
    )
    assert a.matrix == [[1, 0], [0, 1]] and a.kappa.observed == pytest.approx(1.0)
