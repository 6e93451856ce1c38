"""tanh residual blocks with orthogonal weights and s > E[1/d]: the lower edge is 0, with a thin tail (docs/derivations.md
§8.8).

The Brown measure of αDQ is the annulus √(s/E[1/d]) ≤ |λ| ≤ √(sE d) (Haagerup & Larsen 2000), and −1 lies in its hole
for s > E[1/d]; but for tanh d = sech⁴(√q z) reaches 0, D has no bounded inverse, and the spectrum of the R-diagonal
αDQ is then the whole disc (Haagerup & Larsen 2000, J. Funct. Anal. 176, Prop. 4.6), so I + αDQ is not invertible and
the law of its squared singular values reaches down to 0. Its density there is carried by the Gaussian tail of the
law of d (no real branch of the block beyond the poles of Φ: :func:`~rmt_init.theory._residual_edges._lower_branch` is
``None``), and a finite network shows it as eigenvalues below any "edge" one would fit to λ_min.

Independent references: the free additive convolution of Haagerup & Larsen (2000, Prop. 3.5) — the symmetrised law of
|I + T|, T = αDQ R-diagonal, is (δ₋₁ + δ₁)/2 ⊞ ν, ν the symmetrised law of the singular values α·sech²(h) of αDQ —
by subordination, G(z) = G_ν(z − R(G)), R(g) = (√(1 + 4g²) − 1)/(2g) the Bernoulli R-transform, G_ν by adaptive
quadrature over h ~ N(0, q0) (no S-transform, no (κ, e) equations, no law of d as a factor); and Monte Carlo of x ↦ x + α tanh(Qx) (Q Haar, numpy), the expected number of eigenvalues of JJᵀ
below x against N ∫₀ˣ ρ. q0 = 0.1 makes the tail fat enough to be counted at N = 600 (s = 2.25 > E[1/d] =
E cosh⁴(√0.1 z) = (e^{0.8} + 4e^{0.2} + 3)/8 = 1.264).
"""
from __future__ import annotations

import math

import numpy as np

from scipy.integrate import quad

from rmt_init.theory import jacobian_spectrum
from rmt_init.theory.residual import _lower_branch


def _orthogonal_tanh_spectra(n: int, alpha: float, q0: float, trials: int, seed: int) -> np.ndarray:
    """Squared singular values of J = I + α diag(tanh'(h)) Q, h = Qx, |x|²/N = q0 (one block, Q Haar from the QR of a
    Gaussian matrix with the signs of R's diagonal), one row per network."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        x = rng.standard_normal(n)
        x *= math.sqrt(q0 * n) / np.linalg.norm(x)
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        q = q * np.sign(np.diag(r))
        h = q @ x
        jac = np.eye(n) + alpha * (1.0 - np.tanh(h) ** 2)[:, None] * q
        out.append(np.linalg.svd(jac, compute_uv=False) ** 2)
    return np.array(out)


def test_tail_below_the_brown_hole_against_montecarlo() -> None:
    """One tanh block, α = 1.5, q0 = 0.1, orthogonal: the law's lower edge is 0 and its density is positive well below
    the Monte Carlo λ_min; the mean number of eigenvalues below x = 0.05, 0.08, 0.1 in 6 nets of width 600 matches
    N ∫₀ˣ ρ (law: 0.71, 4.5, 9.0; measured at N = 800, 4 nets: 1.25, 5.5, 10.75 against 0.95, 6.0, 12.0).

    The mass below x by 40-point Gauss–Legendre on [0, x] (the density is smooth there, without an edge: 40 and 80
    points agree to < 1e−6 of N·F). Tolerance: 4 Poisson standard errors √(N F/trials) (eigenvalue counts are
    sub-Poisson, so this bounds the spread) + 1.5 for the finite-N shift of a count (O(1) eigenvalues; −0.5 and −1.2 at
    N = 800). A sharp lower edge at the Monte Carlo λ_min (~0.03–0.05) would give counts ~0, 2 and 6 fewer."""
    law = jacobian_spectrum(1, "tanh", weights="orthogonal", residual=1.5, q0=0.1)
    block = law.terms[0].factor
    assert block.s == 2.25 and _lower_branch(block) is None
    assert law.support[0] == 0.0
    assert float(law.pdf(np.array([0.02]))[0]) > 1e-4
    n, trials = 600, 6
    spectra = _orthogonal_tanh_spectra(n, 1.5, 0.1, trials, seed=3)
    nodes, weights = np.polynomial.legendre.leggauss(40)
    for x in (0.05, 0.08, 0.1):
        mass = 0.5 * x * float(np.sum(weights * law.pdf(0.5 * x * (nodes + 1.0))))
        expected = n * mass
        counts = (spectra < x).sum(axis=1)
        tol = 4.0 * math.sqrt(expected / trials) + 1.5
        assert abs(counts.mean() - expected) <= tol, (x, counts, expected, tol)


def _subordination_density(lam: float, alpha: float, q0: float) -> float:
    """ρ(λ) of the law of (I + αDQ)ᵀ(I + αDQ) from the symmetrised law μ of its singular values (module docstring):
    ρ(λ) = ρ_μ(√λ)/√λ, ρ_μ(r) = −Im G(r + i0)/π, G continued by Newton (finite-difference slope) from Im z = 10 down
    to 1e−11·√λ on 60 geometric steps, g ≈ 1/z at the start."""

    def g_nu(w: complex) -> complex:
        def part(z: float, imag: bool) -> float:
            a = alpha / math.cosh(math.sqrt(q0) * z) ** 2
            value = w / (w * w - a * a)
            return (value.imag if imag else value.real) * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

        re = 2.0 * quad(part, 0.0, 14.0, args=(False,), limit=400, epsabs=1e-15, epsrel=1e-12)[0]
        im = 2.0 * quad(part, 0.0, 14.0, args=(True,), limit=400, epsabs=1e-15, epsrel=1e-12)[0]
        return complex(re, im)

    def r_bernoulli(g: complex) -> complex:
        return (np.sqrt(1.0 + 4.0 * g * g) - 1.0) / (2.0 * g)

    r = math.sqrt(lam)
    g = 1.0 / complex(r, 10.0)
    for eta in np.geomspace(10.0, 1e-11 * r, 60):
        z = complex(r, eta)
        for _ in range(60):
            f = g - g_nu(z - r_bernoulli(g))
            h = 1e-7 * max(1.0, abs(g))
            step = f * h / ((g + h) - g_nu(z - r_bernoulli(g + h)) - f)
            g -= step
            if abs(step) <= 1e-13 * abs(g):
                break
    return -g.imag / (math.pi * r)


def test_tail_density_against_the_free_additive_convolution() -> None:
    """The same law's density in its tail (2.0e−5 at 0.005, 0.016 at 0.03) and in the bulk (0.43 at 0.1, 0.16 at 1)
    against the subordination reference: 1e−6 relative (measured ≤ 1e−8; the reference's last η = 1e−11√λ and its
    quadrature, 1e−12 relative, bound its own error far below that)."""
    law = jacobian_spectrum(1, "tanh", weights="orthogonal", residual=1.5, q0=0.1)
    lam = np.array([0.005, 0.03, 0.1, 1.0])
    reference = np.array([_subordination_density(float(v), 1.5, 0.1) for v in lam])
    np.testing.assert_allclose(law.pdf(lam), reference, rtol=1e-6)
