"""Tests of rmt_init.theory.finite against closed forms, exact symbolic expectations and Monte Carlo.

Monte Carlo tolerances: ``5 × standard error`` (SE from the predicted variance where the
prediction is exact for the simulated statistic, else from the sample), so a correct formula
fails with probability below 1e-6 per check; seeds are fixed, so the tests are deterministic.
"""
from __future__ import annotations

import math
from fractions import Fraction
from math import prod

import numpy as np
import pytest
from scipy import stats

from rmt_init.theory.finite import (
    condition_number_growth,
    finite_width_moments,
    log_norm_squared_law,
    lyapunov_exponents,
    lyapunov_variances,
    top_singular_value_growth,
)

SAFETY = 5.0
EULER_GAMMA = 0.5772156649015329


# ---------------------------------------------------------------------------------------------
# independent simulators (numpy only, written for the tests)
# ---------------------------------------------------------------------------------------------


def _ginibre(rng, shape, n, field):
    """i.i.d. entries with E|w|^2 = 1/n."""
    if field == "real":
        return rng.standard_normal(shape) / math.sqrt(n)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2 * n)


def qr_log_diagonals(n, steps, repeats, rng, field="real"):
    """ln|R_ii| of the QR iteration of W_L ... W_1 (shape steps × repeats × n)."""
    dtype = np.float64 if field == "real" else np.complex128
    q = np.broadcast_to(np.eye(n, dtype=dtype), (repeats, n, n)).copy()
    out = np.empty((steps, repeats, n))
    for step in range(steps):
        q, r = np.linalg.qr(_ginibre(rng, (repeats, n, n), n, field) @ q)
        out[step] = np.log(np.abs(np.diagonal(r, axis1=1, axis2=2)))
    return out


def log_extreme_singular_values(n, depth, repeats, rng, field="real"):
    """(ln σ_max, ln σ_min, S) of P = W_L ... W_1, stable at any depth.

    σ_max from the renormalised forward product, σ_min = 1/σ_max(W_1^{-1} ... W_L^{-1}) from the
    renormalised product of inverses; S[:, i] = Σ_l ln|R^{(l)}_ii| are the QR accumulators of the
    same product (S[:, 0] = ln‖P e_1‖; S[:, -1] = ln|det P| - ln vol_{N-1}(P e_1, ..., P e_{N-1})),
    whose means L λ_i are exact: they serve as control variates.
    """
    dtype = np.float64 if field == "real" else np.complex128
    fwd = np.broadcast_to(np.eye(n, dtype=dtype), (repeats, n, n)).copy()
    inv = fwd.copy()
    q = fwd.copy()
    log_fwd = np.zeros(repeats)
    log_inv = np.zeros(repeats)
    acc = np.zeros((repeats, n))
    for _ in range(depth):
        w = _ginibre(rng, (repeats, n, n), n, field)
        fwd = w @ fwd
        # inv <- inv @ w^{-1}, i.e. solve(w^T, inv^T)^T
        inv = np.swapaxes(np.linalg.solve(np.swapaxes(w, 1, 2), np.swapaxes(inv, 1, 2)), 1, 2)
        q, r = np.linalg.qr(w @ q)
        acc += np.log(np.abs(np.diagonal(r, axis1=1, axis2=2)))
        nf = np.linalg.norm(fwd, axis=(1, 2))
        ni = np.linalg.norm(inv, axis=(1, 2))
        fwd /= nf[:, None, None]
        inv /= ni[:, None, None]
        log_fwd += np.log(nf)
        log_inv += np.log(ni)
    ln_max = log_fwd + np.log(np.linalg.norm(fwd, 2, axis=(1, 2)))
    ln_min = -(log_inv + np.log(np.linalg.norm(inv, 2, axis=(1, 2))))
    return ln_max, ln_min, acc


def net_log_norm_squared(widths, repeats, rng, activation, sigma_w2, u_parallel_to_x=False):
    """ln‖J u‖² of actual bias-free nets (He-style weights N(0, σ_w²/n_in)) at a Gaussian input x.

    J u is propagated alongside the forward pass: v_l = D_l W_l v_{l-1}, D_l = diag(φ'(W_l x_{l-1})).
    """
    n0 = widths[0]
    x = rng.standard_normal((repeats, n0))
    if u_parallel_to_x:
        v = x / np.linalg.norm(x, axis=1, keepdims=True)
    else:
        v = rng.standard_normal((repeats, n0))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = rng.standard_normal((repeats, n_out, n_in)) * math.sqrt(sigma_w2 / n_in)
        h = np.einsum("rij,rj->ri", w, x)
        wv = np.einsum("rij,rj->ri", w, v)
        if activation == "relu":
            active = h > 0
            x = np.where(active, h, 0.0)
            v = np.where(active, wv, 0.0)
        else:
            x, v = h, wv
    with np.errstate(divide="ignore"):
        return np.log(np.sum(v**2, axis=1))


def _se_of_variance(x):
    """Standard error of the sample variance, from the sample fourth central moment."""
    d = x - x.mean()
    return math.sqrt(max(np.mean(d**4) - np.var(x) ** 2, 0.0) / x.size)


# ---------------------------------------------------------------------------------------------
# Lyapunov spectrum
# ---------------------------------------------------------------------------------------------


def test_lyapunov_width_one_closed_form():
    # N = 1: ln|w| with w ~ N(0,1): E = -(γ + ln 2)/2, Var = π²/8.
    assert lyapunov_exponents(1)[0] == pytest.approx(-(EULER_GAMMA + math.log(2)) / 2, abs=1e-14)
    assert lyapunov_variances(1)[0] == pytest.approx(math.pi**2 / 8, abs=1e-14)
    # complex N = 1: |w|² ~ Exp(1): E ln|w| = -γ/2, Var ln|w| = π²/24.
    assert lyapunov_exponents(1, "complex")[0] == pytest.approx(-EULER_GAMMA / 2, abs=1e-14)
    assert lyapunov_variances(1, "complex")[0] == pytest.approx(math.pi**2 / 24, abs=1e-14)


@pytest.mark.parametrize(
    "width, expected",
    [
        # docs/derivations.md §6, T23–T24 (Newman 1986)
        (2, [-0.288608, -0.981755]),
        (3, [-0.184488, -0.491340, -1.184488]),
        (4, [-0.135181, -0.328329, -0.635181, -1.328329]),
    ],
)
def test_lyapunov_reference_values(width, expected):
    lam = lyapunov_exponents(width)
    assert lam.dtype == np.float64 and lam.shape == (width,)
    np.testing.assert_allclose(lam, expected, atol=1e-6)
    assert np.all(np.diff(lam) < 0)


def test_lyapunov_width_two_closed_form_and_scaling():
    lam = lyapunov_exponents(2)
    assert lam[0] == pytest.approx(-EULER_GAMMA / 2, abs=1e-14)
    assert lam[1] == pytest.approx(-(EULER_GAMMA + 2 * math.log(2)) / 2, abs=1e-14)
    # σ_w² scales every singular value by σ_w: exponents shift by ½ ln σ_w², variances do not change
    np.testing.assert_allclose(lyapunov_exponents(5, sigma_w2=3.0), lyapunov_exponents(5) + 0.5 * math.log(3.0))
    np.testing.assert_allclose(lyapunov_exponents(4, "complex", 0.5), lyapunov_exponents(4, "complex") + 0.5 * math.log(0.5))


def test_lyapunov_large_width_uniform_law():
    # Tucci / Haagerup–Möller: the spectrum fills ½ ln u, u ~ U[0,1], whose mean is -½.
    # Error of the Riemann sum (1/N)Σ ln(k/N) plus ψ(x) - ln x = O(1/x) terms: below 2 ln N / N.
    n = 4000
    for field in ("real", "complex"):
        assert lyapunov_exponents(n, field).mean() == pytest.approx(-0.5, abs=2 * math.log(n) / n)


@pytest.mark.parametrize("field, width, steps", [("real", 2, 3000), ("real", 3, 3000), ("real", 5, 2000), ("complex", 3, 3000)])
def test_lyapunov_against_qr_monte_carlo(field, width, steps):
    repeats = 20
    rng = np.random.default_rng(1000 + width + (7 if field == "complex" else 0))
    logs = qr_log_diagonals(width, steps, repeats, rng, field)
    lam = lyapunov_exponents(width, field)
    var = lyapunov_variances(width, field)
    # Exponents: per repeat the accumulator sum/steps has variance var_i/steps exactly (i.i.d. steps).
    estimate = logs.sum(axis=0).mean(axis=0) / steps
    se = np.sqrt(var / steps) / math.sqrt(repeats)
    assert np.all(np.abs(estimate - lam) <= SAFETY * se), (estimate, lam, se)
    # Variances: all steps × repeats values of ln|R_ii| are i.i.d.; SE of the sample variance from
    # the sample fourth moment.
    flat = logs.reshape(-1, width)
    for i in range(width):
        assert abs(np.var(flat[:, i]) - var[i]) <= SAFETY * _se_of_variance(flat[:, i]), (i, np.var(flat[:, i]), var[i])


# ---------------------------------------------------------------------------------------------
# Hanin–Nica log-norm law
# ---------------------------------------------------------------------------------------------


def test_log_norm_reference_values_relu():
    # docs/derivations.md §6, T26 (exact binomial sums)
    law = log_norm_squared_law([32] * 9, "relu")
    assert law.mean == pytest.approx(-0.6603, abs=6e-5)
    assert law.var == pytest.approx(1.4200, abs=6e-5)
    assert law.beta == pytest.approx(8 / 32)
    assert law.normalized_fourth_moment == pytest.approx((1 + 5 / 32) ** 8, rel=1e-12)
    big = log_norm_squared_law([1000] * 101, "relu")
    assert big.mean == pytest.approx(-0.2504, abs=6e-5)
    assert big.var == pytest.approx(0.5019, abs=6e-5)
    # Hanin–Nica leading order: -5β/2 and 5β with β = 0.1
    assert big.leading_order_mean == pytest.approx(-0.25, abs=1e-12)
    assert big.leading_order_var == pytest.approx(0.5, abs=1e-12)
    assert big.dead_probability < 1e-290


def test_log_norm_closed_forms_small_widths():
    # Linear, n_l = 2: ‖Wv‖²/‖v‖² = χ²_2/2 ~ Exp(1): per layer E ln = -γ, Var = π²/6.
    lin = log_norm_squared_law([2] * 6, "linear")
    assert lin.mean == pytest.approx(-5 * EULER_GAMMA, abs=1e-13)
    assert lin.var == pytest.approx(5 * math.pi**2 / 6, abs=1e-12)
    assert lin.dead_probability == 0.0
    assert lin.normalized_fourth_moment == pytest.approx(2.0**5, rel=1e-12)
    # ReLU/He, n_l = 1: alive means K = 1, factor (4/1)·χ²_1/2: per layer E = ln 2 + ψ(½) = -γ,
    # Var = ψ'(½) = π²/2; a layer dies with probability ½.
    one = log_norm_squared_law([1] * 5, "relu")
    assert one.mean == pytest.approx(-4 * EULER_GAMMA, abs=1e-13)
    assert one.var == pytest.approx(4 * math.pi**2 / 2, abs=1e-12)
    assert one.dead_probability == pytest.approx(1 - 0.5**4, abs=1e-15)
    # ReLU/He, n_l = 2: K | K ≥ 1 is 1 w.p. 2/3 and 2 w.p. 1/3:
    # per layer E = ln(4/2) + ln 2 ... = ln 2 + (2/3)ψ(½) + (1/3)ψ(1) = -γ - (ln 2)/3.
    two = log_norm_squared_law([2, 2], "relu")
    assert two.mean == pytest.approx(-EULER_GAMMA - math.log(2) / 3, abs=1e-13)
    psi_half, psi_one = -EULER_GAMMA - 2 * math.log(2), -EULER_GAMMA
    var_psi = (2 / 9) * (psi_half - psi_one) ** 2  # Bernoulli(1/3) spread of ψ(K/2)
    assert two.var == pytest.approx((2 / 3) * math.pi**2 / 2 + (1 / 3) * math.pi**2 / 6 + var_psi, abs=1e-12)
    # Exact unconditional E‖Ju‖⁴ = Π (σ²/n_in)² n(n+5)/4, E‖Ju‖² = Π σ² n_out /(2 n_in)
    law = log_norm_squared_law([4, 6, 3], "relu", sigma_w2=1.5)
    assert law.mean_norm2 == pytest.approx((1.5 * 6 / 8) * (1.5 * 3 / 12), rel=1e-12)
    assert law.second_moment_norm2 == pytest.approx((1.5 / 4) ** 2 * 6 * 11 / 4 * (1.5 / 6) ** 2 * 3 * 8 / 4, rel=1e-12)


def test_log_norm_gaussian_approximation_object():
    law = log_norm_squared_law([16] * 7, "relu")
    g = law.as_scipy()
    assert g.dist.name == "norm"
    assert g.mean() == pytest.approx(law.mean) and g.std() == pytest.approx(math.sqrt(law.var))
    # the exact sampler reproduces the exact moments (SE from the predicted variance / 4th moment)
    x = law.sample(200000, seed=2)
    assert abs(x.mean() - law.mean) <= SAFETY * math.sqrt(law.var / x.size)
    assert abs(np.var(x) - law.var) <= SAFETY * _se_of_variance(x)
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("u_parallel_to_x", [False, True])
def test_relu_log_norm_against_networks(u_parallel_to_x):
    widths = [16] * 7  # L = 6, β = 6/16
    repeats = 20000
    rng = np.random.default_rng(7 + int(u_parallel_to_x))
    law = log_norm_squared_law(widths, "relu")
    y = net_log_norm_squared(widths, repeats, rng, "relu", 2.0, u_parallel_to_x)
    alive = y[np.isfinite(y)]  # dead paths (probability ≈ 6·2^-16) are conditioned out, as in the law
    assert abs(alive.mean() - law.mean) <= SAFETY * math.sqrt(law.var / alive.size)
    assert abs(np.var(alive) - law.var) <= SAFETY * _se_of_variance(alive)
    # E‖Ju‖² and E‖Ju‖⁴ over all nets (dead ones contribute 0); SE from the sample.
    z = np.exp(np.where(np.isfinite(y), y, -np.inf))
    assert abs(z.mean() - law.mean_norm2) <= SAFETY * z.std() / math.sqrt(repeats)
    assert abs(np.mean(z**2) - law.second_moment_norm2) <= SAFETY * np.std(z**2) / math.sqrt(repeats)
    if not u_parallel_to_x:
        # the whole law, not just two moments: exact sampler vs networks (two-sample KS)
        ks = stats.ks_2samp(alive, law.sample(20000, seed=3))
        assert ks.pvalue > 1e-3, ks


def test_relu_dead_layers_narrow_network():
    widths = [3] * 5  # each layer dies w.p. 1/8: P(dead) = 1 - (7/8)^4
    repeats = 20000
    law = log_norm_squared_law(widths, "relu")
    assert law.dead_probability == pytest.approx(1 - (7 / 8) ** 4, abs=1e-15)
    y = net_log_norm_squared(widths, repeats, np.random.default_rng(11), "relu", 2.0)
    dead_fraction = np.mean(~np.isfinite(y))
    p = law.dead_probability
    assert abs(dead_fraction - p) <= SAFETY * math.sqrt(p * (1 - p) / repeats)
    alive = y[np.isfinite(y)]
    assert abs(alive.mean() - law.mean) <= SAFETY * math.sqrt(law.var / alive.size)
    assert abs(np.var(alive) - law.var) <= SAFETY * _se_of_variance(alive)


def test_linear_log_norm_against_networks_unequal_widths():
    widths = [5, 8, 3, 6, 4]
    law = log_norm_squared_law(widths, "linear", sigma_w2=1.5)
    y = net_log_norm_squared(widths, 20000, np.random.default_rng(5), "linear", 1.5)
    assert abs(y.mean() - law.mean) <= SAFETY * math.sqrt(law.var / y.size)
    assert abs(np.var(y) - law.var) <= SAFETY * _se_of_variance(y)
    # independent check of the formula: Σ[ψ(n_l/2) + ln(2σ²/n_{l-1})] and Σ ψ'(n_l/2) via quadrature
    # of ln x against the chi-square densities
    quad_mean = sum(
        stats.chi2(k).expect(np.log) + math.log(1.5 / n_in) for n_in, k in zip(widths[:-1], widths[1:])
    )
    quad_var = sum(stats.chi2(k).expect(lambda t: np.log(t) ** 2) - stats.chi2(k).expect(np.log) ** 2 for k in widths[1:])
    assert law.mean == pytest.approx(quad_mean, abs=1e-7)
    assert law.var == pytest.approx(quad_var, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Exact trace moments
# ---------------------------------------------------------------------------------------------


def _exact_gaussian_moments(n, depth, field):
    """Exact (E tr JJ*/N, E (tr JJ*/N)², E tr (JJ*)²/N) by expanding polynomials in the entries.

    Each monomial's expectation is Π_j (e_j - 1)!! s^{e_j/2} (odd powers vanish), s the entry
    variance. Complex matrices X + iY use the real representation [[X, -Y], [Y, X]] (traces double).
    """
    from sympy.polys.domains import QQ
    from sympy.polys.rings import ring

    per_layer = n * n * (1 if field == "real" else 2)
    r, *gens = ring(",".join(f"v{i}" for i in range(per_layer * depth)), QQ)
    it = iter(gens)
    d = n if field == "real" else 2 * n

    def matmul(a, b):
        return [[sum((a[i][t] * b[t][j] for t in range(len(b))), r.zero) for j in range(len(b[0]))] for i in range(len(a))]

    j = [[r.one if p == q else r.zero for q in range(d)] for p in range(d)]
    for _ in range(depth):
        x = [[next(it) for _ in range(n)] for _ in range(n)]
        if field == "real":
            w = x
        else:
            y = [[next(it) for _ in range(n)] for _ in range(n)]
            w = [xr + [-v for v in yr] for xr, yr in zip(x, y)] + [yr + xr for xr, yr in zip(x, y)]
        j = matmul(w, j)
    m = matmul(j, [list(col) for col in zip(*j)])
    tr = sum((m[p][p] for p in range(d)), r.zero)
    tr_sq = sum((m[p][q] * m[q][p] for p in range(d) for q in range(d)), r.zero)
    s = Fraction(1, n) if field == "real" else Fraction(1, 2 * n)
    half = Fraction(1) if field == "real" else Fraction(1, 2)

    def expect(poly):
        total = Fraction(0)
        for mono, coeff in poly.terms():
            if any(e % 2 for e in mono):
                continue
            total += Fraction(int(coeff.numerator), int(coeff.denominator)) * prod(
                prod(range(e - 1, 0, -2)) * s ** (e // 2) for e in mono
            )
        return total

    return half * expect(tr) / n, half**2 * expect(tr * tr) / n**2, half * expect(tr_sq) / n


@pytest.mark.parametrize(
    "field, width, depth",
    [("real", 2, 1), ("real", 2, 2), ("real", 2, 3), ("real", 3, 1), ("real", 3, 2), ("complex", 2, 1), ("complex", 2, 2), ("complex", 3, 1)],
)
def test_moment_recursion_against_exact_expectation(field, width, depth):
    m1, a, b = _exact_gaussian_moments(width, depth, field)
    got = finite_width_moments(width, depth, field)
    assert m1 == 1
    assert got.m1 == 1.0
    assert got.a == pytest.approx(float(a), rel=1e-14)
    assert got.b == pytest.approx(float(b), rel=1e-14)


def test_moment_recursion_closed_forms():
    # docs/derivations.md §1.4, T11 (real, N = 10)
    assert finite_width_moments(10, 2).b == pytest.approx(3.33, abs=1e-12)
    assert finite_width_moments(10, 3).b == pytest.approx(4.725, abs=1e-12)
    # Wishart (L = 1): b_1 = 2 + 1/N real, 2 complex; a_1 = 1 + 2/N² real, 1 + 1/N² complex
    for n in (1, 4, 7):
        assert finite_width_moments(n, 1).b == pytest.approx(2 + 1 / n, abs=1e-14)
        assert finite_width_moments(n, 1).a == pytest.approx(1 + 2 / n**2, abs=1e-14)
        assert finite_width_moments(n, 1, "complex").b == pytest.approx(2.0, abs=1e-14)
        assert finite_width_moments(n, 1, "complex").a == pytest.approx(1 + 1 / n**2, abs=1e-14)
    # N = 1: E g⁴ = 3 per real layer, E|z|⁴ = 2 per complex layer
    for depth in (1, 5, 12):
        assert finite_width_moments(1, depth).b == pytest.approx(3.0**depth, rel=1e-14)
        assert finite_width_moments(1, depth, "complex").a == pytest.approx(2.0**depth, rel=1e-14)
    # N → ∞: Fuss–Catalan second moment L + 1 (corrections O(L²/N))
    assert finite_width_moments(10**7, 6).b == pytest.approx(7.0, abs=1e-4)
    # σ_w² scaling, depth 0
    m = finite_width_moments(5, 3, sigma_w2=2.0)
    ref = finite_width_moments(5, 3)
    assert (m.m1, m.a, m.b) == pytest.approx((8.0, 64 * ref.a, 64 * ref.b))
    assert (finite_width_moments(5, 0).a, finite_width_moments(5, 0).b) == (1.0, 1.0)


@pytest.mark.parametrize("field, width, depth", [("real", 10, 3), ("complex", 4, 3)])
def test_moment_recursion_against_monte_carlo(field, width, depth):
    repeats = 60000
    rng = np.random.default_rng(21 + width)
    j = _ginibre(rng, (repeats, width, width), width, field)
    for _ in range(depth - 1):
        j = _ginibre(rng, (repeats, width, width), width, field) @ j
    jj = j @ np.conj(np.swapaxes(j, 1, 2))
    t = np.real(np.trace(jj, axis1=1, axis2=2)) / width
    t2 = np.sum(np.abs(jj) ** 2, axis=(1, 2)) / width  # tr((JJ*)²) = ‖JJ*‖_F² (Hermitian)
    got = finite_width_moments(width, depth, field)
    for sample, target in ((t, got.m1), (t**2, got.a), (t2, got.b)):
        assert abs(sample.mean() - target) <= SAFETY * sample.std() / math.sqrt(repeats), (sample.mean(), target)


def _exact_discrete_moments(n, depth, values, probs):
    """Exact (E tr JJᵀ/N, E (tr JJᵀ/N)², E tr (JJᵀ)²/N) for J = W_L ⋯ W_1, W = X/√n, X with i.i.d. entries
    taking ``values`` with ``probs`` — by enumerating every matrix tuple (len(values)^(n²·depth) of them)."""
    import itertools

    values, probs = np.asarray(values, float), np.asarray(probs, float)
    idx = np.array(list(itertools.product(range(values.size), repeat=n * n * depth)))
    w = np.prod(probs[idx], axis=1)
    mats = values[idx].reshape(-1, depth, n, n) / math.sqrt(n)
    j = mats[:, 0]
    for layer in range(1, depth):
        j = mats[:, layer] @ j
    jj = j @ np.swapaxes(j, 1, 2)
    t = np.trace(jj, axis1=1, axis2=2) / n
    t2 = np.sum(jj**2, axis=(1, 2)) / n
    return float(w @ t), float(w @ t**2), float(w @ t2)


# entries with variance 1: Rademacher (E x⁴ = 1, κ = −2) and {0 w.p. ¾, ±2 w.p. ⅛ each} (E x⁴ = 4, κ = 1)
_RADEMACHER = ((-1.0, 1.0), (0.5, 0.5), -2.0)
_THREE_POINT = ((-2.0, 0.0, 2.0), (0.125, 0.75, 0.125), 1.0)


@pytest.mark.parametrize("entries", [_RADEMACHER, _THREE_POINT], ids=["rademacher", "three_point"])
@pytest.mark.parametrize("width, depth", [(1, 3), (2, 1), (2, 2), (2, 3), (3, 1)])
def test_fourth_cumulant_moments_against_exact_enumeration(entries, width, depth):
    """Exact expectations over every matrix tuple (no sampling) — an independent reference for the κ ≠ 0 terms,
    which enter at every depth through the ``d`` recursion (κ² terms from depth 2 on)."""
    values, probs, kappa = entries
    if width**2 * depth * math.log2(len(values)) > 20:
        pytest.skip("enumeration too large")
    m1, a, b = _exact_discrete_moments(width, depth, values, probs)
    got = finite_width_moments(width, depth, fourth_cumulant=kappa)
    assert got.m1 == pytest.approx(m1, rel=1e-12)
    assert got.a == pytest.approx(a, rel=1e-12)
    assert got.b == pytest.approx(b, rel=1e-12)
    assert got.fourth_cumulant == kappa


def test_fourth_cumulant_closed_forms():
    # depth 1, i.i.d. entries of kurtosis 3 + κ: E tr(WWᵀ)²/N = 2 + (1 + κ)/N, E (tr WWᵀ/N)² = 1 + (2 + κ)/N²
    # (count the index coincidences of Σ_{i,k} (Σ_a X_ia X_ka)²)
    for n in (1, 3, 50):
        for kappa in (-2.0, -1.2, 0.0, 4.5):
            m = finite_width_moments(n, 1, fourth_cumulant=kappa)
            assert m.b == pytest.approx(2 + (1 + kappa) / n, rel=1e-14)
            assert m.a == pytest.approx(1 + (2 + kappa) / n**2, rel=1e-14)
    # N = 1: the product of L scalars: E x^4 per layer
    assert finite_width_moments(1, 4, fourth_cumulant=-1.2).b == pytest.approx(1.8**4, rel=1e-14)
    # κ = 0 is the Gaussian recursion; σ_w² scaling is unchanged; N → ∞: universal L + 1
    assert finite_width_moments(7, 5, fourth_cumulant=0.0) == finite_width_moments(7, 5)
    m = finite_width_moments(5, 3, sigma_w2=2.0, fourth_cumulant=-1.2)
    ref = finite_width_moments(5, 3, fourth_cumulant=-1.2)
    assert (m.m1, m.a, m.b) == pytest.approx((8.0, 64 * ref.a, 64 * ref.b))
    assert finite_width_moments(10**7, 6, fourth_cumulant=-1.2).b == pytest.approx(7.0, abs=1e-4)
    assert ref.per_matrix_variance == pytest.approx(ref.b - ref.a)


def test_fourth_cumulant_against_monte_carlo_uniform():
    """Uniform entries (κ = −6/5, as torch's xavier_uniform_) at N = 6, L = 3: 5 SE from the sample spread."""
    n, depth, repeats = 6, 3, 40000
    rng = np.random.default_rng(5)
    j = np.eye(n)
    for _ in range(depth):
        j = rng.uniform(-math.sqrt(3), math.sqrt(3), (repeats, n, n)) / math.sqrt(n) @ j
    jj = j @ np.swapaxes(j, 1, 2)
    t = np.trace(jj, axis1=1, axis2=2) / n
    t2 = np.sum(jj**2, axis=(1, 2)) / n
    got = finite_width_moments(n, depth, fourth_cumulant=-1.2)
    gauss = finite_width_moments(n, depth)
    for sample, target, other in ((t**2, got.a, gauss.a), (t2, got.b, gauss.b)):
        se = sample.std() / math.sqrt(repeats)
        assert abs(sample.mean() - target) <= SAFETY * se, (sample.mean(), target)
    # the check can fail: the Gaussian value is more than 5 SE away for b
    assert abs(t2.mean() - gauss.b) > SAFETY * t2.std() / math.sqrt(repeats)


def test_relu_moments_closed_forms():
    # N = 1: J = Π ε_l w_l, E J⁴ = (E ε w⁴)^L = (3σ_w⁴/2)^L, E J² = (σ_w²/2)^L
    for depth in (1, 3, 6):
        m = finite_width_moments(1, depth, sigma_w2=2.0, activation="relu")
        assert m.m1 == pytest.approx(1.0) and m.b == pytest.approx(6.0**depth, rel=1e-13) and m.a == m.b
    # N → ∞ at He init: mean 1, Var λ = 2L (the ReLU Jacobian law's variance)
    m = finite_width_moments(10**7, 5, sigma_w2=2.0, activation="relu")
    assert m.m1 == 1.0 and m.spectral_variance == pytest.approx(10.0, abs=1e-4)
    # depth 1: E tr(DWWᵀD)²/N with s = σ_w²/N: [(N²/4 + 3N/4)·N + (N/2)·N²]·s²/N
    n = 5
    m = finite_width_moments(n, 1, sigma_w2=2.0, activation="relu")
    assert m.b == pytest.approx(4.0 / n**3 * ((n**2 / 4 + 3 * n / 4) * n + n**3 / 2), rel=1e-14)
    assert m.a == pytest.approx(4.0 / n**4 * ((n**2 / 4 + n / 4) * n**2 + n**2), rel=1e-14)
    # active_fraction: ½ is the ReLU default; 1 is the linear product; N = 1: E (ε w)⁴ = 3π σ_w⁴
    assert finite_width_moments(6, 4, activation="relu", active_fraction=0.5) == finite_width_moments(
        6, 4, activation="relu")
    lin, full = finite_width_moments(6, 4), finite_width_moments(6, 4, activation="relu", active_fraction=1.0)
    assert (full.m1, full.a, full.b) == pytest.approx((lin.m1, lin.a, lin.b), rel=1e-14)
    assert finite_width_moments(1, 3, activation="relu", active_fraction=0.2).b == pytest.approx(0.6**3, rel=1e-13)


def test_relu_moments_against_monte_carlo_networks():
    """Independent simulator: numpy ReLU nets (Gaussian N(0, 2/N) weights, no bias, Gaussian input) at N = 8,
    L = 3; tr JJᵀ/N, its square and tr(JJᵀ)²/N against the recursion, 5 SE from the sample spread. The
    N → ∞ value of b − a (2L) is more than 5 SE away, so the check resolves the finite-N correction."""
    n, depth, repeats = 8, 3, 40000
    rng = np.random.default_rng(17)
    x = rng.standard_normal((repeats, n, 1))
    j = np.broadcast_to(np.eye(n), (repeats, n, n))
    for _ in range(depth):
        w = rng.standard_normal((repeats, n, n)) * math.sqrt(2.0 / n)
        h = w @ x
        d = (h > 0).astype(float)
        j = d * (w @ j)
        x = np.maximum(h, 0.0)
    jj = j @ np.swapaxes(j, 1, 2)
    t = np.trace(jj, axis1=1, axis2=2) / n
    t2 = np.sum(jj**2, axis=(1, 2)) / n
    got = finite_width_moments(n, depth, sigma_w2=2.0, activation="relu")
    for sample, target in ((t, got.m1), (t**2, got.a), (t2, got.b), (t2 - t**2, got.per_matrix_variance)):
        se = sample.std() / math.sqrt(repeats)
        assert abs(sample.mean() - target) <= SAFETY * se, (sample.mean(), target)
    v = t2 - t**2
    n_inf = finite_width_moments(10**9, depth, sigma_w2=2.0, activation="relu").per_matrix_variance
    assert abs(v.mean() - n_inf) > SAFETY * v.std() / math.sqrt(repeats)


# ---------------------------------------------------------------------------------------------
# Extreme singular values
# ---------------------------------------------------------------------------------------------


def test_gap_closed_forms_and_width_one():
    # Δ = λ_1 - λ_N = -½ E ln c_1², c uniform on the sphere: c_1² ~ Beta(½, (N-1)/2) (real)
    for n in (2, 5, 40):
        beta = stats.beta(0.5, (n - 1) / 2)
        gap = -0.5 * beta.expect(np.log)
        assert condition_number_growth(n, 3).gap == pytest.approx(gap, abs=1e-7)
        lam = lyapunov_exponents(n)
        assert condition_number_growth(n, 3).gap == pytest.approx(lam[0] - lam[-1], abs=1e-13)
    # large N: Δ ≈ ½ ln N + ½(γ + ln 2) (docs/derivations.md §6: ≈ ½ ln N + 0.64)
    assert condition_number_growth(10**6, 1).gap == pytest.approx(0.5 * math.log(1e6) + 0.5 * (EULER_GAMMA + math.log(2)), abs=1e-5)
    # the bounds are the stated combinations of the (separately tested) exponents
    for field, n, depth in (("real", 6, 3), ("complex", 4, 9)):
        lam = lyapunov_exponents(n, field)
        c = condition_number_growth(n, depth, field)
        assert (c.lower_bound, c.lyapunov_mean) == pytest.approx((depth * (lam[0] - lam[-1]), (depth + 2) * (lam[0] - lam[-1])))
        t = top_singular_value_growth(n, depth, field)
        assert (t.lyapunov_lower, t.lyapunov_mean) == pytest.approx((depth * lam[0], depth * lam[0] + lam[0] - lam[-1]))
        assert t.estimate == min(t.infinite_width_edge, t.lyapunov_mean)
    # N = 1: κ = 1 exactly; σ_max = |Π w_l| has E ln = L λ_1 exactly
    c = condition_number_growth(1, 7)
    assert (c.lower_bound, c.lyapunov_mean, c.lyapunov_std) == (0.0, 0.0, 0.0)
    t = top_singular_value_growth(1, 7)
    assert t.lyapunov_lower == t.lyapunov_mean == pytest.approx(7 * lyapunov_exponents(1)[0])


def test_large_width_heuristic_formula():
    # docs/derivations.md §6: κ ≈ sqrt(e(M+1)) N^{(M+1)/2} (heuristic)
    c = condition_number_growth(50, 4)
    assert c.large_width_heuristic == pytest.approx(math.log(math.sqrt(math.e * 5) * 50**2.5), rel=1e-13)


@pytest.mark.parametrize("field, width", [("real", 3), ("complex", 2)])
def test_extreme_singular_values_deep_limit(field, width):
    # L = 100 ≫ 1/(λ_1 - λ_2) (0.31 real N = 3, 0.5 complex N = 2): E ln σ_max → L λ_1 + Δ and
    # E ln κ → (L + 2)Δ, corrections ~ e^{-L(λ1-λ2)}. Control variates: the QR accumulators S_1, S_N
    # of the same product have exact means L λ_1, L λ_N, so ln σ_max - S_1 + L λ_1 is an unbiased
    # estimate of E ln σ_max with O(1) (not O(√L)) spread; SE from the sample.
    depth, repeats = 100, 4000
    ln_max, ln_min, acc = log_extreme_singular_values(width, depth, repeats, np.random.default_rng(31 + width), field)
    top = top_singular_value_growth(width, depth, field)
    kappa = condition_number_growth(width, depth, field)
    assert top.regime == "lyapunov" and top.estimate == top.lyapunov_mean
    lam = lyapunov_exponents(width, field)  # checked separately against closed forms and QR MC
    est_max = ln_max - acc[:, 0] + depth * lam[0]
    assert abs(est_max.mean() - top.lyapunov_mean) <= SAFETY * est_max.std() / math.sqrt(repeats)
    est_k = (ln_max - ln_min) - (acc[:, 0] - acc[:, -1]) + depth * (lam[0] - lam[-1])
    assert abs(est_k.mean() - kappa.lyapunov_mean) <= SAFETY * est_k.std() / math.sqrt(repeats)


def test_extreme_singular_values_spread_deep():
    # Var ln σ_max → L v_1 and Var ln κ → L(v_1 + v_N) at large L, tolerance 5 × the SE of the
    # sample variance plus the O(1) finite-L offset (measured ≈ -5 on Var ln κ ≈ 658, i.e. < 1 %;
    # allow 3 %).
    width, depth, repeats = 2, 400, 4000
    ln_max, ln_min, _ = log_extreme_singular_values(width, depth, repeats, np.random.default_rng(61))
    top = top_singular_value_growth(width, depth)
    kappa = condition_number_growth(width, depth)
    ln_k = ln_max - ln_min
    for sample, std in ((ln_max, top.lyapunov_std), (ln_k, kappa.lyapunov_std)):
        assert abs(np.var(sample) - std**2) <= SAFETY * _se_of_variance(sample) + 0.03 * std**2, (np.var(sample), std**2)
    lo, hi = kappa.band(2.0)
    assert 0.9 < np.mean((ln_k > lo) & (ln_k < hi)) < 0.99  # ≈ 95 % inside a ±2σ Gaussian band


def test_extreme_singular_values_exact_bounds_shallow():
    # at every L: 0 ≤ E[ln σ_max - S_1] ≤ Δ and 0 ≤ E[ln κ - (S_1 - S_N)] ≤ 2Δ (S: QR accumulators),
    # i.e. L λ_1 ≤ E ln σ_max ≤ L λ_1 + Δ and L Δ ≤ E ln κ ≤ (L + 2)Δ
    width, depth, repeats = 8, 4, 1000
    ln_max, ln_min, acc = log_extreme_singular_values(width, depth, repeats, np.random.default_rng(41))
    top = top_singular_value_growth(width, depth)
    kappa = condition_number_growth(width, depth)
    d_top = ln_max - acc[:, 0]
    d_k = (ln_max - ln_min) - (acc[:, 0] - acc[:, -1])
    assert np.all(d_top >= -1e-9)  # ‖P e_1‖ ≤ σ_max pathwise
    lam = lyapunov_exponents(width)
    for d, lower, upper in ((d_top + depth * lam[0], top.lyapunov_lower, top.lyapunov_mean),
                            (d_k + depth * (lam[0] - lam[-1]), kappa.lower_bound, kappa.lyapunov_mean)):
        se = d.std() / math.sqrt(repeats)
        assert lower - SAFETY * se <= d.mean() <= upper + SAFETY * se, (d.mean(), lower, upper, se)


def test_top_singular_value_large_width_edge():
    # N → ∞ at fixed L: σ_max² → (L+1)^{L+1}/L^L = 27/4 for L = 2. At N = 300 the edge sits within
    # O(N^{-2/3}) ≈ 0.02 (relative, Tracy–Widom scale) of the limit: allow 0.05 in ln σ_max.
    width, depth = 300, 2
    top = top_singular_value_growth(width, depth)
    assert top.regime == "large_width"
    assert top.infinite_width_edge == pytest.approx(0.5 * math.log(27 / 4), abs=1e-14)
    rng = np.random.default_rng(51)
    vals = []
    for _ in range(6):
        p = _ginibre(rng, (width, width), width, "real") @ _ginibre(rng, (width, width), width, "real")
        vals.append(math.log(np.linalg.norm(p, 2)))
    assert np.mean(vals) == pytest.approx(top.estimate, abs=0.05)
    # σ_w² rescales σ_max by σ_w^L
    assert top_singular_value_growth(width, depth, sigma_w2=2.0).infinite_width_edge == pytest.approx(
        top.infinite_width_edge + math.log(2.0)
    )


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: lyapunov_exponents(0), "width"),
        (lambda: lyapunov_exponents(-3), "-3"),
        (lambda: lyapunov_exponents(2.5), "2.5"),
        (lambda: lyapunov_exponents(float("nan")), "nan"),
        (lambda: lyapunov_exponents(3, "quaternion"), "quaternion"),
        (lambda: lyapunov_exponents(3, sigma_w2=float("nan")), "sigma_w2"),
        (lambda: lyapunov_exponents(3, sigma_w2=-1.0), "-1.0"),
        (lambda: lyapunov_variances(0), "width"),
        (lambda: lyapunov_variances(3, "octonion"), "octonion"),
        (lambda: log_norm_squared_law([4], "relu"), "at least 2"),
        (lambda: log_norm_squared_law([4, 0, 4], "relu"), r"widths\[1\]"),
        (lambda: log_norm_squared_law([4, 4], "tanh"), "tanh"),
        (lambda: log_norm_squared_law([4, 4], "relu", sigma_w2=0.0), "sigma_w2"),
        (lambda: log_norm_squared_law([4, float("nan")]), "nan"),
        (lambda: log_norm_squared_law(8), "widths"),
        (lambda: log_norm_squared_law([4, 4]).sample(0), "size"),
        (lambda: finite_width_moments(0, 2), "width"),
        (lambda: finite_width_moments(3, -1), "depth"),
        (lambda: finite_width_moments(3, 2, "quaternion"), "quaternion"),
        (lambda: finite_width_moments(3, 2, fourth_cumulant=-2.5), "fourth_cumulant"),
        (lambda: finite_width_moments(3, 2, fourth_cumulant=float("nan")), "fourth_cumulant"),
        (lambda: finite_width_moments(3, 2, "complex", fourth_cumulant=1.0), "complex"),
        (lambda: finite_width_moments(3, 2, activation="tanh"), "tanh"),
        (lambda: finite_width_moments(3, 2, activation="relu", fourth_cumulant=-1.2), "relu"),
        (lambda: finite_width_moments(3, 2, "complex", activation="relu"), "relu"),
        (lambda: finite_width_moments(3, 2, active_fraction=0.5), "active_fraction"),
        (lambda: finite_width_moments(3, 2, activation="relu", active_fraction=0.0), "active_fraction"),
        (lambda: finite_width_moments(3, 2, activation="relu", active_fraction=1.5), "1.5"),
        (lambda: condition_number_growth(3, 0), "depth"),
        (lambda: condition_number_growth(0, 3), "width"),
        (lambda: condition_number_growth(3, 3, "bogus"), "bogus"),
        (lambda: top_singular_value_growth(3, 0), "depth"),
        (lambda: top_singular_value_growth(3, float("nan")), "nan"),
        (lambda: condition_number_growth(3, 3).band(-1.0), "k"),
    ],
)
def test_bad_input_raises_value_error(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_valid_choices_named_in_errors():
    with pytest.raises(ValueError, match="'real', 'complex'"):
        lyapunov_exponents(3, "quaternion")
    with pytest.raises(ValueError, match="'linear', 'relu'"):
        log_norm_squared_law([3, 3], "gelu")
    assert log_norm_squared_law([3, 3], "Identity").activation == "linear"
    assert lyapunov_exponents(3, "REAL").shape == (3,)


def test_out_of_range_sizes_and_moments_are_refused_by_name():
    """Widths whose per-index spectra would not fit in memory, depths beyond the recursion's budget and
    moments that over- or underflow float64 raise ValueError naming the argument (they raised
    MemoryError/OverflowError, or returned an underflowed 0, before)."""
    from rmt_init.theory import finite_width_moments as fwm

    for call, word in (
        (lambda: lyapunov_exponents(10**12), "width"),
        (lambda: condition_number_growth(10**12, 3), "width"),
        (lambda: top_singular_value_growth(10**12, 3), "width"),
        (lambda: fwm(1e300, 3), "width"),
        (lambda: fwm(8, 10**12), "depth"),
        (lambda: fwm(8, 3, sigma_w2=1e300), "sigma_w2"),
        (lambda: fwm(8, 300, sigma_w2=1e-3), "sigma_w2"),  # m1 = 1e-900 underflows to 0
        (lambda: log_norm_squared_law((4, 4, 4), sigma_w2=1e300), "sigma_w2"),
    ):
        with pytest.raises(ValueError, match=word):
            call()
    # in range: still exact (N = 10, L = 3: b = 4.725, docs/derivations.md T11)
    assert fwm(10, 3).b == pytest.approx(4.725, rel=1e-12)


def test_relu_zero_fraction_exact_at_one_unit_and_against_sampled_active_counts():
    """f = 1 − min_l K_l/N, K_l i.i.d. Bin(N, ½). N = 1: J = 0 unless every unit is active, f = 1 − 2^{−L}
    exactly. Otherwise against 2·10⁵ draws of the counts (independent of the closed-form sum); tolerance 5 SE of
    the sample mean and of the sample standard deviation (SE of a sample sd ≈ sd/√(2n))."""
    from rmt_init.theory import relu_zero_fraction

    for depth in (1, 3, 7):
        mean, sd = relu_zero_fraction(1, depth)
        assert mean == pytest.approx(1 - 2.0**-depth, abs=1e-15)
        assert sd == pytest.approx(math.sqrt(2.0**-depth * (1 - 2.0**-depth)), abs=1e-15)
    rng = np.random.default_rng(0)
    for width, depth in ((20, 4), (64, 3)):
        n = 200_000
        f = 1.0 - rng.binomial(width, 0.5, size=(n, depth)).min(axis=1) / width
        mean, sd = relu_zero_fraction(width, depth)
        assert abs(f.mean() - mean) <= 5 * f.std() / math.sqrt(n)
        assert abs(f.std() - sd) <= 5 * sd / math.sqrt(2 * n)
    assert relu_zero_fraction(64, 3)[0] == pytest.approx(0.5528, abs=5e-5)  # the docstring's value
    with pytest.raises(ValueError, match="width"):
        relu_zero_fraction(0, 3)
