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
    BNPerExampleNonlinearLaw,
    _NonlinearBlockSolver,
    _series,
    _kappa,
    _SphereRule,
    bn_per_example_moments_nonlinear,
)


@pytest.mark.parametrize(("batch", "depth", "order"), [(8, 2, 3), (16, 3, 2)])
def test_linear_phi_reduces_to_the_exact_recursion(batch: int, depth: int, order: int) -> None:
    """With φ linear (D = I) the nonlinear channel average (eigenvalues of g_E r_E, sampled directions) must give
    §11.10's rank-one-plus-identity closed form: the exact rational moments, to rounding (the rule is exact in t)."""
    m = bn_per_example_moments_nonlinear(depth, "linear", batch, order, directions=16, t_nodes=8)
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


def test_cauchy_transform_against_the_series() -> None:
    """The law's solver (eigen-decomposed channel averages, Newton on 2L − 1 unknowns) against the power series of the
    same recursion with the same direction rule (relu, B = 8, L = 2): far from the spectrum
    ``G(z) = Σ_{k≤3} m_k/z^{k+1}`` up to a remainder O(|z|^{−(B−1)/2}) relative (m₄ is infinite at B = 8), ~1e−8 at
    |z| = 300 (measured 3e−9); tolerance 1e−6, while dropping the m₂ term would be off by 5e−5."""
    b, depth = 8, 2
    act = get_activation("relu")
    rule = _SphereRule(act, b, 6, 16, 0)
    kappa = _kappa(act, b)
    m = [1.0] + _series(rule, rule.w, depth, b, 3, [float(b)] + [kappa] * (depth - 1))
    solver = _NonlinearBlockSolver(depth, b, 1.0, kappa, rule)
    z = 300.0 * np.array([np.exp(0.7j), 1j])
    x0 = np.zeros((2, solver.unknowns), complex)
    x0[:, 0] = 1.0 / z
    x, ok = solver.newton(z, x0)
    assert ok.all()
    series = sum(mk / z ** (k + 1) for k, mk in enumerate(m))
    np.testing.assert_allclose(x[:, 0], series, rtol=1e-6)


def test_mean_against_torch_networks() -> None:
    """m₁ of torch's per-example blocks (``batchnorm="train_diagonal"``, relu, B = 8, depth 2, N = 64, 12 networks, all
    B blocks pooled) against the recursion's m₁. Tolerance 4 SE (per-network means) + 0.03 m₁ + 4 SE of the rule:
    the finite-N offsets measured at N = 64–256 (relu and tanh, B = 8, 16, depth 2–4, 20–40 networks; docs/
    derivations.md §11.11) are all within 2.5 SE and ≤ 3.9 %, with no trend in N (relu B = 16, L = 2: +0.7 ± 1.8 %,
    +3.1 ± 1.2 %, +0.0 ± 1.4 % at N = 64, 128, 256), so 3 % is the resolved bias bound. Effect: linear φ's m₁ at the
    same B and depth (bn_per_example_mean, 0.998) lies 38 % above and outside the tolerance."""
    from rmt_init.montecarlo import network_jacobian_spectrum

    b, depth, n = 8, 2, 64
    m = bn_per_example_moments_nonlinear(depth, "relu", b, 1, directions=32, t_nodes=12)
    res = network_jacobian_spectrum(depth, n, "relu", batchnorm="train_diagonal", batch_size=b, trials=12, seed=3,
                                    device="cpu", layer_stats=False)
    x = np.asarray(res.squared_singular_values, float)
    per_net = x.mean(axis=1)
    se = float(per_net.std(ddof=1)) / math.sqrt(len(per_net))
    tol = 4.0 * se + 0.03 * m.moments[0] + 4.0 * m.stderr[0]
    assert abs(float(theory.bn_per_example_mean(depth, b)) - m.moments[0]) > tol
    assert abs(float(per_net.mean()) - m.moments[0]) <= tol


def test_law_protocol_without_building_the_table() -> None:
    """bn_jacobian_spectrum(…, block="per_example") at depth ≥ 2 returns the nonlinear law for relu/tanh: relu has the
    atom 1/2 at 0 (half the output rows of J_bb vanish, φ'(ŷ_b) = 0), tanh none; its m₁ is the recursion's with the
    law's own rule, within the rule's sampling error of the default rule's (≤ 1 %)."""
    relu = theory.bn_jacobian_spectrum(2, "relu", 8, block="per_example")
    tanh = theory.bn_jacobian_spectrum(2, "tanh", 8, block="per_example")
    assert relu.atoms == ((0.0, 0.5),)
    assert tanh.atoms == ()
    assert relu.support == (0.0, math.inf)
    ref = bn_per_example_moments_nonlinear(2, "relu", 8, 1, directions=32, t_nodes=12).moments[0]
    assert relu.moment(1) == pytest.approx(ref, rel=1e-2)
    with pytest.raises(ValueError, match="not finite"):
        relu.moment(4)  # 2·4 ≥ B − 1: infinite
    with pytest.raises(ValueError, match="batch_size <= 16"):  # B > 16: not compared with torch (§11.11), refused
        theory.bn_jacobian_spectrum(2, "relu", 17, block="per_example")
    assert isinstance(theory.bn_jacobian_spectrum(2, "tanh", 16, block="per_example"), BNPerExampleNonlinearLaw)
