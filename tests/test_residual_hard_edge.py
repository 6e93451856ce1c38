"""Residual laws next to a hard edge at 0 (docs/derivations.md §8.7(d)): the block solver at large |u|, where
e → −1 and 1 + ψ = Φ + e → 0, and the density of a product whose first block (α = 1) has a hard edge.

References, independent of the κ-e solver: the linear Gaussian block's closed form (Dozier & Silverstein 2007:
s e² + (1 + s)e = w, S_F(w) = e(1 + e)/(w(1 + w))), used (a) as a cubic in f = 1 + e for one block's 1 + ψ and (b) for
the product's ψ by η-continuation in w from far above the spectrum down to x + i0 (Newton from the previous point at
each step, the step halved when the residual grows), and the leading hard-edge asymptotic ρ(x) ≈ (√3/2π)C^{2/3}x^{−1/3}
(S_{F_1}(w) ≈ (1 + w)^{−1/2} at s = 1, the other blocks S_l(−1) = 1/(1 − s_l), C = Π_l 1/(1 − s_l)).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from rmt_init.theory import ResidualBlockS, jacobian_spectrum, residual_block_law


def _block_reference(s: float, u: complex) -> complex:
    """1 + ψ of a linear Gaussian block at u (Im u < 0): p = 1 + w = f(1 − s + sf), f = 1 + e, from
    u p² = e(1 + e), i.e. u f(1 − s + sf)² − f + 1 = 0 (the root e = −1 divided out). The physical root is followed
    from u·1e−6 (where f ≈ 1 + u) along the ray to u, nearest root at each step, in 30-digit arithmetic."""
    with mpmath.workdps(30):
        s, target = mpmath.mpf(s), mpmath.mpc(u)
        f = 1 + target * mpmath.mpf("1e-6")
        for r in np.geomspace(1e-6, 1.0, 200):
            uu = target * mpmath.mpf(r)
            # u s² f³ + 2u s(1 − s) f² + (u(1 − s)² − 1) f + 1
            roots = mpmath.polyroots([uu * s * s, 2 * uu * s * (1 - s), uu * (1 - s) ** 2 - 1, 1], maxsteps=200, extraprec=60)
            f = min(roots, key=lambda root: abs(root - f))
        return complex(f * (1 - s + s * f))


@pytest.mark.parametrize(("s", "u"), [(1 / 3, -28.78534902 - 595.5081062j), (0.5, 3e4 - 2e4j), (0.9, -1e6 - 3e5j),
                                      (1.0, 1.1e4 - 135.2j)])
def test_block_at_large_u_matches_the_closed_form(s: float, u: complex) -> None:
    """At |u| ≫ 1 the block's 1 + ψ is ~1/|u| (s < 1) or ~|u|^{−2/3} (s = 1), a difference of numbers near ±1.
    The first point is where a block of the depth-9 product below came back NaN (its Newton test could not pass at
    the rounding of e ≈ −1), which left the free product's iterate unconverged. Tolerance 1e−12 relative: the
    cancellation-free polish gives ~1e−15 (measured), the unpolished Φ + e only ~1e−16/|1 + ψ| (up to 1e−10 here)."""
    value = ResidualBlockS(None, s).one_plus_psi(np.array([u]))[0][0]
    reference = _block_reference(s, u)
    assert abs(value - reference) <= 1e-12 * abs(reference)


def _product_density_reference(ss: list[float], x: float) -> float:
    """ρ(x) = −Im w/(πx) for the free product of linear Gaussian blocks with s_l = ss, w = ψ(1/z) at z = x + i0, by
    η-continuation of log χ(w) = −log z, χ(w) = w S(w)/(1 + w), S = Π_l e_l(1 + e_l)/(w(1 + w)), e_l the root
    through e = 0 (principal square root; Im w < 0 on the path, away from the cuts w < −(1 + s)²/(4s) ≤ −1)."""
    ss_a = np.array(ss)

    def log_chi(w: complex) -> tuple[complex, complex]:
        root = np.sqrt((1 + ss_a) ** 2 + 4 * ss_a * w)
        e = (-(1 + ss_a) + root) / (2 * ss_a)
        de = 1.0 / root
        value = np.log(w) - np.log(1 + w) + np.sum(np.log(e * (1 + e)) - np.log(w * (1 + w)))
        slope = 1 / w - 1 / (1 + w) + np.sum((1 + 2 * e) * de / (e * (1 + e)) - 1 / w - 1 / (1 + w))
        return value, slope

    def newton(z: complex, w: complex) -> complex:
        for _ in range(60):
            value, slope = log_chi(w)
            r = value + np.log(z)
            r = r.real + 1j * math.remainder(r.imag, 2 * math.pi)
            step = r / slope
            for _ in range(40):  # halve the step while the residual grows or w leaves Im w < 0
                trial = w - step
                rt = log_chi(trial)[0] + np.log(z)
                rt = rt.real + 1j * math.remainder(rt.imag, 2 * math.pi)
                if trial.imag < 0 and np.isfinite(rt) and abs(rt) <= abs(r):
                    break
                step /= 2
            w = trial
            if abs(step) <= 1e-15 * abs(w):
                break
        return w

    mean = math.prod(1 + s for s in ss)
    z = x + 1e4j * mean
    w = newton(z, mean / z)
    for eta in np.geomspace(1e4 * mean, 1e-3 * x, 600)[1:]:
        w = newton(x + 1j * eta, w)
    w = newton(x + 1e-300j, w)
    return -w.imag / (math.pi * x)


def test_hard_edge_density_of_per_block_alpha_product() -> None:
    """Linear blocks, α_l = 1/√l, l = 1…9 (s_l = 1/l, mean Π(1 + 1/l) = 10): block 1 (α = 1) puts −1 on the edge of
    the Brown measure of W, a hard edge at 0 with ρ ~ x^{−1/3}. At x = 1e−6·mean the density was 77.34 from a cold
    start and 74.29 or 88.93 along other paths — unconverged iterates of the free-product Newton (one block NaN);
    the physical value (reference, continued from large |z|) is 55.8256. Checked at 1e−6 and 1e−9 of the mean,
    cold and then warm (from the remembered solutions), to 1e−10 relative (the reference's rounding ~1e−13, the
    solver's ~1e−14); the reference also approaches the leading asymptotic (relative gap ~(2/3)√ε, ε = |1 + w|)."""
    depth = 9
    alphas = [1.0 / math.sqrt(l) for l in range(1, depth + 1)]
    ss = [a * a for a in alphas]
    x = np.array([1e-9, 1e-6]) * 10.0
    reference = np.array([_product_density_reference(ss, float(v)) for v in x])
    c = math.prod(1.0 / (1.0 - s) for s in ss[1:])
    leading = math.sqrt(3.0) / (2.0 * math.pi) * c ** (2.0 / 3.0) * x ** (-1.0 / 3.0)
    assert np.all(np.abs(reference / leading - 1.0) < 2.0 * np.sqrt((c * x) ** (2.0 / 3.0)))
    law = jacobian_spectrum(depth, "linear", residual=alphas, weights="gaussian", sigma_w2=1.0, sigma_b2=0.0)
    cold = law.pdf(x)
    np.testing.assert_allclose(cold, reference, rtol=1e-10)
    warm = law.pdf(x * (1.0 + 1e-3))  # Newton from the remembered neighbours
    np.testing.assert_allclose(warm, [_product_density_reference(ss, float(v)) for v in x * (1.0 + 1e-3)], rtol=1e-10)


def _block_density_reference(s: float, x: float) -> float:
    """Density of one linear Gaussian block at x from the cubic u f(1 − s + sf)² − f + 1 = 0 (u = 1/x, see
    :func:`_block_reference`): real coefficients, so inside the support two roots are a conjugate pair and
    ρ = |Im p|/(πx), p = f(1 − s + sf), G = p/z (30-digit roots)."""
    with mpmath.workdps(30):
        s, u = mpmath.mpf(s), 1 / mpmath.mpf(x)
        roots = mpmath.polyroots([u * s * s, 2 * u * s * (1 - s), u * (1 - s) ** 2 - 1, 1], maxsteps=200, extraprec=60)
        return float(max(abs(mpmath.im(f * (1 - s + s * f))) for f in roots) / (mpmath.pi * x))


def test_single_block_with_alpha_above_one() -> None:
    """I + αW with α = 1.5 > 1 (s = α²σ_w² = 2.25): −1 lies inside the Brown measure of αW (a disc of radius 1.5),
    the singular values reach 0 with a positive density, so F has a hard edge at 0 with ρ ~ x^{−1/2}, and as
    u → −∞ (κ, e) tend to a root of Φ + e = 0 (e → −1/s), not to e = −1. residual_block_law raised "the density does
    not vanish above the last edge" (the generic w-scan finds no single block's upper edge), and the real branch
    failed for u < −1e3 (its predictor assumed 1 + ψ ∝ 1/u). Exact moments (Dozier & Silverstein 2007): mean 1 + s,
    second moment 1 + 4s + 2s² (rational, to 1e−14); density against the closed-form cubic to 1e−10 (both ~1e−14)."""
    s = 2.25
    law = residual_block_law(1.5, "linear")
    assert law.support[0] == 0.0 and law.intervals == ((0.0, law.support[1]),)
    assert float(law.moment(1)) == pytest.approx(1.0 + s, rel=1e-14)
    assert float(law.moment(2)) == pytest.approx(1.0 + 4.0 * s + 2.0 * s * s, rel=1e-14)
    b = law.support[1]
    x = np.array([1e-10, 1e-5, 1e-2, 1.0, 5.0, 0.999 * b])
    reference = [_block_density_reference(s, float(v)) for v in x]
    np.testing.assert_allclose(law.pdf(x), reference, rtol=1e-10)
    # the edge b: the density vanishes beyond it (the closed form has three real roots there)
    assert _block_density_reference(s, 1.001 * b) < 1e-12 and law.pdf(1.001 * b) == 0.0
    # the real branch far out (u < 0): 1 + ψ(u) = ∫ dμ(x)/(1 − ux) ~ |u|^{−1/2}, one of the cubic's real roots
    block = law.terms[0].factor
    for u in (-1e3, -1e8):
        with mpmath.workdps(30):
            uu, ss = mpmath.mpf(u), mpmath.mpf(s)
            roots = mpmath.polyroots([uu * ss * ss, 2 * uu * ss * (1 - ss), uu * (1 - ss) ** 2 - 1, 1], maxsteps=200, extraprec=60)
            ps = [mpmath.re(f * (1 - ss + ss * f)) for f in roots if abs(mpmath.im(f)) < 1e-20]
        value = block.one_plus_psi(np.array([u + 0j]))[0][0]
        assert value.imag == 0.0
        assert min(abs(value.real - float(p)) for p in ps) <= 1e-12 * abs(value.real)
