"""The distribution function of one residual block with a hard edge at 0 and a square-root upper edge
(docs/derivations.md §8.7(g)).

One linear Gaussian block, α = 1.5 (s = α² = 2.25 > 1: −1 inside the Brown disc of αW, ρ ~ x^{−1/2} at 0). Its upper
edge b is a branch point of the block's ψ, |∂ψ/∂τ| ~ |u − 1/b|^{−1/2}: there the free-product Newton's residual
ρ = ψ(u) − s w could not fall below the rounding of τ = log u times |∂ψ/∂τ| (1e−12 at 1e−6 of the edge), so it never
converged, the η-continuation refined every step, and the cdf tables took many minutes.

Reference: the closed-form cubic u s² f³ + 2us(1 − s)f² + (u(1 − s)² − 1)f + 1 = 0 (f = 1 + e, p = f(1 − s + sf) =
1 + ψ, u = 1/x; Dozier & Silverstein 2007), ρ = |Im p|/(πx) from its complex pair of roots (mpmath, 40 + 1.5·log₁₀(1/x)
digits), and F(x) = ∫₀^{√x} 2yρ(y²) dy by mpmath's tanh–sinh (2yρ(y²) is analytic in y = √x at 0: p is a series in
z^{1/2} there; the square-root singularity at b is an endpoint of the last panel).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np

from rmt_init.theory import residual_block_law

S = 2.25


def _density(x: mpmath.mpf) -> mpmath.mpf:
    dps = int(40 + 1.5 * max(0.0, -float(mpmath.log10(x))))
    with mpmath.workdps(dps):
        s, u = mpmath.mpf(S), 1 / mpmath.mpf(x)
        roots = mpmath.polyroots([u * s * s, 2 * u * s * (1 - s), u * (1 - s) ** 2 - 1, 1], maxsteps=4000, extraprec=2 * dps)
        return max(abs(mpmath.im(f * (1 - s + s * f))) for f in roots) / (mpmath.pi * mpmath.mpf(x))


def _cdf_reference(points: list[float]) -> mpmath.mpf:
    """∫ 2yρ(y²) dy over the panels ``points`` (in y = √x), at 20 digits."""
    with mpmath.workdps(20):
        return mpmath.quad(lambda y: 2 * y * _density(y * y), points)


def test_newton_converges_next_to_the_upper_edge() -> None:
    """At 1e−6 and 1e−8 of b below the edge the η-continuation reports convergence, and Newton at z = x + iη
    (η = 1e−3 … 1e−4 of the distance) from that solution converges: before, the continuation came back unconverged
    and Newton failed at η = 1e−3 and 3e−4 of the distance (its residual pinned at the rounding of τ × |∂ψ/∂τ|)."""
    law = residual_block_law(1.5, "linear")
    b = law.support[1]
    for d in (1e-6, 1e-8):
        x = np.array([b * (1.0 - d)])
        t, ok, taus = law._continue_eta(x, 0.25)
        assert ok.all()
        for eta in (1e-3 * d * b, 3e-4 * d * b, 1e-4 * d * b):
            assert law._newton(x + 1j * eta, t, taus)[2].all()


def test_block_cdf_against_the_cubic() -> None:
    """cdf at 1e−8, 0.5, b/2 and b(1 − 1e−4), and the mass 1, against the cubic's density integrated in mpmath, to 1e−9
    absolute (measured: ≤ 2e−15, and for α = 1.2, 2, 3 too; the reference's quadrature is good to ~1e−18)."""
    law = residual_block_law(1.5, "linear")
    a, b = law.support
    assert a == 0.0 and b > 12.0
    xs = [1e-8, 0.5, 0.5 * b, b * (1.0 - 1e-4)]
    values = law.cdf(np.array(xs))
    for x, value in zip(xs, values):
        assert abs(value - float(_cdf_reference([0, math.sqrt(x)]))) <= 1e-9, x
    assert abs(float(_cdf_reference([0, 1, math.sqrt(b)])) - 1.0) <= 1e-12  # the reference's own mass
    assert abs(law.cdf(b) - 1.0) <= 1e-9 and law.cdf(0.0) == 0.0
    assert np.all(np.diff(law.cdf(np.linspace(0.0, b, 9))) > 0)
