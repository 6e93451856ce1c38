"""Support edges of residual-network Jacobian laws built from blocks that differ (tanh: the law of D² changes with the
stream's variance; per-block α), docs/derivations.md §8.8: :func:`rmt_init.theory.residual.product_edges`.

References: the κ-parametrised edges of one block raised to a power (:func:`block_edges`, a different algorithm on the
same branches), the density from the free-product solver (which knows nothing about the edges: its square-root zero
must sit at the edge and it must integrate to 1 over [a, b]), and Monte Carlo of real residual nets (smallest and
largest eigenvalues of JJᵀ, with the Tracy–Widom scale of a square-root edge as the finite-N tolerance).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.theory import ResidualBlockS, jacobian_spectrum
from rmt_init.theory.activations import get_activation
from rmt_init.theory.jacobian import _d_squared_factor
from rmt_init.theory.residual import block_edges, product_edges


@pytest.mark.parametrize(("activation", "s", "ensemble"), [("tanh", 0.25, "gaussian"), ("linear", 0.36, "orthogonal"),
                                                           ("linear", 0.09, "gaussian")])
def test_split_power_matches_block_edges(activation: str, s: float, ensemble: str) -> None:
    """F^{⊠3} given as the two terms F¹ and F² (w-parametrised product) against block_edges(F, 3) (κ-parametrised
    extrema of one block's curve): both edges to 1e−12 relative (measured ≤ 5e−15; both refine to rounding)."""
    factor = ResidualBlockS(_d_squared_factor(get_activation(activation), 1.0), s, ensemble)
    twin = ResidualBlockS(_d_squared_factor(get_activation(activation), 1.0), s, ensemble)
    lower, upper = product_edges([(factor, 1), (twin, 2)])
    # block_edges also returns rounding-level extrema next to 0; the power's lower edge is ≥ (the block's)³
    single = [v for v in block_edges(factor, 1) if v > 0]
    floor = min(v for v in single if v > 1e-12 * max(single)) ** 3
    reference = [v for v in block_edges(factor, 3) if v >= floor * (1 - 1e-9)]
    assert lower == pytest.approx(reference[0], rel=1e-12)
    assert upper == pytest.approx(reference[-1], rel=1e-12)


def _square_root_zero(law, edge: float, inward: float) -> float:
    """Where ρ² (from the free-product solver) extrapolates to 0 from x = edge + inward·(1, 2, 3)·1e−3·edge: a
    quadratic fit of ρ² ∝ (x − a)(1 + c(x − a)) in the offset; its remainder is cubic (measured offset 1.3e−8
    relative at 1e−3, 1.3e−11 at 1e−4 for tanh, depth 2)."""
    eps = 1e-3 * edge * np.array([1.0, 2.0, 3.0])
    rho2 = law.pdf(edge + inward * eps) ** 2
    roots = np.roots(np.polyfit(eps, rho2, 2))
    return edge + inward * float(roots[np.argmin(np.abs(roots))].real)


@pytest.mark.parametrize(("depth", "activation", "alpha"), [(2, "tanh", 0.8), (3, "linear", [0.3, 0.5, 0.6]),
                                                          (3, "relu", 0.8)])
def test_edges_are_the_density_square_root_zeros(depth: int, activation: str, alpha) -> None:
    """The support is one interval [a, b] with a > 0; the solver's density vanishes just outside it, is positive just
    inside, its square-root zeros are at a and b (to 1e−6 relative: the fit's remainder, measured ≤ 2e−8), and it
    integrates to 1 over [a, b] (tanh; the others cost ~8 s each). Before §8.8 the tanh law's support started at 0
    (ρ = 0 on (0, 0.0459)), and ReLU's (depth 3, α = 0.8) had a spurious interval (0, 3.2e−4) below the edge 0.0171
    (Monte Carlo λ_min ≈ 0.016–0.020 at N = 512–1024)."""
    law = jacobian_spectrum(depth, activation, residual=alpha)
    assert law._product_edges is not None
    (a, b), = law.intervals
    assert law.support == (a, b) and a > 0.0
    outside = law.pdf(np.array([a * (1 - 1e-6), b * (1 + 1e-6)]))
    inside = law.pdf(np.array([a * (1 + 1e-6), b * (1 - 1e-6)]))
    assert np.all(outside == 0.0) and np.all(inside > 0.0)
    assert _square_root_zero(law, a, 1.0) == pytest.approx(a, rel=1e-6)
    assert _square_root_zero(law, b, -1.0) == pytest.approx(b, rel=1e-6)
    if activation != "tanh":
        return
    # mass: x = a + (b − a)(1 − cos θ)/2 makes ρ(x) dx/dθ smooth, even and periodic in θ (square-root edges), so the
    # trapezoidal rule converges geometrically; 80 nodes (measured at 32, 64: |1 − mass| ≤ 2e−5, 3e−9)
    theta = np.linspace(0.0, math.pi, 81)[1:-1]
    x = a + (b - a) * 0.5 * (1.0 - np.cos(theta))
    mass = float(np.sum(law.pdf(x) * 0.5 * (b - a) * np.sin(theta))) * (math.pi / 80)
    assert mass == pytest.approx(1.0, abs=1e-8)
    assert np.all(np.isfinite(law.pdf(x)))


def _tanh_residual_extremes(n: int, depth: int, alpha: float, trials: int, seed: int) -> np.ndarray:
    """(λ_min, λ_max) of JJᵀ per network, x ↦ x + α tanh(Wx), W ~ N(0, 1/N), |x_0|²/N = 1, J = Π (I + α D_l W_l)
    (as validation/claims/residual_networks.py builds them, in numpy)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        x = rng.standard_normal(n)
        x *= math.sqrt(n) / np.linalg.norm(x)
        jac = np.eye(n)
        for _ in range(depth):
            w = rng.standard_normal((n, n)) / math.sqrt(n)
            h = w @ x
            jac = (np.eye(n) + alpha * (1.0 - np.tanh(h) ** 2)[:, None] * w) @ jac
            x = x + alpha * np.tanh(h)
        s2 = np.linalg.svd(jac, compute_uv=False) ** 2
        out.append((s2.min(), s2.max()))
    return np.array(out)


def test_tanh_edges_against_montecarlo() -> None:
    """tanh, depth 2, α = 0.8 (the claim's configuration): λ_min and λ_max of 24 nets at N = 384.

    At a square-root edge ρ ≈ C√|x − edge| the extreme eigenvalue fluctuates on the Tracy–Widom scale
    σ_N = (πCN)^{−2/3} (GOE normalisation ρ = √(4 − x²)/(2π): C = 1/π, σ_N = N^{−2/3}), its mean inside the support
    by 1.21σ_N (TW₁ mean −1.21). Tolerance: 5 SE + 1.5σ_N for the unknown finite-N shift of order σ_N (measured
    (E λ_min − a)/σ_N = 1.7 ± 0.3, 0.5 ± 0.4, 1.6 ± 0.7 at N = 256, 512, 1024). C from the law's density at 1e−3 of
    the edge. Effect: the former lower edge 0 is off by a = 0.046 (≈ 10 tolerances)."""
    law = jacobian_spectrum(2, "tanh", residual=0.8)
    a, b = law.support
    n = 384
    sample = _tanh_residual_extremes(n, 2, 0.8, 24, seed=11)
    for k, (edge, inward) in enumerate(((a, 1.0), (b, -1.0))):
        eps = 1e-3 * edge
        c = float(law.pdf(np.array([edge + inward * eps]))[0]) / math.sqrt(eps)
        sigma = (math.pi * c * n) ** (-2.0 / 3.0)
        values = sample[:, k]
        mean, se = float(values.mean()), float(values.std(ddof=1)) / math.sqrt(values.size)
        predicted = edge + inward * 1.21 * sigma
        assert abs(mean - predicted) <= 5 * se + 1.5 * sigma, (k, mean, predicted, se, sigma)


@pytest.mark.parametrize("depth", [10, 100])
def test_deep_sigmoid_upper_edge_against_moments(depth: int) -> None:
    """Upper edge of jacobian_spectrum(depth, "sigmoid") (generic w-scan) against the exact moments m_k (S-series).

    m_k^{1/k} ≤ b for every k (strict lower bound). At a square-root edge m_k = C b^k k^{−3/2}(1 + c₁/k + …), so
    r_k = (m_{k+1}/m_k)((k + 1)/k)^{3/2} = b(1 + O(k^{−2})) and the Richardson combination R_k = (4r_{2k} − r_k)/3 =
    b(1 + O(k^{−3})); its error is bounded by |R_40 − R_20| (≈ 7× the O(k^{−3}) error of R_40 when the k^{−3} term
    dominates; measured R_40/b − 1 = 4e−7 (depth 10), 2e−7 (depth 100))."""
    law = jacobian_spectrum(depth, "sigmoid")
    b = law.support[1]
    m = [float(v) for v in law._float_moments(81)]  # m[k − 1] = m_k

    def r(k: int) -> float:
        return (m[k] / m[k - 1]) * ((k + 1) / k) ** 1.5

    assert m[79] ** (1 / 80) <= b
    r20, r40 = (4 * r(40) - r(20)) / 3, (4 * r(80) - r(40)) / 3
    assert abs(r40 - b) <= abs(r40 - r20)
    assert abs(r40 / b - 1) < 1e-5  # the bound above is ~3e−6 relative: a meaningful check
