"""The log-scale view of spectral laws: ``law.log_law()``, the law of t = ln λ (issue 11, item 9).

Deep laws put almost all their mass below the float range: the Fuss–Catalan law of depth 100 has its
1e−6 quantile near e^{−1395}, and ``fuss_catalan(100).ppf(1e-6)`` can only be 0. The law of ln λ keeps
those numbers. The Fuss–Catalan view is checked against an mpmath solution of the parametrisation
(Haagerup & Möller 2012, Prop. 5) at the exact float point t, at depths 1, 3, 100 and 10⁴.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from rmt_init.theory import SpectralLaw, fuss_catalan, marchenko_pastur
from rmt_init.theory.laws import LogLaw

EPS = np.finfo(float).eps
DEPTHS = (1, 3, 100, 10_000)
# u = 1 − t' (t' = φ(s+1)/π) of the points checked: from beyond the hard-edge anchor (u = 1e−280) to
# near the soft edge; (s+1)·ln u down to ≈ −1.6e7 at depth 10⁴ (λ ≈ e^{−1.6e7})
PARAMETERS = ("1e-700", "1e-300", "1e-200", "1e-30", "1e-6", "0.01", "0.3", "0.5", "0.9", "0.999", "0.999999")


def fc_reference(s: int, small: str, soft: bool, dps: int = 60):
    """(ln x, F, 1 − F, x·ρ, M) at the parameter t' = small (soft) or u = 1 − t' = small (hard), mpmath.

    x(φ) = sin^{s+1}((s+1)φ)/(sin φ sin^s(sφ)), xρ = sin((s+1)φ) sin φ/(π sin(sφ)) (ρ·x of the module
    docstring), F = u + s·xρ and 1 − F = −t'·expm1(E), E = ln sinc φ + ln sinc((s+1)φ) − ln sinc(sφ),
    φ = πt'/(s+1). M = Σ|terms| of the sums the float path forms for ln x (and ln x_e − ln x).
    """
    with mpmath.workdps(dps):
        p = mpmath.mpf(small)
        tp, u = (p, 1 - p) if soft else (1 - p, p)
        phi = mpmath.pi * tp / (s + 1)
        s_top, s_phi, s_mid = mpmath.sin(mpmath.pi * p), mpmath.sin(phi), mpmath.sin(s * phi)
        terms = [(s + 1) * mpmath.log(s_top), -mpmath.log(s_phi), -s * mpmath.log(s_mid)]
        log_x = mpmath.fsum(terms)
        # near the soft edge the float path forms ln x_e − ln x = −[(s+1) ln sinc(πt') − ln sinc φ
        # − s ln sinc(sφ)] instead: its terms count too
        sinc = [mpmath.sin(y) / y for y in (mpmath.pi * tp, phi, s * phi)]
        terms += [(s + 1) * mpmath.log(sinc[0]), mpmath.log(sinc[1]), s * mpmath.log(sinc[2])]
        x_rho = s_top * s_phi / (mpmath.pi * s_mid)

        def log_sinc(y):
            return mpmath.log(mpmath.sin(y) / y)

        exponent = log_sinc(phi) + log_sinc(mpmath.pi * tp) - log_sinc(s * phi)
        return log_x, u + s * x_rho, -tp * mpmath.expm1(exponent), x_rho, sum(abs(term) for term in terms)


def fc_reference_at(s: int, t: float, dps: int = 60):
    """(F, 1 − F, xρ) at ln λ = t exactly (the float t), by solving ln x(φ) = t in mpmath."""
    with mpmath.workdps(dps):
        target = mpmath.mpf(t)
        soft = target >= fc_reference(s, "0.5", True, dps)[0]
        sign = -1 if soft else 1  # ln x decreases in t' (soft: v = ln t'), increases in u (hard: v = ln u)

        def g(v):
            return sign * (fc_reference(s, mpmath.exp(v), soft, dps + 10)[0] - target)

        lo, hi = mpmath.mpf(-3000), mpmath.log(mpmath.mpf(1) / 2)
        for _ in range(120):  # bisection to a bracket of 3000·2^-120, then a secant polish
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
        v = mpmath.findroot(g, (lo, hi), solver="anderson")
        _, cdf, sf, x_rho, _ = fc_reference(s, mpmath.exp(v), soft, dps)
        return cdf, sf, x_rho


@pytest.mark.parametrize("depth", DEPTHS)
def test_fuss_catalan_log_view_matches_mpmath(depth):
    law = fuss_catalan(depth).log_law()
    for small in PARAMETERS:
        soft = float(small) > 0.5
        param = str(1 - mpmath.mpf(small)) if soft else small
        log_x, _, _, _, size = fc_reference(depth, param, soft)
        t = float(log_x)
        cdf, sf, x_rho = fc_reference_at(depth, t)
        # Tolerance: the float path forms ln x as a sum of terms of total size M, so it solves for the
        # parameter at a point off by δt ≈ ε·M; that moves ln F by (xρ/F)·δt, ln(1 − F) by
        # (xρ/(1 − F))·δt and ln(xρ) by at most the sum of both; 16ε·M and 1e−13 (the evaluation's own
        # rounding, a few ulps of ~10 operations) are the allowance.
        shift = 16 * EPS * float(size)
        tol_cdf = 1e-13 + shift * float(x_rho / cdf)
        tol_sf = 1e-13 + shift * float(x_rho / sf)
        for got, want, tol, what in (
            (law.cdf(t), cdf, tol_cdf, "cdf"),
            (law.sf(t), sf, tol_sf, "sf"),
            (law.pdf(t), x_rho, tol_cdf + tol_sf, "pdf"),
        ):
            if want < np.finfo(float).tiny:  # F ~ e^{−1600} beyond the anchor: rounds to (almost) 0
                assert 0.0 <= got <= 2 * np.finfo(float).tiny, (depth, small, what, got)
                continue
            rel = float(abs(got - want) / want)
            assert rel <= tol, (depth, small, what, t, got, float(want), rel, tol)


@pytest.mark.parametrize("depth", DEPTHS)
def test_fuss_catalan_log_quantiles_match_mpmath(depth):
    """ppf(q) against the mpmath ln x at F = q, and isf(p) at 1 − F = p (q, p exact floats)."""
    law = fuss_catalan(depth).log_law()
    for small in PARAMETERS[1:]:
        soft = float(small) > 0.5
        param = str(1 - mpmath.mpf(small)) if soft else small
        log_x, cdf, sf, x_rho, size = fc_reference(depth, param, soft)
        # F and 1 − F are rounded to floats: the quantile then moves by (rounding of q)/(dq/dt) =
        # ε·q/(xρ); add the solver's own ε·M, and a relative 1e-13 of |t| for the Newton tolerance
        for q_exact, got_of, cond in (
            (cdf, law.ppf, float(cdf / x_rho)),
            (sf, law.isf, float(sf / x_rho)),
        ):
            q = float(q_exact)
            if q == 0.0 or q == 1.0:
                continue
            # the rounded q is a different point: its ln x is off by (q − q_exact)/(xρ) to first order
            moved = float(log_x) + float((mpmath.mpf(q) - q_exact) / x_rho) * (1 if got_of == law.ppf else -1)
            tol = 16 * EPS * (float(size) + cond + abs(moved)) + 1e-13 * abs(moved)
            assert abs(got_of(q) - moved) <= tol, (depth, small, got_of.__name__, q, got_of(q), moved, tol)


def test_issue_case_depth_100_quantile_at_1e_minus_6():
    """The issue's example: the ordinary quantile underflows to 0, the log view is finite and right."""
    law = fuss_catalan(100)
    assert law.ppf(1e-6) == 0.0  # below the float range: 0 is the only float answer
    t = law.log_law().ppf(1e-6)
    assert np.isfinite(t) and t < math.log(np.finfo(float).tiny)
    cdf, _, x_rho = fc_reference_at(100, t)
    # |t| ≈ 1395: the quantile is right to the Newton tolerance (1e-13·|t|) plus the conditioning
    assert abs(float(cdf) - 1e-6) / 1e-6 <= float(x_rho / cdf) * (1e-13 * abs(t) + 64 * EPS * abs(t))


@pytest.mark.parametrize("depth", DEPTHS)
def test_log_ppf_and_log_cdf_round_trip_down_to_1e_minus_300(depth):
    """ppf(q) brackets the exact quantile: cdf(t − δ) ≤ q ≤ cdf(t + δ) (isf likewise with sf).

    δ = 1e−13 + 64ε(|t| + s): the float path forms ln x, or the soft-edge deficit, as sums of terms
    of total size ≲ |t| + s, so t carries an error of a few ε times that. A bracket, not a linearised
    round trip: near the soft edge 1 − F ∝ (ln x_e − t)^{3/2} changes by orders of magnitude within one
    ulp of t. cdf and sf carry a relative 1e−13 of their own (test_..._matches_mpmath).
    """
    law = fuss_catalan(depth).log_law()
    q = np.array([1e-300, 1e-250, 1e-100, 1e-20, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6, 1 - 1e-12])
    t = law.ppf(q)
    assert np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)
    delta = 1e-13 + 64 * EPS * (np.abs(t) + depth)
    assert np.all(law.cdf(t - delta) <= q * (1 + 1e-13)) and np.all(law.cdf(t + delta) >= q * (1 - 1e-13))
    p = np.array([1e-300, 1e-100, 1e-20, 1e-6, 1e-4, 0.3, 0.5, 0.9, 1 - 1e-9])
    t = law.isf(p)
    assert np.all(np.isfinite(t)) and np.all(np.diff(t) <= 0)  # p ≤ 1e-100 all round to ln x_e
    delta = 1e-13 + 64 * EPS * (np.abs(t) + depth)
    assert np.all(law.sf(t - delta) >= p * (1 - 1e-13)) and np.all(law.sf(t + delta) <= p * (1 + 1e-13))
    assert law.ppf(0.0) == -np.inf and law.isf(1.0) == -np.inf and law.ppf(1.0) == law.support[1]
    assert law.support == (-np.inf, pytest.approx(math.log(fuss_catalan(depth).support[1]), rel=EPS))


@pytest.mark.parametrize(
    "law", [fuss_catalan(3), fuss_catalan(12), marchenko_pastur(0.5), marchenko_pastur(1.0, 2.0), marchenko_pastur(3.0)]
)
def test_log_cdf_agrees_with_the_ordinary_cdf_where_both_are_floats(law):
    lo, hi = law.support
    x = np.concatenate([np.geomspace(max(lo, 1e-300), hi, 200)[1:-1], law.ppf([0.01, 0.5, 0.99])])
    x = x[x > 0]  # (the atom at 0 of ratio 3)
    view = law.log_law()
    t = np.log(x)
    # t = ln x is rounded: e^t differs from x by a relative |t|·ε, which moves F by ρ·x·|t|·ε
    slack = 4 * EPS * (np.abs(t) + 1) * x * law.pdf(x)
    assert np.all(np.abs(view.cdf(t) - law.cdf(x)) <= 1e-14 * law.cdf(x) + slack)
    assert np.all(np.abs(view.sf(t) - law.sf(x)) <= 1e-14 * law.sf(x) + slack)
    assert np.allclose(view.pdf(t), x * law.pdf(x), rtol=1e-12 + 8 * EPS * np.abs(t).max(), atol=0)
    q = np.array([0.001, 0.3, 0.5, 0.9, 0.999])
    assert np.allclose(np.exp(view.ppf(q)), law.ppf(q), rtol=1e-12, atol=0)


@pytest.mark.parametrize("depth", [3, 100, 10_000])
def test_mean_of_log_samples_is_minus_depth(depth):
    """E ln λ = −s exactly; the sample mean of n draws is within 5 standard errors (SE = sd/√n)."""
    view = fuss_catalan(depth).log_law()
    assert view.mean() == -depth
    n = 4000
    samples = view.sample(n, rng=np.random.default_rng(11))
    assert samples.shape == (n,) and np.all(np.isfinite(samples))
    se = samples.std(ddof=1) / math.sqrt(n)
    assert abs(samples.mean() + depth) <= 5 * se, (samples.mean(), se)


def test_marchenko_pastur_log_view():
    # E ln λ = ln v + (c − 1)/c · ln(1 − c) − 1 for c < 1, ln v − 1 for c = 1 (−∞ with the atom at 0)
    for c, v in ((0.5, 1.0), (0.25, 3.0)):
        assert marchenko_pastur(c, v).log_law().mean() == pytest.approx(
            math.log(v) + (c - 1) / c * math.log1p(-c) - 1, rel=1e-12
        )
    assert marchenko_pastur(1.0, 2.0).log_law().mean() == pytest.approx(math.log(2.0) - 1, rel=1e-10)
    with_atom = marchenko_pastur(4.0).log_law()
    assert with_atom.mean() == -np.inf
    assert with_atom.support[0] == -np.inf and with_atom.atoms == ((-np.inf, 0.75),)
    assert with_atom.cdf(-np.inf) == 0.75 and with_atom.cdf(-1e6) == 0.75 and with_atom.sf(-1e6) == 0.25
    assert np.all(with_atom.ppf([0.0, 0.5, 0.75]) == -np.inf) and np.isfinite(with_atom.ppf(0.7500001))
    # ratio 1: hard edge at 0 with ρ ~ x^{−1/2}: F = (sin θ + θ)/π, x = 4v sin²(θ/2), closed form far
    # below the float range (θ = 2 arcsin e^{(t − ln 4v)/2}); ppf(q) = ln 4v + 2 ln(πq/4) for tiny q
    hard = marchenko_pastur(1.0, 2.0).log_law()
    t = -2000.0
    theta = 2 * mpmath.asin(mpmath.exp((t - mpmath.log(8)) / 2))
    assert hard.cdf(t) == pytest.approx(float((mpmath.sin(theta) + theta) / mpmath.pi), rel=1e-14)
    assert hard.pdf(t) == pytest.approx(float(mpmath.sqrt(8 * mpmath.exp(t)) / (4 * mpmath.pi)), rel=1e-13)
    q = np.array([1e-300, 1e-120, 1e-80, 1e-10, 0.3])
    assert np.allclose(hard.cdf(hard.ppf(q)), q, rtol=1e-12, atol=0)


class _DeepEdge(SpectralLaw):
    """A density a·x^{a−1} on (0, 1) with a = 0.05: mass tiny^a ≈ 4e−16 below the smallest normal float."""

    @property
    def support(self):
        return (0.0, 1.0)

    def _pdf(self, x):
        return 0.05 * x ** (0.05 - 1)


def test_defaults_refuse_below_the_float_range_instead_of_a_wrong_answer():
    view = _DeepEdge().log_law()
    assert isinstance(view, LogLaw)
    assert view.cdf(-10.0) == pytest.approx(math.exp(-0.5), rel=1e-11)  # e^t normal: through cdf(e^t)
    for call, arg, name in ((view.cdf, -800.0, "t="), (view.sf, -800.0, "t="), (view.pdf, -800.0, "t=")):
        with pytest.raises(ValueError, match=name):
            call(arg)
    with pytest.raises(ValueError, match="q="):
        view.ppf(1e-20)  # the quantile is 1e−400
    with pytest.raises(ValueError, match="not known"):
        view.mean()
    # a law without mass near 0 answers everywhere
    away = marchenko_pastur(0.5).log_law()
    assert away.cdf(-800.0) == 0.0 and away.sf(-800.0) == 1.0 and away.pdf(-800.0) == 0.0


def test_log_view_bad_input():
    view = fuss_catalan(3).log_law()
    for method in (view.pdf, view.cdf, view.sf):
        with pytest.raises(TypeError, match="t must be"):
            method(None)
    for method, name in ((view.ppf, "q"), (view.isf, "p")):
        with pytest.raises(ValueError, match=f"{name} must be a probability"):
            method(1.5)
        with pytest.raises(TypeError, match=f"{name} must be"):
            method("half")
    with pytest.raises(ValueError, match="rng"):
        view.sample(3, rng=-1)
    assert np.isnan(view.cdf(np.nan)) and np.isnan(view.ppf(np.nan))
    assert view.cdf(np.inf) == 1.0 and view.cdf(-np.inf) == 0.0 and view.pdf(np.inf) == 0.0


def test_singular_value_law_has_the_halved_log_view():
    """ln σ = (ln λ)/2: quantiles halve, the density doubles at 2t (σ of depth 100 underflows too)."""
    law = fuss_catalan(100)
    view, sv_view = law.log_law(), law.singular_value_law().log_law()
    q = np.array([1e-300, 1e-6, 0.5, 0.99])
    assert np.array_equal(sv_view.ppf(q), view.ppf(q) / 2)
    t = np.array([-2000.0, -100.0, 1.0])
    assert np.array_equal(sv_view.cdf(t), view.cdf(2 * t)) and np.array_equal(sv_view.pdf(t), 2 * view.pdf(2 * t))
    assert sv_view.mean() == -50.0 and sv_view.support[1] == view.support[1] / 2
    # where σ is a normal float, the same as through the ordinary cdf of σ
    small = marchenko_pastur(0.5).singular_value_law()
    assert small.log_law().cdf(-0.2) == pytest.approx(small.cdf(math.exp(-0.2)), rel=1e-14)
