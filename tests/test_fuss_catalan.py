"""Fuss–Catalan law: exact moments, fast vs arbitrary-precision vs Meijer G, edges, sampling, bad input.

Independent references used here:
* moments from the functional equation w = 1 + u w^{s+1} of the moment series, expanded with exact
  integers (not the binomial closed form the package uses);
* the density from mpmath at 40 digits (``pdf_mp``: the parametrisation solved in arbitrary precision)
  and from Penson & Życzkowski's Meijer G form (``mpmath.meijerg``), which agree with each other;
* normalisation, mean and variance by mpmath quadrature of the mpmath density;
* closed values from docs/derivations.md §7 (T3–T10, T30).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import rmt_init
from rmt_init import FussCatalan, MarchenkoPastur, fuss_catalan

from . import fc_reference as ref


def moments_from_functional_equation(s: int, k_max: int) -> list[int]:
    """Coefficients m_1..m_kmax of w(u) = 1 + u w(u)^{s+1}, by fixed-point iteration on truncated series."""
    w = [1] + [0] * k_max
    for _ in range(k_max + 1):
        power = [1] + [0] * k_max
        for _ in range(s + 1):  # power = w^{s+1} truncated
            power = [sum(power[i] * w[n - i] for i in range(n + 1)) for n in range(k_max + 1)]
        w = [1] + power[:k_max]
    return w[1:]


def grid(law: FussCatalan, n: int = 30) -> np.ndarray:
    """Points over the whole open support, down to 1e-300 and up to 2 ulps below the edge."""
    edge = law.support[1]
    return np.unique(
        np.concatenate(
            [
                np.geomspace(1e-300, 0.5 * edge, n),
                edge - np.geomspace(0.5 * edge, 2.5e-16 * edge, n),
                np.linspace(0.0, edge, n + 2)[1:-1],
            ]
        )
    )


# ---------------------------------------------------------------------------------------------- moments
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 8])
def test_exact_moments_are_fuss_catalan_numbers(depth):
    law = fuss_catalan(depth)
    expected = moments_from_functional_equation(depth, 8)
    assert [law.moment(k, method="exact") for k in range(1, 9)] == expected
    assert all(isinstance(law.moment(k, method="exact"), int) for k in range(1, 9))
    assert [law.moment(k) for k in range(1, 9)] == [float(m) for m in expected]


def test_reference_moment_table():
    assert [fuss_catalan(2).moment(k, method="exact") for k in range(1, 5)] == [1, 3, 12, 55]
    assert [fuss_catalan(3).moment(k, method="exact") for k in range(1, 5)] == [1, 4, 22, 140]
    assert [fuss_catalan(5).moment(k, method="exact") for k in range(1, 6)] == [1, 6, 51, 506, 5481]


@pytest.mark.parametrize("depth", [1, 2, 5, 40])
def test_mean_and_variance(depth):
    law = fuss_catalan(depth)
    assert law.mean() == 1.0
    assert law.var() == depth
    assert law.moment(2, kind="central") == pytest.approx(depth, rel=1e-12)


@pytest.mark.parametrize(
    "depth, expected",
    [(1, 8 / (3 * math.pi)), (2, 0.75), (3, 32 / (15 * math.pi)), (5, 192 / (105 * math.pi))],
)
def test_mean_singular_value_t7(depth, expected):
    law = fuss_catalan(depth)
    assert law.moment(0.5) == pytest.approx(expected, rel=1e-13)
    assert law.singular_value_law().mean() == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("depth", [1, 3])
def test_fractional_moments_and_log_mean_by_quadrature(depth):
    law = fuss_catalan(depth)
    for order in (0.5, -0.2, 1.5):
        quad = ref.expectation(depth, lambda x: x**order)
        assert law.moment(order) == pytest.approx(float(quad), rel=1e-12)
    log_mean = ref.expectation(depth, mpmath.log)
    assert float(log_mean) == pytest.approx(law.log_moment(), rel=1e-12)
    assert law.log_moment() == -depth


def test_divergent_moment_is_rejected():
    with pytest.raises(ValueError, match="diverges"):
        fuss_catalan(2).moment(-0.5)


# ---------------------------------------------------------------------------------------------- density
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 7, 10])
def test_fast_matches_arbitrary_precision_to_1e10_up_to_depth_10(depth):
    law = fuss_catalan(depth)
    x = grid(law)
    fast = law.pdf(x)
    exact = law.pdf(x, method="exact", dps=40)
    assert np.all(np.isfinite(fast)) and np.all(fast > 0)
    assert np.max(np.abs(fast / exact - 1)) <= 1e-10


@pytest.mark.parametrize("depth", [20, 50, 100])
def test_fast_matches_arbitrary_precision_to_1e8_up_to_depth_100(depth):
    law = fuss_catalan(depth)
    x = grid(law, n=15)
    fast = law.pdf(x)
    exact = law.pdf(x, method="exact", dps=40)
    assert np.max(np.abs(fast / exact - 1)) <= 1e-8


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_arbitrary_precision_reference_matches_meijer_g(depth):
    """The two exact references (parametrisation vs Penson–Życzkowski Meijer G) agree to 1e-20."""
    law = fuss_catalan(depth)
    edge = law.support[1]
    for fraction in (1e-8, 0.01, 0.3, 0.7, 0.95):
        x = fraction * edge
        param = law.pdf_mp(x, dps=30)
        meijer = law.pdf_meijerg_mp(x, dps=30)
        assert abs(param / meijer - 1) < 1e-20


def test_meijerg_method_through_pdf():
    law = fuss_catalan(2)
    x = np.array([0.1, 0.5, 3.0, 6.5])
    assert np.allclose(law.pdf(x, method="meijerg"), law.pdf(x), rtol=1e-12, atol=0)


def test_known_density_values_t5_t6():
    assert fuss_catalan(2).pdf(0.5) == pytest.approx(1 / math.pi, rel=1e-14)
    law3 = fuss_catalan(3)
    assert law3.pdf(1.0) == pytest.approx(0.1368778, abs=5e-8)
    assert law3.pdf(3.0) == pytest.approx(0.04469639, abs=5e-9)


@pytest.mark.parametrize("depth, edge", [(1, 4.0), (2, 6.75), (3, 256 / 27), (5, 46656 / 3125)])
def test_support_edges_t3_t4(depth, edge):
    assert fuss_catalan(depth).support == (0.0, pytest.approx(edge, rel=1e-15))


def test_singular_value_edges_of_bjorck_figure_t30():
    tops = [fuss_catalan(m).singular_value_law().support[1] for m in (1, 3, 5)]
    assert tops == pytest.approx([2.0, 3.0792, 3.8639], abs=5e-5)


@pytest.mark.parametrize("depth", [2, 3])
def test_soft_edge_constant_t9(depth):
    """ρ(x) ≈ C_s √(x_e − x) with C_s = (√2/π) s^{3(s−1)/2} (s+1)^{−(3s+2)/2} (docs/derivations.md §1.2)."""
    law = fuss_catalan(depth)
    c_s = math.sqrt(2) / math.pi * depth ** (1.5 * (depth - 1)) * (depth + 1) ** (-(3 * depth + 2) / 2)
    gap = 1e-10 * law.support[1]
    assert law.pdf(law.support[1] - gap) / math.sqrt(gap) == pytest.approx(c_s, rel=1e-6)
    if depth == 2:
        assert c_s == pytest.approx(0.0157190, abs=5e-8)


@pytest.mark.parametrize("depth", [1, 2, 6])
def test_hard_edge_prefactor_t10(depth):
    """ρ(x) x^{s/(s+1)} → sin(π/(s+1))/π as x → 0 (corrections O(x^{1/(s+1)}))."""
    law = fuss_catalan(depth)
    x = 1e-280
    expected = math.sin(math.pi / (depth + 1)) / math.pi
    assert law.pdf(x) * x ** (depth / (depth + 1)) == pytest.approx(expected, rel=1e-10)


def test_depth_one_is_marchenko_pastur_ratio_one():
    fc, mp_law = fuss_catalan(1), MarchenkoPastur(1.0)
    x = np.linspace(1e-9, 4 - 1e-9, 2001)
    assert np.allclose(fc.pdf(x), mp_law.pdf(x), rtol=1e-12, atol=0)
    assert np.allclose(fc.cdf(x), mp_law.cdf(x), rtol=0, atol=1e-14)
    assert [fc.moment(k, method="exact") for k in range(6)] == [mp_law.moment(k, method="exact") for k in range(6)]


def test_pdf_is_zero_outside_support_and_nan_propagates():
    law = fuss_catalan(3)
    out = law.pdf([-1.0, 0.0, law.support[1], 20.0, np.nan])
    assert out[:4].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert np.isnan(out[4])
    assert isinstance(law.pdf(1.0), float)
    assert law.pdf(np.ones((2, 3))).shape == (2, 3)


@pytest.mark.parametrize("depth", [200, 1000, 10000])
def test_deep_laws_stay_finite(depth):
    law = fuss_catalan(depth)
    x = grid(law, n=40)
    pdf, cdf, sf = law.pdf(x), law.cdf(x), law.sf(x)
    assert np.all(np.isfinite(pdf)) and np.all(pdf > 0)
    assert np.all(np.diff(cdf) >= 0) and np.all((cdf >= 0) & (cdf <= 1))
    assert np.allclose(cdf + sf, 1.0, atol=2e-15)
    assert np.all(np.isfinite(law.logpdf(x)))
    samples = law.sample(1000, rng=0)
    assert np.all(np.isfinite(samples)) and samples.max() <= law.support[1]


def test_depth_1000_fast_vs_exact_spot_check():
    law = fuss_catalan(1000)
    x = grid(law, n=6)
    assert np.max(np.abs(law.pdf(x) / law.pdf(x, method="exact") - 1)) <= 1e-9


def test_pdf_saturates_instead_of_overflowing_at_subnormal_points():
    law = fuss_catalan(500)
    tiny = np.nextafter(0.0, 1.0)
    assert np.isfinite(law.pdf(tiny)) and law.pdf(tiny) > 1e300
    assert np.isfinite(law.logpdf(tiny))


# ---------------------------------------------------------------------------------------------- cdf
@pytest.mark.parametrize("depth", [1, 2, 4, 9, 60])
def test_normalisation_mean_and_second_moment_by_quadrature(depth):
    assert float(ref.expectation(depth, lambda x: 1)) == pytest.approx(1.0, abs=1e-12)
    assert float(ref.expectation(depth, lambda x: x)) == pytest.approx(1.0, rel=1e-12)
    assert float(ref.expectation(depth, lambda x: x * x)) == pytest.approx(depth + 1, rel=1e-12)


@pytest.mark.parametrize("depth", [2, 5])
def test_normalisation_of_the_fast_density_in_x(depth):
    """∫ pdf dx = 1 with the package's own density and scipy's tanh-sinh (singular at 0)."""
    from scipy.integrate import tanhsinh

    law = fuss_catalan(depth)
    pieces = [0.0, 1e-6, 1.0, law.support[1]]
    total = sum(tanhsinh(law.pdf, a, b, rtol=1e-13).integral for a, b in zip(pieces[:-1], pieces[1:]))
    assert total == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("depth", [1, 2, 5, 30])
def test_cdf_matches_quadrature_of_the_density(depth):
    """The closed-form cdf and sf against mpmath quadrature of the density (in φ), tails included."""
    law = fuss_catalan(depth)
    edge = law.support[1]
    points = np.concatenate(
        [np.geomspace(1e-30, 0.1, 4) * edge, [0.3 * edge, 0.7 * edge], edge * (1 - np.geomspace(1e-3, 1e-9, 3))]
    )
    cdf, sf = law.cdf(points), law.sf(points)
    for x, c, s_ in zip(points, cdf, sf):
        assert c == pytest.approx(float(ref.mass_below(depth, x)), rel=1e-12)
        assert s_ == pytest.approx(float(ref.mass_above(depth, x)), rel=1e-9)


@pytest.mark.parametrize("depth", [1, 3, 12, 100])
def test_cdf_and_ppf_are_inverse(depth):
    law = fuss_catalan(depth)
    q = np.concatenate([[0.0, 1e-300, 1e-12, 1e-6], np.linspace(0.001, 0.999, 199), [1 - 1e-9, 1.0]])
    x = law.ppf(q)
    assert np.all(np.diff(x) >= 0)
    # Deep laws put so much mass near 0 that small quantiles underflow (depth 100: q = 1e-6 sits at
    # x ≈ 1e-600): those must come back as 0, and only when q is below the mass under the smallest
    # normal float.
    representable = x >= np.finfo(float).tiny
    assert np.allclose(law.cdf(x[representable]), q[representable], rtol=1e-12, atol=1e-15)
    assert np.all(q[~representable] <= law.cdf(np.finfo(float).tiny))
    assert law.ppf(0.0) == 0.0 and law.ppf(1.0) == law.support[1]
    p = np.array([1e-15, 1e-9, 1e-3, 0.3])
    assert np.allclose(law.sf(law.isf(p)), p, rtol=1e-9)
    xs = grid(law, n=10)
    assert np.allclose(law.ppf(law.cdf(xs)), xs, rtol=1e-8)


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(1, 300), fraction=st.floats(1e-12, 1 - 1e-12))
def test_property_cdf_ppf_roundtrip_and_positive_density(depth, fraction):
    law = fuss_catalan(depth)
    x = fraction * law.support[1]
    assert law.pdf(x) > 0 and np.isfinite(law.pdf(x))
    q, p = law.cdf(x), law.sf(x)
    assert 0 < q <= 1 and 0 < p < 1 and q + p == pytest.approx(1.0, abs=1e-15)
    # The lower half round-trips through the cdf, the upper half through the sf (q near 1 cannot
    # hold the information: at the edge 1 − F ~ (x_e − x)^{3/2} falls below one ulp of 1).
    back = law.ppf(q) if q <= 0.5 else law.isf(p)
    assert back == pytest.approx(x, rel=1e-8)


# ---------------------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("depth", [1, 3, 10])
def test_samples_pass_a_ks_test(depth):
    """KS against the cdf at n = 20000. With a fixed seed the p-value is one number; a sampler off by
    even 1% in the cdf gives D ≈ 0.01 ≫ the 1.36/√n ≈ 0.0096 critical value, so this can fail."""
    law = fuss_catalan(depth)
    samples = law.sample(20000, rng=12345)
    result = stats.kstest(samples, law.cdf)
    assert result.pvalue > 1e-3
    assert law.sample(5, rng=1).tolist() == law.sample(5, rng=1).tolist()
    assert isinstance(law.rvs(random_state=3), float)
    assert law.rvs(size=(2, 3), random_state=3).shape == (2, 3)


def test_monte_carlo_product_of_gaussians_matches_the_law():
    """Eigenvalues of X Xᵀ, X = G1 G2 G3 with N = 400 (3 draws): KS distance to FC_3 below 0.02.

    For products the empirical spectral distribution converges at rate ~1/N in the bulk; 0.02 leaves
    ample room at N = 400 while a wrong scaling (e.g. variance 1 instead of 1/N) fails by far."""
    rng = np.random.default_rng(0)
    n, depth = 400, 3
    eigenvalues = []
    for _ in range(3):
        x = np.eye(n)
        for _ in range(depth):
            x = rng.standard_normal((n, n)) / math.sqrt(n) @ x
        eigenvalues.append(np.linalg.eigvalsh(x @ x.T))
    sample = np.concatenate(eigenvalues)
    assert stats.kstest(sample, fuss_catalan(depth).cdf).statistic < 0.02


# ---------------------------------------------------------------------------------------------- protocol
def test_singular_value_law():
    law = fuss_catalan(2)
    sv = law.singular_value_law()
    sigma = np.array([0.3, 1.0, 2.0])
    assert np.allclose(sv.pdf(sigma), 2 * sigma * law.pdf(sigma**2), rtol=1e-15)
    assert np.allclose(sv.cdf(sigma), law.cdf(sigma**2), rtol=1e-15)
    assert np.allclose(sv.ppf([0.2, 0.9]), np.sqrt(law.ppf([0.2, 0.9])), rtol=1e-15)
    assert sv.moment(2) == pytest.approx(1.0) and sv.moment(4) == pytest.approx(3.0)
    assert sv.squared_law() is law
    assert law.top_singular_value == pytest.approx(math.sqrt(6.75))
    from scipy.integrate import tanhsinh

    pieces = [0.0, 1e-3, 1.0, sv.support[1]]
    mass = sum(tanhsinh(sv.pdf, a, b, rtol=1e-13).integral for a, b in zip(pieces[:-1], pieces[1:]))
    assert mass == pytest.approx(1.0, abs=1e-10)


def test_public_names():
    assert rmt_init.fuss_catalan(2) is not None
    assert isinstance(rmt_init.fuss_catalan(2), rmt_init.SpectralLaw)
    assert repr(fuss_catalan(4)) == "FussCatalan(depth=4)"


@pytest.mark.parametrize("bad", [0, -1, 2.5, float("nan"), float("inf"), "3", True, None])
def test_bad_depth_is_rejected_with_its_value(bad):
    with pytest.raises(ValueError, match=r"depth must be an integer >= 1; got"):
        fuss_catalan(bad)


def test_bad_method_and_probabilities():
    law = fuss_catalan(2)
    with pytest.raises(ValueError, match="unknown method 'slow'.*'fast', 'exact', 'meijerg'"):
        law.pdf(1.0, method="slow")
    with pytest.raises(ValueError, match=r"q must be a probability in \[0, 1\]; got 1.5"):
        law.ppf([0.5, 1.5])
    with pytest.raises(ValueError, match="dps must be an integer >= 15"):
        law.pdf(1.0, method="exact", dps=5)
    assert fuss_catalan(2.0).depth == 2  # an integral float is accepted


def test_fused_log_sinc_and_cot_equal_the_separate_functions():
    # The density's soft-edge residual takes log sinc and cot y − 1/y of the same angles in one pass
    # (log_sinc_and_cot); it must return exactly what the two separate functions return, on both sides of
    # the series cutoff (1.2), at 0 and down to the smallest normal angles; and the values themselves
    # agree with mpmath (40 digits) to 6e-16 relative (the bound stated in _special).
    from rmt_init.theory._special import cot_minus_inverse, log_sinc, log_sinc_and_cot

    y = np.concatenate(
        [[0.0, 1.2, np.nextafter(1.2, 0.0)], np.linspace(0.0, 3.1, 2001), np.geomspace(1e-300, 3.0, 500)]
    )
    y = y.reshape(-1, 1) * np.ones(3)  # the (3, n)-shaped use, transposed
    both = log_sinc_and_cot(y)
    assert np.array_equal(both[0], log_sinc(y)) and np.array_equal(both[1], cot_minus_inverse(y))
    with mpmath.workdps(40):
        for v in (1e-8, 0.3, 1.19, 1.21, 2.5):  # (at 1e-200, cot − 1/y would need 400 digits in mpmath)
            m = mpmath.mpf(v)
            ls, ct = log_sinc_and_cot(np.array([v]))
            assert math.isclose(ls[0], float(mpmath.log(mpmath.sin(m) / m)), rel_tol=6e-16)
            assert math.isclose(ct[0], float(mpmath.cot(m) - 1 / m), rel_tol=6e-16)
