"""The BN batch law's distribution-function table refuses what it cannot resolve (docs/derivations.md §11.6).

Linear φ, B = 4, depth 10: the free-product solver reaches no solution at x ≈ 28–33 in the table's walk (the public
pdf raises there). The walk read those NaN densities as "no mass below" and stopped at x = 37: the table held 0.264
of the continuous mass 0.5, and the cdf divided by it (table path) or left the rest out (quadrature path) — cdf(5)
read 0.81 and 0.67 against torch's 0.90 — silently. Now such points are solved again alone (they converge from their
neighbours' roots), a point that still fails raises, and so does a table whose mass is off by more than
_TABLE_MASS_TOL.
"""
from __future__ import annotations

import numpy as np
import pytest

from rmt_init import bn_jacobian_spectrum
from rmt_init.theory import bn_spectrum


def test_unsolved_points_are_solved_again_from_their_neighbours() -> None:
    """Linear B = 4, depth 10: the points the walk's chunk left unsolved converge alone, from their neighbours'
    remembered roots; the table then holds 1 − 2/B (it held 0.264 before), and its cdf at torch's quantiles 0.9,
    0.95, 0.99 (N = 256, 8 networks: x = 5.01, 113, 5783) reads 0.897, 0.947, 0.988 (before: 0.81 and 0.67 at 5)."""
    law = bn_jacobian_spectrum(10, "linear", 4)
    assert law.table_mass == pytest.approx(0.5, abs=1e-6)
    assert law.cdf(np.array([5.014, 113.2, 5783.0])) == pytest.approx([0.897, 0.9465, 0.9876], abs=3e-3)
    assert law.moment(1) == pytest.approx(1024.0)  # ((B − 2)/(B − 3))^L


def test_points_that_stay_unsolved_raise(monkeypatch) -> None:
    law = bn_jacobian_spectrum(2, "linear", 8)
    real = type(law)._pdf_vectorised

    def holed(self, x):
        out = real(self, x)
        return np.where((x > 0.5) & (x < 0.6), np.nan, out)

    monkeypatch.setattr(type(law), "_pdf_vectorised", holed)
    with pytest.raises(FloatingPointError, match="no solution at x = 0.5"):
        law.cdf(1.0)


def test_an_unresolved_table_raises(monkeypatch) -> None:
    """relu, B = 4, depth 10, with the η-continuation started where it used to (10 × the spectral scale): the solver
    reaches a spurious root and the densities integrate to 1.38 against 0.456; the table refuses (a scipy ValueError
    from its non-finite values before). With today's start the table resolves (tests/test_bn_heavy_tail_start.py)."""
    monkeypatch.setattr(bn_spectrum.BNBatchJacobianLaw, "_start_height", 10.0)
    with pytest.raises(FloatingPointError, match="continuous mass"):
        bn_jacobian_spectrum(10, "relu", 4).cdf(1.0)


def test_a_table_off_in_mass_raises(monkeypatch) -> None:
    law = bn_jacobian_spectrum(2, "linear", 8)
    real = type(law)._pdf_vectorised
    monkeypatch.setattr(type(law), "_pdf_vectorised", lambda self, x: 1.01 * real(self, x))
    with pytest.raises(FloatingPointError, match="continuous mass"):
        law.cdf(1.0)


def test_healthy_tables_pass_the_mass_check() -> None:
    for depth, act, batch in [(2, "linear", 4), (4, "linear", 16), (2, "relu", 8)]:
        law = bn_jacobian_spectrum(depth, act, batch)
        assert abs(law.table_mass - law.continuous_mass) <= bn_spectrum._TABLE_MASS_TOL * law.continuous_mass
        assert 0.0 < float(law.cdf(1.0)) < 1.0
