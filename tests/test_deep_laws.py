"""Deep free-product laws keep the mass that lies below the smallest float (issue 11, items 10 and 12).

For a law with a hard edge at 0, F(x) ∝ x^κ near 0 (κ = 1/(L+1) for L Gaussian layers), so at depth L a
mass ~ (1e−308)^{1/(L+1)} lies below every positive float: 1e−3 at L = 100, 0.49 at L = 1000. The
distribution function must still reach 1 at the upper edge and agree with an independent closed form.

References: the linear network with Gaussian weights is the Fuss–Catalan law of depth L, whose cdf is in
closed form (``fuss_catalan(L).cdf``, tested on its own against mpmath); the critical ReLU network with
Gaussian weights has S(w) = (1 + 2w)^{−L}, i.e. ½δ₀ + ½ν with ν = FC(L − 1) ⊠ MP(ratio ½, variance 2)
(change of dimension by 2: S_μ(w) = S_ν(2w)·2(1 + w)/(1 + 2w)), a free product with no atom, solved by a
different branch of the solver (w → −1 instead of w → −½).

Tolerances. The mass below the table's floor is the exact total less tanh–sinh panel masses (relative
1e−13 each, ~1e−12 in all) less 8-point Gauss–Legendre masses in ln x (~1e−15 relative); the density itself
is within 1.5e−12 (relative) of the closed form up to depth 1000 (measured). So |ΔF| ≤ 5e−12 in float
range. A quantile x = F⁻¹(q) then moves by δx/x = δF/(xρ(x)) (ρ the density): the bound is 5e−12/(xρ(x)),
with xρ(x) from the closed form (≥ κ·F, so a relative 5e−10 at depth 1000 and q = 0.01).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from rmt_init.theory import free_product, fuss_catalan, jacobian_spectrum, marchenko_pastur

_F_TOL = 5e-12


def _check_against(law, reference, quantiles) -> None:
    b = reference.support[1]
    x = np.array([1e-300, 1e-200, 1e-100, 1e-10, 1.0, 0.5 * b])
    assert np.max(np.abs(law.cdf(x) - reference.cdf(x))) <= _F_TOL
    assert np.max(np.abs(law.sf(x) - reference.sf(x))) <= _F_TOL
    assert law.cdf(law.upper_edge) == 1.0 and law.sf(law.upper_edge) == 0.0
    # subnormal x: the log-variable table below the floor (deep laws) or the exact power-law tail
    x = np.array([5e-324, 1e-320, 1e-310])
    assert np.max(np.abs(law.cdf(x) - reference.cdf(x))) <= _F_TOL
    q = np.asarray(quantiles)
    expected = reference.ppf(q)
    got = law.ppf(q)
    resolved = expected > 1e-300
    # below the float range both quantiles are 0 (the true value is below 2e−308)
    assert np.all(got[~resolved] <= 1e-300)
    xr = expected[resolved]
    bound = _F_TOL / (xr * reference.pdf(xr)) + 1e-13
    assert np.all(np.abs(got[resolved] / xr - 1.0) <= bound)


@pytest.mark.parametrize("depth", [10, pytest.param(100, marks=pytest.mark.slow), pytest.param(200, marks=pytest.mark.slow), pytest.param(1000, marks=pytest.mark.slow)])
def test_deep_linear_laws_are_fuss_catalan(depth: int) -> None:
    """Was (main): cdf(1) 0.96645 vs 0.96734 at depth 100, 0.95144 vs 0.98081 at 200; cdf(upper edge) 0.507 at
    1000; ppf(0.99) 816.8 vs 4.44 at 300 and ppf(0.3) > 290 s at 1000."""
    law = jacobian_spectrum(depth, "linear", weights="gaussian")
    start = time.perf_counter()
    _check_against(law, fuss_catalan(depth), [0.01, 0.3, 0.5, 0.9, 0.99])
    assert time.perf_counter() - start < 30.0


@pytest.mark.slow
def test_deep_relu_law_against_its_atomless_factorisation() -> None:
    """Depth-200 critical ReLU (Gaussian): F = ½ + ½F_ν with ν = FC(199) ⊠ MP(½, 2) (module docstring);
    was cdf(edge) = 0.754 at depth 1000."""
    depth = 200
    law = jacobian_spectrum(depth, "relu", weights="gaussian")
    nu = free_product(fuss_catalan(depth - 1), marchenko_pastur(0.5, 2.0))
    assert law.atoms == ((0.0, 0.5),)
    assert law.upper_edge == pytest.approx(nu.upper_edge, rel=1e-12)
    x = np.array([1e-300, 1e-100, 1e-10, 1.0, 0.5 * law.upper_edge])
    assert np.max(np.abs(law.cdf(x) - (0.5 + 0.5 * nu.cdf(x)))) <= 2 * _F_TOL
    assert law.cdf(law.upper_edge) == 1.0
    q = np.array([0.6, 0.9, 0.99])
    expected = nu.ppf(2 * q - 1)
    bound = 2 * _F_TOL / (expected * nu.pdf(expected)) + 1e-13
    assert np.all(np.abs(law.ppf(q) / expected - 1.0) <= bound)


@pytest.mark.slow
def test_relu_depth_1000_reaches_one_at_the_edge() -> None:
    """Was 0.754: a quarter of the mass lies below 1e−300 at this depth (sf(1e−300) = 0.2497)."""
    law = jacobian_spectrum(1000, "relu")
    assert law.cdf(law.upper_edge) == 1.0
    assert law.cdf(0.0) == 0.5
    assert 0.74 < law.cdf(1e-300) < 0.76  # F(1e−300) − ½ ≈ ½·F_ν(1e−300), F_ν ~ x^{1/1000}: about half of ν


def test_tiny_arguments_below_the_table_floor() -> None:
    """cdf(5e−324) was NaN at depth 1; below the table's floor F continues as the power law
    F(x_low)(x/x_low)^κ. At depth 1 (κ = ½, floor where F has fallen by 1e−16) that is the exact asymptotic,
    with a relative error of the order of F itself (deep laws: in the parametrised test above)."""
    law = jacobian_spectrum(1, "linear")
    x = np.array([5e-324, 1e-320, 1e-310])
    assert np.all(np.isfinite(law.cdf(x)))
    assert np.allclose(law.cdf(x), fuss_catalan(1).cdf(x), rtol=1e-10, atol=0)
    assert np.all(np.isfinite(law.cdf(x, method="table")))


def test_dirac_law_of_a_deep_orthogonal_linear_network_is_fast() -> None:
    """A point mass at 1 at depth 10⁶ (was > 1 min: the layer loop rebuilt a growing description)."""
    start = time.perf_counter()
    law = jacobian_spectrum(10**6, "linear", weights="orthogonal")
    assert law.atoms == ((1.0, 1.0),) and law.intervals == () and law.is_critical
    assert law.cdf(1.0) == 1.0 and law.cdf(np.nextafter(1.0, 0.0)) == 0.0
    assert law.ppf(0.5) == 1.0 and law.mean() == 1.0 and law.var() == 0.0
    assert time.perf_counter() - start < 5.0


def test_identical_layers_as_a_power_match_the_layer_by_layer_product() -> None:
    """The O(log L) construction of identical square layers against a product built layer by layer."""
    fast = jacobian_spectrum(6, "relu", weights="orthogonal")
    slow = jacobian_spectrum(6, "relu", weights="orthogonal", widths=[100] * 7)  # equal widths: the layer loop
    assert fast.atoms == slow.atoms
    assert [fast.moment(k, method="exact") for k in (1, 2, 3)] == [slow.moment(k, method="exact") for k in (1, 2, 3)]
    assert fast.upper_edge == pytest.approx(slow.upper_edge, rel=1e-13)


def test_high_moment_orders_are_refused_quickly() -> None:
    """moment(10⁴) hung; orders above 100 are refused naming the largest supported order, and order 100 is
    computed (float from 60-digit series, equal to the exact rational to 1e−15)."""
    law = jacobian_spectrum(4, "relu")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="<= 100"):
        law.moment(10**4)
    with pytest.raises(ValueError, match="<= 100"):
        law.moment(101, method="exact")
    assert time.perf_counter() - start < 1.0
    m = law.moment(60)
    assert m == pytest.approx(float(law.moment(60, method="exact")), rel=1e-15)


def test_log_scale_hooks_of_a_shallow_free_product() -> None:
    """``_log_cdf``/``_log_sf``/``_log_pdf``/``_log_ppf`` (t = ln λ): in float range the ordinary methods at
    e^t; below the smallest normal float, where F ≤ 1e−7, the hard edge's power law F(x_low)e^{κ(t − ln x_low)},
    exact up to a relative error of the order of F (here ≤ 1e−76): checked against the closed form continued
    by its exact exponent κ = 1/4 (depth 3)."""
    law, fc = jacobian_spectrum(3, "linear"), fuss_catalan(3)
    t = np.array([-np.inf, -5000.0, -800.0, -10.0, 0.0, 2.0])
    reference = np.array([0.0, fc.cdf(np.exp(-700.0)) * np.exp(-4300 / 4), fc.cdf(np.exp(-700.0)) * np.exp(-25.0),
                          fc.cdf(np.exp(-10.0)), fc.cdf(1.0), fc.cdf(np.exp(2.0))])
    assert np.allclose(law._log_cdf(t), reference, rtol=1e-10, atol=0)
    assert np.allclose(law._log_sf(t), 1.0 - reference, rtol=1e-12, atol=1e-15)
    assert law._log_pdf(np.array([-800.0]))[0] == pytest.approx(reference[2] / 4, rel=1e-10)
    q = np.array([1e-100, 0.5])
    expected = np.array([-700.0 + 4 * np.log(1e-100 / fc.cdf(np.exp(-700.0))), np.log(fc.ppf(0.5))])
    assert np.allclose(law._log_ppf(q), expected, rtol=1e-10)
    relu = jacobian_spectrum(4, "relu")
    assert relu._log_cdf(np.array([-np.inf, -5000.0]))[0] == 0.5 and relu._log_ppf(np.array([0.25]))[0] == -np.inf


@pytest.mark.parametrize("depth", [100, pytest.param(1000, marks=pytest.mark.slow)])
def test_log_scale_hooks_below_the_float_range_of_deep_laws(depth: int) -> None:
    """Deep laws: the characteristic equation solved at log z = t (z itself below the float range), the
    density of ln λ integrated from the floor down. Reference: the Fuss–Catalan parametrisation
    (ln x(φ), F(φ)) in closed form at u = 1 − (s+1)φ/π from 1e−12 to 0.3 (ln λ down to −2300 at depth 100,
    −20700 at depth 1000). Tolerances: F to 5e−12 as in float range; t = F⁻¹(q) to δF/(κF) with κ = 1/(L+1)."""
    law, fc = jacobian_spectrum(depth, "linear"), fuss_catalan(depth)
    u = np.geomspace(1e-12, 0.3, 25)
    log_x, _ = fc._hard_log_x(u)
    cdf = fc._cdf_from_hard(u)
    log_x_r, log_rho = fc._log_x_and_rho(1.0 - u, u)
    below = log_x < np.log(np.finfo(float).tiny)
    assert below.sum() >= 10
    assert np.max(np.abs(law._log_cdf(log_x[below]) - cdf[below])) <= _F_TOL
    assert np.max(np.abs(law._log_sf(log_x[below]) - (1.0 - cdf[below]))) <= _F_TOL
    assert np.allclose(law._log_pdf(log_x[below]), np.exp(log_x_r + log_rho)[below], rtol=1e-10, atol=0)
    bound = _F_TOL * (depth + 1) / cdf[below] + 1e-13 * np.abs(log_x[below])
    assert np.all(np.abs(law._log_ppf(cdf[below]) - log_x[below]) <= bound)
    assert np.all(np.abs(law._log_isf(1.0 - cdf[below]) - log_x[below]) <= bound + 1e-16 * (depth + 1) / cdf[below])
    assert law._log_pdf(np.array([np.inf]))[0] == 0.0


@pytest.mark.parametrize("depth", [2, 10, pytest.param(100, marks=pytest.mark.slow), pytest.param(1000, marks=pytest.mark.slow)])
def test_log_mean_is_minus_the_depth(depth: int) -> None:
    """E[ln λ] = −L for the Fuss–Catalan law of depth L (Penson & Życzkowski 2011: fractional moments
    Γ((L+1)t+1)/(Γ(t+1)Γ(Lt+2)), whose derivative at t = 0 is −L). At depth 1000 about half the mass lies
    below the smallest float, so this checks how the log-variable table spreads it in ln λ (measured: −L to
    2e−16 relative at depths 2–1000; allowed 1e−11, the cdf's 5e−12 times the spread of |ln λ|/L ≲ 2)."""
    law = jacobian_spectrum(depth, "linear")
    assert law._log_mean() == pytest.approx(-depth, rel=1e-11)
    assert jacobian_spectrum(4, "relu")._log_mean() == -np.inf


def test_chaotic_deep_law_is_the_scaled_fuss_catalan_law():
    """σ_w² = 3 at depth 100: the law is Fuss–Catalan's scaled by 3^100 (its 12th moment, ~10^570, is
    beyond the float range: the spectral scale raised OverflowError before it was taken in logs)."""
    law = jacobian_spectrum(100, "linear", sigma_w2=3.0)
    ref = fuss_catalan(100)
    scale = 3.0**100
    assert law.upper_edge == pytest.approx(ref.upper_edge * scale, rel=1e-10)
    x = np.array([1e-3, 1.0, 5.0, 100.0]) * scale
    np.testing.assert_allclose(law.cdf(x), ref.cdf(x / scale), rtol=1e-9)
    with pytest.raises(ValueError, match="sigma_w2"):
        jacobian_spectrum(3, "relu", sigma_w2=1e300)  # the mean (5e299)^3 itself overflows
