"""The exact per-example block law of a linear BN network at depth ≥ 2 (docs/derivations.md §11.10)."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rmt_init import theory
from rmt_init.theory.bn_per_example import BNPerExampleExactLaw, _BlockSolver, bn_per_example_moments


@pytest.mark.parametrize(("batch", "depth"), [(6, 2), (8, 3), (16, 4)])
def test_mean_equals_the_two_term_recursion(batch: int, depth: int) -> None:
    """m₁ from the full recursion's power series equals bn_per_example_mean (§11.7's closed two-term recursion
    X_l = a_l ppᵀ + c_l P), exactly, as rationals."""
    assert bn_per_example_moments(depth, batch, 1)[0] == theory.bn_per_example_mean(depth, batch)
    assert bn_per_example_moments(depth, batch, 1, input_variance=2.0)[0] == theory.bn_per_example_mean(depth, batch, 2.0)


@pytest.mark.parametrize("batch", [8, 16])
def test_depth_one_second_moment(batch: int) -> None:
    """Depth 1 the recursion must reduce to ``K W Wᵀ K`` with K free from MP(1): m₂ = E K⁴ + (E K²)²,
    K² = (B/X)(d/B)² t², t ~ Beta((B − 2)/2, 1/2), E[1/X²] = 1/((B − 3)(B − 5)) (exact rationals)."""
    b, d = batch, batch - 1
    p, q = Fraction(b - 2, 2), Fraction(1, 2)
    beta = [math.prod((p + i) / (p + q + i) for i in range(k)) for k in range(5)]
    ek2 = Fraction(b, b - 3) * Fraction(d, b) ** 2 * beta[2]
    ek4 = Fraction(b * b, (b - 3) * (b - 5)) * Fraction(d, b) ** 4 * beta[4]
    m = bn_per_example_moments(1, b, 2)
    assert m == [ek2, ek4 + ek2 * ek2]


def test_infinite_orders_refused() -> None:
    with pytest.raises(ValueError, match="infinite"):
        bn_per_example_moments(2, 8, 4)  # 2·4 ≥ B − 1 = 7
    with pytest.raises(ValueError, match="depth"):
        bn_per_example_moments(0, 8, 1)


@pytest.mark.parametrize(("batch", "depth", "terms", "radius", "rtol"), [(16, 2, 7, 200.0, 1e-9), (8, 3, 4, 1000.0, 1e-7)])
def test_cauchy_transform_against_exact_moments(batch: int, depth: int, terms: int, radius: float, rtol: float) -> None:
    """The numerical solver (quadrature over t and X, Newton on 2L − 1 unknowns) against the exact rational series:
    far from the spectrum ``G(z) = Σ_{k<K} m_k / z^{k+1}`` + a remainder, relative ``O(m_K/|z|^K)`` (or, past the
    finite moments, ``O(|z|^{−(B−1)/2})``): below rtol at these radii, while the last kept term is above it
    (B = 16: m₆/|z|⁶ ≈ 1e−9·…; B = 8: m₂/|z|² ≈ 7e−6)."""
    m = [Fraction(1)] + bn_per_example_moments(depth, batch, terms - 1)
    solver = _BlockSolver(depth, batch, 1.0)
    z = radius * np.array([np.exp(1j * 0.7), 1j])
    x0 = np.zeros((2, solver.unknowns), complex)
    x0[:, 0] = 1.0 / z
    x, ok = solver.newton(z, x0)
    assert ok.all()
    series = sum(float(mk) / z ** (k + 1) for k, mk in enumerate(m))
    np.testing.assert_allclose(x[:, 0], series, rtol=rtol)


def test_law_table() -> None:
    """B = 16, depth 2: the table integrates to 1 (power-law ends included) within 2e−3, its mean is the exact m₁
    within 0.5 % (the top of the table is cut where xρ < 1e−9), the hard-edge exponent of xρ is 1/(L + 1) within
    0.02, and ppf inverts cdf."""
    law = theory.bn_jacobian_spectrum(2, "linear", 16, block="per_example")
    assert isinstance(law, BNPerExampleExactLaw)
    assert law.table_mass == pytest.approx(1.0, abs=2e-3)
    assert law.moment(1.0001) == pytest.approx(float(theory.bn_per_example_mean(2, 16)), rel=5e-3)
    assert law._table["slope_lo"] == pytest.approx(1.0 / 3.0, abs=0.02)
    q = np.array([0.01, 0.25, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(law.cdf(law.ppf(q)), q, atol=1e-9)
    x = np.geomspace(1e-6, 50, 40)
    assert np.all(np.diff(law.cdf(x)) > -1e-8)  # the table's last panel: Legendre interpolation of a steep xρ
    assert law.moment(2) == pytest.approx(float(bn_per_example_moments(2, 16, 2)[1]), rel=1e-12)
    xs = np.array([1e-4, 0.03, 0.7, 4.0])  # pdf (solved at x) against the table's cdf difference quotient
    slope = (law.cdf(xs * 1.001) - law.cdf(xs / 1.001)) / (xs * (1.001 - 1 / 1.001))
    np.testing.assert_allclose(law.pdf(xs), slope, rtol=1e-4)


def test_against_torch() -> None:
    """KS distance between torch's per-example blocks (``batchnorm="train_diagonal"``, B = 8, depth 2, N = 48,
    10 networks, 8 blocks each) and the exact law: tolerance 5 SE (spread of per-network KS) + 1/N (finite-N bias
    bound; measured KS·N ≤ 0.95 at N = 128, B = 8–16, L = 2–4, docs/derivations.md §11.10). Effect: the KS distance
    to MP(1) of the same mean (the BN-free block), above the tolerance."""
    from rmt_init.compare import compare
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import marchenko_pastur

    b, n, depth = 8, 48, 2
    law = theory.bn_jacobian_spectrum(depth, "linear", b, block="per_example")
    res = network_jacobian_spectrum(depth, n, "linear", batchnorm="train_diagonal", batch_size=b, trials=10, seed=5,
                                    device="cpu", layer_stats=False)
    x = np.asarray(res.squared_singular_values, float)
    ks = compare(law, x).ks
    per_net = np.array([compare(law, row).ks for row in x])
    tol = 5.0 * float(per_net.std(ddof=1)) / math.sqrt(len(per_net)) + 1.0 / n
    grid = np.geomspace(1e-5, 1e2, 2000)
    effect = float(np.max(np.abs(law.cdf(grid) - marchenko_pastur(1.0, law.moment(1)).cdf(grid))))
    assert tol < effect
    assert ks <= tol


@pytest.mark.parametrize(("batch", "depth"), [(8, 2), (8, 3), (16, 4)])
def test_analytic_jacobian_matches_finite_differences(batch: int, depth: int) -> None:
    """The solver's analytic Jacobian (layer derivatives chained from the output, dE[1/(X − ζ)]/dζ by parts)
    equals central differences of the residual at random complex points around solutions on and off the axis.
    Central differences with relative step h = 1e−5 are off by O(h² f‴) ≈ 1e−10 and O(ε/h) ≈ 1e−11 relative; 1e−6
    leaves room for both and fails any wrong term (each term is O(1) of its row). The solver's own forward-difference
    Jacobian (the one Newton used before) agrees to its O(h) ≈ 1e−7 · f″/f′ accuracy, checked at 1e−5."""
    s = _BlockSolver(depth, batch, 1.0)
    rng = np.random.default_rng(depth)
    xs = np.exp(np.linspace(math.log(300.0), math.log(0.5), 6))
    sol = s.path(xs)
    z = xs[: len(sol)] * (1 + 1e-15j)
    noise = rng.normal(size=sol.shape) + 1j * rng.normal(size=sol.shape)
    off = np.concatenate([z, z * (1 + 0.3j)])
    X = np.concatenate([sol, sol + 0.1 * np.abs(sol) * noise])
    f, jac = s.jacobian(X, off)
    np.testing.assert_allclose(f, s.residual(X, off), rtol=1e-12, atol=1e-14)
    n = X.shape[1]
    central = np.empty_like(jac)
    for j in range(n):
        h = 1e-5 * np.maximum(np.abs(X[:, j]), 1e-3)
        xp, xm = X.copy(), X.copy()
        xp[:, j] += h
        xm[:, j] -= h
        central[:, :, j] = (s.residual(xp, off) - s.residual(xm, off)) / (2.0 * h[:, None])
    scale = np.linalg.norm(central, axis=(1, 2))
    assert np.all(np.linalg.norm(jac - central, axis=(1, 2)) <= 1e-6 * scale)
    assert np.all(np.linalg.norm(jac - s.jacobian_fd(X, off), axis=(1, 2)) <= 1e-5 * scale)


def test_cauchy_derivative_by_parts() -> None:
    """``C′(ζ) = C(ζ)(a/ζ − 1/2) − 1/(2ζ)`` (integration by parts) against central differences of the quadrature
    C, on and off the axis and at ζ = 0 (C′(0) = E[1/X²] = 1/((B − 3)(B − 5)), exact)."""
    s = _BlockSolver(2, 8, 1.0)
    zeta = np.array([0.3 + 0.2j, -1.5 + 0.01j, 2.0 * (1 + 1e-15j), 7.0 * (1 + 1e-15j), 30.0 - 4j])
    h = 1e-5 * np.abs(zeta)
    central = (s.cauchy(zeta + h) - s.cauchy(zeta - h)) / (2.0 * h)
    np.testing.assert_allclose(s.cauchy_prime(zeta, s.cauchy(zeta)), central, rtol=1e-7)
    zero = np.zeros(1, complex)
    np.testing.assert_allclose(s.cauchy_prime(zero, s.cauchy(zero)), 1.0 / (5 * 3), rtol=1e-6)
