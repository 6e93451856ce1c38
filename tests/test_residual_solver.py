"""Residual blocks' ψ-solver and edges (docs/derivations.md §8.3): non-finite u, the real branch, and the singular
point z = 1 of a single ReLU block."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.theory import ResidualBlockS, jacobian_spectrum, residual_block_law
from rmt_init.theory.activations import get_activation
from rmt_init.theory.jacobian import _d_squared_factor


def _tanh_block() -> ResidualBlockS:
    return ResidualBlockS(_d_squared_factor(get_activation("tanh"), 1.0), 0.64)


def test_non_finite_u_gives_nan_not_an_error() -> None:
    """The free-product solver passes u = NaN where a real inverse of ψ is missing; once the KD-tree of earlier
    solutions exists, such a u must come back as NaN (it used to reach cKDTree.query and raise)."""
    factor = _tanh_block()
    factor.one_plus_psi(np.array([0.1 - 0.05j, 0.3 - 0.1j]))
    factor.one_plus_psi(np.array([0.2 - 0.01j]))  # the tree of the first call's points is built here
    value, slope = factor.one_plus_psi(np.array([np.nan + 0j, np.inf + 0j, 0.15 - 0.02j]))
    assert np.isnan(value[:2]).all() and np.isnan(slope[:2]).all()
    assert np.isfinite(value[2]) and np.isfinite(slope[2])


def test_real_branch_is_real_and_matches_the_moments_and_the_ray() -> None:
    """Real u < 1/max supp F are solved on the real branch without the complex ray (_continue). References:
    1 + ψ(u) = Σ_k m_k u^k with the block's moments (|u| max supp F ≤ 0.38: 60 terms leave < 1e−24), and for
    u = −50, −1000 (outside the series' disc) the ray's solution, an independent path (its residual Im is ~1e−13)."""
    factor = _tanh_block()
    calls = []
    original = factor._continue
    factor._continue = lambda u: calls.append(u) or original(u)  # type: ignore[method-assign]
    u = np.array([-0.1, 0.05, 0.1, -50.0, -1000.0])
    value, _ = factor.one_plus_psi(u + 0j)
    assert not calls
    assert np.all(value.imag == 0.0)
    moments = residual_block_law(0.8, "tanh")._float_moments(60)
    for x, v in zip(u[:3], value[:3]):
        series = 1.0 + math.fsum(float(m) * x ** (k + 1) for k, m in enumerate(moments))
        assert v.real == pytest.approx(series, rel=1e-12)
    reference = _tanh_block()
    _, ray, ok = reference._continue(u[3:] + 0j)  # (κ, p = 1 + ψ, converged)
    assert ok.all()
    np.testing.assert_allclose(value[3:].real, ray.real, rtol=1e-11)


def test_real_branch_reaches_the_edge_of_the_cut() -> None:
    """1 + ψ is finite and increasing up to u = 1/max supp F (a square-root edge): the free-product solver's real
    inverse probes u = (1 − 1e−12)/max supp F; the values must increase towards it and stay real."""
    factor = _tanh_block()
    top = 1.0 / factor.xmax
    u = top * (1.0 - np.array([1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12]))
    value, slope = factor.one_plus_psi(u + 0j)
    assert np.all(np.isfinite(value)) and np.all(value.imag == 0.0)
    assert np.all(np.diff(value.real) > 0)
    # square-root edge: 1 + ψ(top) − (1 + ψ(u)) ∝ √(top − u), so successive gaps (distance ÷ 100) shrink ~10-fold
    gaps = np.diff(value.real)
    assert np.all((gaps[1:] / gaps[:-1] > 0.05) & (gaps[1:] / gaps[:-1] < 0.2))


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_single_relu_block_has_a_singular_point_at_one(alpha: float) -> None:
    """P(d = 0) = 1/2 for ReLU: the atom at 1 of mass 2P(d = 0) − 1 is at its threshold. There (§8.3) κ → ∞,
    Φ → 1/2, and u(Φ + e)² = e(1 + e) gives 1 + ψ ≈ (1 − u)^{−1/2}/2: ρ(x) ≈ 1/(2π√(x(1 − x))) as x → 1⁻, with a gap
    (1, c) above, c the maximum of z(κ) for κ > 1, c − 1 ≈ 0.009α⁴ (Monte Carlo, N = 3000, α = 0.5: no eigenvalue in
    (1.0001, 1.001)). The intervals used to be one, (a, b), and pdf(1.0) raised or returned 0 or garbage. pdf(1) is 0
    (an end of an interval, like a hard edge); the density is positive inside both intervals."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        law = jacobian_spectrum(1, "relu", residual=alpha)
        (a, b), (c, top) = law.intervals
        assert b == 1.0 and a > 0.0
        assert 0.5 < (c - 1.0) / (0.009 * alpha**4) < 2.0
        assert law.pdf(1.0) == 0.0
        inside = law.pdf([0.5 * (a + b), 0.5 * (c + top)])
    assert np.all(np.isfinite(inside)) and np.all(inside > 0)


def test_deep_relu_law_without_warnings_or_spurious_roots() -> None:
    """κ = 0, e = −1 (1 + ψ = 0) solves both equations of §8.3 for every u; accepted, it gave u ψ'(u) = 0 and
    divide-by-zero warnings in the free-product Newton step (depth 50, ReLU, α = 0.3). It must be rejected, and the
    law must integrate to 1 (Σ intervals' quadrature) with a finite density."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        law = jacobian_spectrum(50, "relu", residual=0.3)
        values = law.pdf([0.5, 1.0, 2.0, 10.0])
    assert np.all(np.isfinite(values)) and np.all(values > 0)
