"""Marchenko–Pastur law: moments, cdf vs quadrature, atom, Monte Carlo of W Wᵀ/n, bad input.

Independent references: moments from the functional equation M = 1 + uM(1 − c + cM) of the moment
series (from the quadratic equation of the Green function), mpmath quadrature of the density, and
eigenvalues of sampled Gaussian matrices.
"""
from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from scipy import stats
from scipy.integrate import tanhsinh

from rmt_init import MarchenkoPastur, marchenko_pastur

RATIOS = [0.5, 1.0, 4.0, 0.999, 1.001, 1e-4, 50.0]


def moments_from_functional_equation(c: Fraction, k_max: int) -> list[Fraction]:
    """m_1..m_kmax of M(u) = 1 + u M (1 − c + c M) (variance 1), by fixed-point iteration."""
    m = [Fraction(1)] + [Fraction(0)] * k_max
    for _ in range(k_max + 1):
        square = [sum(m[i] * m[n - i] for i in range(n + 1)) for n in range(k_max + 1)]
        inner = [(1 - c) * m[n] + c * square[n] for n in range(k_max + 1)]
        m = [Fraction(1)] + inner[:k_max]
    return m[1:]


@pytest.mark.parametrize("ratio", [0.5, 1.0, 3.0, 0.1])
@pytest.mark.parametrize("variance", [1.0, 2.5])
def test_exact_moments(ratio, variance):
    law = marchenko_pastur(ratio, variance)
    expected = moments_from_functional_equation(Fraction(ratio), 7)
    v = Fraction(variance)
    assert [law.moment(k, method="exact") for k in range(1, 8)] == [v**k * m for k, m in enumerate(expected, 1)]
    assert law.mean() == variance
    assert law.var() == pytest.approx(variance**2 * ratio, rel=1e-15)
    assert law.moment(2) == pytest.approx(variance**2 * (1 + ratio), rel=1e-15)


def test_catalan_and_narayana_moments():
    assert [marchenko_pastur(1.0).moment(k, method="exact") for k in range(1, 7)] == [1, 2, 5, 14, 42, 132]
    # m_3 = 1 + 3c + c² (Narayana numbers 1, 3, 1)
    assert marchenko_pastur(0.5).moment(3, method="exact") == 1 + Fraction(3, 2) + Fraction(1, 4)


@pytest.mark.parametrize("ratio", RATIOS)
def test_normalisation_with_atom_and_moments_by_quadrature(ratio):
    law = marchenko_pastur(ratio)
    a, b = law.intervals[0]
    mass = tanhsinh(law.pdf, a, b, rtol=1e-13).integral
    atom = sum(m for _, m in law.atoms)
    assert mass + atom == pytest.approx(1.0, abs=1e-10)
    assert mass == pytest.approx(law.continuous_mass, abs=1e-10)
    mean = tanhsinh(lambda x: x * law.pdf(x), a, b, rtol=1e-13).integral
    second = tanhsinh(lambda x: x * x * law.pdf(x), a, b, rtol=1e-13).integral
    assert mean == pytest.approx(1.0, rel=1e-10)
    assert second - mean**2 == pytest.approx(ratio, rel=1e-9)


def test_atom_only_above_ratio_one():
    assert marchenko_pastur(0.5).atoms == ()
    assert marchenko_pastur(1.0).atoms == ()
    assert marchenko_pastur(4.0).atoms == ((0.0, 0.75),)
    assert marchenko_pastur(4.0).support == (0.0, 9.0)
    assert marchenko_pastur(0.25).support == (0.25, 2.25)


@pytest.mark.parametrize("ratio", RATIOS)
def test_cdf_and_sf_match_quadrature_including_tails(ratio):
    law = marchenko_pastur(ratio, 1.5)
    a, b = law.intervals[0]
    x = np.concatenate([a + (b - a) * np.geomspace(1e-12, 0.5, 6), b - (b - a) * np.geomspace(1e-12, 0.4, 6)])
    atom = 1.0 - law.continuous_mass
    with mpmath.workdps(40):
        lo, hi = mpmath.mpf(a), mpmath.mpf(b)
        density = lambda t: mpmath.sqrt((hi - t) * (t - lo)) / (2 * mpmath.pi * 1.5 * ratio * t)  # noqa: E731
        below = [atom + mpmath.quad(density, [lo, xi]) for xi in x]
        above = [mpmath.quad(density, [xi, hi]) for xi in x]
    assert np.allclose(law.cdf(x), np.array(below, float), rtol=1e-11, atol=0)
    assert np.allclose(law.sf(x), np.array(above, float), rtol=1e-9, atol=0)


@pytest.mark.parametrize("ratio", RATIOS)
def test_cdf_ppf_inverse_with_atom(ratio):
    law = marchenko_pastur(ratio)
    atom = 1.0 - law.continuous_mass
    q = np.linspace(0, 1, 501)
    x = law.ppf(q)
    assert np.all(np.diff(x) >= 0)
    if atom > 0:
        assert np.all(x[q <= atom] == 0.0)
    assert np.allclose(law.cdf(x), np.maximum(q, atom), rtol=0, atol=1e-12)
    assert law.ppf(0.0) == law.support[0]


def test_samples_ks_and_atom_frequency():
    law = marchenko_pastur(0.5)
    assert stats.kstest(law.sample(20000, rng=7), law.cdf).pvalue > 1e-3
    law4 = marchenko_pastur(4.0)
    samples = law4.sample(20000, rng=8)
    zeros = np.mean(samples == 0.0)
    # binomial standard error sqrt(0.75·0.25/20000) = 0.0031; allow 5 of them
    assert abs(zeros - 0.75) < 5 * math.sqrt(0.75 * 0.25 / 20000)
    conditional = lambda x: (law4.cdf(x) - 0.75) / 0.25  # noqa: E731
    assert stats.kstest(samples[samples > 0], conditional).pvalue > 1e-3


@pytest.mark.parametrize("p, n, variance", [(300, 600, 1.0), (600, 300, 2.0)])
def test_monte_carlo_eigenvalues_of_w_wt_over_n(p, n, variance):
    """Eigenvalues of W Wᵀ/n, W p×n with entries of the given variance: exact zeros = atom, and the
    nonzero part within KS distance 0.02 of the law (ESD fluctuations are O(1/n) for MP)."""
    rng = np.random.default_rng(1)
    w = rng.normal(scale=math.sqrt(variance), size=(p, n))
    eigenvalues = np.linalg.eigvalsh(w @ w.T / n)
    law = marchenko_pastur(p / n, variance)
    zero = np.abs(eigenvalues) < 1e-8 * variance
    assert zero.mean() == pytest.approx(1 - law.continuous_mass, abs=1e-12)
    mass = law.continuous_mass
    conditional = lambda x: (law.cdf(x) - (1 - mass)) / mass  # noqa: E731
    assert stats.kstest(eigenvalues[~zero], conditional).statistic < 0.02
    assert eigenvalues.max() == pytest.approx(law.upper_edge, rel=0.05)


def test_singular_value_law_of_a_square_matrix_is_the_quarter_circle():
    sv = marchenko_pastur(1.0).singular_value_law()
    sigma = np.linspace(0.01, 1.99, 50)
    assert np.allclose(sv.pdf(sigma), np.sqrt(4 - sigma**2) / math.pi, rtol=1e-13)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ratio": 0.0}, r"ratio must be a real number \(> 0\); got 0.0"),
        ({"ratio": -1}, r"ratio must be a real number \(> 0\); got -1"),
        ({"ratio": float("nan")}, r"ratio must be a finite real number \(> 0\); got nan"),
        ({"ratio": float("inf")}, "ratio must be a finite real number"),
        ({"ratio": "1"}, "ratio must be a real number"),
        ({"ratio": 1.0, "variance": -2.0}, r"variance must be a real number \(> 0\); got -2.0"),
        ({"ratio": 1.0, "variance": 0.0}, "variance must be a real number"),
        ({"ratio": 1.0, "variance": float("nan")}, "variance must be a finite real number"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MarchenkoPastur(**kwargs)


def test_divergent_negative_moments():
    assert marchenko_pastur(0.5).moment(-2) > 0
    with pytest.raises(ValueError, match="diverges"):
        marchenko_pastur(1.0).moment(-0.5)
    with pytest.raises(ValueError, match="diverges"):
        marchenko_pastur(2.0).moment(-0.1)


def test_exact_moments_by_integer_horner_equal_the_narayana_fraction_sum():
    import math
    from fractions import Fraction

    c, v, k = 0.3, 1.5, 60
    expected = Fraction(v) ** k * sum(
        Fraction(math.comb(k, j + 1) * math.comb(k, j), k) * Fraction(c) ** j for j in range(k)
    )
    assert marchenko_pastur(c, v).moment(k, method="exact") == expected
    with pytest.raises(ValueError, match="order must be <= 4096"):
        marchenko_pastur(c, v).moment(10**4)


def test_huge_variance_density_is_finite():
    """(x₊ − x)(x − x₋) and v·c·x overflowed at variance 1e300: the density was NaN."""
    law = marchenko_pastur(0.5, 1e300)
    x = np.array([0.5e300, 1e300, 2e300])
    ref = marchenko_pastur(0.5, 1.0).pdf(x / 1e300) / 1e300  # ρ_v(x) = ρ_1(x/v)/v
    assert np.allclose(law.pdf(x), ref, rtol=1e-14, atol=0)


def test_quantile_near_the_ratio_one_hard_edge():
    """v(1 + c − 2√c cos θ) cancelled in the Newton slope: ppf(1e-10) was off by 5e-8 relative."""
    law = marchenko_pastur(1.0, 2.0)
    q = np.array([1e-150, 1e-100, 1e-10, 1e-3])
    # F = (sin θ + θ)/π, x = 4v sin²(θ/2): the relative error of F(ppf(q)) against q is a few ulps
    assert np.allclose(law.cdf(law.ppf(q)), q, rtol=1e-13, atol=0)
