"""The rule of d's branches to 0 in v = log d (:class:`rmt_init.theory._smooth_law.DeepRule`) against independent
references: 1 + ψ(u) and u ψ'(u) of the law of d = φ'(√q z)², z ~ N(0, 1), for small c = 1/u near the positive axis
(the product's hard edge at 0), where the composite rule of log d does not converge and the pole-subtracted
quadrature in z is off (its poles ζ_k of 1/(1 − u d) lie 2π/|v'(z)| apart in the tails and it subtracts one).

Reference: dense composite Gauss–Legendre in z (16 nodes on panels of width 1.8e−4 over [−9, 9], 1.6M nodes), which
resolves the tails' poles at distance arg c/|v'(z)| ≥ 4e−4 from the axis (ρ ≥ 5 per panel: ≤ 1e−16 relative);
measured equal to 30-digit mpmath (breakpoints at the real root of d = |c| and at z0 ± 10^{−k}) to 1e−15 at the
gelu points below. It is not used where |c| ≥ 1e−30 for gelu (the poles near its double zero z0 lie √|c| from it).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init import jacobian_spectrum
from rmt_init.theory.activations import get_activation
from rmt_init.theory.gaussian_image import GaussianImageS
from rmt_init.theory.jacobian import _d_squared_factor

_T16, _W16 = np.polynomial.legendre.leggauss(16)


def _dense_reference(factor: GaussianImageS, c: complex) -> tuple[complex, complex]:
    """(1 + ψ, u ψ') = (E[F], E[F(F − 1)]), F = c/(c − d(z)), by dense Gauss–Legendre in z on the factor's piece."""
    (rule,) = factor.rules
    lo, hi, jet = rule.piece.lo, rule.piece.hi, rule.piece.jet
    value = slope = 0.0
    edges = np.linspace(lo, hi, 100_001)
    for block in np.array_split(np.arange(edges.size - 1), 20):  # blocks of panels (memory)
        a, b = edges[block], edges[block + 1]
        z = ((0.5 * (a + b))[:, None] + (0.5 * (b - a))[:, None] * _T16[None, :]).ravel()
        half = np.repeat(0.5 * (b - a), _T16.size)
        z, w16 = z, np.tile(_W16, block.size) * half
        w = w16 * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        d = np.real(jet(z.astype(complex))[0])
        f = c / (c - d)
        value += np.sum(w * f)
        slope += np.sum(w * f * (f - 1.0))
    return complex(value), complex(slope)


# (activation, q, log|c|, arg c): gelu at its depth-1 σ_b² = 0.5 fixed point (q* = 21.96: its hard edge reaches
# |c| ~ 1e−270), erf at q = 1.3 and tanh at q = 1.97 (their tails: erf's quadrature was off by up to 4e−2 there)
CASES = [
    ("gelu", 21.961857738078642, -100 * math.log(10.0), 0.1),
    ("gelu", 21.961857738078642, -250 * math.log(10.0), 0.1),
    ("gelu", 21.961857738078642, -60 * math.log(10.0), 1.5),
    ("erf", 1.3, -148.0, 0.1),
    ("erf", 1.3, -148.0, 1.5),
    ("tanh", 1.97103, -25.4, 0.02),
]


@pytest.mark.parametrize("name,q,log_abs_c,arg", CASES)
def test_deep_rule_matches_dense_quadrature(name: str, q: float, log_abs_c: float, arg: float) -> None:
    """The factor's 1 + ψ and u ψ' (which take the deep rule at these points) against the dense reference: 1e−13
    relative (value) and 1e−12 relative to max(|u ψ'|, |1 + ψ|) (slope); measured ≤ 3e−15 and ≤ 9e−14."""
    factor = _d_squared_factor(get_activation(name), q)
    c = math.exp(log_abs_c) * complex(math.cos(arg), math.sin(arg))
    u = np.array([1.0 / c])
    deep = factor.gauss_rule.deep
    assert deep is not None and deep.covers(u)[0]
    value, slope = factor.one_plus_psi(u)
    assert np.allclose((value, slope), deep.one_plus_psi(u), rtol=0.0, atol=0.0)  # the deep rule was the one used
    ref_value, ref_slope = _dense_reference(factor, c)
    assert abs(value[0] - ref_value) <= 1e-13 * abs(ref_value)
    assert abs(slope[0] - ref_slope) <= 1e-12 * max(abs(ref_slope), abs(ref_value))


def test_deep_rule_on_the_negative_axis_is_finite_and_accurate() -> None:
    """c real and negative with Im u = +0 (arg c = −π: the solver's Newton probes there): the pole is π from the axis,
    and the rule's plain sum serves (no subtraction, whose interpolant extrapolated that far divided 0 by 0 before):
    finite at 40 points, and against the dense reference at 3 of them 1e−13 (value) and 1e−12 (slope; the quadrature
    path is off by up to 1.2e−12 there, measured)."""
    factor = _d_squared_factor(get_activation("tanh"), 1.97103)
    u = -np.exp(np.linspace(4.0, 35.0, 40)) + 0j
    deep = factor.gauss_rule.deep
    assert deep.covers(u).all()
    value, slope = deep.one_plus_psi(u)
    assert np.all(np.isfinite(value) & np.isfinite(slope))
    for i in (0, 20, 39):
        ref_value, ref_slope = _dense_reference(factor, complex(1.0 / u[i]))
        assert abs(value[i] - ref_value) <= 1e-13 * abs(ref_value)
        assert abs(slope[i] - ref_slope) <= 1e-12 * max(abs(ref_slope), abs(ref_value))


def test_deep_rule_carries_the_whole_mass() -> None:
    """The grid of the branches to 0, the rest (d ≥ T) and the atom at 0 (gelu's underflowed tail) add up to the
    piece's Gaussian mass (checked at construction to 1e−13; here against erf(9/√2) itself)."""
    factor = _d_squared_factor(get_activation("gelu"), 21.961857738078642)
    deep = factor.gauss_rule.deep
    total = deep.mass + deep.rest_mass + deep.zero_mass
    assert total == pytest.approx(math.erf(9.0 / math.sqrt(2.0)), abs=1e-13)
    assert deep.zero_mass > 0.0 and deep.edges[-1] < math.log(0.0166)  # below gelu's local maximum of d


def test_hard_edge_density_with_the_deep_rule_matches_the_quadrature_path() -> None:
    """Depth-1 tanh (σ_b² = 0.5): the density at 12 points next to the hard edge at 0 (1e−12 … 1e−3 of the support),
    where the factor's c = 1/u lies deep in the tails of d near the positive axis, against the same law with the deep
    rule off (the quadrature there, accurate for tanh: its tail poles lie 2π/(4√q) ≈ 1.1 apart in z): 1e−10 (the
    solver's Newton stops at ~1e−13 in t); and the cdf tables' total mass is 1 to 1e−9 with no NaN."""
    law = jacobian_spectrum(1, "tanh", sigma_b2=0.5)
    hi = law.support[1]
    x = hi * np.geomspace(1e-12, 1e-3, 12)
    p = law.pdf(x)
    tables = law._cdf_tables
    assert sum(float(below[-1]) for _, below, _ in tables) + sum(m for _, m in law.atoms) == pytest.approx(1.0, abs=1e-9)
    assert not any(np.isnan(np.concatenate(t)).any() for t in tables)
    reference = jacobian_spectrum(1, "tanh", sigma_b2=0.5)
    for term in reference.terms:
        if isinstance(term.factor, GaussianImageS):
            term.factor.deep_rule = False
    p_ref = reference.pdf(x)
    assert np.all(p_ref > 0) and np.max(np.abs(p / p_ref - 1.0)) <= 1e-10
