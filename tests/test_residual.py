"""Residual networks (docs/derivations.md §8): exact moments, the block law against closed forms and Monte Carlo,
the large-depth limit, the mean field, bad input."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rmt_init.theory import (
    ResidualBlockS,
    jacobian_spectrum,
    residual_depth_parameter,
    residual_limit_law,
    residual_mean_field,
)
from rmt_init.theory.free import two_point_s


@pytest.mark.parametrize("alpha", [0.5, 1.5, 0.125])
@pytest.mark.parametrize("depth", [1, 3, 10])
def test_linear_moments_are_exact(alpha: float, depth: int) -> None:
    """Linear Gaussian blocks, σ_w² = 1: mean (1 + α²)^L, m2 = (1 + α²)^{2L}[1 + L(2α² + α⁴)/(1 + α²)²] (§8.2),
    exactly (rationals: α is a binary float)."""
    law = jacobian_spectrum(depth, "linear", residual=alpha)
    a2 = Fraction(alpha) ** 2
    assert law.moment(1, method="exact") == (1 + a2) ** depth
    assert law.moment(2, method="exact") == (1 + a2) ** (2 * depth) * (1 + depth * (2 * a2 + a2 * a2) / (1 + a2) ** 2)
    assert law.moment(2) == pytest.approx(float((1 + a2) ** (2 * depth) * (1 + depth * (2 * a2 + a2 * a2) / (1 + a2) ** 2)), rel=1e-12)


@pytest.mark.parametrize("t", [0.25, 1.0, 3.0])
def test_linear_block_is_dozier_silverstein(t: float) -> None:
    """The S-series of the linear block equals 2/(B + √(B² − 4Aw)), B = 1 + t + 2tw, A = t²(1 + w) (information
    plus noise, Dozier & Silverstein 2007, in S form; §8.2): 40 terms at |w| ≤ 0.05 max(t, 1)⁻¹ leave < 1e−15."""
    series = [float(c) for c in ResidualBlockS(None, t).series(40)]
    for w in np.array([-0.05, 0.02, 0.05]) / max(t, 1.0):
        b = 1 + t + 2 * t * w
        closed = 2 / (b + math.sqrt(b * b - 4 * t * t * (1 + w) * w))
        assert sum(c * w**k for k, c in enumerate(series)) == pytest.approx(closed, rel=1e-13)


def test_psi_matches_series_and_derivative() -> None:
    """1 + ψ(u) from the (κ, e) equations (§8.3) equals the moment series at small |u|; u ψ'(u) a difference quotient."""
    from rmt_init.theory import _series

    for d_factor in (None, two_point_s(0.5)):
        f = ResidualBlockS(d_factor, 0.5)
        moments = [float(m) for m in _series.moments_from_s(f.series(30), 30)]
        u = np.array([0.02 - 0.01j, -0.05 + 0j, 0.01 - 0.05j])
        value, slope = f.one_plus_psi(u)
        series = 1 + sum(m * u ** (k + 1) for k, m in enumerate(moments))
        np.testing.assert_allclose(value, series, rtol=1e-12)
        h = 1e-6
        numeric = u * (f.one_plus_psi(u + h)[0] - f.one_plus_psi(u - h)[0]) / (2 * h)
        np.testing.assert_allclose(slope, numeric, rtol=1e-7)


def _block_mc(alpha: float, d_sampler, n: int, reps: int, rng) -> np.ndarray:
    """Per-sample (m1, m2) of the eigenvalues of (I + αDW)ᵀ(I + αDW), W Gaussian N(0, 1/n), D i.i.d. from d_sampler."""
    out = []
    for _ in range(reps):
        w = rng.standard_normal((n, n)) / math.sqrt(n)
        m = np.eye(n) + alpha * np.sqrt(d_sampler(n))[:, None] * w
        f = m.T @ m
        out.append((np.trace(f) / n, np.trace(f @ f) / n))
    return np.array(out)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_block_moments_against_montecarlo(activation: str) -> None:
    """m1, m2 of one block against Monte Carlo of I + αDW at N = 400 (8 samples). Tolerance: 4 standard errors of
    the mean over samples plus the O(1/N) finite-width bias, bounded by 4(1 + s)²/N relative (the m2 of a Wishart-type
    law carries a bias ~ m2/N; ×4 as a margin)."""
    rng = np.random.default_rng(13)
    alpha = 0.8
    sampler = (lambda n: np.ones(n)) if activation == "linear" else (lambda n: (rng.random(n) < 0.5).astype(float))
    law = jacobian_spectrum(1, activation, residual=alpha)
    samples = _block_mc(alpha, sampler, 400, 8, rng)
    se = samples.std(axis=0, ddof=1) / math.sqrt(len(samples))
    exact = np.array([law.moment(1), law.moment(2)])
    bias = 4 * (1 + alpha**2) ** 2 / 400 * exact
    assert np.all(np.abs(samples.mean(axis=0) - exact) <= 4 * se + bias)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_product_moments_against_montecarlo(activation: str) -> None:
    """m1, m2 of JJᵀ, J = Π_{l≤3}(I + αD_lW_l), against Monte Carlo with D_l i.i.d. from the law of φ'(h_l)², h_l ~
    N(0, v_l) (v_l from the residual mean field), N = 300, 8 samples; tolerance as in the block test (bias L/N)."""
    rng = np.random.default_rng(7)
    depth, alpha, n = 3, 0.7, 300
    law = jacobian_spectrum(depth, activation, residual=alpha, sigma_w2=1.5)
    variances = law.mean_field.preactivation_variance
    dphi = (lambda h: (h > 0).astype(float)) if activation == "relu" else (lambda h: 1.0 / np.cosh(h) ** 4)
    samples = []
    for _ in range(8):
        j = np.eye(n)
        for v in variances:
            d = dphi(math.sqrt(v) * rng.standard_normal(n))
            w = rng.standard_normal((n, n)) * math.sqrt(1.5 / n)
            j = (np.eye(n) + alpha * np.sqrt(d)[:, None] * w) @ j
        f = j @ j.T
        samples.append((np.trace(f) / n, np.trace(f @ f) / n))
    samples = np.array(samples)
    se = samples.std(axis=0, ddof=1) / math.sqrt(len(samples))
    exact = np.array([law.moment(1), law.moment(2)])
    bias = 4 * depth * (1 + 1.5 * alpha**2) ** 2 / n * exact
    assert np.all(np.abs(samples.mean(axis=0) - exact) <= 4 * se + bias)


def test_block_edges_against_montecarlo() -> None:
    """The support of one linear block (§8.3) against the extreme eigenvalues at N = 1000: the edges of an
    information-plus-noise matrix move by O(N^{−2/3}) (≲ 3% here, with margin)."""
    rng = np.random.default_rng(3)
    law = jacobian_spectrum(1, "linear", residual=0.5)
    lo, hi = law.support
    n = 1000
    ev = np.linalg.svd(np.eye(n) + 0.5 * rng.standard_normal((n, n)) / math.sqrt(n), compute_uv=False) ** 2
    assert ev.max() == pytest.approx(hi, rel=0.03)
    assert ev.min() == pytest.approx(lo, rel=0.1)


def test_limit_law_moments_and_small_alpha() -> None:
    """S(w) = exp(−τ(1 + 2w)): mean e^τ, m2 e^{2τ}(1 + 2τ) (§8.4); the linear product with α²L = τ approaches it
    (relative differences of the first two moments shrink like 1/L)."""
    tau = 0.5
    limit = residual_limit_law(tau)
    assert limit.mean() == pytest.approx(math.exp(tau), rel=1e-14)
    assert limit.moment(2) == pytest.approx(math.exp(2 * tau) * (1 + 2 * tau), rel=1e-14)
    gaps = []
    for depth in (8, 64, 512):
        law = jacobian_spectrum(depth, "relu", residual=math.sqrt(2 * tau / depth))  # τ = α² L μ₁, μ₁ = ½
        assert residual_depth_parameter(depth, "relu", math.sqrt(2 * tau / depth)) == pytest.approx(tau, rel=1e-12)
        gaps.append(max(abs(law.moment(k) / limit.moment(k) - 1) for k in (1, 2, 3)))
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 2e-3


def test_identity_blocks() -> None:
    """α = 0: J = I, the law is δ₁."""
    law = jacobian_spectrum(5, "tanh", residual=0.0)
    assert law.mean() == 1.0 and law.moment(2) == 1.0
    assert law.atoms == ((1.0, 1.0),)


def test_negative_alpha_is_the_law_of_abs_alpha() -> None:
    a = jacobian_spectrum(3, "relu", residual=-0.5)
    b = jacobian_spectrum(3, "relu", residual=0.5)
    assert a.moment(3, method="exact") == b.moment(3, method="exact")


def test_mean_field_recursion() -> None:
    """Linear, σ_b² = 0: q_l = (1 + α²σ_w²)^l q0. ReLU: the recursion with the cross term 2α p E φ(h) against a
    forward pass at N = 4000 (q is an average over N i.i.d. terms: relative error ~ few/√N)."""
    mf = residual_mean_field(4, "linear", 0.5, 2.0, 0.0, 3.0)
    np.testing.assert_allclose(mf.q, [3.0 * 1.5**l for l in range(5)], rtol=1e-13)
    rng = np.random.default_rng(5)
    n, alpha, depth = 4000, 0.9, 5
    mf = residual_mean_field(depth, "relu", alpha, 1.0, 0.1, 1.0)
    x = rng.standard_normal(n)
    x *= math.sqrt(n) / np.linalg.norm(x)
    for l in range(depth):
        h = rng.standard_normal((n, n)) @ x / math.sqrt(n) + math.sqrt(0.1) * rng.standard_normal(n)
        x = x + alpha * np.maximum(h, 0)
        assert np.mean(x * x) == pytest.approx(mf.q[l + 1], rel=0.05)
    assert mf.p[1] == pytest.approx(alpha * math.sqrt(1.1 / (2 * math.pi)), rel=1e-12)


def test_deep_laws_keep_their_moments() -> None:
    """Depth 1000 (linear and ReLU, small α): finite exact moments, mean (1 + α²μ₁)^L."""
    for activation, mu1 in (("linear", 1.0), ("relu", 0.5)):
        law = jacobian_spectrum(1000, activation, residual=0.03)
        assert law.mean() == pytest.approx((1 + 0.03**2 * mu1) ** 1000, rel=1e-12)
        assert math.isfinite(law.moment(2))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"residual": float("nan")},
        {"residual": [0.5, 0.5]},
        {"residual": "0.5"},
        {"residual": 0.5, "widths": [4, 4, 4, 4]},
        {"q0": 1.0},
        {"residual": 0.5, "q0": -1.0},
    ],
)
def test_bad_input(kwargs) -> None:
    with pytest.raises(ValueError):
        jacobian_spectrum(3, "relu", **kwargs)


def test_bad_input_helpers() -> None:
    with pytest.raises(ValueError):
        residual_limit_law(0.0)
    with pytest.raises(ValueError):
        residual_mean_field(3, "relu", [0.1, 0.2], 1.0)
    with pytest.raises(ValueError):
        residual_depth_parameter(0, "relu", 0.1)


def _mass(law, nodes: int = 96) -> tuple[float, np.ndarray]:
    """∫ρ over each interval by Gauss–Legendre in θ, x = a + (b − a)(1 − cos θ)/2 (smooth at square-root edges),
    plus the atoms; and the density values (for NaN checks)."""
    g, gw = np.polynomial.legendre.leggauss(nodes)
    theta = 0.5 * math.pi * (g + 1.0)
    total, values = sum(m for _, m in law.atoms), []
    for a, b in law.intervals:
        x = a + (b - a) * 0.5 * (1.0 - np.cos(theta))
        rho = law.pdf(x)
        values.append(rho)
        total += float(np.sum(gw * rho * (b - a) * 0.5 * np.sin(theta)) * 0.5 * math.pi)
    return total, np.concatenate(values)


@pytest.mark.parametrize(("depth", "activation", "alpha"), [(4, "relu", 0.5)])
def test_density_has_mass_one(depth: int, activation: str, alpha: float) -> None:
    """The density (no NaN) integrates to 1 over the support found from the block law's real branches (§8.3); 96
    nodes in θ resolve the square-root edges to < 1e−6."""
    law = jacobian_spectrum(depth, activation, residual=alpha)
    total, rho = _mass(law)
    assert np.all(np.isfinite(rho)) and np.all(rho >= 0)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_density_against_montecarlo() -> None:
    """One linear block, α = 0.5: histogram of I + αW at N = 1000 (1000 eigenvalues) against ∫ρ over 8 bins
    (law masses by Gauss–Legendre). Tolerance per bin: 5 binomial SE of the count with the eigenvalues' repulsion
    ignored (conservative: an ESD fluctuates far less than i.i.d. samples) plus 2/N for the finite-N edge shift."""
    rng = np.random.default_rng(11)
    n = 1000
    law = jacobian_spectrum(1, "linear", residual=0.5)
    lo, hi = law.support
    ev = np.linalg.svd(np.eye(n) + 0.5 * rng.standard_normal((n, n)) / math.sqrt(n), compute_uv=False) ** 2
    edges = np.linspace(lo, hi, 9)
    counts = np.histogram(ev, bins=edges)[0] / n
    g, gw = np.polynomial.legendre.leggauss(24)
    for (a, b), c in zip(zip(edges[:-1], edges[1:]), counts):
        theta = 0.5 * math.pi * (g + 1.0)
        x = a + (b - a) * 0.5 * (1.0 - np.cos(theta))
        p = float(np.sum(gw * law.pdf(x) * (b - a) * 0.5 * np.sin(theta)) * 0.5 * math.pi)
        assert abs(c - p) <= 5 * math.sqrt(p * (1 - p) / n) + 2 / n


def _reference_cdf(law, x: float, nodes: int = 200) -> float:
    """∫_a^x ρ = ∫_{ln a}^{ln x} x ρ(x) dt by Gauss–Jacobi quadrature with the weight (t − ln a)^{1/2} of the
    square-root lower edge (independent of the θ-cosine series of SoftEdgeTable: other variable, other rule; 200
    against 120 nodes agree to ~1e−14 in the cases below)."""
    from scipy.special import roots_jacobi

    a = law.intervals[0][0]
    ta, tx = math.log(a), math.log(x)
    z, w = roots_jacobi(nodes, 0.0, 0.5)
    h = 0.5 * (tx - ta)
    xx = np.exp(ta + h * (1.0 + z))
    return float(np.sum(w * law.pdf(xx) * xx / np.sqrt(h * (1.0 + z))) * h**1.5)


@pytest.mark.parametrize(("depth", "activation", "alpha"), [(10, "linear", 0.5), (10, "relu", 0.5), (1000, "relu", 0.1)])
def test_cdf_quantiles_and_sampling(depth: int, activation: str, alpha: float) -> None:
    """cdf/sf/ppf/isf/sample of a residual law with a lower edge > 0 (SoftEdgeTable): total mass 1
    (1e−8), cdf against Gauss–Jacobi quadrature of the density (1e−8), cdf + sf = 1, ppf∘cdf = id, the table
    method equal to the default, and the sample mean against the exact mean (4 SE; the quantile function is exact to
    ~1e−14, so the only error is sampling's)."""
    law = jacobian_spectrum(depth, activation, residual=alpha)
    (a, b), = law.intervals
    assert a > 0 and law._soft_tables is not None
    assert float(law.cdf(b)) == pytest.approx(1.0, abs=1e-8)
    assert law._soft_tables[0].mass == pytest.approx(1.0, abs=1e-8)
    x = np.exp(math.log(a) + (math.log(b) - math.log(a)) * np.array([0.05, 0.3, 0.6, 0.9]))
    cdf = law.cdf(x)
    for xi, fi in zip(x, cdf):
        assert fi == pytest.approx(_reference_cdf(law, float(xi)), abs=1e-8)
    np.testing.assert_allclose(cdf + law.sf(x), 1.0, atol=1e-12)
    np.testing.assert_allclose(law.cdf(x, method="table"), cdf, atol=1e-14)
    np.testing.assert_allclose(law.ppf(cdf), x, rtol=1e-10)
    np.testing.assert_allclose(law.isf(law.sf(x)), x, rtol=1e-9)
    assert law.ppf(0.0) == a and law.ppf(1.0) == b
    n = 20000
    draws = law.sample(n, rng=5)
    assert np.all((draws >= a) & (draws <= b))
    assert abs(draws.mean() - law.mean()) <= 4 * law.std() / math.sqrt(n)


def test_compare_uses_the_fast_cdf() -> None:
    """rmt_init.compare of a residual law against its own samples: small KS distance (≤ 1.63/√n + table error,
    the 1 % Kolmogorov quantile)."""
    from rmt_init import compare

    law = jacobian_spectrum(4, "relu", residual=0.5)
    n = 4000
    result = compare(law, law.sample(n, rng=3))
    assert result.ks <= 1.63 / math.sqrt(n) + 1e-8
