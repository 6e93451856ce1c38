"""Arbitrary-precision Fuss–Catalan reference for the tests, written independently of the package.

Expectations are integrals over the angle u = π/(s+1) − φ ∈ (0, π/(s+1)) of the parametrisation
(Haagerup & Möller 2012): E[f(λ)] = ∫ f(x) ρ(x) |dx/du| du. The density in u is smooth, so mpmath's
tanh-sinh quadrature converges fast even where ρ is singular in x; the singular end of f(x) (x → 0)
sits at u = 0, where tanh-sinh places its nodes without cancellation. The parametrisation itself is
cross-checked against Penson & Życzkowski's Meijer G form in test_fuss_catalan.py.
"""
from __future__ import annotations

import mpmath


def _top(s: int):
    return mpmath.pi / (s + 1)


def x_of_u(s: int, u):
    phi = _top(s) - u
    return mpmath.sin((s + 1) * u) ** (s + 1) / (mpmath.sin(phi) * mpmath.sin(s * phi) ** s)


def weight(s: int, u):
    """ρ(x(u)) |dx/du| (the law's density in u)."""
    phi = _top(s) - u
    rho = mpmath.sin(phi) ** 2 * mpmath.sin(s * phi) ** (s - 1) / (mpmath.pi * mpmath.sin((s + 1) * u) ** s)
    # d log x / dφ, with cot((s+1)φ) = −cot((s+1)u)
    dlog = -((s + 1) ** 2) * mpmath.cot((s + 1) * u) - mpmath.cot(phi) - s**2 * mpmath.cot(s * phi)
    return rho * x_of_u(s, u) * abs(dlog)


def expectation(s: int, f, dps: int = 30, power: int = 8):
    """E[f(λ)], with u = v^power so that f(x) ~ x^t (t > −1/(s+1)) stays integrable smoothly at 0."""
    with mpmath.workdps(dps):
        top = _top(s)

        def integrand(v):
            u = v**power
            return f(x_of_u(s, u)) * weight(s, u) * power * v ** (power - 1)

        end = top ** (mpmath.mpf(1) / power)
        return mpmath.quad(integrand, [0, end / 2, end])


def u_of_x(s: int, x, dps: int = 30):
    """u with x(u) = x by bisection on log x(u) (increasing in u)."""
    with mpmath.workdps(dps):
        target = mpmath.log(mpmath.mpf(x))
        lo, hi = mpmath.mpf(0), _top(s)
        for _ in range(4 * dps + 1100):  # enough halvings for x down to 1e-300 at any depth
            mid = (lo + hi) / 2
            if mid == lo or mid == hi:
                break
            if mpmath.log(x_of_u(s, mid)) < target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2


def mass_below(s: int, x, dps: int = 30):
    """P(λ ≤ x) = ∫_0^{u(x)} weight du."""
    with mpmath.workdps(dps):
        return mpmath.quad(lambda u: weight(s, u), [0, u_of_x(s, x, dps)])


def mass_above(s: int, x, dps: int = 30):
    """P(λ > x) = ∫_{u(x)}^{π/(s+1)} weight du."""
    with mpmath.workdps(dps):
        return mpmath.quad(lambda u: weight(s, u), [u_of_x(s, x, dps), _top(s)])
