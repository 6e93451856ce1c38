"""The nonlinear per-example law's normalisation (docs/derivations.md §11.11, "the table's ends").

The continuous mass is exactly 1 − atom; the law takes the mass below its table from that, not from the bottom two
points' slope extrapolated over the decades below (which put 0.3–0.5 % too much there for tanh and, normalised by
the fitted total, took it from the bulk). The check is independent of the table: the law's first moment from its
density, ∫ x ρ(x) dx, against m₁ from the recursion's power series with the same rule. Before: 3.3e−3 low (tanh,
B = 8, L = 2, default rule); after: 3e−6.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from rmt_init.theory.activations import get_activation
from rmt_init.theory.bn_per_example_nonlinear import BNPerExampleNonlinearLaw


def _first_moment_of_density(law: BNPerExampleNonlinearLaw) -> float:
    t = law._table
    lo, hi = float(t["lx"][0]), float(t["lx"][-1])

    def x_xrho(u: float) -> float:  # x · xρ(x) in ln x
        return math.exp(2.0 * u) * float(law.pdf(np.array([math.exp(u)]))[0])

    inner = integrate.quad(x_xrho, lo, hi, limit=500, epsrel=1e-10)[0]
    return inner + integrate.quad(x_xrho, lo - 60.0, lo, limit=200)[0] + integrate.quad(x_xrho, hi, hi + 60.0, limit=200)[0]


@pytest.fixture(scope="module")
def walked():
    """The law (a small rule: series and table share it, so the comparison does not depend on its size) and its walk's
    raw output, recorded for the refusal test."""
    from rmt_init.theory import bn_per_example_nonlinear as module

    law = BNPerExampleNonlinearLaw(2, get_activation("tanh"), 8, 1.0, directions=4, t_nodes=6)
    real, seen = module._Walker.walk, []

    def recording(self, *args, **kwargs):
        seen.append(real(self, *args, **kwargs))
        return seen[-1]

    module._Walker.walk = recording
    try:
        law._table
    finally:
        module._Walker.walk = real
    return law, seen[0]


@pytest.fixture(scope="module")
def tanh_law(walked) -> BNPerExampleNonlinearLaw:
    return walked[0]


def test_density_mean_equals_the_series_mean(tanh_law) -> None:
    """∫ x ρ dx of the table against the series m₁ (same rule): the spline and η errors are ~1e−5 of it; the former
    normalisation was off by the mass its extrapolation put below the table: −3.3e−3 (here and at the default
    rule), against −3.4e−6 now."""
    assert _first_moment_of_density(tanh_law) == pytest.approx(tanh_law._mean, rel=1e-4)


def test_continuous_mass_is_exact_and_its_end_is_continuous(tanh_law) -> None:
    t = tanh_law._table
    assert t["total"] == 1.0  # tanh: no atom
    # the density below the table continues xρ's value at its bottom, with the slope the mass implies
    assert t["below"] == pytest.approx(t["xrho"][0] / t["slope_lo"], rel=1e-14)
    assert tanh_law.cdf(np.exp(t["lx"][0])) == pytest.approx(t["below"], rel=1e-12)
    # the two-point extrapolation it replaces put more mass below the table (the diagnostic table_mass > 1)
    assert tanh_law.table_mass > 1.0 + 1e-3
    assert 0.5 < t["slope_lo"] / t["fitted_slope"] < 2.0


@pytest.mark.parametrize("scale", [1.02, 0.97])
def test_refuses_a_table_that_does_not_hold_its_mass(walked, monkeypatch, scale: float) -> None:
    """A table whose own mass is off by more than the tolerances (its G scaled by 1.02 or 0.97) raises."""
    from rmt_init.theory import bn_per_example_nonlinear as module

    law, (x, sol) = walked
    fresh = BNPerExampleNonlinearLaw(2, get_activation("tanh"), 8, 1.0, directions=4, t_nodes=6)
    fresh.__dict__["_mean"] = law._mean
    monkeypatch.setattr(module._Walker, "walk", lambda self, *a, **k: (x, scale * sol))
    with pytest.raises(FloatingPointError, match="not resolved"):
        fresh._table
