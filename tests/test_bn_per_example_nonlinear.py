"""Per-example block of a BN network's Jacobian for nonlinear φ at depth ≥ 2 (docs/derivations.md §11.11)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from rmt_init import theory
from rmt_init.theory.activations import get_activation
from rmt_init.theory.bn_per_example import bn_per_example_moments
from rmt_init.theory.bn_per_example_nonlinear import (
    _NonlinearBlockSolver,
    _series,
    _SphereRule,
    bn_per_example_moments_nonlinear,
)


@pytest.mark.parametrize(("batch", "depth", "order"), [(8, 2, 3), (16, 3, 2)])
def test_linear_phi_reduces_to_the_exact_recursion(batch: int, depth: int, order: int) -> None:
    """With φ linear (D = I) the nonlinear channel average (eigenvalues of g_E r_E, sampled directions) must give
    §11.10's rank-one-plus-identity closed form: the exact rational moments, to rounding (the rule is exact in t)."""
    m = bn_per_example_moments_nonlinear(depth, "linear", batch, order, directions=16)
    exact = [float(x) for x in bn_per_example_moments(depth, batch, order)]
    np.testing.assert_allclose(m.moments, exact, rtol=1e-12)
    assert m.stderr == [0.0] * order


def test_linear_phi_level_equals_the_exact_solver() -> None:
    """The eigen-decomposition route of one layer's channel average equals the closed form of _BlockSolver.level at
    random complex (g, r), to rounding."""
    from rmt_init.theory.bn_per_example import _BlockSolver

    b = 8
    rule = _SphereRule(get_activation("linear"), b, 24, 4, 0)
    exact, ours = _BlockSolver(3, b, 1.0), _NonlinearBlockSolver(3, b, 1.0, b - 1.0, rule)
    rng = np.random.default_rng(1)
    g = 0.1 * (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2)))
    r = 0.1 * (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2)))
    for a, c in zip(exact.level(g, r, 7.0), ours.level(g, r, 7.0)):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("name", "batch"), [("relu", 8), ("tanh", 16)])
def test_depth_one_against_the_one_dimensional_integrals(name: str, batch: int) -> None:
    """Depth 1 the block is ``K W`` with K² = (B/(q₀X)) (d/B)² φ'(ŷ_b)² t² free from MP(1) (§11.9), so
    m₁ = E K², m₂ = E K⁴ + (E K²)², with E[1/X] = 1/(B − 3), E[1/X²] = 1/((B − 3)(B − 5)) and the t-integrals by
    adaptive quadrature (relative 1e−11); the recursion's rule is exact in t up to its Gauss–Jacobi error (32 nodes;
    tanh at B = 16, where φ'(ŷ_b)⁴ is steep in t, was 4e−7 off with 16 nodes): agreement to 1e−9."""
    act = get_activation(name)
    b, d = batch, batch - 1.0
    dist = stats.beta((b - 2) / 2.0, 0.5)

    def e_t(power: int, k: int) -> float:
        total = 0.0
        for sign in (1.0, -1.0):
            f = lambda t: float(act.dphi(sign * math.sqrt(d * max(1.0 - t, 0.0)))) ** power * t**k * dist.pdf(t)  # noqa: E731
            total += 0.5 * integrate.quad(f, 0.0, 1.0, limit=200, epsabs=0.0, epsrel=1e-11)[0]
        return total

    ek2 = b / (b - 3) * (d / b) ** 2 * e_t(2, 2)
    ek4 = b * b / ((b - 3) * (b - 5)) * (d / b) ** 4 * e_t(4, 4)
    m = bn_per_example_moments_nonlinear(1, name, batch, 2, directions=16)
    np.testing.assert_allclose(m.moments, [ek2, ek4 + ek2 * ek2], rtol=1e-9)
