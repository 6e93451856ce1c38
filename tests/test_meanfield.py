"""Tests for rmt_init.theory.meanfield.

References: closed forms (relu, erf), the tables of docs/derivations.md §4 and §3.4 (computed there by an
independent Gauss–Hermite + Brent code), mpmath.quad at 30 digits, and definitional checks (iterating
the maps and measuring the decay rates that the depth scales predict).
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from rmt_init.theory.activations import bivariate_gaussian_expectation, derivative_moments, get_activation
from rmt_init.theory.meanfield import (
    CRITICAL_TOL,
    c_map,
    c_star,
    c_trajectory,
    chi1,
    critical_point_from_q,
    critical_sigma_w2,
    depth_scales,
    mean_field,
    q_map,
    q_star,
    q_trajectory,
)

mp.mp.dps = 30


def mp_gauss(f, q):
    s = mp.sqrt(q)
    return mp.quad(lambda z: f(s * z) * mp.exp(-z * z / 2), [-mp.inf, -2, 0, 2, mp.inf]) / mp.sqrt(2 * mp.pi)


# --------------------------------------------------------------------------- docs/derivations.md T17: ReLU


def test_relu_critical_point_T17():
    assert critical_sigma_w2("relu", 0.0) == 2.0
    assert chi1("relu", 2.0, 0.0) == 1.0
    s = mean_field("relu", 2.0, 0.0)
    assert s.phase == "critical" and s.q_star == 1.0 and s.c_star == 1.0
    assert s.xi_c == math.inf and s.xi_q == math.inf
    assert mean_field("relu", 2.0, 0.0, q0=3.0).q_star == 3.0  # every q is fixed at He init
    assert chi1("relu", 1.0, 0.3) == 0.5
    assert critical_sigma_w2("leaky_relu", 0.0) == pytest.approx(2 / (1 + 0.01**2), rel=1e-15)


def test_relu_fixed_point_and_divergence():
    # affine length map q ↦ σ_w² q/2 + σ_b²
    assert q_star("relu", 1.5, 0.3) == pytest.approx(0.3 / (1 - 0.75), rel=1e-15)
    assert q_star("relu", 1.5, 0.0) == 0.0
    assert q_star("relu", 3.0, 0.1) == math.inf
    assert q_star("relu", 2.0, 0.1) == math.inf  # q^l = q^{l-1} + σ_b²
    assert q_star("relu", 2.5, 0.0) == math.inf
    assert chi1("relu", 3.0, 0.1) == 1.5  # homogeneous: χ₁ does not need q*
    for fn in (c_star, depth_scales, mean_field):
        with pytest.raises(ValueError, match="diverges"):
            fn("relu", 3.0, 0.1)
    with pytest.raises(ValueError, match="diverges"):
        chi1("selu", 3.0, 0.1)  # selu grows like relu for large q: q* = ∞, χ₁ depends on q


# --------------------------------------------------------------------------- tanh critical line (docs/derivations.md §4, T18)

# (σ_b², critical σ_w², q*) as printed in docs/derivations.md §4 (6 decimals).
TANH_TABLE = [
    (1e-4, 1.086026, 0.045709),
    (1e-3, 1.189190, 0.107292),
    (0.01, 1.424205, 0.273301),
    (0.05, 1.760955, 0.570048),
    (0.09, 1.947655, 0.763475),
    (0.1, 1.986073, 0.805799),
    (0.5, 2.843167, 1.971031),
    (1.0, 3.443210, 3.036396),
]


@pytest.mark.parametrize("sb2, sw2_ref, q_ref", TANH_TABLE)
def test_tanh_critical_line_table(sb2, sw2_ref, q_ref):
    # tolerance: one unit in the last printed digit (the σ_b² = 1 row prints 3.443210 for 3.4432109,
    # confirmed with mpmath; the σ_b² = 2 row is checked separately)
    sw2 = critical_sigma_w2("tanh", sb2)
    assert abs(sw2 - sw2_ref) <= 1e-6
    qs = q_star("tanh", sw2, sb2)  # independent path: fixed point of the length map at that σ_w²
    assert abs(qs - q_ref) <= 1e-6
    assert abs(chi1("tanh", sw2, sb2) - 1.0) <= 1e-13


def test_tanh_critical_line_against_mpmath():
    """Every row (incl. σ_b² = 2, where the notes' printed 4.266355/4.830554 are off in the 5th digit:
    mpmath gives 4.2663961/4.8305862) satisfies χ₁ = 1 and q* = σ_w² E[tanh²] + σ_b² at 30 digits."""
    for sb2 in (1e-4, 0.05, 2.0):
        sw2 = critical_sigma_w2("tanh", sb2)
        qs = q_star("tanh", sw2, sb2)
        mu1 = mp_gauss(lambda x: mp.sech(x) ** 4, qs)
        m2 = mp_gauss(lambda x: mp.tanh(x) ** 2, qs)
        assert float(sw2 * mu1) == pytest.approx(1.0, abs=1e-13)
        assert float(sw2 * m2 + sb2) == pytest.approx(qs, rel=1e-13)
    assert round(critical_sigma_w2("tanh", 2.0), 6) == 4.266396


def test_tanh_zero_bias_limit():
    assert critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-15)
    assert critical_sigma_w2("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-15)


# --------------------------------------------------------------------------- ordered-phase example (docs/derivations.md §4)


def test_tanh_ordered_phase_example():
    s = mean_field("tanh", 1.5, 0.05)
    assert s.phase == "ordered" and s.c_star == 1.0
    assert round(s.q_star, 4) == 0.4180
    assert round(s.chi1, 5) == 0.93864
    assert round(s.xi_c, 2) == 15.79
    assert round(s.xi_q, 2) == 1.68
    # Schoenholz et al. eq. 4 written with φ'' explicitly (not the Stein form used by the code)
    qs = mp.mpf(s.q_star)
    slope = 1.5 * mp_gauss(lambda x: mp.sech(x) ** 4 + (-2 * mp.tanh(x) * mp.sech(x) ** 2) * mp.tanh(x), qs)
    assert s.xi_q == pytest.approx(float(-1 / mp.log(slope)), rel=1e-12)
    assert s.xi_c == pytest.approx(-1 / math.log(s.chi1), rel=1e-14)


@pytest.mark.parametrize("name, sw2, sb2", [("tanh", 1.5, 0.05), ("hardtanh", 1.3, 0.2), ("selu", 0.8, 0.1)])
def test_depth_scales_are_the_observed_decay_rates(name, sw2, sb2):
    """Iterate the maps near their fixed points: successive distance ratios → e^{−1/ξ}."""
    xq, xc = depth_scales(name, sw2, sb2)
    qs = q_star(name, sw2, sb2)
    # q: start 1e−6·q* away — the second-order term shifts the ratio by O(1e−6), rounding of the
    # differences by ~1e−10. c: for kinked φ the c-map has a (1 − c)^{3/2} term near c = 1, so start at
    # 1 − 1e−10 (shift O(1e−5), rounding ~1e−6). Both far below the 1e−4 tolerance.
    qs_traj = q_trajectory(qs * (1 + 1e-6), 3, name, sw2, sb2)
    r = (qs_traj[-1] - qs) / (qs_traj[-2] - qs)
    assert r == pytest.approx(math.exp(-1 / xq), rel=1e-4)
    c = c_trajectory(1 - 1e-10, 3, name, sw2, sb2)
    r = (1 - c[-1]) / (1 - c[-2])
    assert r == pytest.approx(math.exp(-1 / xc), rel=1e-4)
    assert r == pytest.approx(chi1(name, sw2, sb2), rel=1e-4)  # ordered phase: ξ_c = −1/ln χ₁


def test_chaotic_phase_fixed_point():
    s = mean_field("tanh", 4.0, 0.0)
    assert s.phase == "chaotic" and s.c_star == 0.0  # odd φ, no bias: c* = 0
    s = mean_field("tanh", 3.0, 0.3)
    assert s.phase == "chaotic" and 0.0 < s.c_star < 1.0
    assert c_map(s.c_star, "tanh", 3.0, 0.3) == pytest.approx(s.c_star, abs=1e-13)
    # attracting from both sides (the c-map is increasing)
    assert c_map(s.c_star - 0.05, "tanh", 3.0, 0.3) > s.c_star - 0.05
    assert c_map(s.c_star + 0.05, "tanh", 3.0, 0.3) < s.c_star + 0.05
    slope = 3.0 * bivariate_gaussian_expectation(
        np.vectorize(lambda x: 1 / math.cosh(x) ** 2),
        np.vectorize(lambda x: 1 / math.cosh(x) ** 2),
        s.q_star,
        s.q_star * s.c_star,
        s.q_star,
    )
    assert s.xi_c == pytest.approx(-1 / math.log(slope), rel=1e-10)


# --------------------------------------------------------------------------- erf closed forms


@pytest.mark.parametrize("q", [0.05, 1.0, 7.0])
def test_erf_closed_forms(q):
    ref = mp_gauss(lambda x: mp.erf(x) ** 2, q)
    assert float(ref) == pytest.approx(2 / math.pi * math.asin(2 * q / (1 + 2 * q)), rel=1e-14)
    assert q_map(q, "erf", 1.3, 0.2) == pytest.approx(1.3 * float(ref) + 0.2, rel=1e-14)
    assert derivative_moments("erf", q, 1) == pytest.approx(
        float(mp_gauss(lambda x: 4 / mp.pi * mp.exp(-2 * x * x), q)), rel=1e-14
    )
    # c-map closed form (Williams kernel) against the generic bivariate quadrature
    from scipy.special import erf

    for c in (-0.4, 0.5, 0.99):
        num = bivariate_gaussian_expectation(erf, erf, q, q * c, q)
        ref_c = (1.3 * num + 0.2) / (1.3 * 2 / math.pi * math.asin(2 * q / (1 + 2 * q)) + 0.2)
        assert c_map(c, "erf", 1.3, 0.2, q=q) == pytest.approx(ref_c, abs=1e-14)


MP_PHI = {
    "linear": lambda x: x,
    "relu": lambda x: max(x, 0),
    "leaky_relu": lambda x: x if x > 0 else mp.mpf("0.01") * x,
    "tanh": mp.tanh,
    "hardtanh": lambda x: min(max(x, -1), 1),
    "erf": mp.erf,
    "sigmoid": lambda x: 1 / (1 + mp.exp(-x)),
    "selu": lambda x: 1.0507009873554804934193349852946 * (x if x > 0 else 1.6732632423543772848170429916717 * mp.expm1(x)),
    "gelu": lambda x: x * mp.ncdf(x),
}


@pytest.mark.parametrize("name", sorted(MP_PHI))
def test_q_map_matches_mpmath(name):
    for q in (0.04, 1.0, 9.0):
        s = mp.sqrt(q)
        ref = mp.quad(
            lambda z: MP_PHI[name](s * z) ** 2 * mp.exp(-z * z / 2), [-mp.inf, -1 / s, 0, 1 / s, mp.inf]
        ) / mp.sqrt(2 * mp.pi)
        assert q_map(q, name, 1.7, 0.3) == pytest.approx(1.7 * float(ref) + 0.3, rel=1e-13)


def test_leaky_relu_c_map_and_erf_chaotic_depth_scale():
    leaky = get_activation("leaky_relu", negative_slope=-0.3)
    for c in (-0.8, 0.1, 0.9):
        num = bivariate_gaussian_expectation(leaky.phi, leaky.phi, 2.0, 2.0 * c, 2.0, (0,), (0,))
        ref = (1.1 * num + 0.2) / (1.1 * 2.0 * (1 + 0.09) / 2 + 0.2)
        assert c_map(c, leaky, 1.1, 0.2, q=2.0) == pytest.approx(ref, abs=1e-13)
    # erf, chaotic: ξ_c from the closed-form E[φ'φ'] vs the generic bivariate quadrature at c*
    s = mean_field("erf", 4.0, 0.1)
    assert s.phase == "chaotic"
    derf = lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)  # noqa: E731
    slope = 4.0 * bivariate_gaussian_expectation(derf, derf, s.q_star, s.q_star * s.c_star, s.q_star)
    assert s.xi_c == pytest.approx(-1 / math.log(slope), rel=1e-12)


# --------------------------------------------------------------------------- docs/derivations.md §3.4 table, T14, T15

# q*, hard-tanh (p, σ_w², σ_b², orth σ²/L), erf (σ_w², σ_b², orth σ²/L) as printed in docs/derivations.md §3.4;
# entries printed with significant figures are (value, number of significant figures); None = "~0".
PSG_TABLE = [
    (1 / 64, 1.000000, 1.000000, None, None, 0.809570, (4.78e-6, 3), (1.73e-3, 3)),
    (1 / 16, 0.999937, 1.000063, (3.6e-6, 2), (6.3e-5, 2), 0.878102, (2.59e-4, 3), (2.06e-2, 3)),
    (1 / 4, 0.954500, 1.047669, (8.9e-3, 2), (0.0477, 3), 1.110721, (9.70e-3, 3), (0.155, 3)),
    (1.0, 0.682689, 1.464795, (0.244, 3), (0.465, 3), 1.756204, (0.184, 3), (0.667, 3)),
]


def _close_to_print(x, printed, digits):
    """Within one unit of the last printed significant digit (the notes print erf σ_b² at q* = 1/16 as
    2.59e−4 for 2.58481e−4 — mpmath: q − (π/4)(2/π) arcsin(2q/(1+2q)) √(1+4q) = 2.584808e−4)."""
    unit = 10.0 ** (math.floor(math.log10(abs(printed))) - digits + 1)
    return abs(x - printed) <= unit


@pytest.mark.parametrize("row", PSG_TABLE)
def test_psg_hardtanh_erf_table(row):
    q, p, ht_w, ht_b, ht_orth, erf_w, erf_b, erf_orth = row
    assert round(derivative_moments("hardtanh", q, 1), 6) == p
    cp = critical_point_from_q("hardtanh", q)
    assert round(cp.sigma_w2, 6) == ht_w
    mu1, mu2 = derivative_moments("hardtanh", q, 1), derivative_moments("hardtanh", q, 2)
    if ht_b is None:  # "~0": σ_b² = [g(8) + g(8)]/(64 p) with g(t) = t(φ(t) − tΦ(−t)) ≈ 1e−17
        assert 0.0 <= cp.sigma_b2 < 1e-15 and 0.0 <= mu2 / mu1**2 - 1 < 1e-14
    else:
        assert _close_to_print(cp.sigma_b2, *ht_b)
        assert _close_to_print(mu2 / mu1**2 - 1, *ht_orth)
    cp = critical_point_from_q("erf", q)
    assert round(cp.sigma_w2, 6) == erf_w
    assert _close_to_print(cp.sigma_b2, *erf_b)
    mu1, mu2 = derivative_moments("erf", q, 1), derivative_moments("erf", q, 2)
    assert _close_to_print(mu2 / mu1**2 - 1, *erf_orth)
    assert mu2 / mu1**2 == pytest.approx((1 + 4 * q) / math.sqrt(1 + 8 * q), rel=1e-14)


def test_T14_T15():
    mu1, mu2 = derivative_moments("erf", 1.0, 1), derivative_moments("erf", 1.0, 2)
    assert mu2 / mu1**2 == pytest.approx(5 / 3, rel=1e-15)  # orth σ²/L = 2/3
    cp = critical_point_from_q("hardtanh", 0.25)
    p = math.erf(math.sqrt(2))
    assert cp.sigma_w2 == pytest.approx(1 / p, rel=1e-15)
    assert (round(p, 6), round(cp.sigma_w2, 6), round(1 / p - 1, 6)) == (0.9545, 1.047669, 0.047669)


@pytest.mark.parametrize(
    "name, q", [("tanh", 2.5), ("erf", 2.5), ("hardtanh", 2.5), ("selu", 2.5), ("gelu", 100.0), ("sigmoid", 100.0)]
)
def test_critical_point_roundtrip(name, q):
    """critical_point_from_q → q_star (root of the length map) returns q*, χ₁ = 1, and
    critical_sigma_w2 inverts it. (q* chosen where the length map is contracting: gelu's critical fixed
    points at q* ≲ 10 are repelling, sigmoid needs q* ≳ 57 for σ_b² ≥ 0.)"""
    cp = critical_point_from_q(name, q)
    assert q_star(name, cp.sigma_w2, cp.sigma_b2, q0=q * 1.3) == pytest.approx(q, rel=1e-12)
    assert chi1(name, cp.sigma_w2, cp.sigma_b2, q0=q) == pytest.approx(1.0, abs=1e-12)
    assert critical_sigma_w2(name, cp.sigma_b2) == pytest.approx(cp.sigma_w2, rel=1e-10)
    assert mean_field(name, cp.sigma_w2, cp.sigma_b2, q0=q).phase == "critical"


def test_gelu_critical_line_only_where_the_fixed_point_attracts():
    """gelu's critical branch q* ↦ (1/μ₁, σ_b²(q*)) repels the length map for q* < (3 + √17)/2 (there the
    map's slope σ_w² E[φφ'x]/q* exceeds 1; the turning point is checked at 30 digits with mpmath), so below
    σ_b² = 0.172922… no σ_w² makes a gelu network critical: critical_sigma_w2 must say so rather than
    return a σ_w² whose χ₁ (reached by iterating the map) is 0.82."""
    with pytest.raises(ValueError, match=r"no attracting critical point.*q\* = 1.63243.*turns attracting at q\* = 3.56155"):
        critical_sigma_w2("gelu", 0.1)
    with pytest.raises(ValueError, match="rises above q near 0"):
        critical_sigma_w2("gelu", 0.0)
    repelling = critical_sigma_w2("gelu", 0.1, attracting=False)  # the formal line, as before
    assert repelling == pytest.approx(2.0766761937, rel=1e-9)
    assert chi1("gelu", repelling, 0.1) < 0.9  # iterating the map from q0 = 1 lands elsewhere
    for sb2 in (0.173, 0.5, 3.0):
        sw2 = critical_sigma_w2("gelu", sb2)
        assert chi1("gelu", sw2, sb2) == pytest.approx(1.0, abs=1e-9)
        assert chi1("gelu", sw2, sb2, q0=20.0) == pytest.approx(1.0, abs=1e-9)  # attracting from both sides
    # the turning point: E[φφ'x] = q E[φ'²] at q = (3 + √17)/2 exactly, φ(x) = xΦ(x)
    with mp.workdps(30):
        q = (3 + mp.sqrt(17)) / 2
        phi = lambda x: x * mp.ncdf(x)  # noqa: E731
        dphi = lambda x: mp.ncdf(x) + x * mp.npdf(x)  # noqa: E731
        lhs = mp_gauss(lambda x: phi(x) * dphi(x) * x, q)
        rhs = q * mp_gauss(lambda x: dphi(x) ** 2, q)
        assert abs(lhs - rhs) < mp.mpf(10) ** -25
    with pytest.raises(ValueError, match="attracting must be"):
        critical_sigma_w2("tanh", 0.1, attracting="yes")


def test_smooth_critical_points_attract():
    """For tanh, erf, hardtanh, selu and sigmoid the critical σ_w² is reached by iterating the map from
    below and above q*, with χ₁ = 1 (the attracting check changes nothing for them)."""
    for name, sb2 in (("tanh", 0.05), ("erf", 0.3), ("hardtanh", 0.01), ("selu", 0.1), ("sigmoid", 0.5)):
        sw2 = critical_sigma_w2(name, sb2)
        assert sw2 == critical_sigma_w2(name, sb2, attracting=False)
        qs = q_star(name, sw2, sb2)
        for q0 in (qs / 3, 3 * qs):
            assert chi1(name, sw2, sb2, q0=q0) == pytest.approx(1.0, abs=1e-9)


def test_critical_point_needs_nonnegative_bias():
    with pytest.raises(ValueError, match="sigma_b2 = .* < 0"):
        critical_point_from_q("sigmoid", 0.01)  # φ(0) = 1/2: E[φ²]/μ₁ ≈ 4 > q*


# --------------------------------------------------------------------------- ReLU c-map, docs/derivations.md T19


@pytest.mark.parametrize("c", [-1.0, -0.3, 0.0, 0.6, 0.999999, 1.0])
def test_relu_c_map_closed_form(c):
    cm = mp.mpf(c)
    ref = (mp.sqrt(1 - cm * cm) + (mp.pi - mp.acos(cm)) * cm) / mp.pi
    assert c_map(c, "relu", 2.0, 0.0) == pytest.approx(float(ref), abs=2e-16)
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    num = bivariate_gaussian_expectation(relu, relu, 1.7, 1.7 * c, 1.7, (0,), (0,))
    got = c_map(c, "relu", 1.2, 0.4, q=1.7)
    assert got == pytest.approx((1.2 * num + 0.4) / (1.2 * 0.85 + 0.4), abs=1e-13)


def test_relu_c_map_tail_T19():
    """1 − c_l ≈ 9π²/(2 l²) at criticality; ratio 0.971 at l = 10³, 0.99957 at l = 10⁵ (from c⁰ = 0)."""
    c = c_trajectory(0.0, 100_000, "relu", 2.0, 0.0)
    ratio = lambda l: (1 - c[l]) / (9 * math.pi**2 / (2 * l * l))  # noqa: E731
    assert round(ratio(1000), 3) == 0.971
    assert round(ratio(100_000), 5) == 0.99957
    assert np.all(np.diff(c) > 0)


# --------------------------------------------------------------------------- other phases and degenerate cases


def test_q_star_matches_plain_iteration():
    for name, sw2, sb2 in [("tanh", 2.0, 0.1), ("selu", 1.0, 0.0), ("gelu", 1.5, 0.2), ("sigmoid", 3.0, 0.0)]:
        traj = q_trajectory(1.0, 400, name, sw2, sb2)
        assert q_star(name, sw2, sb2) == pytest.approx(traj[-1], rel=1e-12)
    assert q_star("selu", 1.0, 0.0) == pytest.approx(1.0, rel=1e-14)  # self-normalising fixed point


def test_zero_fixed_point():
    s = mean_field("tanh", 0.8, 0.0)
    assert s.q_star == 0.0 and s.c_star is None and s.xi_c == math.inf
    assert s.chi1 == pytest.approx(0.8, rel=1e-15) and s.phase == "ordered"
    assert s.xi_q == pytest.approx(-1 / math.log(0.8), rel=1e-12)
    with pytest.raises(ValueError, match="c\\* is undefined"):
        c_star("tanh", 0.8, 0.0)
    assert c_map(0.3, "tanh", 0.8, 0.0, q=1.0) < 0.3  # an explicit q still works
    s = mean_field("relu", 1.5, 0.0)  # homogeneous: c-map independent of q, slope 1 at c = 1
    assert s.q_star == 0.0 and s.c_star == 1.0 and s.chi1 == 0.75 and s.xi_c == math.inf


def test_no_weights():
    s = mean_field("tanh", 0.0, 0.3)
    assert s.q_star == 0.3 and s.chi1 == 0.0 and s.c_star == 1.0 and s.xi_c == 0.0 and s.xi_q == 0.0


@pytest.mark.parametrize("name", ["linear", "relu", "tanh", "hardtanh", "erf", "sigmoid", "selu", "gelu"])
@pytest.mark.parametrize("q", [0.1, 1.0, 10.0])
def test_gaussian_poincare(name, q):
    """Var φ(√q z) ≤ q E[φ'(√q z)²] (Gaussian Poincaré inequality), equality iff φ is affine."""
    act = get_activation(name)
    from rmt_init.theory.activations import gaussian_expectation

    m1 = gaussian_expectation(act.phi, q, act.kinks)
    var = q_map(q, name, 1.0, 0.0) - m1 * m1
    bound = q * derivative_moments(name, q, 1)
    if name == "linear":
        assert var == pytest.approx(bound, rel=1e-14)
    else:
        assert var < bound


def test_phase_labels():
    assert mean_field("tanh", 1.2, 0.05).phase == "ordered"
    assert mean_field("tanh", 2.5, 0.05).phase == "chaotic"
    sw2 = critical_sigma_w2("tanh", 0.05)
    s = mean_field("tanh", sw2, 0.05)
    assert s.phase == "critical" and abs(s.chi1 - 1) <= CRITICAL_TOL and s.xi_c == math.inf


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: q_map(0.0, "tanh", 1.0, 0.0), "q must be"),
        (lambda: q_map(1.0, "tanh", -1.0, 0.0), "sigma_w2"),
        (lambda: q_star("tanh", 1.0, float("nan")), "sigma_b2"),
        (lambda: c_map(1.5, "tanh", 1.0, 0.1), "c must be"),
        (lambda: chi1("softsign", 1.0, 0.1), "valid choices"),
        (lambda: q_star("tanh", 1.0, 0.1, q0=-1), "q0"),
        (lambda: critical_point_from_q("tanh", 0.0), "q_star"),
        (lambda: c_trajectory(0.5, -1, "tanh", 1.0, 0.1), "depth"),
        (lambda: critical_sigma_w2("tanh", -0.1), "sigma_b2"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_q_star_from_a_huge_q0_is_the_fixed_point():
    """q0 = 1e300: q0 + gap(q0) rounded to 0 and q* came out 0; q_map(q0) is now formed directly."""
    from rmt_init.theory import q_map

    qs = q_star("tanh", 1.5, 0.1, q0=1e300)
    assert qs == pytest.approx(q_star("tanh", 1.5, 0.1), rel=1e-14)
    assert q_map(qs, "tanh", 1.5, 0.1) == pytest.approx(qs, rel=1e-14)


def test_trajectories_fill_exact_fixed_points_and_refuse_huge_depths():
    q = q_trajectory(1.0, 5000, "tanh", 1.5, 0.1)  # exact fixed point reached: the rest is filled
    assert q[-1] == q[-2] and q[-1] == pytest.approx(q_star("tanh", 1.5, 0.1), rel=1e-14)
    # the filled tail equals plain iteration (the map is deterministic)
    from rmt_init.theory.meanfield import _phi_sq_moment

    value, act = q[0], get_activation("tanh")
    for expected in q[1:200]:
        value = 1.5 * _phi_sq_moment(act, value) + 0.1
        assert value == expected
    with pytest.raises(ValueError, match="depth must be an integer <= 100000"):
        q_trajectory(1.0, 10**6, "tanh", 1.5, 0.1)
    with pytest.raises(ValueError, match="depth must be an integer <= 100000"):
        c_trajectory(0.5, 10**6, "tanh", 1.5, 0.1)


def test_no_weights_and_no_bias_is_refused():
    for call in (
        lambda: mean_field("tanh", 0, 0.0),
        lambda: q_star("tanh", 0.0, 0.0),
        lambda: chi1("relu", 0.0, 0.0),
    ):
        with pytest.raises(ValueError, match="sigma_w2 and sigma_b2 are both 0"):
            call()
