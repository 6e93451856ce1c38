"""The Gauss-rule path of smooth-activation laws (rmt_init.theory._smooth_law) against independent references.

References: the exact moments E[φ'(√q z)^{2k}] (closed forms or converged quadrature, never the rule), the
pole-subtracted quadrature of GaussianImageS (the path before, measured against 30-digit mpmath), dense
Gauss–Legendre in z (below the range of d, where that quadrature is not accurate), 25-digit mpmath
quadrature of E[1/(1 − u d(z))] itself, and, for the solver's shortcuts, the plain η-continuation.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from rmt_init import jacobian_spectrum
from rmt_init.theory._smooth_law import RHO_MIN, RHO_MIN_LOG, bernstein_rho
from rmt_init.theory.activations import derivative_moments, get_activation
from rmt_init.theory.gaussian_image import GaussianImageS
from rmt_init.theory.jacobian import _d_squared_factor

_CASES = [(name, q) for name in ("tanh", "erf", "sigmoid", "selu", "gelu") for q in (0.05, 1.3)]


def _factor(name: str, q: float) -> GaussianImageS:
    factor = _d_squared_factor(get_activation(name), q)
    assert isinstance(factor, GaussianImageS) and factor.gauss_rule is not None
    return factor


def _reference_psi(factor: GaussianImageS, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rule = factor.gauss_rule
    factor.gauss_rule = None
    try:
        return factor.one_plus_psi(u)
    finally:
        factor.gauss_rule = rule


def _u_grid(factor: GaussianImageS, rng: np.random.Generator) -> np.ndarray:
    """u with c = 1/u (Im c ≥ 0) on Bernstein ellipses of the range of d: near the cut (ρ from 1 + 1e−6,
    where the quadrature path is taken, through the seam at ρ = 1.5) and far from it (ρ up to 10³), on the
    real axis on both sides of the range, on the cut itself from above (Im c = 0⁺), and small c with
    arg c from 1.2 to π (the rule of log d)."""
    a, b = factor.gauss_rule.a, factor.gauss_rule.b
    rho = np.concatenate([1.0 + np.geomspace(1e-6, 0.4, 30), RHO_MIN * (1.0 + np.array([-1e-9, 1e-9, 1e-3])), np.geomspace(1.6, 1e3, 60)])
    theta = rng.uniform(0.0, math.pi, rho.size)
    theta[::7] = 0.0  # real c beyond the top of the range
    theta[3::7] = math.pi  # real c below the bottom (negative u)
    w = rho * np.exp(1j * theta)
    c = 0.5 * (a + b) + 0.25 * (b - a) * (w + 1.0 / w)
    c = np.concatenate([c, a + (b - a) * np.array([0.1, 0.37, 0.5, 0.9]) + 1e-12j])  # on the cut, from above
    # small c off the positive axis (the product's lower edge), where the rule of log d is used
    c = np.concatenate([c, b * np.geomspace(1e-6, 0.05, 16) * np.exp(1j * np.linspace(1.2, math.pi, 16))])
    u = 1.0 / c
    return u.real + 1j * np.minimum(u.imag, -0.0)


@pytest.mark.parametrize("name,q", _CASES)
def test_gauss_rule_reproduces_the_exact_moments(name: str, q: float) -> None:
    """The n-point rule integrates t^k exactly for k ≤ 2n − 1, so its moments are the law's: against the
    closed forms / converged quadrature of derivative_moments (≤ 1e−14), to rounding (5e−13 relative; the
    selu rule carries the z < 0 half, its atom ½δ_{λ²} is added back)."""
    factor = _factor(name, q)
    rule = factor.gauss_rule
    for k in range(0, 7):
        by_rule = float(np.dot(rule.weights, rule.nodes**k)) + float(np.dot(factor._atom_m, factor._atom_x**k))
        exact = 1.0 if k == 0 else derivative_moments(get_activation(name), q, k)
        assert by_rule == pytest.approx(exact, rel=5e-13), k
    assert np.all(rule.weights > 0) and rule.a <= rule.nodes.min() and rule.nodes.max() <= rule.b


@pytest.mark.parametrize("name,q", _CASES)
def test_fast_psi_agrees_with_the_quadrature_path(name: str, q: float) -> None:
    """1 + ψ and u ψ' on the grid of :func:`_u_grid`, shipped path vs the quadrature path everywhere.
    Error budget: the rule's ≲ 1.5^{−96}·2n/(ρ − 1) ≈ 3e−15 (module docstring) plus the quadrature path's
    own ≲ 3e−13 (value) and, measured against 25-digit mpmath near c ≈ 0 where it is least accurate,
    ≲ 1.1e−10 (slope); the bounds are 1e−11 and 5e−10 relative."""
    factor = _factor(name, q)
    u = _u_grid(factor, np.random.default_rng(15))
    value, slope = factor.one_plus_psi(u)
    ref_value, ref_slope = _reference_psi(factor, u)
    rule = factor.gauss_rule
    if rule.panels is not None:
        # where the composite rule of log d is taken (erf at q = 1.3: log-range 210; gelu, whose d has a double zero)
        # the quadrature path is off by up to 7e−8 for erf (small negative c) and up to O(1) for gelu (c → 0,
        # measured against 40-digit mpmath in tests/test_smooth_speedups.py): the dense Gauss–Legendre reference there
        taken = (rule.rho(u) < RHO_MIN) & (rule.inverse_rho(u) < RHO_MIN) & (rule.panel_bound(u) <= 1e-14 * np.abs(value))
        assert taken.any()
        ref_value[taken], ref_slope[taken] = _dense_reference(factor, 1.0 / u[taken])
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(slope))
    assert np.max(np.abs(value - ref_value) / np.abs(ref_value)) <= 1e-11
    scale = np.maximum(np.abs(ref_slope), np.abs(ref_value))  # u ψ' → 0 as u → 0: relative to 1 + ψ there
    assert np.max(np.abs(slope - ref_slope) / scale) <= 5e-10
    # both paths are really used by the grid
    rho = bernstein_rho(1.0 / u, factor.gauss_rule.a, factor.gauss_rule.b)
    assert np.any(rho < RHO_MIN) and np.any(rho >= RHO_MIN)
    if factor.gauss_rule.log_rule is not None:  # and the rule of log d
        assert np.any((rho < RHO_MIN) & (factor.gauss_rule.log_rho(u) >= RHO_MIN_LOG))


_L_SELU, _A_SELU = mpmath.mpf("1.0507009873554804934193349852946"), mpmath.mpf("1.6732632423543772848170429916717")


def _mp_d(name: str, q: float):
    r = mpmath.sqrt(q)
    return {
        "tanh": lambda z: mpmath.sech(r * z) ** 4,
        "gelu": lambda z: (mpmath.ncdf(r * z) + r * z * mpmath.npdf(r * z)) ** 2,
        "selu": lambda z: (_L_SELU * _A_SELU * mpmath.exp(r * z)) ** 2,
    }[name]


@pytest.mark.parametrize(
    "name,q,c",
    [
        ("tanh", 0.57, complex(-0.1184, 0.1627)),  # near c = 0, where the quadrature path loses ~1e−11
        ("selu", 0.57, complex(3.226, 0.0)),  # just above selu's range: a root beyond the piece's end at z = 0
        ("selu", 0.57, complex(3.1, 1e-3)),
    ],
)
def test_psi_against_mpmath(name: str, q: float, c: complex) -> None:
    """Value and slope at points that once were hard for the quadrature path, against 25-digit mpmath
    (integrand analytic on the real line there: Gauss–Legendre on 36 unit panels converges). The shipped
    path must agree with it to 1e−13 (value) and 1e−12 (slope); the quadrature path, which loses digits to
    the cancellation of large residues near c = 0 (measured up to 3e−12 and 1.1e−10 there) and missed the
    root beyond selu's piece end (7e−4) before, to 1e−11 and 2e−10."""
    factor = _factor(name, q)
    u = np.array([1.0 / c])
    d = _mp_d(name, q)
    top = 0.0 if name == "selu" else 9.0
    with mpmath.workdps(25):
        um = mpmath.mpc(u[0].real, u[0].imag)
        points = list(mpmath.linspace(-9, top, 19 if name == "selu" else 37))
        value = mpmath.quad(lambda z: mpmath.npdf(z) / (1 - um * d(z)), points)
        slope = mpmath.quad(lambda z: mpmath.npdf(z) * um * d(z) / (1 - um * d(z)) ** 2, points)
        for loc, mass in zip(factor._atom_x, factor._atom_m):  # selu's ½δ_{λ²}
            value += mpmath.mpf(mass) / (1 - um * loc)
            slope += mpmath.mpf(mass) * um * loc / (1 - um * loc) ** 2
    value, slope = complex(value), complex(slope)
    for (v, s), tol in ((factor.one_plus_psi(u), 1e-13), (_reference_psi(factor, u), 1e-11)):
        assert abs(v[0] - value) <= tol * abs(value)
        assert abs(s[0] - slope) <= 20 * tol * abs(slope)


def test_shipped_density_matches_the_quadrature_path_and_integrates_to_one() -> None:
    """Depth-6 tanh (σ_b² = 0.05): the density with the Gauss rule equals the quadrature path's to 1e−10
    relative at 30 points (the solver's Newton stops at ~1e−13; ψ differs by ≲ 1e−12), and integrates
    to 1 (tanh–sinh on each interval, 1e−9)."""
    from rmt_init.theory.laws import _tanhsinh

    law = jacobian_spectrum(6, "tanh", sigma_b2=0.05)
    lo, hi = law.support
    total = sum(float(_tanhsinh(law._pdf_vectorised, np.array([a]), np.array([b]))[0]) for a, b in law.intervals)
    total += sum(m for _, m in law.atoms)
    assert total == pytest.approx(1.0, abs=1e-9)
    x = np.linspace(lo, hi, 32)[1:-1]
    p = law.pdf(x)
    smooth = [term.factor for term in law.terms if isinstance(term.factor, GaussianImageS)]
    assert smooth
    for factor in smooth:  # the same law (edges found) on the quadrature path
        factor.gauss_rule = None
    p_ref = law.pdf(x)
    assert np.all(p > 0) and np.max(np.abs(p - p_ref) / p_ref) <= 1e-10


def _dense_reference(factor: GaussianImageS, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1 + ψ, u ψ') at c = 1/u by composite 20-point Gauss–Legendre in z, on panels of width ≤ 0.05 graded
    geometrically (ratio 1/2, down to 1e−12) towards every piece end: independent of both paths. For |c|
    below the range of d the poles ζ of c/(c − d(ζ)) lie beyond the ends or off the axis, at distance δ > 0
    from the piece; the graded panels next to an end are then a few widths from ζ and converge like
    ρ^{−40}, ρ ≳ 3 (to rounding). Graded the same way towards each double zero z0 of d (gelu), where the poles
    of small c lie, ~√(|c|/κ) off the axis (≥ 1e−7 here, far above the finest panel)."""
    g, gw = np.polynomial.legendre.leggauss(20)
    value = np.zeros(c.shape, complex)
    slope = np.zeros(c.shape, complex)
    for rule in factor.rules:
        lo, hi = rule.piece.lo, rule.piece.hi
        grade = 0.5 ** np.arange(1, 40)
        grade = grade[grade >= 1e-12]
        inner = np.linspace(lo + 0.5, hi - 0.5, max(2, int((hi - lo - 1.0) / 0.05) + 1))
        # graded the same way towards the double zeros of d (gelu), where the poles of small c lie
        zeros = [zc for zc, dc, _ in rule.critical if dc <= 1e-12 * factor.xmax]
        near_zero = [zc + sign * np.concatenate([grade, [0.0]]) for zc in zeros for sign in (-1.0, 1.0)]
        edges = np.unique(np.concatenate([[lo, hi], lo + grade, hi - grade, inner] + near_zero))
        edges = edges[(edges >= lo) & (edges <= hi)]
        half = 0.5 * np.diff(edges)
        z = ((0.5 * (edges[:-1] + edges[1:]))[:, None] + half[:, None] * g[None, :]).ravel()
        w = (half[:, None] * gw[None, :]).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        d = np.real(rule.piece.jet(z.astype(complex))[0])
        inverse = c[:, None] / (c[:, None] - d[None, :])  # 1/(1 − u d)
        value += inverse @ w
        slope += (inverse * (inverse - 1.0)) @ w  # u d/(1 − u d)² = (1 − u d)^{−2} − (1 − u d)^{−1}
    for loc, mass in zip(factor._atom_x, factor._atom_m):
        inverse = c / (c - loc)
        value += mass * inverse
        slope += mass * inverse * (inverse - 1.0)
    return value, slope


@pytest.mark.parametrize("name,q", [("tanh", 0.05), ("erf", 0.05)] + [(n, q) for n in ("tanh", "erf", "sigmoid", "selu") for q in (1.3, 3.0)])
def test_inverse_rule_below_the_range(name: str, q: float) -> None:
    """|c| = |1/u| at and below the bottom a of the range of d (the product's hard edge at 0), where the rule of
    s = a/d is used: against the dense Gauss–Legendre reference of :func:`_dense_reference`, to 1e−12
    relative (value) and 1e−11 (slope: relative to max(|u ψ'|, |1 + ψ|)). Error budget: the rule's
    ρ^{−2n} ≲ 1.3e−17 relative to E[a/d] (module docstring of _smooth_law) plus its discretisation (measured
    ≤ 3e−14, erf at q = 3, whose s-weighted measure sits at |z| → 9) plus the reference's rounding. The
    quadrature path is not the reference here: it is off by up to 0.6 there (erf at q = 3), its 10-point panels
    not resolving φ(z)/d(z) ∝ e^{(2q − 1/2) z²}."""
    factor = _factor(name, q)
    rule = factor.gauss_rule
    assert rule.inverse_tiers is not None
    a = rule.a
    theta = np.linspace(0.0, math.pi, 7)
    modulus = a * np.geomspace(1e-10, 4.0, 9)
    c = (modulus[:, None] * np.exp(1j * theta[None, :])).ravel()
    c = c[(np.abs(c) <= 0.5 * a) | (np.angle(c) >= 0.5)]  # real c inside the range: a pole on the piece
    u = 1.0 / c
    u = u.real + 1j * np.minimum(u.imag, -0.0)
    c = 1.0 / u
    by_inverse = (rule.inverse_rho(u) >= RHO_MIN) & (rule.rho(u) < RHO_MIN)  # taken by the rule of a/d
    assert by_inverse.sum() >= 30
    u = u[by_inverse]
    c = 1.0 / u
    value, slope = factor.one_plus_psi(u)
    ref_value, ref_slope = _dense_reference(factor, c)
    assert np.max(np.abs(value - ref_value) / np.abs(ref_value)) <= 1e-12
    assert np.max(np.abs(slope - ref_slope) / np.maximum(np.abs(ref_slope), np.abs(ref_value))) <= 1e-11


def test_no_inverse_rule_where_d_vanishes() -> None:
    """gelu's φ' has a zero, so E[1/d] = ∞ and the grid's minimum of d is no lower bound: no rule of a/d."""
    assert _factor("gelu", 0.57).gauss_rule.inverse_tiers is None


@pytest.mark.parametrize("name,q,ratio", [("tanh", 3.0, 5j), ("erf", 0.57, -0.5)])
def test_inverse_rule_against_mpmath(name: str, q: float, ratio: complex) -> None:
    """c = ratio · a (a: the bottom of the range of d) against 25-digit mpmath on panels graded towards the
    ends (1e−13 value, 2e−13 slope)."""
    factor = _factor(name, q)
    c = complex(ratio * factor.gauss_rule.a)
    u = np.array([1.0 / c])
    r = mpmath.sqrt(q)
    d = {"tanh": lambda z: mpmath.sech(r * z) ** 4, "erf": lambda z: 4 / mpmath.pi * mpmath.exp(-2 * r * r * z * z)}[name]
    with mpmath.workdps(25):
        cm = mpmath.mpc(c.real, c.imag)
        ends = [9 - mpmath.mpf(2) ** -k for k in range(1, 12)]
        points = [-9] + [-e for e in ends] + list(mpmath.linspace(-8.5, 8.5, 69)) + ends[::-1] + [9]
        points = sorted(set(points))
        value = mpmath.quad(lambda z: mpmath.npdf(z) * cm / (cm - d(z)), points)
        slope = mpmath.quad(lambda z: mpmath.npdf(z) * cm * d(z) / (cm - d(z)) ** 2, points)
    v, s = factor.one_plus_psi(u)
    assert abs(v[0] - complex(value)) <= 1e-13 * abs(complex(value))
    assert abs(s[0] - complex(slope)) <= 2e-13 * abs(complex(slope))


def _no_warm_start(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(x.shape, complex), np.zeros(x.shape, bool)


def test_solver_shortcuts_match_the_plain_continuation(monkeypatch) -> None:
    """The free-product solver's shortcuts for smooth laws — warm starts from remembered (t, τ_j), a first pass
    from seeds, tangent steps of 1/64 deep in the η-continuation — against the plain continuation (every
    point cold, steps of 1/4), depth-6 tanh on a fresh law: densities at 48 points from 1e−250 of the support
    to its top, then at 47 points 1e−3 away (warm). Both solve the same equations to Newton's tolerance
    (~1e−13 in t): 1e−11 relative."""
    import rmt_init.theory._free_solver as free_solver

    lo, hi = jacobian_spectrum(6, "tanh", sigma_b2=0.05).support
    assert lo == 0.0
    x = np.concatenate([hi * np.geomspace(1e-250, 1e-3, 12), np.linspace(0.0, hi, 38)[1:-1]])
    shipped = jacobian_spectrum(6, "tanh", sigma_b2=0.05)
    p = shipped.pdf(x)
    assert shipped._solutions["taus"].shape == (1, shipped._solutions["log_x"].size) > (1, 0)  # τ remembered
    x_warm = x * (1.0 + 1e-3 * np.random.default_rng(3).random(x.size))
    x_warm = x_warm[x_warm < hi]
    _, accepted = shipped._solve_warm(x_warm)
    assert accepted.mean() > 0.9  # the warm path is really taken
    p_warm = shipped.pdf(x_warm)
    monkeypatch.setattr(free_solver, "_DEEP_ETA", 0.0)
    monkeypatch.setattr(free_solver, "_SEED_MIN", 10**9)
    plain = jacobian_spectrum(6, "tanh", sigma_b2=0.05)
    plain._solve_warm = _no_warm_start
    reference = plain.pdf(np.concatenate([x, x_warm]))
    assert np.max(np.abs(np.concatenate([p, p_warm]) / reference - 1.0)) <= 1e-11


# the composite rule of log d (log-ranges over 60: erf and sigmoid at large q): q of depth-6 defaults
_WIDE = [("erf", 1.31182), ("sigmoid", 45.6243)]


def _mp_wide_d(name: str, q: float):
    r = mpmath.sqrt(q)
    if name == "erf":
        return lambda z: 4 / mpmath.pi * mpmath.exp(-2 * r * r * z * z)
    return lambda z: (mpmath.exp(-r * z) / (1 + mpmath.exp(-r * z)) ** 2) ** 2  # σ'(x) = σ(1 − σ)


def _wide_grid(factor: GaussianImageS, rng: np.random.Generator, n: int) -> np.ndarray:
    """u with c = 1/u small (|c| from 2a to b/2, a and b the ends of the range of d) and arg c from 1 to π."""
    a, b = factor.gauss_rule.a, factor.gauss_rule.b
    c = np.exp(rng.uniform(math.log(2 * a), math.log(0.5 * b), n) + 1j * rng.uniform(1.0, math.pi, n))
    c[::5] = -c[::5].real * np.abs(c[::5]) / np.abs(c[::5].real)  # real and negative c (negative u)
    u = 1.0 / c
    return u.real + 1j * np.minimum(u.imag, -0.0)


@pytest.mark.parametrize("name,q", _WIDE)
def test_panel_rule_against_dense_quadrature(name: str, q: float) -> None:
    """Where the composite rule of log d is taken (its bound ≤ 1e−14·|1 + ψ|), against the dense Gauss–Legendre
    reference of :func:`_dense_reference` to 1e−12 (value) and 1e−11 (slope). Error budget: the rule's own
    bound (≤ 1e−14 relative), its discretisation in z (|Im log d| ≤ 1/2 on the 32-node panels' ellipses:
    ≲ e^{−64} relative to the local mass) and the reference's, which loses accuracy only where 1 + ψ is carried
    by the last panels of z (|c| within e^{30} of a for erf: excluded, checked against mpmath below)."""
    factor = _factor(name, q)
    rule = factor.gauss_rule
    assert rule.log_rule is None and rule.panels is not None  # the log-range is over 60
    u = _wide_grid(factor, np.random.default_rng(7), 300)
    c = 1.0 / u
    u, c = u[np.abs(c) >= rule.a * math.exp(30.0)], c[np.abs(c) >= rule.a * math.exp(30.0)]
    value, slope = factor.one_plus_psi(u)
    ref_value, ref_slope = _dense_reference(factor, c)
    used = (rule.rho(u) < RHO_MIN) & (rule.inverse_rho(u) < RHO_MIN) & (rule.panel_bound(u) <= 1e-14 * np.abs(ref_value))
    assert used.sum() >= 100  # the rule really covers most of the product's lower edge
    assert np.max(np.abs(value - ref_value)[used] / np.abs(ref_value)[used]) <= 1e-12
    scale = np.maximum(np.abs(ref_slope), np.abs(ref_value))
    assert np.max(np.abs(slope - ref_slope)[used] / scale[used]) <= 1e-11


@pytest.mark.parametrize(
    "name,q,log_c,arg",
    [
        ("erf", 1.31182, -194.353, 2.2),  # 1 + ψ ≈ 1e−17, carried by z ∈ [8.6, 9]: the dense reference is off there
        ("sigmoid", 45.6243, -80.0, 2.9),  # where the depth-6 product's lower edge puts 1/u
    ],
)
def test_panel_rule_against_mpmath(name: str, q: float, log_c: float, arg: float) -> None:
    """c = e^{log_c + i arg} on the composite rule of log d, against 20-digit mpmath on 0.05-wide panels, 0.01
    wide within 0.2 of ±Re ζ (ζ the poles of c/(c − d(ζ)), ≳ 0.05 off the axis here): 1e−13 (value) and 1e−12
    (slope)."""
    factor = _factor(name, q)
    u = np.array([complex(np.exp(-log_c - 1j * arg))])
    rule = factor.gauss_rule
    assert rule.rho(u)[0] < RHO_MIN and rule.inverse_rho(u)[0] < RHO_MIN  # not for the rules of d or a/d
    d = _mp_wide_d(name, q)
    lo, hi = factor.rules[0].piece.lo, factor.rules[0].piece.hi
    with mpmath.workdps(20):
        cm = 1 / mpmath.mpc(u[0].real, u[0].imag)
        points = list(mpmath.linspace(lo, hi, 361))
        # the real part of the poles: log d(x) = log |c| (d even in z for both activations)
        x = mpmath.findroot(lambda z: mpmath.log(d(z)) - mpmath.log(abs(cm)), 1.0 if name == "sigmoid" else 5.0)
        for sign in (1, -1):
            points += [sign * p for p in mpmath.linspace(abs(x) - 0.2, min(abs(x) + 0.2, hi), 41)]
        points = sorted(set(points))
        value = complex(mpmath.quad(lambda z: mpmath.npdf(z) * cm / (cm - d(z)), points))
        slope = complex(mpmath.quad(lambda z: mpmath.npdf(z) * cm * d(z) / (cm - d(z)) ** 2, points))
    v, s = factor.one_plus_psi(u)
    assert rule.panel_bound(u)[0] <= 1e-14 * abs(v[0])  # taken by the composite rule
    assert abs(v[0] - value) <= 1e-13 * abs(value)
    assert abs(s[0] - slope) <= 1e-12 * max(abs(slope), abs(value))
