"""tanh residual blocks with orthogonal weights and s > E[1/d]: the lower edge is 0, with a thin tail (docs/derivations.md
§8.8).

The Brown measure of αDQ is the annulus √(s/E[1/d]) ≤ |λ| ≤ √(sE d) (Haagerup & Larsen 2000), and −1 lies in its hole
for s > E[1/d]; but for tanh d = sech⁴(√q z) reaches 0, D has no bounded inverse, and the spectrum of the R-diagonal
αDQ is then the whole disc (Haagerup & Larsen 2000, J. Funct. Anal. 176, Prop. 4.6), so I + αDQ is not invertible and
the law of its squared singular values reaches down to 0. Its density there is carried by the Gaussian tail of the
law of d (no real branch of the block beyond the poles of Φ: :func:`~rmt_init.theory.residual._lower_branch` is
``None``), and a finite network shows it as eigenvalues below any "edge" one would fit to λ_min.

Independent reference: Monte Carlo of x ↦ x + α tanh(Qx) (Q Haar, numpy), the expected number of eigenvalues of JJᵀ
below x against N ∫₀ˣ ρ. q0 = 0.1 makes the tail fat enough to be counted at N = 600 (s = 2.25 > E[1/d] =
E cosh⁴(√0.1 z) = (e^{0.8} + 4e^{0.2} + 3)/8 = 1.264).
"""
from __future__ import annotations

import math

import numpy as np

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
