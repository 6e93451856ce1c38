"""Tests of rmt_init.montecarlo.products and .ensembles against exact finite-N theory and exact arithmetic.

Monte Carlo tolerances are ``SAFETY × standard error`` with the standard error estimated from the
trials (one statistic per trial, trials independent), plus any known finite-size bias stated at the
check; with SAFETY = 5 a correct implementation fails with probability < 1e-6 per check. Seeds are
fixed, so the tests are deterministic.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from ._references import mp_product_log_singular_values

from rmt_init.montecarlo import product_spectrum, qr_log_singular_values, sample_matrices, weight_init
from rmt_init.montecarlo._device import limit_threads
from rmt_init.montecarlo.products import _qr_accumulate
from rmt_init.theory import finite_width_moments, init_scheme, lyapunov_exponents, lyapunov_variances

SAFETY = 5.0


@pytest.fixture(autouse=True)
def _single_thread():
    """The matrices here are tiny: intra-op threads only add synchronisation cost (large on busy CI)."""
    with limit_threads(1):
        yield


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


@pytest.mark.parametrize("stabilize", [False, True])
def test_gaussian_product_moments_match_exact_finite_width(stabilize):
    # E[tr JJᵀ/N] and E[tr (JJᵀ)²/N] for a product of L = 3 real Gaussian 8×8 matrices (entry variance
    # 1/N) are exact at finite N (Wick recursion in rmt_init.theory.finite_width_moments).
    n, depth, trials = 8, 3, 3000
    res = product_spectrum(depth, n, "gaussian", trials=trials, seed=11, device="cpu", stabilize=stabilize)
    x = res.squared_singular_values
    assert x.shape == (trials, n)
    exact = finite_width_moments(n, depth)
    m1, se1 = _mean_se(x.sum(1) / n)
    m2, se2 = _mean_se((x**2).sum(1) / n)
    assert abs(m1 - exact.m1) <= SAFETY * se1
    assert abs(m2 - exact.b) <= SAFETY * se2
    assert res.config["method"] == ("qr" if stabilize else "direct")


def test_direct_and_qr_agree_on_the_same_samples():
    # Same seed ⇒ same factors; both algorithms are exact here (depth 6: σ_min/σ_max ≫ eps), so their
    # log singular values agree to rounding (relative accuracy of the direct SVD: eps·σ_1/σ_i).
    a = product_spectrum(6, 5, trials=50, seed=2, device="cpu", stabilize=False)
    b = product_spectrum(6, 5, trials=50, seed=2, device="cpu", stabilize=True)
    ratio = np.exp(a.log_singular_values[:, :1] - a.log_singular_values)  # σ_1/σ_i
    err = np.abs(a.log_singular_values - b.log_singular_values)
    assert np.all(err <= 1e-12 * (1.0 + ratio))


def test_rectangular_widths_trace_and_bottleneck_zeros():
    # Var(W_l) = 1/n_{l−1} ⇒ E‖W v‖² = (n_l/n_{l−1})‖v‖², hence E tr(PPᵀ) = n_L exactly. A hidden width 3
    # makes rank(P) ≤ 3 of min(n_0, n_L) = 6: three exact zeros (ln σ = −inf) in both algorithms.
    widths = (6, 9, 3, 7, 6)
    for stabilize in (False, True):
        res = product_spectrum(4, widths=widths, trials=2000, seed=5, device="cpu", stabilize=stabilize)
        x = res.squared_singular_values
        assert x.shape == (2000, 6)
        assert np.all(x[:, 3:] == 0.0) and np.all(np.isneginf(res.log_singular_values[:, 3:]))
        assert np.all(x[:, :3] > 0)
        m, se = _mean_se(x.sum(1))
        assert abs(m - widths[-1]) <= SAFETY * se


@pytest.mark.parametrize("stabilize", [False, True])
def test_orthogonal_products_are_exact_isometries_times_gain(stabilize):
    # Haar orthogonal factors times gain g: every singular value of the product is g^L exactly.
    depth, gain = 40, 1.05
    res = product_spectrum(depth, 6, "orthogonal", init_kwargs={"gain": gain}, trials=5, seed=0,
                           device="cpu", stabilize=stabilize)
    np.testing.assert_allclose(res.squared_singular_values, gain ** (2 * depth), rtol=1e-10)
    np.testing.assert_allclose(res.log_singular_values, depth * math.log(gain), rtol=1e-10)
    # explicit sigma_w2 with orthogonal weights: √σ_w² × Haar
    res = product_spectrum(7, 5, "gaussian", sigma_w2=2.0, weights="orthogonal", trials=3, seed=0, device="cpu",
                           stabilize=stabilize)
    np.testing.assert_allclose(res.squared_singular_values, 2.0**7, rtol=1e-10)


def test_depth_ten_thousand_is_finite_and_matches_newman_lyapunov_exponents():
    # Newman (1986): (1/L) ln σ_i → λ_i = ½[ψ((N−i+1)/2) + ln(2/N)]. The QR sums S_i(L) have mean L λ_i
    # and variance L v_i exactly (v_i = lyapunov_variances); ln σ_i(P_L) − S_i(L) = O(1) (Oseledets), so
    # the trial mean of ln σ_i / L has standard error √(v_i/(L T)) and a bias ≤ C/L; we allow C = 10,
    # generous for an O(1) term whose observed size is < 1 (it is the log of a pivot of the limit U).
    n, depth, trials = 4, 10_000, 16
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the log values and growth rates are exact: no warning for them
        res = product_spectrum(depth, n, "gaussian", trials=trials, seed=7, device="cpu")
        rates = res.growth_rates.mean(axis=0)
    assert res.saturated == res.log_singular_values.size  # e^{2 ln σ} < 1e-308 for every σ
    with pytest.warns(RuntimeWarning, match="outside the float64 range.*use log_singular_values.*growth_rates"):
        res.squared_singular_values  # noqa: B018 (reading the saturated values warns)
    assert res.config["method"] == "qr"
    logsv = res.log_singular_values
    assert np.all(np.isfinite(logsv))
    lam = lyapunov_exponents(n)
    tol = SAFETY * np.sqrt(lyapunov_variances(n) / (depth * trials)) + 10.0 / depth
    assert np.all(np.abs(rates - lam) <= tol), (rates, lam, tol)
    # σ_w² = 2 (kaiming default gain) shifts every exponent by ½ ln 2 (log values grow, still finite).
    res2 = product_spectrum(2000, n, "kaiming_normal", trials=8, seed=1, device="cpu")
    with pytest.warns(RuntimeWarning, match="outside the float64 range"):
        res2.samples  # noqa: B018
    tol2 = SAFETY * np.sqrt(lyapunov_variances(n) / (2000 * 8)) + 10.0 / 2000
    assert np.all(np.abs(res2.growth_rates.mean(0) - lyapunov_exponents(n, sigma_w2=2.0)) <= tol2)


def test_qr_log_singular_values_are_exact_against_high_precision_product():
    # 150 Gaussian 4×4 factors: σ_1/σ_4 ≈ e^{150·1.2} ≈ 1e78, far beyond float64 for a direct product.
    # Reference: the product in 150-digit arithmetic and mpmath's SVD. Backward-stable QR steps give an
    # error in ln σ of order √L·eps per step sum, i.e. ≲ 1e-13; we allow 1e-9.
    rng = np.random.default_rng(3)
    depth, n = 150, 4
    mats = rng.standard_normal((depth, n, n)) / math.sqrt(n)
    factors = [torch.from_numpy(m)[None] for m in mats]
    logd, u = _qr_accumulate(iter(factors))
    ours = qr_log_singular_values(logd, u)[0]
    ref = mp_product_log_singular_values(mats, dps=150)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# weight ensembles: same laws as torch.nn.init and as the theory's scheme table
# ---------------------------------------------------------------------------------------------

SCHEMES = [
    ("gaussian", {}),
    ("xavier_normal", {"gain": 1.3}),
    ("xavier_uniform", {}),
    ("kaiming_normal", {"nonlinearity": "relu"}),
    ("kaiming_uniform", {"a": 0.2, "mode": "fan_out"}),
    ("lecun_normal", {}),
    ("lecun_uniform", {}),
    ("orthogonal", {"gain": 0.7}),
    ("torch_default", {}),
]


@pytest.mark.parametrize("name,kwargs", SCHEMES)
def test_scheme_scale_matches_theory_table(name, kwargs):
    # Independent implementation: rmt_init.theory.inits (written from the torch source, no torch import).
    spec = weight_init(name, init_kwargs=kwargs)
    theory = init_scheme(name, **({"sigma_w2": 1.0} if name == "gaussian" else kwargs))
    for fan_out, fan_in in [(30, 20), (20, 30)]:
        assert spec.ensemble == theory.ensemble
        assert math.isclose(spec.entry_std((fan_out, fan_in)), theory.std(fan_in, fan_out), rel_tol=1e-12)
        assert math.isclose(spec.effective_sigma_w2((fan_out, fan_in)), theory.sigma_w2(fan_in, fan_out), rel_tol=1e-12)


@pytest.mark.parametrize("name,kwargs", SCHEMES)
def test_batched_sampler_and_torch_init_draw_the_same_law(name, kwargs):
    # Sample variance of n = 60 000 entries: SE = σ²√((κ − 1)/n) with kurtosis κ = 3 (Gaussian),
    # 9/5 (uniform); orthogonal matrices are checked exactly (WᵀW = g² I for 300×200).
    spec = weight_init(name, init_kwargs=kwargs)
    shape = (300, 200)
    gen = torch.Generator().manual_seed(0)
    batched = sample_matrices(spec, 1, *shape, generator=gen, dtype=torch.float64, device=torch.device("cpu"))[0]
    torch_w = torch.empty(shape, dtype=torch.float64)
    spec.apply_(torch_w, torch.Generator().manual_seed(1))
    std = spec.entry_std(shape)
    for w in (batched, torch_w):
        if spec.ensemble == "orthogonal":
            g = spec.gain()
            np.testing.assert_allclose((w.T @ w).numpy(), g**2 * np.eye(200), atol=1e-12)
            continue
        kurt = 3.0 if spec.ensemble == "gaussian" else 1.8
        var = float(w.var(unbiased=False))
        assert abs(var - std**2) <= SAFETY * std**2 * math.sqrt((kurt - 1) / w.numel())
        if spec.ensemble == "uniform":
            assert float(w.abs().max()) <= math.sqrt(3.0) * std * (1 + 1e-12)
            assert float(w.abs().max()) >= 0.99 * math.sqrt(3.0) * std  # P(all 60 000 below 0.99 b) = 0.99^60000


def test_uniform_and_explicit_sigma_products_first_moment():
    # entries of variance σ_w²/N, any ensemble ⇒ E tr(PPᵀ)/N = σ_w^{2L} exactly.
    for weights in ("uniform", "gaussian"):
        res = product_spectrum(3, 6, "gaussian", sigma_w2=1.5, weights=weights, trials=2000, seed=4, device="cpu")
        m, se = _mean_se(res.squared_singular_values.mean(1))
        assert abs(m - 1.5**3) <= SAFETY * se
