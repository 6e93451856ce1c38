"""Laws of d = φ'(√q z)² at large q: the window where d varies, its constant tails as atoms (issue 13).

At q = 1e12–1e16 (a depth-1000 gelu or selu residual stream) d changes only on |z| ≲ c/√q; the factor keeps that
window as its piece (panels of half the strip, tens to hundreds of them) and the tails, where d is its asymptote in
float64 (or below 1e−306), as point masses (rmt_init.theory.gaussian_image.constant_tails; docs/derivations.md §3.5).
References: dense Gauss–Legendre in x = √q z (the integrand is q-independent there but for the slowly varying
Gaussian weight), the exact moments of derivative_moments, the path before the change where it works (q = 1e4),
and the ReLU law that gelu's tends to as q → ∞.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import rmt_init
from rmt_init.theory import gaussian_image
from rmt_init.theory.activations import derivative_moments, get_activation
from rmt_init.theory.jacobian import _smooth_d_squared_factor

_T, _W = np.polynomial.legendre.leggauss(20)


def _dense_reference(name: str, q: float, lo: float, hi: float, u: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """∫_lo^hi g(z)/(1 − u d(z)) dz and ∫ g [(1 − u d)^{−2} − (1 − u d)^{−1}] dz by 20-point Gauss–Legendre on panels
    of width h in x = √q z (d(x) = φ'(x)², weight g(x/√q)/√q): no root subtraction, no window, no Gauss rule.
    The poles of the integrand lie ≥ Im c/max|d'| ≈ 0.02 from the real x-axis at the points used, so panels
    h ≤ 0.01 give ρ ≥ 4 and an error ≲ 4^{−40} ≈ 1e−24 per panel; the sums' rounding is ~1e−15 relative."""
    act = get_activation(name)
    root_q = math.sqrt(q)
    n = max(1, math.ceil((hi - lo) * root_q / h))
    edges = np.linspace(lo * root_q, hi * root_q, n + 1)
    half = 0.5 * (edges[1] - edges[0])
    x = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * _T[None, :]
    w = (half * _W[None, :] * np.exp(-0.5 * x * x / q) / math.sqrt(2.0 * math.pi) / root_q).ravel()
    d = np.real(act.dphi_jet(x.ravel())[0]) ** 2
    inverse = 1.0 / (1.0 - u[:, None] * d[None, :])
    value = inverse @ w
    return value, (inverse * inverse) @ w - value


def _pieces_part(factor, u: np.ndarray, fast: bool) -> tuple[np.ndarray, np.ndarray]:
    """The factor's 1 + ψ and u ψ' without its atoms (the window's contribution alone, ~1e−7–1e−5 of 1 + ψ: subtracting
    the atoms' closed forms afterwards would leave rounding of ~1e−16/1e−7 relative). The atoms are the factor's
    ``_atom_x``, ``_atom_m`` (added exactly, m/(1 − u a), after the pieces' sums); emptied on this copy of it."""
    factor._atom_x, factor._atom_m = np.zeros(0), np.zeros(0)
    if not fast:
        factor.gauss_rule = None  # the pole-subtracted quadrature everywhere (the reference path of the factor)
    return factor.one_plus_psi(u)


def _points(top: float) -> np.ndarray:
    """u = 1/c for c across the range of d (Im c = 0.02·top: the bulk of a density solve) and off it."""
    c = np.concatenate([np.linspace(0.02, 1.05, 9) * top + 0.02j * top, np.array([2.0, -1.0, 0.5j, 0.3 + 0.05j]) * top])
    return 1.0 / c


@pytest.mark.parametrize("name, q, h", [("gelu", 1e12, 0.005), ("gelu", 1e16, 0.005), ("selu", 1e12, 0.01)])
@pytest.mark.parametrize("fast", [True, False])
def test_window_against_dense_gauss_legendre(name: str, q: float, h: float, fast: bool) -> None:
    """The window's part of 1 + ψ and u ψ' on both paths (the law's Gauss rules, the pole-subtracted quadrature)
    against dense Gauss–Legendre in x. Measured: ≤ 2e−12 (value) and ≤ 1.1e−11 (slope, selu next to the top of
    its range, where the reference's own spread at h and h/2.5 is 3e−11); the tolerance is 1e−10. Before the
    discretisation panels were capped at the strip, selu's fast path was off by 3e−4 (its e^{2√q z} is periodic
    in Im z, and the one-point ellipse test aliased)."""
    factor = _smooth_d_squared_factor(get_activation(name), q, None)
    assert len(factor.rules[0].z) < 10_000  # the window, not [−9, 9]
    piece = factor.rules[0].piece
    u = _points(factor.xmax)
    value, slope = _pieces_part(factor, u, fast)
    ref_value, ref_slope = _dense_reference(name, q, piece.lo, piece.hi, u, h)
    assert np.max(np.abs(value - ref_value) / np.abs(ref_value)) < 1e-10
    assert np.max(np.abs(slope - ref_slope) / np.abs(ref_slope)) < 1e-10


@pytest.mark.parametrize("name", ["gelu", "selu", "tanh"])
def test_atoms_and_window_carry_the_exact_moments(name: str) -> None:
    """Mass 1 and E d^k, k = 1…3, of atoms + window at q = 1e12 against derivative_moments (closed form for selu,
    scipy quadrature in h for gelu and tanh, ~1e−14 relative; tanh's E d³ ~ 3e−7 is all window, measured 9e−13).
    Tolerance 5e−12. The tails are constant: d on the cut-off parts equals the atom's location (0: ≤ 1e−306)."""
    act = get_activation(name)
    q = 1e12
    factor = _smooth_d_squared_factor(act, q, None)
    assert factor.atoms, "the tails were not made atoms"
    mass = sum(m for _, m in factor.atoms) + sum(float(r.gw.sum()) for r in factor.rules)
    assert abs(mass - 1.0) < 1e-15 + 2.3e-19 * 2  # (the pieces end at |z| = 9: 2.3e−19 beyond each end)
    for k in (1, 2, 3):
        moment = sum(a**k * m for a, m in factor.atoms) + sum(float(np.dot(r.gw, r.d**k)) for r in factor.rules)
        exact = derivative_moments(act, q, k)
        assert abs(moment / exact - 1.0) < 5e-12, (k, moment, exact)
    piece = factor.rules[0].piece
    lo = np.linspace(-9.0, piece.lo, 1001)[:-1]
    d_lo = np.real(act.dphi_jet(math.sqrt(q) * lo)[0]) ** 2
    assert np.all(d_lo <= gaussian_image.TAIL_ZERO)
    if name != "selu":  # selu's piece ends at z = 0 (its z > 0 half is the atom at λ² already)
        hi = np.linspace(piece.hi, 9.0, 1001)[1:]
        d_hi = np.real(act.dphi_jet(math.sqrt(q) * hi)[0]) ** 2
        assert np.all(d_hi == d_hi[-1])


def test_window_equals_the_whole_piece_where_that_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """gelu at q = 1e4 on its whole piece (3600 panels on [−9, 9], forced: the path before, which works there) against
    the same law with its tails made atoms (71 panels; the default there): measured ≤ 2.3e−15 (value) and ≤ 4.5e−15 (slope)
    relative at Im c = 0.02·top on both paths; tolerance 1e−12."""
    act = get_activation("gelu")
    q = 1e4
    monkeypatch.setattr(gaussian_image, "TAIL_ATOMS_FROM", 10**9)
    whole = _smooth_d_squared_factor(act, q, None)
    monkeypatch.setattr(gaussian_image, "TAIL_ATOMS_FROM", 0)
    window = _smooth_d_squared_factor(act, q, None)
    assert not whole.atoms and len(window.atoms) == 2 and len(window.rules[0].z) < len(whole.rules[0].z) / 40
    c = np.linspace(0.02, 1.05, 25) * whole.xmax + 0.02j * whole.xmax
    u = 1.0 / c
    for fast in (True, False):
        if not fast:
            whole.gauss_rule = window.gauss_rule = None
        v0, s0 = whole.one_plus_psi(u)
        v1, s1 = window.one_plus_psi(u)
        assert np.max(np.abs(v1 - v0) / np.abs(v0)) < 1e-12
        assert np.max(np.abs(s1 - s0) / np.abs(s0)) < 1e-12


def test_shallow_gelu_stack_at_large_q_tends_to_relu() -> None:
    """A depth-2 gelu residual stack at q0 = 1e16: d is ReLU's two-point law up to a window of mass ~1e−7, so the
    Jacobian law is ReLU's (closed-form two-point factors) to that order. Measured (depth 1): pdf equal to 3e−9
    relative at interior points, edges to 2e−9; tolerance 1e−6. No NaN, positive."""
    gelu = rmt_init.jacobian_spectrum(2, "gelu", residual=0.5, q0=1e16, sigma_w2=1.0)
    relu = rmt_init.jacobian_spectrum(2, "relu", residual=0.5, sigma_w2=1.0)
    a, b = relu.support
    assert np.allclose(gelu.support, relu.support, rtol=1e-6, atol=0.0)
    x = a + (b - a) * np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    p_gelu, p_relu = gelu.pdf(x), relu.pdf(x)
    assert np.all(np.isfinite(p_gelu)) and np.all(p_gelu > 0)
    assert np.max(np.abs(p_gelu / p_relu - 1.0)) < 1e-6


def test_cdf_table_of_a_density_it_does_not_resolve_refuses() -> None:
    """A density with a jump (gelu's near-ReLU laws at large q have a spike where ReLU's has its gap at x = 1) makes
    the truncated cosine series wiggle: density 0 on [1, 1.5), 2 on [1.5, 2] stops at N = 1024 with its own error
    estimate 5e−4 (Gibbs), and its quantiles were off by 2.5e−4. Such a table now refuses (FloatingPointError), so the
    residual law takes the generic adaptive tables; the quantile interpolator still keeps only the points above every
    earlier one (scipy's PchipInterpolator refused the wiggling ones), which a resolved table leaves unchanged."""
    from rmt_init.theory.residual import SoftEdgeTable

    with pytest.raises(FloatingPointError, match="not resolved"):
        SoftEdgeTable(lambda x: np.where(x < 1.5, 0.0, 2.0), 1.0, 2.0)
