"""The lower edge of residual Jacobian laws with orthogonal weights (docs/derivations.md §8.8).

I + αDQ (Q Haar) has its Brown measure on the annulus √(s/E[1/d]) ≤ |λ| ≤ √(sE d), s = α²σ_w² (Haagerup & Larsen 2000),
so the law of (I + αDQ)ᵀ(I + αDQ) has a gap at 0 unless 1 lies in it. For s > E[1/d] (linear: α > 1) the lower edge lies
on the root e → 0 of the block's real branch beyond the poles of Φ (κ = 1/ν, 0 < ν < min d), which
:func:`product_edges` and :func:`block_edges` now scan.

Independent references: a linear block I + αQ is normal, its Gram matrix (1 + α²)I + α(Q + Qᵀ) has the arcsine law on
[(1 − α)², (1 + α)²] (the eigenvalues e^{iθ} of Q map to |1 + αe^{iθ}|²), with the closed form
1 + ψ(u) = ±((1 − au)(1 − bu))^{−1/2}; the blocks of a network are free (independent Haar Q_l), so the product's
χ(w) = (w/(1 + w))^{1−L} Π_l χ_l(w) (S-transforms multiply), and its edges are the extrema of z = 1/χ — computed
here from the closed form, not from the (κ, e) equations of the code. And Monte Carlo of Π(I + α_l Q_l) with numpy Haar
matrices, with the Tracy–Widom scale of a square-root edge as the finite-N tolerance.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from rmt_init.theory import ResidualBlockS, jacobian_spectrum
from rmt_init.theory.activations import get_activation
from rmt_init.theory.jacobian import _d_squared_factor
from rmt_init.theory.residual import block_edges, product_edges, residual_block_law


def _linear(alpha: float) -> ResidualBlockS:
    return ResidualBlockS(None, alpha * alpha, "orthogonal")


def _terms(alphas: list[float]) -> list[tuple[ResidualBlockS, int]]:
    return [(_linear(a), k) for a, k in Counter(alphas).items()]


def _arcsine_z(w: np.ndarray, alpha: float, upper: bool) -> np.ndarray:
    """z = 1/χ(w) of the arcsine law on [a, b] = [(1 − α)², (1 + α)²]: u = χ(w) solves ab u² − (a + b)u + 1 = (1 + w)^{−2}
    (from 1 + ψ = ((1 − au)(1 − bu))^{−1/2}); the root u < 1/b for w > 0, u > 1/a for w < −1."""
    a, b = (1.0 - alpha) ** 2, (1.0 + alpha) ** 2
    r = np.sqrt((b - a) ** 2 + 4.0 * a * b / (1.0 + w) ** 2)
    u = ((a + b) - r) / (2 * a * b) if upper else ((a + b) + r) / (2 * a * b)
    return 1.0 / u


def _free_product_edges(alphas: list[float]) -> tuple[float, float]:
    """Edges of the free product of the blocks' arcsine laws: z(w) = (w/(1 + w))^{L−1} Π z_l(w), its maximum over
    w = −1 − eˣ < −1 (lower edge) and minimum over w = eˣ > 0 (upper edge); a grid bracket, then Brent to 1e−12 in x
    (the extremum is flat: the value is exact to rounding)."""
    n = len(alphas)

    def log_z(x: np.ndarray, upper: bool) -> np.ndarray:
        w = np.exp(x) if upper else -1.0 - np.exp(x)
        out = (n - 1) * np.log(np.abs(w / (1.0 + w)))
        for a in alphas:
            out = out + np.log(_arcsine_z(w, a, upper))
        return out

    edges = []
    for upper in (False, True):
        sign = 1.0 if upper else -1.0
        grid = np.linspace(-20.0, 20.0, 2001)
        values = sign * log_z(grid, upper)
        i = int(np.argmin(values))
        res = minimize_scalar(lambda x: sign * float(log_z(np.array([x]), upper)[0]), bracket=(grid[i - 1], grid[i], grid[i + 1]),
                              method="brent", options={"xtol": 1e-12})
        edges.append(math.exp(sign * min(float(res.fun), float(values[i]))))
    return edges[0], edges[1]


@pytest.mark.parametrize("alpha", [0.5, 1.2, 1.5, 2.0, 3.0])
def test_one_linear_block_has_the_arcsine_edges(alpha: float) -> None:
    """One linear block: edges (α ∓ 1)² (to 1e−12) from product_edges, block_edges and the law's support — for α > 1 the
    lower one is on the branch beyond the pole of Φ (before: κ-curve noise, ~400 candidates within 1e−13 of each
    edge)."""
    lower, upper = (alpha - 1.0) ** 2, (alpha + 1.0) ** 2
    factor = _linear(alpha)
    got = product_edges([(factor, 1)])
    assert got[0] == pytest.approx(lower, rel=1e-12) and got[1] == pytest.approx(upper, rel=1e-12)
    edges = block_edges(factor, 1)
    assert len(edges) == 2
    assert edges[0] == pytest.approx(lower, rel=1e-12) and edges[1] == pytest.approx(upper, rel=1e-12)
    law = residual_block_law(alpha, "linear", weights="orthogonal")
    assert law.intervals == ((pytest.approx(lower, rel=1e-12), pytest.approx(upper, rel=1e-12)),)


@pytest.mark.parametrize("alphas", [[1.2, 1.5], [1.5, 1.5], [1.5, 1.5, 1.5], [2.0] * 6, [0.5, 1.5], [2.0, 0.3, 1.5],
                                    [0.5, 0.5]])
def test_products_against_the_free_arcsine_reference(alphas: list[float]) -> None:
    """Products of free linear orthogonal blocks (different α, one α to a power, s below and above 1 mixed): both edges
    from product_edges (w-inversion of the blocks' branches) and, for one α, block_edges (extrema of the κ-curve: a
    different algorithm) against the closed-form arcsine S-transform reference, to 1e−11 relative (measured ≤ 1e−14).
    Before §8.8's outer branch, product_edges gave no lower edge for any α > 1 (the law's support started at 0), and
    block_edges(α = 1.5, power 3) a spurious 0.0740 (the edge is 0.130072)."""
    lower, upper = _free_product_edges(alphas)
    got = product_edges(_terms(alphas))
    assert got[0] == pytest.approx(lower, rel=1e-11) and got[1] == pytest.approx(upper, rel=1e-11)
    if len(set(alphas)) == 1:
        edges = block_edges(_linear(alphas[0]), len(alphas))
        assert edges[0] == pytest.approx(lower, rel=1e-11) and edges[-1] == pytest.approx(upper, rel=1e-11)
    law = jacobian_spectrum(len(alphas), "linear", residual=alphas, weights="orthogonal")
    assert law.support == (pytest.approx(lower, rel=1e-11), pytest.approx(upper, rel=1e-11))


def test_free_power_is_not_the_commuting_power() -> None:
    """The network's blocks use independent Q_l (free), not one Q: F^{⊠L} is not the law of |(I + αQ)^L|², whose edges
    are (α ∓ 1)^{2L} (commuting normal factors). The free edges lie strictly inside those (‖Π(I + α_l Q_l)‖ ≤ (1 + α)^L,
    and the smallest singular value ≥ |α − 1|^L), by a margin that grows with L."""
    alpha, depth = 1.5, 3
    lower, upper = product_edges([(_linear(alpha), depth)])
    assert (alpha - 1.0) ** (2 * depth) * 1.5 < lower and upper < 0.9 * (alpha + 1.0) ** (2 * depth)


@pytest.mark.parametrize(("activation", "alpha", "why"), [("relu", 1.6, "P(d = 0) = 1/2: E[1/d] = ∞, Brown measure a disc"),
                                                          ("leaky_relu", 1.5, "s E d > 1 but s < E[1/d] = 5000.5")])
def test_lower_edge_zero_when_one_lies_in_the_brown_measure(activation: str, alpha: float, why: str) -> None:
    """s·E d > 1 and s ≤ E[1/d]: 1 lies in the annulus, there is no real lower branch and the lower edge is 0 (product
    and block); the Gaussian linear block with s > 1 likewise (−1 inside its Brown disc)."""
    factor = ResidualBlockS(_d_squared_factor(get_activation(activation), 1.0), alpha * alpha, "orthogonal")
    assert factor.s * factor.d.mean > 1.0, why
    assert product_edges([(factor, 2)])[0] is None
    assert product_edges([(ResidualBlockS(None, 2.25, "gaussian"), 2)])[0] is None


def test_dirac_d_scales_like_sigma_w() -> None:
    """D² = c·I (φ'(0)² = c): the block is I + α√c Q, so its edges are those of the linear block with α√c; with c = 1/4
    and α = 3 (s E d = 2.25, E[1/d] = 4 < s = 9): (1.5 ∓ 1)² — a law of D² with min d ≠ 1 on the outer branch."""
    from rmt_init.theory.free import dirac_s

    factor = ResidualBlockS(dirac_s(0.25), 9.0, "orthogonal")
    assert product_edges([(factor, 1)]) == (pytest.approx(0.25, rel=1e-12), pytest.approx(6.25, rel=1e-12))
    lower, upper = _free_product_edges([1.5, 1.5])
    assert product_edges([(factor, 2)]) == (pytest.approx(lower, rel=1e-11), pytest.approx(upper, rel=1e-11))


def _haar(rng: np.random.Generator, n: int) -> np.ndarray:
    """Haar orthogonal: QR of a Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@pytest.fixture(scope="module")
def two_block_law():
    """α = (1.2, 1.5), linear, orthogonal: the configuration of §8.8's Monte Carlo (N = 400: λ_min 0.028–0.036)."""
    return jacobian_spectrum(2, "linear", residual=[1.2, 1.5], weights="orthogonal")


def test_two_blocks_against_montecarlo(two_block_law) -> None:
    """λ_min, λ_max of JJᵀ, J = (I + 1.5Q₂)(I + 1.2Q₁), N = 500, 8 nets, against the edges a = 0.031304, b = 25.6607.
    A square-root edge ρ ≈ C√|x − edge| gives Tracy–Widom (β = 1) fluctuations on the scale σ_N = (πCN)^{−2/3}: the mean
    lies 1.21σ_N inside, the standard deviation is 1.27σ_N. Tolerance: 4 standard errors of the mean of 8 plus σ_N for
    finite-N corrections to the mean (measured: N = 400 and 1000 means within 1.9 and 0.5 SE). C from the law's density
    at 1e−3 of the edge (C = 21.1 and 0.0178). The old lower edge 0 is 30σ_N away."""
    n, trials = 500, 8
    rng = np.random.default_rng(20261203)
    lo, hi = [], []
    for _ in range(trials):
        j = (np.eye(n) + 1.5 * _haar(rng, n)) @ (np.eye(n) + 1.2 * _haar(rng, n))
        ev = np.linalg.eigvalsh(j @ j.T)
        lo.append(ev[0])
        hi.append(ev[-1])
    _assert_extremes_at_the_edges(two_block_law, n, lo, hi)


def _assert_extremes_at_the_edges(law, n: int, lo: list, hi: list) -> None:
    """The means of λ_min and λ_max of ``len(lo)`` nets of width n against the law's edges a, b shifted 1.21σ_N
    inside, within 4 SE (standard deviation 1.27σ_N) + σ_N (see :func:`test_two_blocks_against_montecarlo`)."""
    a, b = law.support
    offsets = 1e-3 * np.array([a, b])
    c = law.pdf(np.array([a, b]) + np.array([1.0, -1.0]) * offsets) / np.sqrt(offsets)
    sigma = (math.pi * c * n) ** (-2.0 / 3.0)
    tol = 4.0 * 1.27 * sigma / math.sqrt(len(lo)) + sigma
    assert abs(np.mean(lo) - (a + 1.21 * sigma[0])) <= tol[0]
    assert abs(np.mean(hi) - (b - 1.21 * sigma[1])) <= tol[1]


def test_two_block_law_protocol_near_zero(two_block_law) -> None:
    """The whole law next to its lower edge a: one interval [a, b]; density 0 below a (and at 1e−6 below), positive and
    finite above, square-root onset (ρ(a + δ)/√δ the same at δ = 1e−3a and 1e−4a to 1 %); cdf 0 at a, 1 at b, its
    mass 1 and its first two moments, E x = a + ∫ sf and E x² = a² + ∫ 2x sf, against the exact (1 + α₁²)(1 + α₂²) =
    7.93 and the S-series second moment to 1e−8; ppf inverts the cdf next to a."""
    law = two_block_law
    a, b = law.support
    assert law.intervals == ((a, b),)
    below = law.pdf(np.array([1e-6, 0.5 * a, a * (1.0 - 1e-6)]))
    assert np.all(below == 0.0)
    deltas = a * np.array([1e-3, 1e-4])
    above = law.pdf(a + deltas)
    assert np.all(np.isfinite(above)) and np.all(above > 0.0)
    ratio = above / np.sqrt(deltas)
    assert ratio[1] == pytest.approx(ratio[0], rel=1e-2)
    assert law.cdf(a) == 0.0 and law.cdf(0.5 * a) == 0.0 and law.cdf(b) == pytest.approx(1.0, abs=1e-10)
    x = a * np.array([1.001, 1.01, 1.1, 2.0])
    q = law.cdf(x)
    assert np.all(np.diff(q) > 0.0) and q[0] > 0.0
    assert law.ppf(q) == pytest.approx(x, rel=1e-7)
    # moments by Gauss–Legendre in θ, x = exp(t_a + (t_b − t_a)(1 − cos θ)/2): sf(x(θ)) x'(θ) is analytic on [0, π]
    nodes, weights = np.polynomial.legendre.leggauss(120)
    theta = 0.5 * math.pi * (nodes + 1.0)
    ta, tb = math.log(a), math.log(b)
    xs = np.exp(ta + (tb - ta) * 0.5 * (1.0 - np.cos(theta)))
    dx = xs * (tb - ta) * 0.5 * np.sin(theta) * 0.5 * math.pi
    sf = law.sf(xs)
    assert np.all(np.isfinite(sf))
    m1 = a + float(np.sum(weights * sf * dx))
    m2 = a * a + float(np.sum(weights * 2.0 * xs * sf * dx))
    assert m1 == pytest.approx((1 + 1.2**2) * (1 + 1.5**2), rel=1e-8)
    assert m1 == pytest.approx(law.mean(), rel=1e-8)
    assert m2 == pytest.approx(law.var() + law.mean() ** 2, rel=1e-8)


def test_two_atom_law_of_d_against_montecarlo() -> None:
    """Leaky ReLU with slope 1/2: d = φ'² ∈ {1/4, 1} (half each), α = 2: s E d = 2.5 > 1 and s = 4 > E[1/d] = 2.5, so the
    lower edge is on the outer branch (κ > 1/min d = 4). One block: product_edges and block_edges (two algorithms) agree
    to 1e−12, and its edges are interior (not the pole limits (√(s a) ∓ 1)² = 0, 9: measured 0.0246728, 8.60024). Depth
    2 against Monte Carlo of (I + 2D₂Q₂)(I + 2D₁Q₁) with independent random masks D_l (the mean-field model: D_l free
    from Q_l), N = 600, 6 nets, the Tracy–Widom tolerance of :func:`test_two_blocks_against_montecarlo` (measured at
    N = 1000: λ_min 0.0092–0.0099, λ_max 50.37–50.71 against 0.0088097, 50.6275)."""
    act = get_activation("leaky_relu", negative_slope=0.5)
    factor = ResidualBlockS(_d_squared_factor(act, 1.0), 4.0, "orthogonal")
    one = product_edges([(factor, 1)])
    edges = block_edges(factor, 1)
    assert len(edges) == 2 and edges[0] == pytest.approx(one[0], rel=1e-12) and edges[1] == pytest.approx(one[1], rel=1e-12)
    assert 0.01 < one[0] < 0.05 and 8.0 < one[1] < 8.9
    law = jacobian_spectrum(2, act, residual=2.0, weights="orthogonal")
    a, b = law.support
    two = block_edges(factor, 2)
    assert two[0] == pytest.approx(a, rel=1e-12) and two[-1] == pytest.approx(b, rel=1e-12)
    n, trials = 600, 6
    rng = np.random.default_rng(7)
    slopes = np.repeat([0.5, 1.0], n // 2)
    lo, hi = [], []
    for _ in range(trials):
        j = np.eye(n)
        for _ in range(2):
            j = (np.eye(n) + 2.0 * rng.permutation(slopes)[:, None] * _haar(rng, n)) @ j
        ev = np.linalg.eigvalsh(j @ j.T)
        lo.append(ev[0])
        hi.append(ev[-1])
    _assert_extremes_at_the_edges(law, n, lo, hi)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 3.0])
def test_soft_edge_table_at_inverse_square_root_edges(alpha: float) -> None:
    """One linear orthogonal block: the law flags both edges (α ∓ 1)² as inverse-square-root ones (pole limits), and
    SoftEdgeTable given the closed-form arcsine density 1/(π√((x − a)(b − x))) reproduces F = 1/2 + arcsin((2x − a −
    b)/(b − a))/π, the mass 1 and the quantiles to 1e−11 at N = 64 (θ-nodes; g = xρ·(t_b − t_a)sin θ/2 tends to a
    nonzero limit at the edges, taken from the four nearest nodes). With g = 0 at the edges (right for square-root
    edges only) the table ran to N = 1024 and was off by 1.8e−4 (α = 1.5), as the law's cdf was (152 s)."""
    from rmt_init.theory.residual import SoftEdgeTable

    law = residual_block_law(alpha, "linear", weights="orthogonal")
    a, b = law.support
    assert (a, b) == pytest.approx(((alpha - 1.0) ** 2, (alpha + 1.0) ** 2), rel=1e-14)
    assert law._inverse_sqrt_ends(a, b) == (True, True)
    table = SoftEdgeTable(lambda x: 1.0 / (math.pi * np.sqrt((x - a) * (b - x))), a, b, (True, True))
    assert table.n == 64 and abs(table.mass - 1.0) <= 1e-11
    x = np.concatenate([a * (1.0 + np.array([1e-8, 1e-2])), np.linspace(a, b, 7)[1:-1], b * (1.0 - np.array([1e-2, 1e-8]))])
    np.testing.assert_allclose(table.cdf(x), 0.5 + np.arcsin((2.0 * x - a - b) / (b - a)) / math.pi, rtol=0, atol=1e-11)
    q = np.array([1e-6, 0.3, 0.9])
    np.testing.assert_allclose(table.invert(q, False), 0.5 * (a + b) + 0.5 * (b - a) * np.sin(math.pi * (q - 0.5)), rtol=1e-11)
    # a two-block law's edges are interior extrema (square-root): not flagged
    two = jacobian_spectrum(2, "linear", weights="orthogonal", residual=[1.2, 1.5])
    assert two._inverse_sqrt_ends(*two.support) == (False, False)
