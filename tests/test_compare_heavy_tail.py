"""``compare`` and ``plot.compare`` on a law with a power-law tail, unbounded support and an atom at 0 — the shape
of a batch-normalised network's batch-Jacobian law (``bn_jacobian_spectrum``: atom 2/B at 0, support [0, ∞),
moments of order ≥ (B − 1)/2 infinite).

Reference law (independent, closed form): an atom ``p₀`` at 0 plus ``(1 − p₀)`` × Lomax(a), ``P(λ > x) =
(1 + x)^{−a}``, whose raw moments ``E[λˢ] = (1 − p₀) Γ(s + 1) Γ(a − s)/Γ(a)`` are finite for ``s < a`` only. Its
samples (drawn by inversion) are exactly what it describes, so the finite moment errors are within 5 SE, the KS
distance within the DKW bound, and the atom's fraction within 5 binomial SE; the infinite moments and the missing
top edge must come back as ``inf`` with a note, never NaN or an exception. (The real BN law is run against torch
networks by ``validation/claims/bn_batch_spectrum.py``: its cdf table takes tens of seconds to build.)
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from rmt_init.compare import compare
from rmt_init.theory.laws import SpectralLaw

P0, A = 0.25, 3.5  # the atom's mass; the tail exponent (m1, m2, m3 finite; m4 infinite — as BN at B = 8)


class HeavyTailWithAtom(SpectralLaw):
    def __init__(self, p0: float = P0, a: float = A) -> None:
        self.p0, self.a = p0, a

    @property
    def support(self) -> tuple[float, float]:
        return (0.0, math.inf)

    @property
    def atoms(self):
        return ((0.0, self.p0),)

    @property
    def intervals(self):
        return ((0.0, math.inf),)

    def _pdf(self, x):
        return (1 - self.p0) * self.a * (1 + x) ** (-self.a - 1)

    def _cdf(self, x):
        x = np.asarray(x, float)
        return np.where(x < 0, 0.0, self.p0 + (1 - self.p0) * (1 - (1 + np.maximum(x, 0)) ** (-self.a)))

    def _ppf(self, q):
        q = np.asarray(q, float)
        inner = np.clip((q - self.p0) / (1 - self.p0), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            return np.where(q <= self.p0, 0.0, (1 - inner) ** (-1 / self.a) - 1)

    _cdf_table = _cdf
    _ppf_table = _ppf

    def _moment(self, order):
        if order >= self.a:
            raise ValueError(f"the moment of order {order!r} of {self!r} is infinite (tail x^-{self.a})")
        return (1 - self.p0) * math.gamma(order + 1) * math.gamma(self.a - order) / math.gamma(self.a)

    def __repr__(self) -> str:
        return "HeavyTailWithAtom()"


def _samples(law: HeavyTailWithAtom, trials: int, size: int, seed: int = 0) -> np.ndarray:
    return law.ppf(np.random.default_rng(seed).uniform(size=(trials, size)))


def test_compare_reports_infinite_moments_and_edge_as_inf():
    law = HeavyTailWithAtom()
    data = _samples(law, 40, 500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        c = compare(law, data, moments=5)
    # infinite law moments (k ≥ a) and the unbounded support: inf, and said so; nothing NaN
    assert [k for k, e in c.moment_errors.items() if math.isinf(e)] == [4, 5]
    assert all(math.isinf(c.moment_stderrs[k]) for k in (4, 5))
    assert math.isinf(c.edge_error)
    assert any("m4, m5" in n for n in c.notes) and any("unbounded" in n for n in c.notes)
    assert not any(math.isnan(v) for v in [c.ks, c.wasserstein1, c.edge_error, *c.moment_errors.values(),
                                           *c.moment_stderrs.values(), *c.atom_errors.values()])
    # the finite ones are compared: m1 within 5 SE (m2 has a finite but heavy-tailed per-trial spread, m3 an
    # infinite one: only m1 and m2 are held to 5 SE)
    for k in (1, 2):
        assert abs(c.moment_errors[k]) <= 5 * c.moment_stderrs[k], (k, c.moment_errors[k], c.moment_stderrs[k])
    # exact samples: KS within DKW at α = 1e−6, the atom's fraction within 5 binomial SE
    n = data.size
    assert c.ks <= math.sqrt(math.log(2e6) / (2 * n))
    assert abs(c.atom_errors[0.0]) <= 5 * math.sqrt(P0 * (1 - P0) / n)
    text = c.summary()
    assert "nan" not in text.lower() and "unbounded" in text
    # a tail x^{−1.8}: m2 is infinite, and the one-line summary (m1, m2) says it is not compared
    heavier = HeavyTailWithAtom(a=1.8)
    text = compare(heavier, _samples(heavier, 10, 200), moments=2).summary()
    assert "m2 inf (not compared)" in text and "nan" not in text.lower()


def test_compare_singular_values_of_a_heavy_tailed_law():
    """σ = √λ has the tail σ^{−2a}: E[σᵏ] = E[λ^{k/2}] is infinite from k = 2a = 7 on."""
    law = HeavyTailWithAtom()
    c = compare(law, _samples(law, 20, 500, seed=1), kind="singular", moments=8)
    assert [k for k, e in c.moment_errors.items() if math.isinf(e)] == [7, 8]
    assert math.isinf(c.edge_error) and not math.isnan(c.ks)


def test_wrong_law_is_detected():
    """The same comparison resolves a wrong tail exponent (a = 5 samples against the a = 3.5 law)."""
    law = HeavyTailWithAtom()
    c = compare(law, _samples(HeavyTailWithAtom(a=5.0), 40, 500))
    assert c.ks > 3 * math.sqrt(math.log(2e6) / (2 * 20000)) and c.moment_errors[1] < -5 * c.moment_stderrs[1]


@pytest.mark.parametrize("scale", ["auto", "linear", "log"])
@pytest.mark.parametrize("singular", [False, True])
def test_plot_compare_draws_a_heavy_tailed_law(scale, singular):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rmt_init import plot

    law = HeavyTailWithAtom()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ax = plot.compare(law, _samples(law, 10, 300, seed=2), scale=scale, singular_values=singular)
    line = [ln for ln in ax.lines if ln.get_label() == "theory"][0]
    x, y = (np.asarray(v, float) for v in line.get_data())
    # the density is drawn, finite, up to a finite top (the law's 1 − 1e−4 quantile, in the drawn variable)
    top = float(law.ppf(1 - plot.TAIL_QUANTILE))
    top = math.sqrt(top) if singular else top
    assert x.size > 10 and np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.max(y) > 0
    assert x.max() == pytest.approx(top, rel=1e-2)
    texts = " ".join(t.get_text() for t in ax.texts).replace("\n", " ")
    assert "nan" not in texts.lower() and "none (unbounded)" in texts and "not compared" not in texts
    plt.close(ax.figure)
