"""The neighbour sweep of BNGenericJacobianLaw._density may only replace a value by a re-solve that converged.

The sweep re-solves a point whose xρ breaks from its neighbours by η-continuation at the finer ratio ½. It used
to call the solver without looking at its convergence flag, so the last iterate of a path that did not converge
(whose xρ is whatever Newton stopped at: relu, B = 16, depth 1, x = 0.0663 once ended at t = 19.7 − iπ, xρ = 6.6e−8
against its neighbours' 0.033) replaced the value. Here one point of a grid is made to break (its solution moved off
the root), and the re-solve is made to report failure: the point must keep its value, and the re-solve's iterate
must not appear; with a converged re-solve the true value comes back (the sweep's own purpose).
"""

import math

import numpy as np
import pytest

from rmt_init.theory.bn_spectrum import bn_jacobian_spectrum


@pytest.fixture(scope="module")
def law_grid_and_truth():
    law = bn_jacobian_spectrum(1, "relu", batch_size=4)
    # 61 points 0.0067 apart in ln x (the sweep compares neighbours within 0.1, and re-solves at most 5 % of the
    # points: the broken one and its two neighbours, whose interpolation it spoils)
    x = np.geomspace(0.9, 1.1, 61) * law.mean()
    # the lower edge (the gap above the atom at 0) lies far below x (1.8e−10; its scan takes ~25 s): any edge below
    # x gives the same density here, so it is set instead of scanned
    law.__dict__["_lower_edge_value"] = 0.5 * float(x[0])
    truth = law._density(x)
    return law, x, truth, law._solve(x)


def _patched(monkeypatch, law, x, converged: bool):
    """Break the middle point's first solution (Im t halved: xρ off by ~50 %); the re-solve at ratio ½ reports
    ``converged`` and, when not, returns an iterate off the root (t + 0.3)."""
    solve, cont = law._solve, law._continue
    mid = x.size // 2

    def broken_solve(xs, *args, **kwargs):
        t = solve(xs, *args, **kwargs)
        hit = np.isclose(xs, x[mid], rtol=0, atol=0)
        return np.where(hit, t.real + 0.5j * t.imag, t)

    def continue_(xs, ratio):
        t, ok, taus = cont(xs, ratio)
        if ratio == 0.5 and not converged:
            return t + 0.3, np.zeros_like(ok), taus
        return t, ok, taus

    monkeypatch.setattr(law, "_solve", broken_solve)
    monkeypatch.setattr(law, "_continue", continue_)
    return mid


def _xr_of(t):
    return -math.exp(t.real) * math.sin(t.imag) / math.pi


def test_unconverged_resolve_is_not_used(monkeypatch, law_grid_and_truth):
    law, x, truth, t = law_grid_and_truth
    mid = _patched(monkeypatch, law, x, converged=False)
    out = law._density(x)
    t_true = t[mid]
    bogus = _xr_of(t_true + 0.3) / x[mid]
    broken = _xr_of(t_true.real + 0.5j * t_true.imag) / x[mid]
    assert abs(bogus / truth[mid] - 1) > 0.2 and abs(broken / truth[mid] - 1) > 0.2
    np.testing.assert_allclose(out[mid], broken, rtol=1e-12)  # kept, not replaced by the re-solve's iterate
    others = np.arange(x.size) != mid
    np.testing.assert_allclose(out[others], truth[others], rtol=1e-12)


def test_converged_resolve_restores_the_value(monkeypatch, law_grid_and_truth):
    law, x, truth, _ = law_grid_and_truth
    mid = _patched(monkeypatch, law, x, converged=True)
    out = law._density(x)
    np.testing.assert_allclose(out, truth, rtol=1e-9)
    assert mid  # the middle point was the one broken
