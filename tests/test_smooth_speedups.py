"""Later shortcuts of smooth-activation laws (issue 15) against the paths they replace and independent references.

- a piece on which d = φ'(√q z)² is constant to rounding (selu at q* = 0) is a point mass (``collapsed``), against
  the pole-subtracted quadrature (``collapsed = None``);
- the real inverse of ψ (the edge search) brackets its root with growing factors, against a plain bisection in
  log(−u) and the quadrature path's ψ at the root;
- the composite rule of log d sums its far panels by series (``panel_series``), against their Gauss rules and
  dense Gauss–Legendre in z.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from rmt_init import jacobian_spectrum
from rmt_init.theory.activations import get_activation
from rmt_init.theory.free import _real_inverse_array
from rmt_init.theory.gaussian_image import GaussianImageS
from rmt_init.theory.jacobian import _d_squared_factor
from rmt_init.theory.laws import _tanhsinh


def _smooth(law) -> list[GaussianImageS]:
    return [term.factor for term in law.terms if isinstance(term.factor, GaussianImageS)]


def test_collapsed_selu_matches_the_quadrature_and_integrates_to_one() -> None:
    """Depth-6 selu at its default init (q* = 0: the kink's q = 1e−200, d = λ²α² e^{2√q z} = λ²α² in float64):
    the piece is a point mass, ψ = ½/(1 − uλ²) + m/(1 − uλ²α²). Against the same law with the pole-subtracted
    quadrature (which reduces to the same sum up to rounding, its roots of d(ζ) = 1/u lying ~1e100 away): ψ to
    1e−14 at complex and real u, the density at 40 points to 1e−10 (the solver's Newton stops at ~1e−13 in t),
    and the density integrates to 1 with the atoms (tanh–sinh, 1e−9)."""
    law = jacobian_spectrum(6, "selu")
    (factor,) = _smooth(law)
    assert factor.collapsed is not None and factor.gauss_rule is None
    rng = np.random.default_rng(5)
    u = np.concatenate([rng.normal(size=40) - 1j * rng.exponential(size=40), rng.normal(size=10) + 0j])
    value, slope = factor.one_plus_psi(u)
    collapsed, factor.collapsed = factor.collapsed, None
    ref_value, ref_slope = factor.one_plus_psi(u)
    factor.collapsed = collapsed
    assert np.max(np.abs(value - ref_value) / np.abs(ref_value)) <= 1e-14
    assert np.max(np.abs(slope - ref_slope) / np.maximum(np.abs(ref_slope), np.abs(ref_value))) <= 1e-14
    lo, hi = law.support
    total = sum(float(_tanhsinh(law._pdf_vectorised, np.array([a]), np.array([b]))[0]) for a, b in law.intervals)
    assert total + sum(m for _, m in law.atoms) == pytest.approx(1.0, abs=1e-9)
    x = np.linspace(lo, hi, 42)[1:-1]
    reference = jacobian_spectrum(6, "selu")
    for f in _smooth(reference):
        f.collapsed = None
    assert reference.support == pytest.approx((lo, hi), rel=1e-13)
    p, p_ref = law.pdf(x), reference.pdf(x)
    assert np.all(p_ref > 0) and np.max(np.abs(p / p_ref - 1.0)) <= 1e-10


def test_collapse_only_where_d_is_constant() -> None:
    """Smooth activations at q > 0 keep their pieces (d varies there)."""
    for name in ("tanh", "erf", "sigmoid", "selu", "gelu"):
        assert _d_squared_factor(get_activation(name), 0.3).collapsed is None


@pytest.mark.parametrize("name,q", [("gelu", 3.9), ("tanh", 0.57)])
def test_real_inverse_against_bisection(name: str, q: float) -> None:
    """u < 1/max d with ψ(u) = w, for w from 1e−13 above ψ's floor −1 (gelu: d vanishes quadratically, so ψ + 1 ~
    |u|^{−1/2} and these u reach ~−1e25) to large w: against 200 bisection steps in log(−u) (u < 0) or u (u > 0)
    on the same factor, to 1e−9 relative where ψ + 1 ≥ 1e−5 (closer to the floor u is ill-conditioned: both must
    leave residuals |ψ(u) − w| ≤ 1e−15), with the residual of the quadrature path's ψ at the root ≤ 1e−12 (1 + |w|)
    where 1 + w ≥ 1e−2 (nearer the floor, gelu's 1/u → 0 and the quadrature path is off near the zero of d)."""
    factor = _d_squared_factor(get_activation(name), q)
    w = np.concatenate([-1.0 + np.geomspace(1e-13, 0.5, 8), [-0.3, 0.2, 3.0, 50.0]])
    u = _real_inverse_array(factor, w)
    assert np.all(np.isfinite(u)) and np.all((u < 0) == (w < 0))
    psi = lambda x: factor.one_plus_psi(np.asarray(x, complex))[0].real - 1.0  # noqa: E731
    negative = w < 0
    lo, hi = np.full(negative.sum(), -30.0), np.full(negative.sum(), 200 * math.log(4.0))  # log(−u)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = psi(-np.exp(mid)) > w[negative]  # ψ decreases in log(−u)
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    reference = -np.exp(0.5 * (lo + hi))
    # near the floor u is ill-conditioned (ψ + 1 = 1e−13 is known to ~1e−16 absolute: 1e−3 relative, and
    # |u| ∝ (ψ + 1)^{−2} for gelu): there both roots must leave residuals at rounding
    conditioned = w[negative] + 1.0 >= 1e-5
    assert np.max(np.abs(u[negative] / reference - 1.0)[conditioned]) <= 1e-9
    assert np.max(np.abs(psi(u[negative]) - w[negative])) <= 1e-15
    assert np.max(np.abs(psi(reference) - w[negative])) <= 1e-15
    lo, hi = np.zeros((~negative).sum()), np.full((~negative).sum(), (1.0 - 1e-12) / factor.xmax)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = psi(mid) > w[~negative]
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    assert np.max(np.abs(u[~negative] / (0.5 * (lo + hi)) - 1.0)) <= 1e-9
    rule = factor.gauss_rule
    factor.gauss_rule = None
    away = w + 1.0 >= 1e-2  # |1/u| not tiny: the quadrature path is accurate (not near gelu's zero of d)
    try:
        assert np.max(np.abs(psi(u[away]) - w[away]) / (1.0 + np.abs(w[away]))) <= 1e-12
    finally:
        factor.gauss_rule = rule


@pytest.mark.parametrize("name,q", [("erf", 1.31182), ("sigmoid", 45.6243)])
def test_panel_series_matches_the_panel_gauss_rules(name: str, q: float) -> None:
    """The far panels of the composite log-d rule by their 6-term series against their own 8-point Gauss rules
    (``panel_series = False``; both bounded by ≤ 1e−14·|1 + ψ| where the rule is taken): 2e−14 relative in the
    value and the slope, and the series' bound never above the Gauss rules' (the rule is taken wherever it was)."""
    factor = _d_squared_factor(get_activation(name), q)
    rule = factor.gauss_rule
    assert rule.panels is not None
    rng = np.random.default_rng(11)
    c = np.exp(rng.uniform(math.log(rule.a) - 5.0, math.log(rule.b) + 5.0, 3000) + 1j * rng.uniform(0.5, math.pi, 3000))
    u = 1.0 / c
    u = u.real + 1j * np.minimum(u.imag, -0.0)
    value, slope = rule.panel_one_plus_psi(u)
    bound = rule.panel_bound(u)
    rule.panel_series = False
    try:
        ref_value, ref_slope = rule.panel_one_plus_psi(u)
        ref_bound = rule.panel_bound(u)
    finally:
        rule.panel_series = True
    assert np.all(bound <= ref_bound * (1.0 + 1e-12))
    used = ref_bound <= 1e-14 * np.abs(ref_value)
    assert used.sum() >= 1000
    assert np.max(np.abs(value - ref_value)[used] / np.abs(ref_value)[used]) <= 2e-14
    scale = np.maximum(np.abs(ref_slope), np.abs(ref_value))
    assert np.max(np.abs(slope - ref_slope)[used] / scale[used]) <= 2e-14


@pytest.mark.parametrize("q,abs_c,arg", [(0.5, 1e-30, 2.8), (3.9, 1e-12, 2.0)])
def test_gelu_zero_rule_against_mpmath(q: float, abs_c: float, arg: float) -> None:
    """gelu's d = φ'(√q z)² has a double zero z0; for small c = 1/u (the product's lower edge) the poles of
    c/(c − d(ζ)) lie ~√(|c|/κ) from z0 (1e−15 at |c| = 1e−30) and in the left tail, where d underflows. The composite
    rule of log d with z0 excised and discretised in log √d against 30-digit mpmath (z0 by findroot; breakpoints
    z0 ± 10^{−k}, k ≤ 29, and every 0.05 in z): 1e−13 relative (value) and 1e−12 (slope, relative to
    max(|u ψ'|, |1 + ψ|)). The quadrature path is off by up to O(1) here (kept as a measurement, not asserted)."""
    factor = _d_squared_factor(get_activation("gelu"), q)
    rule = factor.gauss_rule
    assert rule.panels is not None and rule.inverse_tiers is None
    c = abs_c * rule.b * complex(math.cos(arg), math.sin(arg))
    u = np.array([1.0 / c])
    u = u.real + 1j * np.minimum(u.imag, -0.0)
    assert rule.panel_bound(u)[0] <= 1e-14 * abs(rule.panel_one_plus_psi(u)[0][0])  # taken by the composite rule
    value, slope = factor.one_plus_psi(u)
    k_max = int(-0.5 * math.log10(abs_c)) + 4  # the poles lie ~√|c| from z0
    with mpmath.workdps(max(20, k_max + 18)):  # z − z0 to 18 digits at the poles
        r = mpmath.sqrt(mpmath.mpf(q))
        dphi = lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x)  # noqa: E731
        z0 = mpmath.findroot(dphi, -0.75) / r
        d = lambda z: dphi(r * z) ** 2  # noqa: E731
        points = [z0 + s * mpmath.mpf(10) ** (-k) for k in range(1, k_max) for s in (-1, 1)] + [z0]
        points = sorted(set(points + [mpmath.mpf(k) / 10 for k in range(-90, 91)]))
        cm = mpmath.mpc(c.real, c.imag)
        ref_value = complex(mpmath.quad(lambda z: mpmath.npdf(z) * cm / (cm - d(z)), points))
        ref_slope = complex(mpmath.quad(lambda z: mpmath.npdf(z) * cm * d(z) / (cm - d(z)) ** 2, points))
    assert abs(value[0] - ref_value) <= 1e-13 * abs(ref_value)
    assert abs(slope[0] - ref_slope) <= 1e-12 * max(abs(ref_slope), abs(ref_value))


def test_gelu_density_with_the_zero_rule_matches_the_quadrature_path() -> None:
    """Depth-6 gelu (σ_b² = 0.5): the density at 40 points in the bulk (1 % to 99 % of the support) with the composite
    log-d rule at the zero of d against the same law on the quadrature path (``gauss_rule = None``; accurate there,
    where 1/u stays away from 0): 1e−10 (the solver's Newton stops at ~1e−13 in t; measured 1e−12)."""
    law = jacobian_spectrum(6, "gelu", sigma_b2=0.5)
    lo, hi = law.support
    assert all(f.gauss_rule.panels is not None for f in _smooth(law))
    x = lo + (hi - lo) * np.linspace(0.01, 0.99, 40)
    p = law.pdf(x)
    for f in _smooth(law):
        f.gauss_rule = None
    p_ref = law.pdf(x)
    assert np.all(p_ref > 0) and np.max(np.abs(p / p_ref - 1.0)) <= 1e-10
