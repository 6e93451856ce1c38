"""A point whose η-continuation fails must be solved on another path, or raise: never returned as a wrong iterate.

FreeProductLaw._solve_cold_taus solves the points whose continuation failed again one at a time at the finer η
ratio ½. Where that failed too, the last iterate was returned as it stood. On the BN batch Jacobian law (relu, B = 16,
depth 1) the point x₀ = 0.06625 of a 1800-point grid (geomspace(1e−3, 1e2)·mean) failed its first path, and its
ratio-½ path ends at t = 19.7 − iπ (residual |Log zχ| = 8e23), which reads xρ = 6.6e−8 against the neighbours'
0.033 (a 5·10⁵-fold error, caught only by the BN neighbour sweep). The single-point path at ratio ¼ converges there
(so do ratios 0.7 and 0.9, to the same root within 1e−16). Points that no path reaches occur on the test suite's
laws only far below a BN law's lower edge (x ≤ 2e−32 × mean, where u = 1/z leaves the float range); their iterates
read xρ ≤ 1e−28, i.e. density 0, which is right in a gap, so they are still returned; an iterate that would give a
positive density is no solution, and the point's t (and density) is NaN: unknown, never a wrong number.
"""

import math

import numpy as np
import pytest

from rmt_init.theory.bn_spectrum import bn_jacobian_spectrum


@pytest.fixture(scope="module")
def relu16():
    law = bn_jacobian_spectrum(1, "relu", batch_size=16)
    x0 = float(np.geomspace(1e-3, 1e2, 1800)[752] * law.mean())
    return law, x0


def test_failed_point_takes_the_next_path(monkeypatch, relu16):
    law, x0 = relu16
    reference, ok_ref, _ = law._continue(np.array([x0]), 0.7)  # an independent path (finer steps), converged
    assert ok_ref[0]
    # the ratio-1/2 path at x0 ended at t = 19.7 − iπ while Newton still counted a step whose τ left the float range
    # as converged (tests/test_free_newton_underflow.py); it now reaches the root, so its failure is simulated below
    half, ok_half, _ = law._continue(np.array([x0]), 0.5)
    assert ok_half[0]
    np.testing.assert_allclose(half[0], reference[0], rtol=1e-12)
    original = law._continue

    def first_path_fails(xs, ratio):  # the grid's first path at x0 failed (it starts from the grid's highest point)
        t, ok, taus = original(xs, ratio)
        if xs.size > 1 or ratio == 0.5:  # and so did the ratio-1/2 path
            ok = ok & (xs != x0)
        return t, ok, taus

    monkeypatch.setattr(law, "_continue", first_path_fails)
    x = np.array([x0, 1.0])
    t, _ = law._solve_cold_taus(x)
    np.testing.assert_allclose(t[0], reference[0], rtol=1e-12)
    x_rho = -math.exp(t[0].real) * math.sin(t[0].imag) / math.pi
    assert 0.03 < x_rho < 0.04  # the neighbours' 0.033


def _no_path_converges(monkeypatch, law, t_value):
    original = law._continue

    def fail(xs, ratio):
        t, ok, taus = original(xs, ratio)
        return np.full(xs.shape, t_value), np.zeros(xs.shape, bool), taus

    monkeypatch.setattr(law, "_continue", fail)


def test_unsolved_point_reading_a_density_is_nan(monkeypatch, relu16):
    law, x0 = relu16
    _no_path_converges(monkeypatch, law, -0.65 - 0.2j)  # near the root at x0: xρ = 0.033, but not converged
    t, taus = law._solve_cold_taus(np.array([x0]))
    assert np.isnan(t[0]) and all(np.isnan(tau[0]) for tau in taus)
    # and the density reads it as unknown (NaN), not as 0 nor as the iterate's 0.033/x0
    monkeypatch.setattr(law, "_solve", lambda xs, *a, **k: law._solve_cold_taus(xs)[0])
    assert np.isnan(law._solved_density(np.array([x0]))[0])


def test_unsolved_point_reading_zero_is_returned(monkeypatch, relu16):
    law, x0 = relu16
    gap = math.log(0.5) - 1e-33j  # the iterates far below the lower edge: w → −(1 − atom at 0), xρ ~ 1e−34
    _no_path_converges(monkeypatch, law, gap)
    t, _ = law._solve_cold_taus(np.array([1e-35]))
    assert t[0] == gap


def test_public_pdf_refuses_an_unsolved_point(monkeypatch, relu16):
    # The tables read a NaN density as an unresolved panel; the public pdf must not hand a NaN out for a finite x.
    law, x0 = relu16
    monkeypatch.setattr(law, "_density", lambda xs: np.where(xs == x0, np.nan, 1.0))
    assert law.pdf(np.array([x0 * 1.01]))[0] == 1.0
    with pytest.raises(FloatingPointError, match="no solution at x"):
        law.pdf(np.array([x0 * 1.01, x0]))
    with pytest.raises(FloatingPointError, match="no solution at x"):
        law.logpdf(x0)
    assert np.isnan(law.pdf(math.nan))  # a NaN input is still NaN out (as SciPy)


def test_failed_points_retry_together_then_alone(monkeypatch, relu16):
    # Points whose first path failed take the ratio-1/2 path all at once (one continuation instead of one each:
    # gelu at depth 1, σ_b² = 1 had ~20 per hard-edge table at ~3.5 s each); a point that path does not solve
    # continues alone from the next ratio, 1/4, not from 1/2 again.
    law, x0 = relu16
    x1 = 1.3 * x0
    reference, ok_ref, _ = law._continue(np.array([x0, x1]), 0.7)  # an independent path (finer steps)
    assert ok_ref.all()
    original = law._continue
    calls = []

    def first_path_fails(xs, ratio):
        calls.append((xs.size, ratio))
        t, ok, taus = original(xs, ratio)
        if ratio == 0.25 and xs.size > 2:  # the grid's first path failed at x0 and x1
            ok = ok & (xs != x0) & (xs != x1)
        return t, ok, taus

    monkeypatch.setattr(law, "_continue", first_path_fails)
    t, _ = law._solve_cold_taus(np.array([x0, 1.0, x1]))
    np.testing.assert_allclose(t[[0, 2]], reference, rtol=1e-12)
    assert calls == [(3, 0.25), (2, 0.5)]  # the two failed points on one path, converged there

    calls.clear()

    def x1_fails_at_half(xs, ratio):
        calls.append((xs.size, ratio))
        t, ok, taus = original(xs, ratio)
        if ratio == 0.25 and xs.size > 2:
            ok = ok & (xs != x0) & (xs != x1)
        if ratio == 0.5:
            ok = ok & (xs != x1)
        return t, ok, taus

    monkeypatch.setattr(law, "_continue", x1_fails_at_half)
    t, _ = law._solve_cold_taus(np.array([x0, 1.0, x1]))
    np.testing.assert_allclose(t[[0, 2]], reference, rtol=1e-12)
    assert calls == [(3, 0.25), (2, 0.5), (1, 0.25)]  # x1 alone at ratio 1/4 only
