"""Residual laws next to a hard edge at 0 far below the float resolution of 1 (docs/derivations.md §8.7(e, f)):
the block solver in the unknowns (κ, p = 1 + ψ) against references independent of it.

One linear Gaussian block, α = 1.5 (s = α²σ_w² = 2.25 > 1: −1 inside the Brown measure of αW). Reference: the
closed-form cubic u f(1 − s + sf)² − f + 1 = 0 (f = 1 + e, p = f(1 − s + sf) = 1 + ψ, u = 1/z; Dozier & Silverstein
2007), solved by mpmath at 60 + 1.5·log₁₀|u| digits. Exponent at 0: multiplied by z the cubic reads f(1 − s + sf)² = z(f − 1); at
z = 0 it has the double root f∞ = (s − 1)/s, so f − f∞ is a series in z^{1/2}, p = a₁z^{1/2} + a₂z + …, with
p² ≈ f∞(f∞ − 1)z = −(s − 1)z/s². G = p/z, so ρ(x) = x^{−1/2}h(x), h analytic, h(0) = √(s − 1)/(πs) = 0.1581694…
at s = 2.25, and F(x) = (2/π)(√(s − 1)/s)√x(1 + O(√x)).

With e as unknown, p = Φ + e was a difference of numbers near ±1, right only to ~1e−16 absolute: the density was
wrong below x ~ 1e−20 (ρ√x = 1.1e4 at 1e−40). Tolerances: 1e−10 relative (the solver's Newton ends at rounding,
~1e−15 relative in p by the conditioning argument of §8.7(f); the reference's digits leave ~1e−60).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from rmt_init.theory import ResidualBlockS, jacobian_spectrum, residual_block_law

S = 2.25


def _digits(magnitude: float) -> int:
    return int(60 + 1.5 * math.log10(max(magnitude, 1.0)))


def _cubic_roots(u: complex) -> list:
    """The roots f of u s² f³ + 2u s(1 − s) f² + (u(1 − s)² − 1) f + 1 = 0 (at the caller's precision, which must exceed
    1.5·log₁₀|u| digits: the roots near the double root f∞ differ by ~|u|^{−1/2})."""
    s, uu = mpmath.mpf(S), mpmath.mpc(u)
    return mpmath.polyroots([uu * s * s, 2 * uu * s * (1 - s), uu * (1 - s) ** 2 - 1, 1], maxsteps=4000, extraprec=2 * mpmath.mp.dps)


def _density_reference(x: float) -> float:
    """ρ(x) = |Im p|/(πx) from the conjugate pair of roots (real coefficients), p = f(1 − s + sf)."""
    with mpmath.workdps(_digits(1.0 / x)):
        s = mpmath.mpf(S)
        return float(max(abs(mpmath.im(f * (1 - s + s * f))) for f in _cubic_roots(1 / mpmath.mpf(x))) / (mpmath.pi * mpmath.mpf(x)))


@pytest.mark.parametrize("x", [1e-40, 1e-120, 1e-300])
def test_block_density_far_below_the_float_resolution_of_one(x: float) -> None:
    """ρ(x) at 1e−40 … 1e−300 against the cubic (and ρ√x → √(s − 1)/(πs), relative gap O(√x))."""
    law = residual_block_law(1.5, "linear")
    value = float(law.pdf(x))
    assert value == pytest.approx(_density_reference(x), rel=1e-10)
    assert value * math.sqrt(x) == pytest.approx(math.sqrt(S - 1.0) / (math.pi * S), rel=1e-12)


def test_block_psi_at_huge_u_matches_the_cubic() -> None:
    """1 + ψ at |u| = 1e20 … 1e200, lower half-plane and on the negative real axis (the real branch, where p ~ |u|^{−1/2}
    is real and positive), against the root of the cubic that the solver's p is closest to, that root being the
    physical one (the leading asymptotic's branch); and the solver's slope
    uψ'(u) → −p/2 (p ∝ u^{−1/2})."""
    block = ResidualBlockS(None, S)
    u = np.array([3e20 - 1e20j, -1e40 - 2e41j, 1e200 - 1e199j, -1e30 + 0j, -1e150 + 0j])
    value, slope = block.one_plus_psi(u)
    assert np.all(np.isfinite(value))
    for uu, v in zip(u, value):
        with mpmath.workdps(_digits(abs(uu))):
            s = mpmath.mpf(S)
            ps = [f * (1 - s + s * f) for f in _cubic_roots(complex(uu))]
            ref = min(ps, key=lambda p: abs(p - mpmath.mpc(v)))
            assert abs(v - complex(ref)) <= 1e-10 * abs(complex(ref))
    assert np.all(value[3:].imag == 0.0) and np.all(value[3:].real > 0)
    # the physical branch: p ≈ (√(s − 1)/s)(−u)^{−1/2}, principal root (Im p ≤ 0 for Im u < 0), relative gap O(|u|^{−1/2})
    leading = math.sqrt(S - 1.0) / S / np.sqrt(-u)
    assert np.all(np.abs(value / leading - 1.0) <= 10.0 / np.sqrt(np.abs(u)) + 1e-14)
    np.testing.assert_allclose(slope / value, -0.5, atol=1e-8)


def test_product_cdf_next_to_the_hard_edge_matches_the_closed_form_reference() -> None:
    """Linear blocks, α_l = 1/√l, l = 1…9 (the BN-ResNet's linear law, s_l = 1/l, mean 10): block 1 (s = 1) puts −1 on
    the edge of the Brown measure, ρ ≈ (√3/2π)C^{2/3}x^{−1/3} (C = 9) with corrections in powers of x^{1/3}
    (§8.7(d): relative gap ~(2/3)|1 + w|^{1/2}, |1 + w| ~ (Cx)^{2/3}), so ρ(t³)·3t² is smooth in t = x^{1/3} and
    F(x) = ∫₀^{x^{1/3}} 3t²ρ(t³) dt by 12-point Gauss–Legendre in t is exact to far below 1e−12 (the integrand varies on
    the scale t ~ C^{−1/3}); ρ from the closed-form S-transforms continued in w (``_product_density_reference``,
    independent of the block and product solvers). Tolerance 1e−9 absolute (1e−6 relative) at x = 1e−5 and 1e−20
    (the reference density's own error ~1e−13 relative, the law's cdf ~1e−12); cdf(0) = 0, cdf(edge) = 1, monotone
    and finite on a grid. (The cdf tables took many minutes before the (κ, p) unknowns; ~10 s now.)"""
    from tests.test_residual_hard_edge import _product_density_reference

    alphas = [1.0 / math.sqrt(l) for l in range(1, 10)]
    ss = [a * a for a in alphas]
    law = jacobian_spectrum(9, "linear", residual=alphas, weights="gaussian", sigma_w2=1.0, sigma_b2=0.0)
    g, gw = np.polynomial.legendre.leggauss(12)
    top = 1e-5 ** (1.0 / 3.0)
    t = 0.5 * top * (g + 1.0)
    rho = np.array([_product_density_reference(ss, float(v) ** 3) for v in t])
    mass_top = 0.5 * top * float(np.sum(gw * 3.0 * t * t * rho))
    # below 1e−20 the leading term is exact to ~x^{1/3} relative: F(1e−20) from the same nodes scaled down
    x = np.array([1e-20, 1e-5])
    values = law.cdf(x)
    assert abs(values[1] - mass_top) <= 1e-9 and values[1] == pytest.approx(mass_top, rel=1e-6)
    leading = 1.5 * math.sqrt(3.0) / (2.0 * math.pi) * 9.0 ** (2.0 / 3.0) * x[0] ** (2.0 / 3.0)
    assert values[0] == pytest.approx(leading, rel=20.0 * (9.0 * x[0]) ** (1.0 / 3.0))
    b = law.support[1]
    assert law.cdf(0.0) == 0.0 and abs(law.cdf(b) - 1.0) <= 1e-12  # the masses of 64 panels summed: rounding
    grid = np.concatenate([np.geomspace(1e-30, 1.0, 12), np.linspace(1.0, b, 12)[1:]])
    values = law.cdf(grid)
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) >= 0) and values[0] > 0 and abs(values[-1] - 1.0) <= 1e-12
