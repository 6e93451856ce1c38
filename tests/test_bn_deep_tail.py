"""The deep tail of hard-edge BN batch laws: a checked spline of solved knots (docs/derivations.md §11.12).

Before, xρ below 1e−40 × the mean was the power law fitted over the decade above. On relu, B = 16, depth 20 the
solved slope of ln xρ bends from 0.036 there to 0.050 by 1e−100, so the fit put 0.0204 of mass below 1e−40 × the
mean where the solver's density holds 0.0173: the cdf table held 0.50326 against 0.50016 and refused (as did relu
B = 8 and tanh B = 16, 64 at depth 20).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init import bn_jacobian_spectrum
from rmt_init.theory import _deep_tail
from rmt_init.theory.bn_spectrum import _TABLE_MASS_TOL

TOP, FLOOR, NOISE = -90.0, math.log(np.finfo(float).tiny), 1e-15


def bending(s: np.ndarray) -> np.ndarray:
    """xρ with a slope that bends from 0.036 at the top towards 0.05, like relu B = 16, depth 20."""
    return np.exp(-7.3 + 0.05 * (s - TOP) - 0.7 * np.expm1(0.02 * (s - TOP)))


def _mass(f, lo: float, hi: float) -> float:
    nodes, weights = np.polynomial.legendre.leggauss(64)
    ends = np.linspace(lo, hi, 401)
    mid, half = 0.5 * (ends[1:] + ends[:-1]), 0.5 * np.diff(ends)
    return float(((f(mid[:, None] + half[:, None] * nodes) * weights).sum(axis=1) * half).sum())


def test_the_spline_follows_a_bending_tail_to_its_tolerance() -> None:
    tail = _deep_tail.build_deep_tail(bending, TOP, FLOOR, NOISE)
    s = np.linspace(FLOOR, TOP, 20001)
    knotted = s >= tail.knots[0]  # below the last knot (xρ < 1e−15 here) the power law of the last two knots
    assert np.max(np.abs(tail(s[knotted]) / bending(s[knotted]) - 1.0)) < 10 * _deep_tail.TOLERANCE
    assert np.max(np.abs(tail(s[~knotted]) - bending(s[~knotted]))) < 1e-3 * NOISE
    assert tail.error <= _deep_tail.TOLERANCE
    exact = _mass(bending, FLOOR, TOP)
    assert _mass(tail, FLOOR, TOP) == pytest.approx(exact, rel=1e-8)
    # a single power law fitted over the top decade (what the spline replaced) is 17 % off in mass here
    slope = (math.log(bending(np.array([TOP]))[0]) - math.log(bending(np.array([TOP - math.log(10.0)]))[0])) / math.log(10.0)
    assert abs(bending(np.array([TOP]))[0] / slope / exact - 1.0) > 0.1


def test_knots_stop_at_the_noise_floor_and_a_power_law_continues() -> None:
    steep = lambda s: np.exp(-5.0 + 0.4 * (s - TOP))  # noqa: E731  — below 1e−15 from 73.9 below the top
    tail = _deep_tail.build_deep_tail(steep, TOP, FLOOR, NOISE)
    assert steep(tail.knots[:1])[0] > NOISE and steep(tail.knots[:1] - 20.0)[0] < NOISE
    assert tail.bottom_slope == pytest.approx(0.4, rel=1e-9)
    s = np.array([TOP - 80.0, TOP - 30.0])
    assert tail(s) == pytest.approx(steep(s), rel=1e-9)


def test_an_unsolved_midpoint_raises() -> None:
    def holed(s: np.ndarray) -> np.ndarray:
        out = bending(s)
        return np.where((s < TOP - 50.0) & (s > TOP - 60.0), np.nan, out)

    with pytest.raises(FloatingPointError):
        _deep_tail.build_deep_tail(holed, TOP, FLOOR, NOISE)


def test_a_noisy_tail_raises() -> None:
    rng = np.random.default_rng(0)
    noisy = lambda s: bending(s) * (1.0 + 1e-3 * rng.standard_normal(np.shape(s)))  # noqa: E731
    with pytest.raises(FloatingPointError, match="did not reach"):
        _deep_tail.build_deep_tail(noisy, TOP, FLOOR, NOISE)


@pytest.mark.parametrize("act, batch", [("relu", 16), ("tanh", 16), ("relu", 8)])
def test_depth_20_tables_hold_the_continuous_mass(act: str, batch: int) -> None:
    """Refused before (mass off by 6.2e−3, 7.0e−3, 2.2e−2 relative); now within 2e−5."""
    law = bn_jacobian_spectrum(20, act, batch)
    assert law.table_mass == pytest.approx(law.continuous_mass, rel=2e-5)
    assert 2e-5 < _TABLE_MASS_TOL


def test_the_deep_density_is_the_solvers() -> None:
    """relu, B = 16, depth 20: the law's density below 1e−40 × the mean against the solver's, point by point (the
    old power law read 200× the solver's xρ at 1e−200)."""
    law = bn_jacobian_spectrum(20, "relu", 16)
    x = np.array([1e-50, 3.3e-97, 1e-120, 2e-200])
    assert np.all(np.log(x) < law._deep_start)
    assert law.pdf(x) == pytest.approx(law._solved_density(x), rel=1e-5)
