"""``compare`` at atoms and with the tabulated distribution function (issue 11, items 1, 11 and 12).

The KS distance from ``compare`` must be the one computed by hand from the law's default (most accurate)
cdf: the supremum over all order statistics of |F_n − F| with both one-sided limits, atoms included. The
table behind ``compare`` is within 2e−7 of the exact cdf (tested in test_free.py) and KS is 1-Lipschitz in
F, so the two agree to 2e−7 < 1e−6. A law compared with its own samples must give a KS consistent with the
sample size: for n i.i.d. samples P(KS > 1.63/√n) = 1% (Kolmogorov's distribution).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init import fuss_catalan, jacobian_spectrum, marchenko_pastur
from rmt_init.compare import compare


def _ks_by_hand(law, samples: np.ndarray) -> float:
    y = np.sort(samples.ravel())
    n = y.size
    values = np.unique(y)
    right = np.searchsorted(y, values, side="right") / n
    left = np.searchsorted(y, values, side="left") / n
    law_right = law.cdf(values)
    atom = np.zeros(values.shape)
    for loc, mass in law.atoms:
        atom[values == loc] += mass
    return float(max(np.max(np.abs(right - law_right)), np.max(np.abs(left - (law_right - atom)))))


@pytest.mark.parametrize(
    "make",
    [
        lambda: jacobian_spectrum(4, "relu", init="kaiming_normal", nonlinearity="relu"),
        lambda: jacobian_spectrum(8, "relu", init="kaiming_normal", nonlinearity="relu"),
        pytest.param(lambda: jacobian_spectrum(16, "relu", init="kaiming_normal", nonlinearity="relu"), marks=pytest.mark.slow),
        lambda: fuss_catalan(3),
        lambda: marchenko_pastur(2.5),
    ],
    ids=["relu4", "relu8", "relu16", "fc3", "mp2.5"],
)
def test_ks_equals_the_ks_by_hand(make) -> None:
    """Was 0.23 off for ReLU laws: the table's cdf at exactly 0 was extrapolated (0.518/0.604/0.731 at
    depths 4/8/16 for an atom of 1/2), and continuous samples near 0 were snapped to the atom."""
    law = make()
    samples = law.sample(1200, rng=11).reshape(3, -1)  # the by-hand KS evaluates the quadrature cdf at each
    c = compare(law, samples)
    assert abs(c.ks - _ks_by_hand(law, samples)) <= 1e-6
    assert c.ks < 1.63 / math.sqrt(samples.size)
    for (loc, mass), error in zip(law.atoms, c.atom_errors.values()):
        assert abs(error) < 5 * math.sqrt(mass * (1 - mass) / samples.size)


@pytest.mark.parametrize("depth", [10, 20])
def test_deep_relu_law_against_its_own_samples(depth: int) -> None:
    """Was KS 0.144 (depth 10) and 0.271 (depth 20): much of the continuous mass lies within 1e−9·max of 0
    there and was absorbed into the atom. Nothing is snapped now (the window holds no more samples than the
    law's continuous mass there allows)."""
    law = jacobian_spectrum(depth, "relu")
    n = 20000
    samples = law.sample(n, rng=depth).reshape(10, -1)
    c = compare(law, samples)
    assert c.ks < 1.63 / math.sqrt(n)
    assert not any("taken as the atom" in note for note in c.notes)


def test_numerical_zeros_are_compared_as_one_cell_with_the_laws_window_mass() -> None:
    """Zeros of a floating-point spectrum (~1e−17 here) are more than the law's continuous mass near 0 allows:
    the window is one cell for samples and law alike, so the KS is that of the exact zeros up to the law's
    continuous mass in the window (depth 3: c(τ) ~ 1e−3·(τ/max)^{1/4}) and the samples moved into it."""
    law = jacobian_spectrum(3, "relu")
    exact = law.sample(6000, rng=4)
    noisy = np.where(exact == 0.0, 1e-17, exact)
    a, b = compare(law, exact), compare(law, noisy)
    assert any("taken as the atom" in note for note in b.notes)
    window = float(law.cdf(1e-9 * exact.max())) - 0.5
    moved = np.mean((exact > 0) & (exact <= 1e-9 * exact.max()))
    assert abs(a.ks - b.ks) <= window + moved + 1e-12
    assert abs(b.atom_errors[0.0]) < 5 * math.sqrt(0.25 / 6000)


def test_probes_bound_the_ks_from_below_within_one_over_probes() -> None:
    law = fuss_catalan(2)
    samples = law.sample(5000, rng=2)
    full, coarse = compare(law, samples), compare(law, samples, probes=200)
    assert coarse.ks <= full.ks + 1e-15 and full.ks - coarse.ks <= 1.0 / 200


def test_law_must_be_a_law() -> None:
    with pytest.raises(TypeError, match="law"):
        compare(None, np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="law"):
        compare("fuss_catalan", np.array([1.0, 2.0]))
